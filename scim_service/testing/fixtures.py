"""A pytest plugin with the kit's fixtures, for a backend author's own tests outside the kit classes.

The kit's mixins define these fixtures themselves, so running the kit needs nothing but a ``backend``
fixture. Enable this module (``pytest_plugins = ["scim_service.testing.fixtures"]`` in the root
``conftest.py``) to use the same fixtures in other tests.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scim_service.model import Tenant
from scim_service.testing.data import new_tenant


@pytest.fixture
def make_tenant() -> Callable[..., Tenant]:
    """Make tenants with fresh ids: ``make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)``."""
    return new_tenant


@pytest.fixture
def tenant() -> Tenant:
    """A fresh tenant: unlimited seats, SeatPolicy.ALL, MatchPolicy.EMAIL."""
    return new_tenant()


@pytest.fixture
def other_tenant() -> Tenant:
    """A second fresh tenant, to check isolation."""
    return new_tenant()
