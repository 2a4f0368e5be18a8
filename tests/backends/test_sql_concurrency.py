"""The rules that must hold under concurrency: one userName per tenant, the seat limit, one primary email.

16 threads start together (a barrier) against one real database; each test checks both the answers
(exactly one success, every other call a clean SCIM error) and what was stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from scim_sql.backend import SqlBackend
from scim_sql.tables import users

from scim_service.errors import SeatLimitReached, UniquenessConflict
from scim_service.model import GroupChanges, Member, SeatPolicy, Tenant

THREADS = 16
EMAILS = ("Same@X.com", "same@x.COM")  # one address, two spellings


def race(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[BaseException]]:
    """Run the calls at once, one thread each; return their results and the exceptions they raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            value = call()
        except BaseException as exc:  # collected and checked by the test
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(value)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors


def rows_of(backend: SqlBackend, tenant: Tenant) -> int:
    with backend.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(users.c.tenant_id == tenant.id)).scalar_one()


@pytest.mark.timeout(120)
def test_same_user_name_exactly_one_wins(backend: SqlBackend, tenant: Tenant) -> None:
    calls = [
        (lambda i=i: backend.create_user(tenant, {"userName": "Same" if i % 2 else "same", "active": True}))
        for i in range(THREADS)
    ]
    results, errors = race(calls)
    assert len(results) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, UniquenessConflict) for e in errors), errors
    assert {e.existing_id for e in errors if isinstance(e, UniquenessConflict)} == {results[0].id}
    assert rows_of(backend, tenant) == 1


@pytest.mark.timeout(120)
def test_same_primary_email_exactly_one_wins(backend: SqlBackend, tenant: Tenant) -> None:
    calls = [
        (lambda i=i: backend.create_user(tenant, {"userName": f"u{i}", "emails": [{"value": EMAILS[i % 2]}]}))
        for i in range(THREADS)
    ]
    results, errors = race(calls)
    assert len(results) == 1
    assert all(isinstance(e, UniquenessConflict) for e in errors) and len(errors) == THREADS - 1
    assert rows_of(backend, tenant) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("policy", [SeatPolicy.ALL, SeatPolicy.ACTIVE])
def test_last_seat_exactly_one_wins(
    backend: SqlBackend, make_tenant: Callable[..., Tenant], policy: SeatPolicy
) -> None:
    tenant = make_tenant(max_seats=3, seat_policy=policy)
    backend.create_user(tenant, {"userName": "first"})
    backend.create_user(tenant, {"userName": "second"})
    calls = [(lambda i=i: backend.create_user(tenant, {"userName": f"racer{i}"})) for i in range(THREADS)]
    results, errors = race(calls)
    assert len(results) == 1
    assert len(errors) == THREADS - 1 and all(isinstance(e, SeatLimitReached) for e in errors), errors
    assert backend.count_seats(tenant) == 3
    assert rows_of(backend, tenant) == 3


@pytest.mark.timeout(120)
def test_last_seat_reactivations_exactly_one_wins(backend: SqlBackend, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
    sleepers = [backend.create_user(tenant, {"userName": f"s{i}", "active": False}) for i in range(8)]
    calls = [(lambda u=u: backend.replace_user(tenant, u.id, {"userName": u.data["userName"]})) for u in sleepers]
    results, errors = race(calls)
    assert len(results) == 1
    assert all(isinstance(e, SeatLimitReached) for e in errors) and len(errors) == 7
    assert backend.count_seats(tenant) == 1


@pytest.mark.timeout(120)
def test_concurrent_membership_deltas_all_apply(backend: SqlBackend, tenant: Tenant) -> None:
    members = [backend.create_user(tenant, {"userName": f"m{i}"}) for i in range(THREADS)]
    group = backend.create_group(tenant, {"displayName": "g"}, [])
    calls = [(lambda u=u: backend.patch_group(tenant, group.id, GroupChanges(add=(Member(u.id),)))) for u in members]
    results, errors = race(calls)
    assert errors == [] and len(results) == THREADS
    final = backend.get_group(tenant, group.id)
    assert sorted(m.value for m in final.members or ()) == sorted(u.id for u in members)
    assert final.version == str(THREADS + 1)
