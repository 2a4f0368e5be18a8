"""Races across processes on one PostgreSQL database: three gunicorn servers, two workers each.

Each race fires its requests from 24 threads released together by a barrier, spread over the servers,
then checks the HTTP outcomes and the rows in the database. The figures (attempts, winners, rows) are
printed: run with ``-s`` (or ``-rP``) to see them. A last group of tests drives
:func:`scim_service.sqlengine.retry_transient` with real deadlocks and serialization failures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from pg_support import Admin, Reply, Servers, call, gunicorn_servers, service_env, statuses
from scim_sql.tables import group_members, groups, users

from scim_service.errors import Unavailable
from scim_service.sqlengine import (
    RETRY_ATTEMPTS,
    TransientConflict,
    make_engine,
    retry_transient,
    run_write,
    write_transaction,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USERS, GROUPS, MEMBERS = users.name, groups.name, group_members.name

ATTEMPTS = 24
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture(scope="module")
def servers(service_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Three gunicorn servers (2 workers, 4 threads each) on the module's database; INFO logs to files."""
    env = service_env(service_db, SCIM_LOG_LEVEL="INFO")
    with gunicorn_servers(env, tmp_path_factory.mktemp("race-logs"), count=3, workers=2, threads=4) as running:
        yield running
    logs = running.logs()
    print(f"\n[races] retried transactions logged by the servers: {logs.count('retrying ')}")
    assert "Traceback" not in logs, logs[-5000:]


def race(servers: Servers, requests: list[Callable[[str], Reply]]) -> list[Reply]:
    """Send the requests at once (a barrier releases all threads together), round-robin over the servers."""
    barrier = threading.Barrier(len(requests))

    def fire(index: int) -> Reply:
        base = servers.bases[index % len(servers.bases)]
        barrier.wait(timeout=30)
        return requests[index](base)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(fire, range(len(requests))))


def assert_no_server_errors(replies: list[Reply]) -> None:
    """No 5xx (no 500, no 503 from a lost deadlock) and every reply a SCIM document."""
    bad = [(r.status, r.body) for r in replies if r.status >= 500]
    assert not bad, bad


def user_body(name: str, **attrs: Any) -> dict[str, Any]:
    """A User resource body."""
    return {"schemas": [USER], "userName": name, **attrs}


def post_user(token: str, body: dict[str, Any]) -> Callable[[str], Reply]:
    """A request that POSTs ``body`` to /Users."""
    return lambda base: call(base + "/Users", token, "POST", body)


def user_request(token: str, method: str, user_id: str, body: Any = None) -> Callable[[str], Reply]:
    """A request on /Users/{user_id}."""
    return lambda base: call(f"{base}/Users/{user_id}", token, method, body)


def test_many_posts_of_one_username_make_one_user(servers: Servers, admin: Admin) -> None:
    tenant, token = admin.org("race-username", max_seats=1000)
    # The same userName in mixed case: the uniqueness rule is case-insensitive.
    names = ["Race.User" if i % 2 else "race.USER" for i in range(ATTEMPTS)]
    replies = race(servers, [post_user(token, user_body(n)) for n in names])
    assert_no_server_errors(replies)
    rows = admin.scalar(f"SELECT count(*) FROM {USERS} WHERE tenant_id = :t", t=tenant.id)
    print(f"\n[race one userName] attempts={ATTEMPTS} outcomes={statuses(replies)} rows={rows}")
    assert statuses(replies) == {201: 1, 409: ATTEMPTS - 1}
    assert all(r.body.get("scimType") == "uniqueness" for r in replies if r.status == 409)
    assert rows == 1


