"""The change-event outbox, over HTTP: a host's hook that fails never costs the IdP a 201, and the host
catches up later (`events deliver`, the next event of the resource, the background retry, `events replay`),
in order per resource and plugin.

Each test runs a host app (ScimService with the host's plugins) on a real service database: a SQLite
file, and a PostgreSQL schema in the ``[postgres]`` variants (the LDAP variant keeps the service tables
in SQLite and users in a directory).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_helpers import Scim, backend_config, database_url, new_org, user
from flask import Flask

from scim_service import ScimService, get_state
from scim_service.hookspecs import hookimpl
from scim_service.model import GroupRecord, Member, Tenant, UserRecord
from scim_service.outbox import backoff, decode_payload, encode_payload
from scim_service.state import ScimState

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
WITH_LDAP = [*BACKENDS, pytest.param("ldap", marks=pytest.mark.ldap)]


class Mirror:
    """The host's copy of the users and groups, kept by idempotent hooks (an upsert by id, a delete
    that ignores a missing row), as docs/embedding.md recommends. ``fail`` makes the next N calls raise,
    as a host whose own database is down would."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []  # (event, userName or group id), every call, failed ones too

    def _maybe_fail(self, event: str, what: str) -> None:
        self.calls.append((event, what))
        if self.fail > 0:
            self.fail -= 1
            raise RuntimeError(f"host mirror down (postgresql://host:s3cret@db.internal/app) during {event}")

    @hookimpl
    def scim_user_created(self, tenant: Tenant, user: UserRecord) -> None:
        self._maybe_fail("created", user.user_name)
        self.users[user.id] = {"userName": user.user_name, "active": user.active, "org": tenant.name}

    @hookimpl
    def scim_user_updated(self, tenant: Tenant, user: UserRecord) -> None:
        self._maybe_fail("updated", user.user_name)
        self.users[user.id] = {"userName": user.user_name, "active": user.active, "org": tenant.name}

    @hookimpl
    def scim_user_deactivated(self, tenant: Tenant, user: UserRecord) -> None:
        self._maybe_fail("deactivated", user.user_name)
        self.users.setdefault(user.id, {"userName": user.user_name, "org": tenant.name})["active"] = False

    @hookimpl
    def scim_user_deleted(self, tenant: Tenant, user_id: str, hard: bool) -> None:
        self._maybe_fail("deleted", user_id)
        self.users.pop(user_id, None)

    @hookimpl
    def scim_group_changed(self, tenant: Tenant, group: GroupRecord | None, group_id: str, action: str) -> None:
        self._maybe_fail(f"group {action}", group_id)
        if group is None:
            self.groups.pop(group_id, None)
        else:
            self.groups.setdefault(group_id, {"members": set()})["displayName"] = group.display_name

    @hookimpl
    def scim_members_changed(
        self, tenant: Tenant, group_id: str, added: tuple[Member, ...], removed: tuple[str, ...]
    ) -> None:
        self._maybe_fail("members", group_id)
        members = self.groups.setdefault(group_id, {"members": set()})["members"]
        members |= {m.value for m in added}
        members -= set(removed)


class SessionKiller:
    """A second host plugin, always healthy: it must not wait for the mirror's failures."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    @hookimpl
    def scim_user_deactivated(self, tenant: Tenant, user: UserRecord) -> None:
        self.ended.append(user.user_name)


def host_app(tmp_path: Path, *plugins: object, **config: Any) -> tuple[Flask, Scim]:
    """A host app with ``plugins`` on the test's service database, an organization 'acme' and its client."""
    app = Flask("host", instance_path=str(tmp_path))
    app.config.update(
        SCIM_DATABASE_URL=database_url(tmp_path),
        SCIM_EVENTS_RETRY_INTERVAL="off",  # retries only where a test asks for them
        **backend_config(tmp_path),
        **config,
    )
    ScimService(app, plugins=plugins)
    state = get_state(app)
    state.upgrade()
    state.outbox.in_background = False
    return app, Scim(app.test_client(), new_org(state, "acme", max_seats=100))


