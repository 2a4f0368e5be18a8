"""The service in a host application's own database: the host's tables, including ones named
``organizations``, ``tokens`` and ``users``, stay untouched, and the host's Alembic autogenerate (what
Flask-Migrate runs, for real below) sees no scim-service table once it uses ``include_object``.

A host may choose the tables' prefix (``SCIM_TABLE_PREFIX``, here ``idp_``) and, on PostgreSQL, a schema
of their own (``SCIM_DB_SCHEMA``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from api_helpers import Scim, user
from click.testing import CliRunner
from flask import Flask

from scim_service import ScimService, get_state
from scim_service.cli import main
from scim_service.config import ConfigError
from scim_service.hookspecs import hookimpl
from scim_service.model import Tenant, UserRecord
from scim_service.servicedb import include_object, include_object_for


def host_metadata() -> sa.MetaData:
    """The host's own models: organizations, tokens and users tables, as many apps have."""
    md = sa.MetaData()
    sa.Table("organizations", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("title", sa.String(80)))
    sa.Table(
        "tokens",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organizations.id")),
        sa.Column("secret", sa.String(64)),
    )
    sa.Table(
        "users",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organizations.id")),
        sa.Column("email", sa.String(120)),
    )
    return md


HOST_TABLES = {"organizations", "tokens", "users"}


def make_host_database(url: str) -> sa.MetaData:
    """Create the host's tables in ``url`` with one row each."""
    md = host_metadata()
    engine = sa.create_engine(url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(md.tables["organizations"].insert(), [{"id": 1, "title": "Host Org"}])
        conn.execute(md.tables["tokens"].insert(), [{"id": 1, "org_id": 1, "secret": "host-secret"}])
        conn.execute(md.tables["users"].insert(), [{"id": 1, "org_id": 1, "email": "host@example.com"}])
    engine.dispose()
    return md


def assert_host_rows_untouched(conn: sa.Connection) -> None:
    assert conn.execute(sa.text("SELECT title FROM organizations")).scalars().all() == ["Host Org"]
    assert conn.execute(sa.text("SELECT secret FROM tokens")).scalars().all() == ["host-secret"]
    assert conn.execute(sa.text("SELECT email FROM users")).scalars().all() == ["host@example.com"]


def provision(app: Flask, org: str = "acme") -> Scim:
    """Create an organization and provision a user and a group with it over HTTP; the client."""
    state = get_state(app)
    state.store.create_org(org)
    _id, token = state.store.create_token(org)
    scim = Scim(app.test_client(), token)
    created = scim.post("/Users", user("alice", email="alice@example.com"))
    assert created.status_code == 201, created.get_json()
    group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "staff",
        "members": [{"value": created.get_json()["id"]}],
    }
    assert scim.post("/Groups", group).status_code == 201
    found = scim.get('/Users?filter=emails.value eq "alice@example.com"').get_json()
    assert [u["userName"] for u in found["Resources"]] == ["alice"]
    assert scim.post("/Users", user("Alice")).status_code == 409  # uniqueness holds in the prefixed tables
    return scim


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
        assert {n for n in names if not n.startswith("scim_")} == HOST_TABLES

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


