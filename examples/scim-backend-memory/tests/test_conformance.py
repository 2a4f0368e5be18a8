"""The scim-service conformance kit against the memory backend."""

from collections.abc import Iterator

import pytest
from scim_backend_memory import MemoryBackend

from scim_service.testing import BackendSuite


@pytest.fixture
def backend() -> Iterator[MemoryBackend]:
    """A fresh, empty store for every test."""
    backend = MemoryBackend.from_config({})
    backend.migrate()
    yield backend
    backend.close()


class TestMemoryBackend(BackendSuite):
    """Every rule of the backend contract."""
