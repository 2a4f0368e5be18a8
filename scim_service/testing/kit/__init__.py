"""The conformance kit: test mixins that check a :class:`~scim_service.backend.Backend` honours its contract.

A backend author provides one pytest fixture, ``backend`` (function scope: a fresh, migrated store,
or a shared one: every test works in tenants with fresh random ids), and subclasses the mixins::

    import pytest
    from scim_service.testing import BackendSuite

    @pytest.fixture
    def backend(tmp_path):
        backend = MyBackend.from_config({...})
        backend.migrate()
        yield backend
        backend.close()

    class TestMyBackend(BackendSuite):
        pass

One module per area of the contract holds its mixin (``users``, ``uniqueness``, ``versions``, ``seats``,
``soft_delete``, ``groups``, ``membership``, ``tenants``, ``filters``, ``sorting``, ``paging``,
``cursors``, ``concurrency``); ``matrix`` holds the data the filter and sort tests share,
``requirements`` the capability gates, ``helpers`` the rest. The mixins bring their own fixtures
(``tenant``, ``other_tenant``, ``make_tenant``), so nothing else needs enabling. A test of something
the backend declares it lacks skips, quoting the declaration. Every test is named after the rule it
checks and its failure message states that rule.
"""

from __future__ import annotations

from collections.abc import Iterator

from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.concurrency import ConcurrencyTests
from scim_service.testing.kit.cursors import CursorTests
from scim_service.testing.kit.filters import FilterTests
from scim_service.testing.kit.groups import GroupTests
from scim_service.testing.kit.membership import MembershipTests
from scim_service.testing.kit.paging import PagingTests
from scim_service.testing.kit.requirements import Requirement, requires
from scim_service.testing.kit.seats import SeatTests
from scim_service.testing.kit.soft_delete import SoftDeleteTests
from scim_service.testing.kit.sorting import SortTests
from scim_service.testing.kit.tenants import TenantIsolationTests
from scim_service.testing.kit.uniqueness import UniquenessTests
from scim_service.testing.kit.users import UserCrudTests
from scim_service.testing.kit.versions import VersionTests

__all__ = [
    "BackendSuite",
    "ConcurrencyTests",
    "CursorTests",
    "FilterTests",
    "GroupTests",
    "KitBase",
    "MembershipTests",
    "PagingTests",
    "Requirement",
    "SeatTests",
    "SoftDeleteTests",
    "SortTests",
    "TenantIsolationTests",
    "UniquenessTests",
    "UserCrudTests",
    "VersionTests",
    "iter_mixins",
    "requires",
]


class BackendSuite(
    UserCrudTests,
    UniquenessTests,
    VersionTests,
    SeatTests,
    SoftDeleteTests,
    GroupTests,
    MembershipTests,
    TenantIsolationTests,
    FilterTests,
    SortTests,
    PagingTests,
    CursorTests,
    ConcurrencyTests,
):
    """Every conformance test. Subclass it (as ``TestSomething``) next to a ``backend`` fixture."""


def iter_mixins() -> Iterator[type[KitBase]]:
    """The mixin classes of :class:`BackendSuite`, in order."""
    return (c for c in BackendSuite.__mro__[1:] if issubclass(c, KitBase) and c is not KitBase)