def upgrade_through(how: str, app: Flask, environ: dict[str, str]) -> str:
    """Run ``scim-service db upgrade`` (from the environment) or ``flask scim db upgrade`` (on ``app``)."""
    if how == "scim-service":
        result = CliRunner().invoke(main, ["db", "upgrade"], env=environ, catch_exceptions=False)
    else:
        result = app.test_cli_runner().invoke(args=["scim", "db", "upgrade"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


class CreatedUsers:
    """A host plugin with a change-event hook, so events go through the outbox table."""

    def __init__(self) -> None:
        self.user_names: list[str] = []

    @hookimpl
    def scim_user_created(self, tenant: Tenant, user: UserRecord) -> None:
        self.user_names.append(user.user_name)


def host_app(tmp_path: Path, plugins: tuple[object, ...] = (), **config: str) -> Flask:
    app = Flask("host", instance_path=str(tmp_path))
    app.config.update(SCIM_LOG_LEVEL="WARNING", **config)
    ScimService(app, plugins=plugins)
    return app


@pytest.mark.parametrize("how", ["scim-service", "flask"])
def test_a_host_chosen_prefix_names_every_scim_table(host_db_url: str, tmp_path: Path, how: str) -> None:
    md = make_host_database(host_db_url)
    settings = {"SCIM_DATABASE_URL": host_db_url, "SCIM_TABLE_PREFIX": "idp_"}
    hook = CreatedUsers()
    app = host_app(tmp_path, (hook,), **settings)
    output = upgrade_through(how, app, {**settings, "SCIM_INSTANCE_PATH": str(tmp_path), "SCIM_LOG_LEVEL": "WARNING"})
    assert "upgraded from an empty database" in output and "(named idp_*)" in output
    assert "already at revision" in upgrade_through(how, app, {**settings, "SCIM_INSTANCE_PATH": str(tmp_path)})
    provision(app)
    assert hook.user_names == ["alice"]
    get_state(app).close()

    engine = sa.create_engine(host_db_url)
    with engine.connect() as conn:
        assert_host_rows_untouched(conn)
        names = set(sa.inspect(conn).get_table_names())
        assert {n for n in names if not n.startswith("idp_")} == HOST_TABLES  # no scim_ table, nothing else
        assert {
            "idp_organizations",
            "idp_tokens",
            "idp_provisioning_log",
            "idp_auth_failures",
            "idp_events",
            "idp_users",
            "idp_groups",
            "idp_group_members",
            "idp_user_emails",
            "idp_service_alembic_version",
            "idp_sql_alembic_version",
        } <= names
        assert conn.execute(sa.text("SELECT user_name FROM idp_users")).scalars().all() == ["alice"]
        assert conn.execute(sa.text("SELECT name FROM idp_organizations")).scalars().all() == ["acme"]
        # The change event went through the outbox under the prefix, and was delivered.
        events = conn.execute(sa.text("SELECT event, delivered_at FROM idp_events")).all()
        assert [e[0] for e in events] == ["scim_user_created"] and events[0][1] is not None
        # Every index and constraint of the service is named after its prefixed table.
        for name in names - HOST_TABLES:
            for index in sa.inspect(conn).get_indexes(name):
                assert "idp_" in str(index["name"]), index
        # The host's autogenerate with the filter for its prefix: nothing to do; the default filter would
        # drop every idp_ table.
        filtered = compare_metadata(
            MigrationContext.configure(conn, opts={"include_object": include_object_for("idp_")}), md
        )
        assert filtered == []
        unfiltered = compare_metadata(MigrationContext.configure(conn, opts={"include_object": include_object}), md)
        assert {"idp_users", "idp_service_alembic_version"} <= {d[1].name for d in unfiltered if d[0] == "remove_table"}
    engine.dispose()


def test_two_apps_with_two_prefixes_share_one_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    make_host_database(url)
    default, other = (
        host_app(tmp_path, SCIM_DATABASE_URL=url),
        host_app(tmp_path, SCIM_DATABASE_URL=url, SCIM_TABLE_PREFIX="idp_"),
    )
    for app in (default, other):
        get_state(app).upgrade()
    provision(default, "acme")
    scim = provision(other, "acme")  # the same names, in other tables: no conflict
    assert scim.post("/Users", user("bob")).status_code == 201
    assert get_state(other).store.tables.organizations.name == "idp_organizations"
    assert get_state(default).store.tables.organizations.name == "scim_organizations"
    for app in (default, other):
        get_state(app).close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM scim_users")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM idp_users")).scalar_one() == 2
        assert_host_rows_untouched(conn)
    engine.dispose()


def test_a_bad_prefix_or_a_schema_on_sqlite_stops_the_app(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    for bad in ("Idp-", "", "1x_", "a" * 17):
        with pytest.raises(ConfigError, match="SCIM_TABLE_PREFIX"):
            host_app(tmp_path, SCIM_DATABASE_URL=url, SCIM_TABLE_PREFIX=bad)
    with pytest.raises(ConfigError, match="SCIM_DB_SCHEMA is for PostgreSQL"):
        host_app(tmp_path, SCIM_DATABASE_URL=url, SCIM_DB_SCHEMA="scim_x")


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["scim-service", "flask"])
def test_postgres_schema_holds_every_scim_table(pg_databases: Any, tmp_path: Path, how: str) -> None:
    url = pg_databases.url(pg_databases.create(tag="schema"))
    make_host_database(url)
    settings = {"SCIM_DATABASE_URL": url, "SCIM_DB_SCHEMA": "scim_x"}
    app = host_app(tmp_path, **settings)
    environ = {**settings, "SCIM_INSTANCE_PATH": str(tmp_path), "SCIM_LOG_LEVEL": "WARNING"}
    first = upgrade_through(how, app, environ)  # creates the schema
    assert "upgraded from an empty database" in first and "(in schema scim_x)" in first
    assert "already at revision" in upgrade_through(how, app, environ)  # finds its version table there
    provision(app)
    get_state(app).close()

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert_host_rows_untouched(conn)
        inspector = sa.inspect(conn)
        assert set(inspector.get_table_names(schema="public")) == HOST_TABLES
        assert {
            "scim_organizations",
            "scim_tokens",
            "scim_provisioning_log",
            "scim_events",
            "scim_users",
            "scim_groups",
            "scim_user_emails",
            "scim_service_alembic_version",
            "scim_sql_alembic_version",
        } <= set(inspector.get_table_names(schema="scim_x"))
        assert conn.execute(sa.text("SELECT user_name FROM scim_x.scim_users")).scalars().all() == ["alice"]
        assert conn.execute(sa.text("SELECT count(*) FROM scim_x.scim_provisioning_log")).scalar_one() >= 3
    engine.dispose()


