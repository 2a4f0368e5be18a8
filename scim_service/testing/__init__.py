"""The conformance kit: pytest mixins that prove a storage backend honours :mod:`scim_service.backend`.

Provide a ``backend`` fixture (a fresh, migrated store) and subclass :class:`BackendSuite` (or some of
the mixins) in a class named ``Test...``. See ``docs/plugins.md``.
"""

from scim_service.testing.suite import (
    BackendSuite,
    ConcurrencyTests,
    CursorTests,
    FilterTests,
    GroupTests,
    KitBase,
    MembershipTests,
    PagingTests,
    SeatTests,
    SoftDeleteTests,
    SortTests,
    TenantIsolationTests,
    UniquenessTests,
    UserCrudTests,
    VersionTests,
)

__all__ = [
    "BackendSuite",
    "ConcurrencyTests",
    "CursorTests",
    "FilterTests",
    "GroupTests",
    "KitBase",
    "MembershipTests",
    "PagingTests",
    "SeatTests",
    "SoftDeleteTests",
    "SortTests",
    "TenantIsolationTests",
    "UniquenessTests",
    "UserCrudTests",
    "VersionTests",
]
