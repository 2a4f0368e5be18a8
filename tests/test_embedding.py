"""Embedding: ScimService mounted into a host Flask app with its own routes, error pages, auth and events."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pluggy
import pytest
from api_helpers import Scim, assert_scim_error, user
from flask import Flask, jsonify
from scim_sql.backend import SqlBackend

from scim_service import ScimService, get_state
from scim_service.hookspecs import AuthRequest, Principal, hookimpl
from scim_service.model import Tenant, UserRecord
from scim_service.sqlengine import make_engine


class HostAuth:
    """The host's own API keys: 'host-key-<org>' authenticates as that organization; a key with a user
    suffix ('host-key-<org>:<userName>') names a SCIM user too, which enables /Me."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    @hookimpl
    def scim_authenticate(self, request: AuthRequest, config: dict[str, Any]) -> Principal | None:
        key = request.headers.get("x-api-key")
        if not key or not key.startswith("host-key-"):
            return None
        org, _, user_name = key.removeprefix("host-key-").partition(":")
        state = get_state(self.app)
        tenant = state.store.get_org(org)
        user_id = None
        if user_name:
            from scim_service.query.ast import ListQuery
            from scim_service.query.parser import parse_filter
            from scim_service.query.resolve import resolve_filter
            from scim_service.schemas.definitions import USER_RESOURCE

            found = state.backend.list_users(
                tenant, ListQuery(filter=resolve_filter(parse_filter(f'userName eq "{user_name}"'), USER_RESOURCE))
            )
            user_id = found.resources[0].id if found.resources else None
        return Principal(tenant=tenant, user_id=user_id, label="host api key")


class SessionKiller:
    """The host ends a user's sessions when the user is deactivated."""

    def __init__(self) -> None:
        self.ended: list[str] = []
        self.events: list[str] = []

    @hookimpl
    def scim_user_deactivated(self, tenant: Tenant, user: UserRecord) -> None:
        self.ended.append(user.user_name)

    @hookimpl
    def scim_user_created(self, tenant: Tenant, user: UserRecord) -> None:
        self.events.append(f"created {user.user_name}")

    @hookimpl
    def scim_user_reactivated(self, tenant: Tenant, user: UserRecord) -> None:
        self.events.append(f"reactivated {user.user_name}")


def host_app(tmp_path: Path, **config: Any) -> tuple[Flask, SessionKiller]:
    app = Flask("host", instance_path=str(tmp_path))
    app.config.update(SCIM_DATABASE_URL=f"sqlite:///{tmp_path}/host.db", SCIM_BASE_PATH="/api/scim", **config)

    @app.get("/")
    def home() -> Any:
        return "host home"

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("host bug")

    @app.errorhandler(404)
    def host_404(_error: Exception) -> Any:
        return jsonify(host="not here"), 404

    @app.errorhandler(500)
    def host_500(_error: Exception) -> Any:
        return jsonify(host="broken"), 500

    killer = SessionKiller()
    ScimService(app, plugins=[HostAuth(app), killer])
    get_state(app).upgrade()
    get_state(app).store.create_org("acme", max_seats=10)
    return app, killer


def test_host_routes_and_error_pages_are_untouched(tmp_path):
    app, _ = host_app(tmp_path)
    client = app.test_client()
    assert client.get("/").get_data(as_text=True) == "host home"
    assert client.get("/nowhere").get_json() == {"host": "not here"}
    assert client.get("/boom").get_json() == {"host": "broken"}
    # ... while under the SCIM prefix errors are SCIM errors.
    assert_scim_error(client.get("/api/scim/Users"), 401)
    assert_scim_error(client.get("/api/scim/Nowhere", headers={"X-Api-Key": "host-key-acme"}), 404)


def test_host_auth_and_events(tmp_path):
    app, killer = host_app(tmp_path)
    client = app.test_client()
    headers = {"X-Api-Key": "host-key-acme"}
    created = client.post("/api/scim/Users", json=user("alice"), headers=headers)
    assert created.status_code == 201
    alice = created.get_json()
    assert alice["meta"]["location"].endswith(f"/api/scim/Users/{alice['id']}")
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    assert client.patch(f"/api/scim/Users/{alice['id']}", json=patch, headers=headers).status_code == 200
    assert killer.ended == ["alice"]
    assert client.post("/api/scim/Users", json=user("alice"), headers=headers).status_code == 200
    assert killer.events == ["created alice", "reactivated alice"]
    # The built-in bearer tokens still work beside the host's auth.
    _id, token = get_state(app).store.create_token("acme")
    assert Scim(client, token, base="/api/scim").get("/Users").get_json()["totalResults"] == 1


class BrokenMirror:
    """A host hook that fails: mirroring users into the host's tables raises."""

    @hookimpl
    def scim_user_created(self, tenant: Tenant, user: UserRecord) -> None:
        raise RuntimeError(f"host mirror down for {user.user_name}")

    @hookimpl
    def scim_user_deactivated(self, tenant: Tenant, user: UserRecord) -> None:
        raise RuntimeError("host mirror down")


