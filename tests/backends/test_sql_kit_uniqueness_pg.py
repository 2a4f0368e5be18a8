"""The kit's uniqueness tests (look-alike names included) against the sql backend on PostgreSQL.

The whole kit runs on SQLite (tests/test_kit_sql.py); the comparison keys are computed in Python and
compared by the database, so PostgreSQL gets the uniqueness part too (each test in its own tenant).
"""

from __future__ import annotations

import pytest
from scim_sql.backend import SqlBackend

from scim_service.testing.kit.uniqueness import UniquenessTests

pytestmark = pytest.mark.postgres


class TestPostgresUniqueness(UniquenessTests):
    """SqlBackend on PostgreSQL: names are unique by their comparison key, and eq finds the holder."""

    @pytest.fixture
    def backend(self, postgres_backend: SqlBackend) -> SqlBackend:
        return postgres_backend
