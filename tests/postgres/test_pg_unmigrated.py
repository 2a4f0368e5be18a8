"""An unmigrated PostgreSQL database (no service tables: 42P01 "relation does not exist") gets the same
503 as an unmigrated SQLite file: a SCIM error saying to run ``scim-service db upgrade``, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_support import PgDatabases

from scim_service.app import create_app
from scim_service.extension import get_state
from scim_service.state import UNMIGRATED_DETAIL

pytestmark = [pytest.mark.postgres]

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def test_an_unmigrated_postgres_database_answers_503_until_upgraded(pg_databases: PgDatabases, tmp_path: Path) -> None:
    name = pg_databases.create(tag="bare")
    try:
        env = {
            "SCIM_DATABASE_URL": pg_databases.url(name),
            "SCIM_INSTANCE_PATH": str(tmp_path),
            "SCIM_BACKEND": "sql",
            "SCIM_PLUGINS": "",
            "SCIM_LOG_LEVEL": "WARNING",
        }
        app = create_app(env, environ={})
        client = app.test_client()
        answers = [
            client.get("/scim/v2/Users", headers={"Authorization": "Bearer x"}),
            client.post("/scim/v2/Users", json={"userName": "a"}, headers={"Authorization": "Bearer x"}),
        ]
        for response in answers:
            assert response.status_code == 503
            body = response.get_json()
            assert body["schemas"] == [ERROR_SCHEMA]
            assert body["detail"] == UNMIGRATED_DETAIL
        state = get_state(app)
        state.upgrade()
        assert client.get("/scim/v2/Users", headers={"Authorization": "Bearer x"}).status_code == 401
        state.close()
    finally:
        pg_databases.drop(name)