def test_many_posts_of_one_group_name_make_one_group(servers: Servers, admin: Admin) -> None:
    tenant, token = admin.org("race-group-name", max_seats=1000)
    names = ["Race Group" if i % 2 else "RACE group" for i in range(ATTEMPTS)]
    replies = race(
        servers,
        [
            (lambda body: lambda base: call(base + "/Groups", token, "POST", body))(
                {"schemas": [GROUP], "displayName": n}
            )
            for n in names
        ],
    )
    assert_no_server_errors(replies)
    rows = admin.scalar(f"SELECT count(*) FROM {GROUPS} WHERE tenant_id = :t", t=tenant.id)
    print(f"\n[race one group name] attempts={ATTEMPTS} outcomes={statuses(replies)} rows={rows}")
    assert statuses(replies) == {201: 1, 409: ATTEMPTS - 1}
    assert all(r.body.get("scimType") == "uniqueness" for r in replies if r.status == 409)
    assert rows == 1


def test_creates_against_the_last_seat_under_the_all_policy(servers: Servers, admin: Admin) -> None:
    tenant, token = admin.org("race-seat-all", max_seats=5, seat_policy="all")
    base = servers.bases[0]
    for i in range(4):  # two active and two inactive records: all four hold seats
        assert call(base + "/Users", token, "POST", user_body(f"held{i}", active=i < 2)).status == 201
    replies = race(servers, [post_user(token, user_body(f"new{i}")) for i in range(ATTEMPTS)])
    assert_no_server_errors(replies)
    rows = admin.scalar(f"SELECT count(*) FROM {USERS} WHERE tenant_id = :t", t=tenant.id)
    print(f"\n[race last seat, all] maxSeats=5 held=4 attempts={ATTEMPTS} outcomes={statuses(replies)} rows={rows}")
    assert statuses(replies) == {201: 1, 403: ATTEMPTS - 1}
    assert rows == 5


def test_creates_and_reactivations_against_the_last_seat_under_the_active_policy(
    servers: Servers, admin: Admin
) -> None:
    tenant, token = admin.org("race-seat-active", max_seats=5, seat_policy="active")
    base = servers.bases[0]
    for i in range(4):
        assert call(base + "/Users", token, "POST", user_body(f"active{i}")).status == 201
    inactive = []
    for i in range(12):  # inactive records hold no seat under this policy
        reply = call(base + "/Users", token, "POST", user_body(f"sleeper{i}", active=False))
        assert reply.status == 201, reply.body
        inactive.append(reply.body["id"])
    requests = [post_user(token, user_body(f"fresh{i}")) for i in range(12)]
    # A POST matching an inactive user reactivates it in place, which takes a seat.
    requests += [post_user(token, user_body(f"sleeper{i}")) for i in range(8)]
    # So does a PATCH active=true.
    enable = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]}
    requests += [user_request(token, "PATCH", uid, enable) for uid in inactive[8:12]]
    replies = race(servers, requests)
    assert_no_server_errors(replies)
    active = admin.scalar(f"SELECT count(*) FROM {USERS} WHERE tenant_id = :t AND active AND NOT deleted", t=tenant.id)
    rows = admin.scalar(f"SELECT count(*) FROM {USERS} WHERE tenant_id = :t", t=tenant.id)
    won = [r.status for r in replies if r.status in (200, 201)]
    print(
        f"\n[race last seat, active] maxSeats=5 active=4 attempts={len(requests)} (12 creates, 8 POST and 4 PATCH "
        f"reactivations) outcomes={statuses(replies)} active_rows={active} rows={rows}"
    )
    assert len(won) == 1 and statuses(replies).get(403) == len(requests) - 1, statuses(replies)
    assert active == 5
    assert rows == 16 + won.count(201)


