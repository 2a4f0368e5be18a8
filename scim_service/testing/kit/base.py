"""The base class of every kit mixin."""

from __future__ import annotations

import pytest

from scim_service.backend import Backend
from scim_service.testing.fixtures import KitFixtures
from scim_service.testing.kit.requirements import requirements_of, skip_unless_met

__all__ = ["KitBase"]


class KitBase(KitFixtures):
    """The kit's fixtures, and the gate of its requirements.

    The backend author provides ``backend``; ``tenant``, ``other_tenant`` and ``make_tenant`` come with
    the kit (:class:`~scim_service.testing.fixtures.KitFixtures`). A test that declared requirements
    (``@requires.etag``) skips before its other fixtures run when the backend does not meet them.
    """

    @pytest.fixture(autouse=True)
    def _kit_requirements(self, request: pytest.FixtureRequest, backend: Backend) -> None:
        """Skip the test, quoting the backend's declarations, when it declares what the test needs away."""
        skip_unless_met(backend, *requirements_of(request.function))