def test_a_failing_event_hook_never_turns_a_stored_change_into_an_error(tmp_path, caplog):
    app, killer = host_app(tmp_path)
    get_state(app).pm.register(BrokenMirror(), name="broken-mirror")
    client = app.test_client()
    headers = {"X-Api-Key": "host-key-acme"}
    with caplog.at_level(logging.ERROR, logger="scim_service.events"):
        created = client.post("/api/scim/Users", json=user("alice"), headers=headers)
    # The IdP is told the truth (the user is stored), and the other hooks still heard of it.
    assert created.status_code == 201, created.get_data(as_text=True)
    assert killer.events == ["created alice"]
    assert "scim_user_created hook of plugin broken-mirror failed" in caplog.text
    assert "host mirror down for alice" in caplog.text  # the traceback is in the log, for the host to fix
    alice_id = created.get_json()["id"]
    assert client.get(f"/api/scim/Users/{alice_id}", headers=headers).status_code == 200
    # A retry of the same POST is the usual 409 on an active match, not a second failure.
    assert_scim_error(client.post("/api/scim/Users", json=user("alice"), headers=headers), 409)
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    assert client.patch(f"/api/scim/Users/{alice_id}", json=patch, headers=headers).status_code == 200
    assert killer.ended == ["alice"]
    # broken-mirror is not given alice's deactivation before her creation (the outbox keeps the order
    # per resource and plugin; tests/test_events_outbox.py): one failure, both events wait for it.
    assert get_state(app).lifecycle.events.failures == 1
    waiting = get_state(app).outbox.store.query(undelivered=True)
    assert [e.event for e in waiting] == ["scim_user_created", "scim_user_deactivated"]


def test_me_serves_the_user_the_host_auth_names_and_501_otherwise(tmp_path):
    app, _ = host_app(tmp_path)
    client = app.test_client()
    client.post("/api/scim/Users", json=user("alice", title="Engineer"), headers={"X-Api-Key": "host-key-acme"})
    me = client.get("/api/scim/Me", headers={"X-Api-Key": "host-key-acme:alice"})
    assert me.status_code == 200 and me.get_json()["userName"] == "alice"
    assert_scim_error(client.get("/api/scim/Me", headers={"X-Api-Key": "host-key-acme"}), 501)


def test_second_init_app_is_refused_and_two_apps_are_independent(tmp_path):
    first, _ = host_app(tmp_path / "one")
    with pytest.raises(RuntimeError, match="already initialised"):
        ScimService(first)
    second, _ = host_app(tmp_path / "two")
    headers = {"X-Api-Key": "host-key-acme"}
    first.test_client().post("/api/scim/Users", json=user("only-in-first"), headers=headers)
    assert second.test_client().get("/api/scim/Users", headers=headers).get_json()["totalResults"] == 0
    assert get_state(first) is not get_state(second)

    # One extension object may serve several apps: its state lives in each app.
    extension = ScimService(load_entry_points=True)
    for folder in ("three", "four"):
        app = Flask(folder)
        app.config["SCIM_DATABASE_URL"] = f"sqlite:///{tmp_path}/{folder}.db"
        extension.init_app(app)
        assert get_state(app).config["SCIM_DATABASE_URL"].endswith(f"{folder}.db")


def test_host_hands_in_its_own_backend_on_its_own_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/hosts-own.db")
    backend = SqlBackend(engine)
    app = Flask("host")
    app.config["SCIM_DATABASE_URL"] = f"sqlite:///{tmp_path}/service.db"
    ScimService(app, backend=backend)
    state = get_state(app)
    assert state.backend is backend
    state.upgrade()
    token = state.store.create_org("acme") and state.store.create_token("acme")[1]
    client = Scim(app.test_client(), token)
    client.create_user("alice")
    with engine.connect() as conn:
        import sqlalchemy as sa

        assert conn.execute(sa.text("select user_name from scim_users")).scalars().all() == ["alice"]


def test_unknown_backend_name_lists_the_installed_ones(tmp_path):
    from scim_service.plugins import PluginError

    app = Flask("host")
    app.config.update(SCIM_DATABASE_URL=f"sqlite:///{tmp_path}/x.db", SCIM_BACKEND="mongo")
    with pytest.raises(PluginError, match=r"installed: .*sql"):
        ScimService(app)


def test_misspelled_hook_fails_at_start_up(tmp_path):
    class Typo:
        @hookimpl
        def scim_user_deactivatd(self, tenant: Tenant, user: UserRecord) -> None:
            pass

    app = Flask("host")
    app.config["SCIM_DATABASE_URL"] = f"sqlite:///{tmp_path}/x.db"
    with pytest.raises(pluggy.PluginValidationError, match="scim_user_deactivatd"):
        ScimService(app, plugins=[Typo()])
