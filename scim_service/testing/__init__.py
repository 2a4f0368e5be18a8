"""The conformance kit: pytest mixins that prove a storage backend honours :mod:`scim_service.backend`.

Provide a ``backend`` fixture (a fresh, migrated store) and subclass :class:`BackendSuite` (or some of
the mixins) in a class named ``Test...``. See ``docs/plugins.md``. The mixins live in
:mod:`scim_service.testing.kit`, one module per area; this package re-exports the public names, which
is the import path backend authors use. :mod:`scim_service.testing.data` builds documents and
filters, :mod:`scim_service.testing.fixtures` is the kit's pytest plugin.
"""

from scim_service.testing.kit import (
    BackendSuite,
    ConcurrencyTests,
    CursorTests,
    FilterTests,
    GroupTests,
    KitBase,
    MembershipTests,
    PagingTests,
    Requirement,
    SeatTests,
    SoftDeleteTests,
    SortTests,
    TenantIsolationTests,
    UniquenessTests,
    UserCrudTests,
    VersionTests,
    requires,
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
    "Requirement",
    "SeatTests",
    "SoftDeleteTests",
    "SortTests",
    "TenantIsolationTests",
    "UniquenessTests",
    "UserCrudTests",
    "VersionTests",
    "requires",
]
