"""The whole conformance kit against the sql backend on SQLite files (a new file per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scim_sql.backend import SqlBackend

from scim_service.testing import BackendSuite


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqlBackend]:
    """A migrated SqlBackend on a fresh SQLite file."""
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/kit.db"})
    backend.migrate()
    yield backend
    backend.close()


class TestSqlBackendConformance(BackendSuite):
    """SqlBackend on SQLite honours the backend contract."""
