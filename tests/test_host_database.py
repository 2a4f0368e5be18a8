"""The service in a host application's own database: the host's tables, including ones named
``organizations`` and ``tokens``, stay untouched, and the host's Alembic autogenerate (what
Flask-Migrate runs) sees no scim-service table once it uses ``include_object``."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from api_helpers import Scim, user
from flask import Flask

from scim_service import ScimService, get_state
from scim_service.servicedb import include_object


def host_metadata() -> sa.MetaData:
    """The host's own models: an organizations and a tokens table, as many apps have."""
    md = sa.MetaData()
    sa.Table("organizations", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("title", sa.String(80)))
    sa.Table(
        "tokens",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organizations.id")),
        sa.Column("secret", sa.String(64)),
    )
    return md


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def host_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for the host: a SQLite file, or a fresh database on the tests' PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'host.db'}"
    databases = request.getfixturevalue("pg_databases")
    return databases.url(databases.create(tag="host"))


def test_service_and_backend_share_the_hosts_database(host_db_url: str, tmp_path: Path) -> None:
    md = host_metadata()
    engine = sa.create_engine(host_db_url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(md.tables["organizations"].insert(), [{"id": 1, "title": "Host Org"}])
        conn.execute(md.tables["tokens"].insert(), [{"id": 1, "org_id": 1, "secret": "host-secret"}])

    app = Flask("host", instance_path=str(tmp_path))
    app.config.update(SCIM_DATABASE_URL=host_db_url)
    ScimService(app)
    state = get_state(app)
    state.upgrade()  # `scim-service db upgrade` / `flask scim db upgrade` on the host's database
    state.store.create_org("acme")
    _id, token = state.store.create_token("acme")
    scim = Scim(app.test_client(), token)
    assert scim.post("/Users", user("alice")).status_code == 201
    assert scim.get("/Users").get_json()["totalResults"] == 1
    state.close()

    with engine.connect() as conn:
        # The host's rows and tables are as it left them.
        assert conn.execute(sa.text("SELECT title FROM organizations")).scalars().all() == ["Host Org"]
        assert conn.execute(sa.text("SELECT secret FROM tokens")).scalars().all() == ["host-secret"]
        names = set(sa.inspect(conn).get_table_names())
        assert {"scim_organizations", "scim_tokens", "scim_provisioning_log", "scim_users"} <= names
        # Everything else the service made carries the prefix.
        assert {n for n in names if not n.startswith("scim_")} == {"organizations", "tokens"}

        # The host's autogenerate with the filter: nothing to do. Without it: drop every SCIM table.
        filtered = compare_metadata(MigrationContext.configure(conn, opts={"include_object": include_object}), md)
        assert filtered == []
        unfiltered = compare_metadata(MigrationContext.configure(conn), md)
        dropped = {d[1].name for d in unfiltered if d[0] == "remove_table"}
        assert {"scim_organizations", "scim_users", "scim_service_alembic_version"} <= dropped
    engine.dispose()


def test_include_object_judges_indexes_by_their_table() -> None:
    md = sa.MetaData()
    scim = sa.Table("scim_users", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("x", sa.Integer))
    host = sa.Table("users", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("x", sa.Integer))
    scim_ix, host_ix = sa.Index("ix_a", scim.c.x), sa.Index("ix_b", host.c.x)
    assert include_object(scim, "scim_users", "table", True, None) is False
    assert include_object(host, "users", "table", True, None) is True
    assert include_object(scim_ix, "ix_a", "index", True, None) is False
    assert include_object(host_ix, "ix_b", "index", True, None) is True
    assert include_object(scim.c.x, "x", "column", True, None) is False
