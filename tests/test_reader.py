"""The read API for host code: ``ext.users(org)`` and ``ext.groups(org)``, without HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_helpers import Scim
from flask import Flask

from scim_service import ScimService, get_state
from scim_service.servicedb.store import AdminError


def host(tmp_path: Path) -> tuple[Flask, ScimService, Scim]:
    app = Flask("host", instance_path=str(tmp_path))
    app.config.update(SCIM_DATABASE_URL=f"sqlite:///{tmp_path}/host.db")
    ext = ScimService(app)
    state = get_state(app)
    state.upgrade()
    state.store.create_org("acme")
    state.store.create_org("globex")
    _id, token = state.store.create_token("acme")
    return app, ext, Scim(app.test_client(), token)


def test_users_get_find_is_active_and_list(tmp_path):
    _app, ext, scim = host(tmp_path)
    alice = scim.create_user("Alice", externalId="ext-a", email="alice@example.com")
    bob = scim.create_user("bob", email="bob@example.com")
    users = ext.users("acme")

    got = users.get(alice["id"])
    assert got is not None and got.user_name == "Alice"
    assert users.get("no-such-id") is None
    assert users.find(user_name="alice").id == alice["id"]  # userName is case-insensitive, as in the API
    assert users.find(external_id="ext-a").id == alice["id"]
    assert users.find(email="bob@example.com").id == bob["id"]
    assert users.find(user_name='carol"') is None  # the value is quoted, never parsed as filter text
    with pytest.raises(TypeError):
        users.find(user_name="alice", email="alice@example.com")

    assert users.is_active(alice["id"]) is True
    scim.patch(f"/Users/{alice['id']}", [{"op": "replace", "path": "active", "value": False}])
    assert users.is_active(alice["id"]) is False
    assert users.is_active("no-such-id") is False

    page = users.list('userName sw "b"')
    assert [u.user_name for u in page.resources] == ["bob"] and page.total_results == 1
    assert sorted(u.user_name for u in users.iter()) == ["Alice", "bob"]
    # Another organization's reader sees none of acme's users.
    assert ext.users("globex").get(alice["id"]) is None
    assert list(ext.users("globex").iter()) == []
    with pytest.raises(AdminError):
        ext.users("nobody")


def test_soft_deleted_users_are_not_found(tmp_path):
    _app, ext, scim = host(tmp_path)
    alice = scim.create_user("alice")
    assert scim.delete(f"/Users/{alice['id']}").status_code == 204
    assert ext.users("acme").get(alice["id"]) is None
    assert ext.users("acme").find(user_name="alice") is None


def test_iter_reads_every_page(tmp_path):
    _app, ext, scim = host(tmp_path)
    for i in range(205):  # more than one backend page of 200
        scim.create_user(f"user{i:03d}")
    names = [u.user_name for u in ext.users("acme").iter()]
    assert len(names) == 205 and len(set(names)) == 205


def test_groups_get_find_members(tmp_path):
    app, ext, scim = host(tmp_path)
    alice = scim.create_user("alice")
    created = scim.post(
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "externalId": "g-1",
            "members": [{"value": alice["id"]}],
        },
    )
    assert created.status_code == 201, created.get_json()
    group_id = created.get_json()["id"]
    groups = ext.groups("acme")
    assert groups.find(display_name="Engineering").id == group_id
    assert groups.find(external_id="g-1").id == group_id
    assert [m.value for m in groups.members(group_id)] == [alice["id"]]
    assert groups.members("no-such-group") == ()
    assert groups.get(group_id, include_members=False).display_name == "Engineering"
    # An extension object not bound to an app reads from Flask's current app.
    with app.app_context():
        assert ScimService().users("acme").find(user_name="alice").id == alice["id"]