@pytest.mark.postgres
def test_postgres_schema_and_prefix_together(pg_databases: Any, tmp_path: Path) -> None:
    url = pg_databases.url(pg_databases.create(tag="schema"))
    make_host_database(url)
    app = host_app(tmp_path, SCIM_DATABASE_URL=url, SCIM_DB_SCHEMA="idp", SCIM_TABLE_PREFIX="idp_")
    get_state(app).upgrade()
    provision(app)
    get_state(app).close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names(schema="idp"))
        assert {"idp_users", "idp_organizations", "idp_service_alembic_version", "idp_sql_alembic_version"} <= names
        assert all(n.startswith("idp_") for n in names)
        assert set(sa.inspect(conn).get_table_names(schema="public")) == HOST_TABLES
    engine.dispose()


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """Undo what Flask-Migrate's generated env.py does to logging (``fileConfig`` disables every existing
    logger and sets the root's handlers), so later tests' loggers still work."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    disabled = {
        name: lg.disabled for name, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lg in logging.root.manager.loggerDict.items():
        if isinstance(lg, logging.Logger):
            lg.disabled = disabled.get(name, False)


@pytest.mark.usefixtures("keep_logging")
@pytest.mark.filterwarnings("ignore:.get_engine. is deprecated:DeprecationWarning")  # Flask-Migrate's own env.py
@pytest.mark.parametrize("with_filter", [True, False], ids=["include_object", "no-filter"])
def test_flask_migrate_autogenerate_sees_no_scim_table(host_db_url: str, tmp_path: Path, with_filter: bool) -> None:
    """A real Flask-Migrate host: ``flask db migrate`` after ``flask scim db upgrade`` proposes the host's
    own tables only, with the documented filter; without it, it would drop the service's tables."""
    # Imported here, not skipped when missing: Flask-Migrate (and Flask-SQLAlchemy with it) is in the test extra.
    import flask_migrate
    import flask_migrate.cli
    import flask_sqlalchemy

    app = Flask("host", instance_path=str(tmp_path))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=host_db_url,
        SCIM_DATABASE_URL=host_db_url,
        SCIM_TABLE_PREFIX="idp_",
        SCIM_LOG_LEVEL="WARNING",
    )
    db = flask_sqlalchemy.SQLAlchemy(app)

    class Organization(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "organizations"
        id = db.Column(db.Integer, primary_key=True)
        title = db.Column(db.String(80))

    class User(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "users"
        id = db.Column(db.Integer, primary_key=True)
        org_id = db.Column(db.Integer, db.ForeignKey("organizations.id"))
        email = db.Column(db.String(120))

    ScimService(app)
    options = {"include_object": include_object_for(app.config["SCIM_TABLE_PREFIX"])} if with_filter else {}
    directory = tmp_path / "migrations"
    flask_migrate.Migrate(app, db, directory=str(directory), **options)
    runner = app.test_cli_runner()
    upgraded = runner.invoke(args=["scim", "db", "upgrade"], catch_exceptions=False)
    assert upgraded.exit_code == 0, upgraded.output
    provision(app)

    for args in (["init"], ["migrate", "-m", "host models"]):
        result = runner.invoke(flask_migrate.cli.db, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    (revision,) = (directory / "versions").glob("*.py")
    text = revision.read_text()
    assert "op.create_table('organizations'" in text and "op.create_table('users'" in text, text
    if with_filter:
        assert "idp_" not in text and "scim_" not in text, text
    else:  # the control: the same host without the filter would drop the service's tables
        assert "op.drop_table('idp_users')" in text and "op.drop_table('idp_service_alembic_version')" in text
    get_state(app).close()
    with app.app_context():
        db.engine.dispose()


@pytest.mark.postgres
def test_a_role_given_a_ready_schema_upgrades_without_create_on_the_database(pg_databases: Any, tmp_path: Path) -> None:
    """The DBA made the schema and gave it to the service's role, which may not create schemas: db upgrade
    uses the schema as it is instead of failing on CREATE SCHEMA."""
    name = pg_databases.create(tag="role")
    role = f"scim_limited_{name[-8:]}"
    with pg_databases.admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    try:
        owner = sa.create_engine(pg_databases.url(name))
        with owner.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA scim_ready AUTHORIZATION "{role}"')
            conn.exec_driver_sql(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC')
        owner.dispose()
        url = sa.make_url(pg_databases.url(name)).set(username=role, password=None)
        app = host_app(
            tmp_path, SCIM_DATABASE_URL=url.render_as_string(hide_password=False), SCIM_DB_SCHEMA="scim_ready"
        )
        get_state(app).upgrade()
        provision(app)
        get_state(app).close()
    finally:
        pg_databases.drop(name)
        with pg_databases.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
