"""Small helpers the kit's test modules share: expected errors, ids, races and the clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import pytest

from scim_service.backend import Backend
from scim_service.model import ENTERPRISE_SCHEMA, GroupRecord, Tenant, UserRecord
from scim_service.testing.data import aware, query

__all__ = [
    "ENT",
    "all_users",
    "assert_raises",
    "group_ids_of",
    "member_ids",
    "midpoint",
    "race",
    "tick",
    "user_ids",
]

E = TypeVar("E", bound=BaseException)
ENT = ENTERPRISE_SCHEMA


def assert_raises(error: type[E], rule: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> E:
    """Call ``call`` and return the ``error`` it raises; fail the test with ``rule`` otherwise."""
    try:
        result = call(*args, **kwargs)
    except error as exc:
        return exc
    except Exception as exc:
        pytest.fail(f"{rule} (expected {error.__name__}, got {type(exc).__name__}: {exc})")
    text = repr(result)
    pytest.fail(f"{rule} (expected {error.__name__}, but {call.__name__} returned {text[:200]})")


def user_ids(records: list[UserRecord] | list[GroupRecord]) -> list[str]:
    """The ids of a page's resources, in order."""
    return [r.id for r in records]


def member_ids(group: GroupRecord) -> set[str]:
    """The member ids of a group read with its members."""
    assert group.members is not None, "a group read with include_members=True must have members (not None)"
    return {m.value for m in group.members}


def group_ids_of(user: UserRecord) -> set[str]:
    """The ids of the groups a user record says it belongs to."""
    return {m.value for m in user.groups}


def all_users(backend: Backend, tenant: Tenant) -> list[UserRecord]:
    """Every visible user of the tenant (one big page)."""
    return backend.list_users(tenant, query()).resources


def race(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` in ``n`` threads released together; return each result or raised exception."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return action(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def tick() -> None:
    """Let the clock move, so writes made one after another get distinct timestamps."""
    time.sleep(0.003)


def midpoint(a: datetime, b: datetime) -> datetime:
    """The instant halfway between two timestamps."""
    a, b = aware(a), aware(b)
    return a + (b - a) / 2