def test_concurrent_patches_adding_members_lose_none(servers: Servers, admin: Admin) -> None:
    _tenant, token = admin.org("race-members", max_seats=1000)
    base = servers.bases[0]
    ids = [call(base + "/Users", token, "POST", user_body(f"member{i}")).body["id"] for i in range(ATTEMPTS * 2)]
    group = call(base + "/Groups", token, "POST", {"schemas": [GROUP], "displayName": "racers"}).body

    def add(uid: str) -> Callable[[str], Reply]:
        ops = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}
        return lambda b: call(f"{b}/Groups/{group['id']}", token, "PATCH", ops)

    def remove(uid: str) -> Callable[[str], Reply]:
        ops = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{uid}"]'}]}
        return lambda b: call(f"{b}/Groups/{group['id']}", token, "PATCH", ops)

    first = race(servers, [add(uid) for uid in ids[:ATTEMPTS]])
    assert_no_server_errors(first)
    after_adds = admin.scalar(f"SELECT count(*) FROM {MEMBERS} WHERE group_id = :g", g=group["id"])
    # Then half of them leave while as many others join, all at once.
    second = race(servers, [remove(uid) for uid in ids[: ATTEMPTS // 2]] + [add(uid) for uid in ids[ATTEMPTS:]][:12])
    assert_no_server_errors(second)
    members = set(admin.column(f"SELECT member_id FROM {MEMBERS} WHERE group_id = :g", g=group["id"]))
    shown = {m["value"] for m in call(f"{base}/Groups/{group['id']}", token).body.get("members", [])}
    expected = set(ids[ATTEMPTS // 2 : ATTEMPTS]) | set(ids[ATTEMPTS : ATTEMPTS + 12])
    print(
        f"\n[race group PATCH] adds={ATTEMPTS} outcomes={statuses(first)} rows={after_adds}; "
        f"then 12 removes + 12 adds outcomes={statuses(second)} rows={len(members)} (expected {len(expected)})"
    )
    # No User-Agent of a known IdP: the default (auto) profile answers a Group PATCH with 204.
    assert statuses(first) == {204: ATTEMPTS}
    assert after_adds == ATTEMPTS
    assert statuses(second) == {204: len(second)}
    assert members == expected and shown == expected


@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_concurrent_puts_with_one_if_match_have_one_winner(servers: Servers, admin: Admin, resource: str) -> None:
    _tenant, token = admin.org(f"race-ifmatch-{resource.lower()}", max_seats=1000)
    base = servers.bases[0]
    if resource == "Users":
        created = call(base + "/Users", token, "POST", user_body("contested"))
        bodies = [user_body("contested", displayName=f"writer {i}") for i in range(ATTEMPTS)]
    else:
        created = call(base + "/Groups", token, "POST", {"schemas": [GROUP], "displayName": "contested"})
        bodies = [{"schemas": [GROUP], "displayName": f"writer {i}"} for i in range(ATTEMPTS)]
    assert created.status == 201, created.body
    rid, etag = created.body["id"], created.headers["ETag"]

    def put(body: dict[str, Any]) -> Callable[[str], Reply]:
        return lambda b: call(f"{b}/{resource}/{rid}", token, "PUT", body, headers={"If-Match": etag})

    replies = race(servers, [put(body) for body in bodies])
    assert_no_server_errors(replies)
    winners = [r for r in replies if r.status == 200]
    table = USERS if resource == "Users" else GROUPS
    version = admin.scalar(f"SELECT version FROM {table} WHERE id = :i", i=rid)
    print(f"\n[race PUT If-Match {resource}] attempts={ATTEMPTS} outcomes={statuses(replies)} version 1 -> {version}")
    assert statuses(replies) == {200: 1, 412: ATTEMPTS - 1}
    assert version == 2
    final = call(f"{base}/{resource}/{rid}", token)
    assert final.body["displayName"] == winners[0].body["displayName"]
    assert final.headers["ETag"] == winners[0].headers["ETag"] != etag


def test_deletes_racing_patches_of_their_groups_neither_deadlock_nor_fail(servers: Servers, admin: Admin) -> None:
    """A user delete locks the user then its groups; a group PATCH locks the group then its members.
    Run against each other they can deadlock in PostgreSQL, which aborts one side: the service runs it
    again, so the client sees an ordinary outcome."""
    _tenant, token = admin.org("race-deadlock", max_seats=1000)
    base = servers.bases[0]
    ids = [call(base + "/Users", token, "POST", user_body(f"d{i}")).body["id"] for i in range(12)]
    group = call(
        base + "/Groups",
        token,
        "POST",
        {"schemas": [GROUP], "displayName": "g", "members": [{"value": i} for i in ids]},
    ).body

    def re_add(uid: str) -> Callable[[str], Reply]:
        ops = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}
        return lambda b: call(f"{b}/Groups/{group['id']}", token, "PATCH", ops)

    requests = [user_request(token, "DELETE", uid) for uid in ids]
    requests += [re_add(uid) for uid in ids]
    replies = race(servers, requests)
    assert_no_server_errors(replies)
    deletes, patches = replies[:12], replies[12:]
    left = admin.scalar(f"SELECT count(*) FROM {MEMBERS} WHERE group_id = :g", g=group["id"])
    print(f"\n[race delete vs group PATCH] deletes={statuses(deletes)} patches={statuses(patches)} members left={left}")
    assert statuses(deletes) == {204: 12}
    # A PATCH that ran after the delete names a user that is gone (400); one before it succeeded.
    assert set(statuses(patches)) <= {204, 400}
    assert left == 0  # every deleted user left the group, whatever the order


# -- retry_transient with real deadlocks and serialization failures -------------------------------


@pytest.fixture
def engine(service_db: str) -> Iterator[sa.engine.Engine]:
    """An engine of the service's kind with a scratch table of two rows."""
    engine = make_engine(service_db, {"SCIM_DB_POOL_SIZE": 4})
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS retry_scratch (id int PRIMARY KEY, n int NOT NULL)")
        conn.exec_driver_sql("DELETE FROM retry_scratch")
        conn.exec_driver_sql("INSERT INTO retry_scratch VALUES (1, 0), (2, 0)")
    yield engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE retry_scratch")
    engine.dispose()


def test_a_deadlock_is_retried_until_both_transactions_commit(engine: sa.engine.Engine) -> None:
    barrier = threading.Barrier(2)
    runs = {1: 0, 2: 0}

    def lock_both(first: int, second: int) -> Callable[[sa.engine.Connection], None]:
        def work(conn: sa.engine.Connection) -> None:
            runs[first] += 1
            conn.execute(sa.text("UPDATE retry_scratch SET n = n + 1 WHERE id = :i"), {"i": first})
            if runs[first] == 1:
                barrier.wait(timeout=10)  # both hold their first row: the second locks cross
            conn.execute(sa.text("UPDATE retry_scratch SET n = n + 1 WHERE id = :i"), {"i": second})

        return work

    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(run_write, engine, lock_both(1, 2)), pool.submit(run_write, engine, lock_both(2, 1))]
        for future in done:
            future.result(timeout=60)
    with engine.connect() as conn:
        totals = dict(conn.execute(sa.text("SELECT id, n FROM retry_scratch")).all())
    print(f"\n[deadlock] runs per transaction={runs} totals={totals}")
    assert sorted(runs.values()) == [1, 2]  # PostgreSQL aborted one side once; it ran again
    assert totals == {1: 2, 2: 2}  # and each transaction's effect counted exactly once


def test_serialization_failures_are_retried_then_reported_as_503(engine: sa.engine.Engine) -> None:
    runs = 0

    @retry_transient
    def always_loses() -> None:
        nonlocal runs
        runs += 1
        with write_transaction(engine) as conn:
            conn.exec_driver_sql("DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = 'serialization_failure'; END $$")

    with pytest.raises(TransientConflict) as caught:
        always_loses()
    assert runs == RETRY_ATTEMPTS
    assert isinstance(caught.value, Unavailable) and caught.value.status == 503


def test_other_errors_are_not_retried(engine: sa.engine.Engine) -> None:
    runs = 0

    def duplicate(conn: sa.engine.Connection) -> None:
        nonlocal runs
        runs += 1
        conn.execute(sa.text("INSERT INTO retry_scratch VALUES (1, 0)"))

    with pytest.raises(sa.exc.IntegrityError):
        run_write(engine, duplicate)
    assert runs == 1
