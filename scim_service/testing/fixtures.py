"""The kit's pytest fixtures, defined once: for the kit's test classes and, as a plugin, for any test.

:class:`KitFixtures` holds them. Every kit mixin inherits it (through
:class:`~scim_service.testing.kit.base.KitBase`), so running the kit needs nothing but a ``backend``
fixture, and a fixture of the same name elsewhere in a backend author's tests cannot change what the
kit's tests get. This module is also a pytest plugin: enable it in the root ``conftest.py`` with
``pytest_plugins = ["scim_service.testing.fixtures"]`` and the same fixtures serve every other test.

Every tenant has a fresh random id, so tests sharing one store (one PostgreSQL database or directory
for the session) never see each other's data.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scim_service.model import Tenant
from scim_service.testing.data import new_tenant

__all__ = ["KitFixtures"]


class KitFixtures:
    """The fixtures ``make_tenant``, ``tenant`` and ``other_tenant``."""

    @pytest.fixture
    def make_tenant(self) -> Callable[..., Tenant]:
        """Make tenants with fresh ids: ``make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)``."""
        return new_tenant

    @pytest.fixture
    def tenant(self, make_tenant: Callable[..., Tenant]) -> Tenant:
        """A fresh tenant: unlimited seats, SeatPolicy.ALL, MatchPolicy.EMAIL."""
        return make_tenant()

    @pytest.fixture
    def other_tenant(self, make_tenant: Callable[..., Tenant]) -> Tenant:
        """A second fresh tenant, to check isolation."""
        return make_tenant()


def pytest_configure(config: pytest.Config) -> None:
    """Register the fixtures of :class:`KitFixtures` for every test of the session."""
    if not config.pluginmanager.has_plugin(_PLUGIN_NAME):
        config.pluginmanager.register(KitFixtures(), _PLUGIN_NAME)


_PLUGIN_NAME = "scim_service.testing.fixtures.KitFixtures"