@pytest.fixture
def closing() -> Any:
    apps: list[Flask] = []
    yield apps.append
    for app in apps:
        get_state(app).close()


def cli(app: Flask, *args: str) -> Any:
    """``flask scim ARGS`` on the host app (the same commands as ``scim-service``)."""
    return app.test_cli_runner().invoke(args=["scim", *args], catch_exceptions=False)


def listed(app: Flask, *args: str) -> list[dict[str, Any]]:
    result = cli(app, "events", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def later(state: ScimState, delta: timedelta) -> None:
    """Move the outbox's clock on (past an event's backoff, say)."""
    start = datetime.now(UTC)
    state.outbox.store.clock = lambda: start + delta


def deactivate(scim: Scim, user_id: str) -> None:
    answer = scim.patch(f"/Users/{user_id}", [{"op": "replace", "path": "active", "value": False}])
    assert answer.status_code == 200, answer.get_data(as_text=True)


@pytest.mark.parametrize("api_database", WITH_LDAP, indirect=True)
def test_a_failed_hook_gets_the_event_again_from_events_deliver(tmp_path, closing, caplog):
    mirror = Mirror(fail=2)
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    with caplog.at_level(logging.ERROR, logger="scim_service.events"):
        created = scim.post("/Users", user("alice"))
    assert created.status_code == 201, created.get_data(as_text=True)  # the IdP is told the truth
    alice = created.get_json()["id"]
    assert mirror.users == {}

    [waiting] = listed(app, "--undelivered")
    assert (waiting["event"], waiting["resource_id"], waiting["status"]) == ("scim_user_created", alice, "failing")
    assert waiting["org"] == "acme" and waiting["attempts"] == 1
    assert "host mirror down" in waiting["last_error"] and "s3cret" not in waiting["last_error"]
    assert waiting["payload"]["user"]["data"]["userName"] == "alice"
    table = cli(app, "events", "list", "--undelivered")
    assert "scim_user_created" in table.stdout and "failing" in table.stdout

    # Still down: deliver says so and exits 1, the event stays.
    again = cli(app, "events", "deliver")
    assert again.exit_code == 1 and "0 delivered, 1 failed" in again.stdout
    assert listed(app, "--undelivered")[0]["attempts"] == 2

    # The host is back: the event arrives, the mirror has alice, nothing waits.
    done = cli(app, "events", "deliver")
    assert done.exit_code == 0, done.output
    assert "1 delivered, 0 failed, 0 waiting" in done.stdout
    assert mirror.users == {alice: {"userName": "alice", "active": True, "org": "acme"}}
    assert listed(app, "--undelivered") == []
    [delivered] = listed(app)
    assert delivered["status"] == "delivered" and delivered["attempts"] == 3
    # The outbox knows the plugin by a name that is the same in every process: its module and class.
    assert delivered["delivered_to"] == [f"{Mirror.__module__}.Mirror"]
    assert mirror.calls == [("created", "alice")] * 3

    # A replay that fails is reported (exit 1) and leaves the event delivered.
    mirror.fail = 1
    replayed = cli(app, "events", "replay", "--since", str(delivered["id"]))
    assert replayed.exit_code == 1 and "0 delivered, 1 failed" in replayed.stdout
    assert listed(app)[0]["status"] == "delivered"


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_later_events_of_a_resource_wait_for_the_earlier_one_per_plugin(tmp_path, closing):
    mirror, killer = Mirror(fail=1), SessionKiller()
    app, scim = host_app(tmp_path, mirror, killer)
    closing(app)
    alice = scim.create_user("alice")["id"]  # the mirror fails on her creation
    deactivate(scim, alice)  # updated + deactivated: the mirror must not get them before the creation
    bob = scim.create_user("bob")["id"]  # another resource: not held back

    assert mirror.calls == [("created", "alice"), ("created", "bob")]
    assert mirror.users == {bob: {"userName": "bob", "active": True, "org": "acme"}}
    assert killer.ended == ["alice"]  # a healthy plugin is not held back by the mirror's failure
    waiting = listed(app, "--undelivered")
    assert [(e["event"], e["resource_id"]) for e in waiting] == [
        ("scim_user_created", alice),
        ("scim_user_updated", alice),
        ("scim_user_deactivated", alice),
    ]
    assert waiting[2]["status"] == "pending" and waiting[2]["attempts"] == 1  # the killer had it

    assert cli(app, "events", "deliver").exit_code == 0
    assert mirror.calls[2:] == [("created", "alice"), ("updated", "alice"), ("deactivated", "alice")]
    assert mirror.users[alice] == {"userName": "alice", "active": False, "org": "acme"}
    assert killer.ended == ["alice"]  # the killer is not called again for what it already has
    assert listed(app, "--undelivered") == []


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_the_next_event_of_a_resource_retries_the_earlier_one_once_its_backoff_is_over(tmp_path, closing):
    mirror = Mirror(fail=1)
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    state = get_state(app)
    alice = scim.create_user("alice")["id"]
    deactivate(scim, alice)  # within the backoff: nothing retried, nothing later delivered
    assert mirror.calls == [("created", "alice")]
    later(state, backoff(1) + timedelta(seconds=1))
    scim.put(f"/Users/{alice}", user("alice", displayName="Alice", active=False))  # backoff over
    assert [c[0] for c in mirror.calls] == ["created", "created", "updated", "deactivated", "updated"]
    assert mirror.users[alice]["active"] is False and state.outbox.store.count_undelivered() == 0


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_the_process_retries_in_the_background_after_the_interval(tmp_path, closing):
    mirror = Mirror(fail=1)
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    state = get_state(app)
    alice = scim.create_user("alice")["id"]
    state.outbox.retry_interval = timedelta(0)  # every event may start a retry (SCIM_EVENTS_RETRY_INTERVAL)
    scim.create_user("bob")  # alice's event is in its backoff: still waiting
    assert alice not in mirror.users
    later(state, timedelta(minutes=5))
    scim.create_user("carol")  # another resource's event starts the retry, which delivers alice's
    assert alice in mirror.users and len(mirror.users) == 3
    assert state.outbox.store.count_undelivered() == 0


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_replay_since_rebuilds_a_lost_mirror_in_order_and_twice_changes_nothing(tmp_path, closing):
    mirror = Mirror()
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    alice = scim.create_user("alice")["id"]
    bob = scim.create_user("bob")["id"]
    group = scim.create_group("eng", members=[alice, bob])["id"]
    scim.patch(f"/Groups/{group}", [{"op": "remove", "path": f'members[value eq "{bob}"]'}])
    deactivate(scim, bob)
    assert scim.delete(f"/Users/{alice}").status_code == 204
    expected_users, expected_groups = dict(mirror.users), json.loads(json.dumps(mirror.groups, default=sorted))
    assert expected_users == {bob: {"userName": "bob", "active": False, "org": "acme"}}
    assert expected_groups == {group: {"displayName": "eng", "members": [alice]}}

    first = listed(app)[0]["id"]
    for _ in range(2):  # the host lost its copy (twice): a replay from the first event rebuilds it exactly
        mirror.users.clear()
        mirror.groups.clear()
        result = cli(app, "events", "replay", "--since", str(first))
        assert result.exit_code == 0, result.output
        assert mirror.users == expected_users
        assert json.loads(json.dumps(mirror.groups, default=sorted)) == expected_groups
    # A replay by time, onto a mirror that has everything: idempotent hooks leave it as it is.
    assert cli(app, "events", "replay", "--since", "1h").exit_code == 0
    assert mirror.users == expected_users
    # In order: bob's own events came in the order they happened, each replay.
    bobs = [c[0] for c in mirror.calls if c[1] == "bob"]
    assert bobs == ["created", "updated", "deactivated"] * 4


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_group_events_survive_the_round_trip_through_the_outbox(tmp_path, closing):
    mirror = Mirror(fail=1)
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    alice = scim.create_user("alice")["id"]  # the one failure is hers
    group = scim.create_group("eng", members=[alice])["id"]
    assert mirror.groups == {group: {"displayName": "eng", "members": {alice}}}
    mirror.groups.clear()
    [created, members] = [e for e in listed(app) if e["resource_type"] == "Group"]
    assert cli(app, "events", "replay", "--since", str(created["id"])).exit_code == 0
    assert mirror.groups == {group: {"displayName": "eng", "members": {alice}}}
    assert [m["value"] for m in members["payload"]["added"]] == [alice]


def test_payloads_rebuild_the_hook_arguments() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    tenant = Tenant(id="t1", name="acme", max_seats=5)
    alice = UserRecord(
        id="u1",
        data={"userName": "alice", "active": True, "emails": [{"value": "a@x.org", "primary": True}]},
        created=when,
        last_modified=when,
        version="W/1",
        groups=(Member("g1", "Group", "eng"),),
    )
    eng = GroupRecord(id="g1", data={"displayName": "eng"}, created=when, last_modified=when, version="2", members=None)
    cases = [
        ("scim_user_created", {"tenant": tenant, "user": alice}),
        ("scim_user_deleted", {"tenant": tenant, "user_id": "u1", "hard": True}),
        ("scim_group_changed", {"tenant": tenant, "group": eng, "group_id": "g1", "action": "updated"}),
        ("scim_group_changed", {"tenant": tenant, "group": None, "group_id": "g1", "action": "deleted"}),
        ("scim_members_changed", {"tenant": tenant, "group_id": "g1", "added": (Member("u1"),), "removed": ("u2",)}),
    ]
    for event, kwargs in cases:
        assert decode_payload(event, encode_payload(event, kwargs)) == kwargs


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_one_deliverer_at_a_time_holds_an_event(tmp_path, closing):
    mirror = Mirror(fail=1)
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    store = get_state(app).outbox.store
    scim.create_user("alice")
    [event] = store.query(undelivered=True)
    held = store.claim(event.id, respect_backoff=False)
    assert held is not None and held.id == event.id
    assert store.claim(event.id, respect_backoff=False) is None  # a second worker leaves it
    report = get_state(app).outbox.deliver_pending()
    assert (report.delivered, report.waiting) == (0, 1)
    later(get_state(app), timedelta(minutes=3))  # the first holder died: its claim expires
    assert get_state(app).outbox.deliver_pending().delivered == 1


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_prune_deletes_old_delivered_events_and_keeps_undelivered_ones(tmp_path, closing):
    mirror = Mirror()
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    state = get_state(app)
    later(state, -timedelta(days=3))  # these were delivered three days ago
    scim.create_user("alice")
    mirror.fail = 1
    scim.create_user("bob")  # undelivered, also three days old
    state.outbox.store.clock = lambda: datetime.now(UTC)
    scim.create_user("carol")  # delivered now
    result = cli(app, "events", "prune", "--older-than", "1d")
    assert result.exit_code == 0 and "deleted 1 delivered events" in result.stdout
    assert sorted(e["payload"]["user"]["data"]["userName"] for e in listed(app)) == ["bob", "carol"]


def test_an_outbox_that_cannot_be_written_still_calls_the_hooks_once(tmp_path, closing, caplog):
    mirror = Mirror()
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    with get_state(app).service_engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE scim_events"))  # a service database that refuses the insert
    with caplog.at_level(logging.ERROR, logger="scim_service.outbox"):
        created = scim.post("/Users", user("alice"))
    assert created.status_code == 201
    assert [u["userName"] for u in mirror.users.values()] == ["alice"]
    assert "could not write the scim_user_created event" in caplog.text


def test_deleting_an_organization_deletes_its_events(tmp_path, closing):
    app, scim = host_app(tmp_path, Mirror(fail=1))
    closing(app)
    scim.create_user("alice")
    assert len(listed(app, "--org", "acme")) == 1
    assert cli(app, "orgs", "delete", "acme", "--yes").exit_code == 0
    assert listed(app) == []


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_another_worker_delivers_what_the_first_one_could_not(tmp_path, closing):
    # Two processes on one service database (two gunicorn workers); the host's mirror is shared, as its
    # own database would be.
    mirror = Mirror(fail=1)
    first, scim = host_app(tmp_path, mirror)
    closing(first)
    second = Flask("worker-2", instance_path=str(tmp_path))
    second.config.update(get_state(first).config)
    ScimService(second, plugins=[mirror])
    closing(second)
    alice = scim.create_user("alice")["id"]  # worker 1: the mirror fails
    later(get_state(second), timedelta(minutes=1))
    other = Scim(second.test_client(), scim.token)
    assert other.put(f"/Users/{alice}", user("alice", title="Boss")).status_code == 200  # worker 2
    assert [c[0] for c in mirror.calls] == ["created", "created", "updated"]
    assert get_state(second).outbox.store.count_undelivered() == 0


class TableDropper:
    """A host hook that takes the outbox away while it runs: recording the delivery then fails."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    @hookimpl
    def scim_user_created(self, tenant: Tenant, user: UserRecord) -> None:
        assert self.app is not None
        with get_state(self.app).service_engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE scim_events"))


def test_an_outbox_that_fails_after_the_hooks_ran_still_answers_the_change(tmp_path, closing, caplog):
    dropper = TableDropper()
    app, scim = host_app(tmp_path, dropper)
    closing(app)
    dropper.app = app
    with caplog.at_level(logging.ERROR, logger="scim_service.outbox"):
        created = scim.post("/Users", user("alice"))
    assert created.status_code == 201, created.get_data(as_text=True)
    assert "stays in the outbox for a retry" in caplog.text


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_an_event_whose_waiting_plugin_is_gone_is_marked_delivered(tmp_path, closing):
    mirror = Mirror(fail=1)
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    scim.create_user("alice")
    get_state(app).pm.unregister(mirror)  # the host dropped its mirror
    result = cli(app, "events", "deliver")
    assert "1 delivered" in result.stdout
    assert listed(app, "--undelivered") == []


class EveryThirdFails:
    """A mirror whose every third call fails; it records the versions it took, in the order it took them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.taken: list[str] = []

    @hookimpl
    def scim_user_updated(self, tenant: Tenant, user: UserRecord) -> None:
        with self.lock:
            self.calls += 1
            if self.calls % 3 == 0:
                raise RuntimeError("flaky host")
            self.taken.append(user.version)


@pytest.mark.parametrize("api_database", BACKENDS, indirect=True)
def test_concurrent_changes_of_one_user_reach_a_flaky_hook_in_the_outbox_order(tmp_path, closing):
    mirror = EveryThirdFails()
    app, scim = host_app(tmp_path, mirror)
    closing(app)
    state = get_state(app)
    alice = scim.create_user("alice")["id"]

    def writer(n: int) -> None:
        client = Scim(app.test_client(), scim.token)
        for i in range(5):
            answer = client.patch(f"/Users/{alice}", [{"op": "replace", "path": "title", "value": f"t{n}-{i}"}])
            assert answer.status_code == 200, answer.get_data(as_text=True)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in range(20):  # retry until the flaky host has everything
        if not state.outbox.store.count_undelivered():
            break
        cli(app, "events", "deliver")
    written = [e.payload for e in state.outbox.store.query(resource=(state.store.get_org("acme").id, "User", alice))]
    assert len(written) == 20 and state.outbox.store.count_undelivered() == 0
    versions = [json.loads(p)["user"]["version"] for p in written]
    assert mirror.taken == versions  # every update, once, in the order the outbox has them
