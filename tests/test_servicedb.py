"""The service tables: migrations, organizations and the provisioning log, on real SQLite files."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pg_support import PgDatabases
from sqlalchemy.engine import Engine

from scim_service.model import MatchPolicy, SeatPolicy
from scim_service.servicedb import AdminError, LogEntry, ServiceStore, upgrade_service_db
from scim_service.servicedb.migrate import alembic_config, current_revision, head_revision, service_tables_exist
from scim_service.servicedb.store import LogQuery
from scim_service.servicedb.tables import LOG_DETAIL_MAX, metadata
from scim_service.sqlengine import make_engine


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade_service_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> ServiceStore:
    return ServiceStore(engine)


# -- migrations ------------------------------------------------------------------------------------


def test_upgrade_creates_tables_with_own_version_table(db_url: str) -> None:
    eng = make_engine(db_url)
    assert current_revision(eng) is None
    assert not service_tables_exist(eng)
    assert upgrade_service_db(eng) == (None, head_revision())
    names = set(sa.inspect(eng).get_table_names())
    assert {"scim_organizations", "scim_tokens", "scim_provisioning_log", "scim_service_alembic_version"} <= names
    assert "alembic_version" not in names  # would collide with other alembic environments
    assert service_tables_exist(eng)
    # A second run is a no-op that reports where the database already is.
    assert upgrade_service_db(eng) == (head_revision(), head_revision())
    eng.dispose()


def test_upgrade_from_url_and_alongside_another_alembic_history(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE scim_sql_alembic_version (version_num VARCHAR(32) NOT NULL)")
        raw.execute("INSERT INTO scim_sql_alembic_version VALUES ('sql0007')")
    assert upgrade_service_db(f"sqlite:///{path}") == (None, head_revision())
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version_num FROM scim_sql_alembic_version").fetchall() == [("sql0007",)]
        assert raw.execute("SELECT version_num FROM scim_service_alembic_version").fetchall() == [(head_revision(),)]


def test_migrations_match_table_definitions(db_url: str) -> None:
    """A new database gets the tables from ``metadata``; the migrations' history must end in the same schema."""
    engine = make_engine(db_url)
    config = alembic_config()
    with engine.connect() as conn:
        conn.info["scim_write"] = True
        with conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, "head")  # every revision from the first, not create_all
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "scim_service_alembic_version")]
    assert diff == []


def test_downgrade_to_base_removes_tables(engine: Engine) -> None:
    config = alembic_config()
    with engine.connect() as conn:
        conn.info["scim_write"] = True
        with conn.begin():
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
    names = set(sa.inspect(engine).get_table_names())
    assert not names & {"scim_organizations", "scim_tokens", "scim_provisioning_log", "scim_auth_failures"}


def test_index_on_org_and_time(engine: Engine) -> None:
    indexes = {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes("scim_provisioning_log")}
    assert ("org_id", "at") in indexes


# -- organizations ---------------------------------------------------------------------------------


def test_create_get_and_list_orgs(store: ServiceStore) -> None:
    acme = store.create_org("acme", max_seats=10)
    beta = store.create_org("Beta.co_1-x", seat_policy="active", match_policy=MatchPolicy.USERNAME)
    assert acme.name == "acme" and acme.max_seats == 10
    assert acme.seat_policy is SeatPolicy.ALL and acme.match_policy is MatchPolicy.EMAIL
    assert beta.seat_policy is SeatPolicy.ACTIVE and beta.match_policy is MatchPolicy.USERNAME
    assert beta.max_seats is None
    assert store.get_org("acme") == acme
    assert store.get_org_by_id(beta.id) == beta
    assert [t.name for t in store.list_orgs()] == ["Beta.co_1-x", "acme"]
    assert acme.id != beta.id


def test_duplicate_org_is_a_clear_error(store: ServiceStore) -> None:
    store.create_org("acme")
    with pytest.raises(AdminError, match="organization 'acme' already exists"):
        store.create_org("acme")
    # Names are case-sensitive slugs: a different case is a different organization.
    assert store.create_org("ACME").name == "ACME"


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "slash/name", "ümlaut", "semi;colon", None])
def test_invalid_org_names(store: ServiceStore, name: str) -> None:
    with pytest.raises(AdminError, match="invalid organization name"):
        store.create_org(name)
    assert store.list_orgs() == []


def test_longest_valid_name(store: ServiceStore) -> None:
    assert store.create_org("a" * 64).name == "a" * 64


def test_unknown_org_is_a_clear_error(store: ServiceStore) -> None:
    calls = [
        lambda: store.get_org("nope"),
        lambda: store.set_seats("nope", 3),
        lambda: store.update_org("nope", seat_policy="active"),
        lambda: store.create_token("nope"),
        lambda: store.list_tokens("nope"),
        lambda: store.recent_log(org_name="nope"),
    ]
    for call in calls:
        with pytest.raises(AdminError, match="no organization named 'nope'"):
            call()
    with pytest.raises(AdminError, match="no organization has the id"):
        store.get_org_by_id("00000000-0000-0000-0000-000000000000")


def test_set_seats_and_update_policies(store: ServiceStore, engine: Engine) -> None:
    store.create_org("acme")
    assert store.set_seats("acme", 5).max_seats == 5
    assert store.set_seats("acme", 0).max_seats == 0
    updated = store.update_org("acme", seat_policy="ACTIVE")
    assert updated.seat_policy is SeatPolicy.ACTIVE and updated.match_policy is MatchPolicy.EMAIL
    updated = store.update_org("acme", match_policy=MatchPolicy.USERNAME)
    assert updated.seat_policy is SeatPolicy.ACTIVE and updated.match_policy is MatchPolicy.USERNAME
    assert store.update_org("acme") == updated  # nothing to change is not an error
    # Another worker on the same database sees the changes.
    other = ServiceStore(engine)
    assert other.get_org("acme") == updated
    assert other.set_seats("acme", None).max_seats is None
    assert store.get_org("acme").max_seats is None


@pytest.mark.parametrize("seats", [-1, True, 2.5, "3"])
def test_invalid_seat_counts(store: ServiceStore, seats: object) -> None:
    with pytest.raises(AdminError, match="max seats"):
        store.create_org("acme", max_seats=seats)  # type: ignore[arg-type]
    store.create_org("acme")
    with pytest.raises(AdminError, match="max seats"):
        store.set_seats("acme", seats)  # type: ignore[arg-type]


def test_invalid_policies(store: ServiceStore) -> None:
    with pytest.raises(AdminError, match="seat policy must be one of all, active"):
        store.create_org("acme", seat_policy="some")
    with pytest.raises(AdminError, match="match policy must be one of email, username"):
        store.create_org("acme", match_policy="phone")
    store.create_org("acme")
    with pytest.raises(AdminError, match="seat policy"):
        store.update_org("acme", seat_policy="none")


def test_concurrent_creates_of_one_name_make_one_org(db_url: str, engine: Engine) -> None:
    results: list[str] = []

    def create() -> None:
        worker = ServiceStore(make_engine(db_url))
        try:
            worker.create_org("race")
            results.append("created")
        except AdminError as exc:
            results.append(str(exc))
        finally:
            worker.engine.dispose()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("created") == 1
    assert sorted(results) == ["created"] + ["organization 'race' already exists"] * 3
    assert [t.name for t in ServiceStore(engine).list_orgs()] == ["race"]


# -- provisioning log ------------------------------------------------------------------------------


def test_record_and_read_back_the_log(store: ServiceStore) -> None:
    acme = store.create_org("acme")
    beta = store.create_org("beta")
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    store.record(LogEntry("POST", "/scim/v2/Users", 201, at=t0, org_id=acme.id, token_id="tok1", duration_ms=3.5))
    store.record(
        LogEntry(
            "POST",
            "/scim/v2/Users",
            409,
            at=t0 + timedelta(seconds=1),
            org_id=acme.id,
            resource_type="User",
            scim_type="uniqueness",
            detail="userName taken",
            user_agent="Okta SCIM Client 1.0.0",
            client="203.0.113.9",
        )
    )
    store.record(LogEntry("GET", "/scim/v2/Groups", 200, at=t0 + timedelta(seconds=2), org_id=beta.id))
    store.record(LogEntry("GET", "/scim/v2/Users", 401, at=t0 + timedelta(seconds=3), detail="bad token"))

    newest_first = store.recent_log()
    assert [e.status for e in newest_first] == [401, 200, 409, 201]
    assert [e.org_name for e in newest_first] == [None, "beta", "acme", "acme"]
    conflict = newest_first[2]
    assert conflict.scim_type == "uniqueness" and conflict.detail == "userName taken"
    assert conflict.user_agent == "Okta SCIM Client 1.0.0" and conflict.client == "203.0.113.9"
    assert conflict.at == t0 + timedelta(seconds=1) and conflict.at.tzinfo is not None
    assert newest_first[3].token_id == "tok1" and newest_first[3].duration_ms == 3.5
    assert all(e.id is not None for e in newest_first)

    assert [e.status for e in store.recent_log(org_name="acme")] == [409, 201]
    assert [e.status for e in store.recent_log(errors_only=True)] == [401, 409]
    assert [e.status for e in store.recent_log(org_name="acme", errors_only=True)] == [409]
    assert [e.status for e in store.recent_log(limit=2)] == [401, 200]
    json.dumps([e.to_dict() for e in newest_first])  # JSON-ready for the CLI
    with pytest.raises(AdminError, match="limit"):
        store.recent_log(limit=0)


def test_long_log_texts_are_cut(store: ServiceStore) -> None:
    store.record(LogEntry("GET", "/x" * 5000, 500, detail="e" * 10_000, user_agent="u" * 2000))
    (entry,) = store.recent_log()
    assert len(entry.detail or "") == LOG_DETAIL_MAX and entry.detail.endswith("…")  # type: ignore[union-attr]
    assert len(entry.path) <= 2048 and len(entry.user_agent or "") <= 512


def test_prune_log(store: ServiceStore) -> None:
    now = datetime.now(UTC)
    for days in (40, 20, 1):
        store.record(LogEntry("GET", f"/{days}", 200, at=now - timedelta(days=days)))
    assert store.prune_log(now - timedelta(days=30)) == 1
    assert [e.path for e in store.recent_log()] == ["/1", "/20"]


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def pg_engine(pg_databases: PgDatabases) -> Iterator[Engine]:
    """A fresh database on the tests' PostgreSQL server."""
    eng = make_engine(pg_databases.url(pg_databases.create(tag="svc")))
    yield eng
    eng.dispose()


@pytest.mark.postgres
def test_postgres_migrations_and_store(pg_engine: Engine) -> None:
    results: list[tuple[str | None, str]] = []
    threads = [threading.Thread(target=lambda: results.append(upgrade_service_db(pg_engine))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The advisory lock serialises concurrent upgrades: exactly one of them did the work.
    assert results.count((None, head_revision())) == 1
    assert results.count((head_revision(), head_revision())) == 2
    with pg_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == "scim_service_alembic_version")] == []

    store = ServiceStore(pg_engine)
    acme = store.create_org("acme", max_seats=2)
    with pytest.raises(AdminError, match="already exists"):
        store.create_org("acme")
    token_id, token = store.create_token("acme")
    assert store.authenticate(token) == (acme, token_id)
    store.record(LogEntry("GET", "/p" * 3000, 500, org_id=acme.id, detail="d" * 5000))
    (entry,) = store.recent_log(org_name="acme", errors_only=True)
    assert entry.org_name == "acme" and len(entry.path) == 2048


# -- revision 0003: an upgrade from 0001 with data ------------------------------------------------


class Clock:
    """A settable UTC clock: the store's ``clock`` argument moves time without sleeping."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2025, 6, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty service database: a SQLite file, or a fresh database on the tests' PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'any.db'}"
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    return databases.url(databases.create(tag="svc"))


@pytest.fixture
def any_engine(any_db_url: str) -> Iterator[Engine]:
    eng = make_engine(any_db_url)
    upgrade_service_db(eng)
    yield eng
    eng.dispose()


def test_upgrade_from_0001_with_data_keeps_orgs_tokens_and_log(any_db_url: str) -> None:
    from scim_service.servicedb.store import hash_token

    eng = make_engine(any_db_url)
    config = alembic_config()
    with eng.connect() as conn:
        conn.info["scim_write"] = True
        with conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
    t0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    with eng.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO organizations (id, name, max_seats, seat_policy, match_policy, created) "
                "VALUES ('o1', 'acme', 5, 'all', 'email', :t)"
            ),
            {"t": t0},
        )
        conn.execute(
            sa.text(
                "INSERT INTO tokens (id, org_id, token_hash, created, description) VALUES ('t1', 'o1', :h, :t, 'old')"
            ),
            {"h": hash_token("scim_oldtoken"), "t": t0},
        )
        conn.execute(
            sa.text(
                "INSERT INTO provisioning_log (at, org_id, token_id, method, path, status, duration_ms) "
                "VALUES (:t, 'o1', 't1', 'POST', '/scim/v2/Users', 409, 2.5)"
            ),
            {"t": t0},
        )
    assert upgrade_service_db(eng) == ("0001", head_revision())
    store = ServiceStore(eng)
    acme = store.get_org("acme")
    assert acme.max_seats == 5
    assert store.authenticate("scim_oldtoken") == (acme, "t1")  # a token made before 0003 still works
    (info,) = store.list_tokens("acme")
    assert (info.prefix, info.expires_at, info.replaced_by, info.state) == (None, None, None, "active")
    assert store.get_token("t1").description == "old"
    (entry,) = store.query_log(LogQuery(org_name="acme"))
    assert (entry.status, entry.repeat_count, entry.request_id, entry.user_name) == (409, 1, None, None)
    assert entry.at == t0
    # Revision 0004 copied the log into scim_provisioning_log: new entries number on after the copied ones.
    new_id = store.record(LogEntry("GET", "/scim/v2/Users", 200, org_id=acme.id))
    assert new_id > entry.id
    assert [e.id for e in store.query_log(LogQuery(org_name="acme"))] == sorted([entry.id, new_id], reverse=True)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == "scim_service_alembic_version")] == []
    eng.dispose()


# -- the log query ---------------------------------------------------------------------------------


def test_query_log_filters(any_engine: Engine) -> None:
    store = ServiceStore(any_engine)
    acme, beta = store.create_org("acme"), store.create_org("beta")
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    rows = [
        LogEntry("POST", "/Users", 201, at=t0, org_id=acme.id, resource_id="u1", user_name="Alice@Example.com"),
        LogEntry("PATCH", "/Users/u1", 204, at=t0 + timedelta(hours=1), org_id=acme.id, resource_id="u1"),
        LogEntry(
            "POST",
            "/Users",
            409,
            at=t0 + timedelta(hours=2),
            org_id=acme.id,
            scim_type="uniqueness",
            user_name="alice@example.com",
            request_id="req-409",
        ),
        LogEntry("GET", "/Groups", 500, at=t0 + timedelta(hours=3), org_id=beta.id),
        LogEntry("GET", "/Users", 401, at=t0 + timedelta(hours=4)),
    ]
    ids = [store.record(r) for r in rows]
    assert ids == sorted(ids)

    def statuses(**kw: object) -> list[int]:
        return [e.status for e in store.query_log(LogQuery(**kw))]  # type: ignore[arg-type]

    assert statuses() == [401, 500, 409, 204, 201]
    assert statuses(since=t0 + timedelta(hours=1), until=t0 + timedelta(hours=3)) == [409, 204]
    assert statuses(user="ALICE@example.COM") == [409, 201]  # by userName, any case
    assert statuses(user="u1") == [204, 201]  # by id
    assert statuses(user="alice@example.com", user_ids=("u1",)) == [409, 204, 201]
    assert statuses(status="409") == [409]
    assert statuses(status="4xx") == [401, 409]
    assert statuses(status="5XX") == [500]
    assert statuses(status="error") == [401, 500, 409]
    assert statuses(status="2xx", errors_only=True) == []
    assert statuses(request_id="req-409") == [409]
    assert statuses(org_name="beta") == [500]
    assert statuses(after_id=ids[2]) == [401, 500]
    assert statuses(limit=2, oldest_first=True) == [500, 401]
    (conflict,) = store.query_log(LogQuery(request_id="req-409"))
    assert conflict.org_name == "acme" and conflict.scim_type == "uniqueness"
    with pytest.raises(AdminError, match="status 'teapot'"):
        store.query_log(LogQuery(status="teapot"))
    with pytest.raises(AdminError, match="no organization named"):
        store.query_log(LogQuery(org_name="ghost"))


# -- retention ---------------------------------------------------------------------------------------


def test_retention_by_age_and_rows_in_batches(any_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from scim_service.durations import Retention
    from scim_service.servicedb import store as store_module

    monkeypatch.setattr(store_module, "DELETE_BATCH", 7)  # several batches for a few rows
    clock = Clock()
    store = ServiceStore(any_engine, clock=clock)
    for minutes in range(40, 0, -1):  # 40 entries, one a minute, the oldest first
        store.record(LogEntry("GET", f"/{minutes}", 200, at=clock.now - timedelta(minutes=minutes)))
    progress: list[tuple[str, int]] = []
    removed = store.apply_retention(
        Retention(max_age=timedelta(minutes=30)), progress=lambda w, n: progress.append((w, n))
    )
    assert removed == 10  # minutes 40..31
    assert [n for _w, n in progress] == [7, 10]  # two batches of at most 7
    assert len(store.query_log(LogQuery(limit=100))) == 30
    assert store.apply_retention(Retention(max_rows=12)) == 18
    kept = store.query_log(LogQuery(limit=100, oldest_first=True))
    assert [e.path for e in kept] == [f"/{m}" for m in range(12, 0, -1)]  # the newest 12
    assert store.apply_retention(Retention(max_age=timedelta(minutes=30), max_rows=12)) == 0


def test_retention_runs_every_n_writes_off_the_writing_thread(any_engine: Engine) -> None:
    from scim_service.durations import Retention

    clock = Clock()
    store = ServiceStore(any_engine, clock=clock, retention=Retention(max_rows=3), prune_every=5)
    threads: set[str] = set()
    original = store.apply_retention

    def watched(*args: object, **kwargs: object) -> int:
        threads.add(threading.current_thread().name)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    store.apply_retention = watched  # type: ignore[method-assign]
    for n in range(4):
        store.record(LogEntry("GET", f"/{n}", 200))
    store.wait_for_prune()
    assert len(store.query_log(LogQuery(limit=100))) == 4 and threads == set()  # not yet: 4 writes
    store.record(LogEntry("GET", "/4", 200))
    store.wait_for_prune()
    assert threads == {"scim-log-prune"}
    assert [e.path for e in store.query_log(LogQuery(limit=100))] == ["/4", "/3", "/2"]


# -- failed authentications: counted per address, shared by every process -----------------------------


def test_auth_failures_share_one_entry_per_address_and_window_and_are_limited(
    any_db_url: str, any_engine: Engine
) -> None:
    clock = Clock()
    worker_a = ServiceStore(any_engine, clock=clock)
    other_engine = make_engine(any_db_url)  # a second worker process's engine on the same database
    worker_b = ServiceStore(other_engine, clock=clock)
    window = timedelta(minutes=10)

    def fail(store: ServiceStore, client: str = "203.0.113.7", detail: str = "The bearer token is not valid"):
        entry = LogEntry("GET", "/scim/v2/Users", 401, client=client, detail=detail, request_id="r")
        return store.record_auth_failure(entry, limit=3, window=window)

    outcomes = [fail(worker_a if n % 2 else worker_b) for n in range(3)]
    assert [(o.failures, o.limited) for o in outcomes] == [(1, False), (2, False), (3, False)]
    (entry,) = worker_a.query_log(LogQuery())
    assert (entry.status, entry.repeat_count, entry.client) == (401, 3, "203.0.113.7")
    assert entry.last_at is not None and entry.at == clock.now
    clock.advance(minutes=4)
    limited = fail(worker_b)
    assert limited.limited and limited.failures == 4 and limited.retry_after == 6 * 60
    fail(worker_a)
    entries = worker_a.query_log(LogQuery())
    assert [(e.status, e.repeat_count) for e in entries] == [(429, 2), (401, 3)]
    assert "Too many failed authentications from 203.0.113.7" in (entries[0].detail or "")
    # Another address has its own count; a different failure of the same address gets its own entry.
    assert not fail(worker_a, client="198.51.100.1").limited
    clock.advance(minutes=6)  # the window is over: the count starts again
    again = fail(worker_a, detail="Authentication required")
    assert (again.failures, again.limited) == (1, False)
    assert [(e.status, e.repeat_count, e.client) for e in worker_a.query_log(LogQuery(limit=2))] == [
        (401, 1, "203.0.113.7"),
        (401, 1, "198.51.100.1"),
    ]
    other_engine.dispose()


def test_auth_failures_from_many_threads_count_exactly(any_db_url: str, any_engine: Engine) -> None:
    stores = [ServiceStore(make_engine(any_db_url)) for _ in range(4)]
    outcomes: list[bool] = []

    def hammer(store: ServiceStore) -> None:
        for _ in range(5):
            entry = LogEntry("GET", "/scim/v2/Users", 401, client="192.0.2.9", detail="bad")
            outcomes.append(store.record_auth_failure(entry, limit=12, window=timedelta(minutes=5)).limited)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(False) == 12 and outcomes.count(True) == 8
    entries = ServiceStore(any_engine).query_log(LogQuery())
    assert sorted((e.status, e.repeat_count) for e in entries) == [(401, 12), (429, 8)]
    for store in stores:
        store.engine.dispose()


# -- renaming and deleting organizations ------------------------------------------------------------


def test_rename_and_delete_org(store: ServiceStore) -> None:
    acme = store.create_org("acme")
    store.create_org("beta")
    token_id, token = store.create_token("acme")
    store.record(LogEntry("GET", "/Users", 200, org_id=acme.id))
    renamed = store.rename_org("acme", "acme-corp")
    assert renamed.id == acme.id and renamed.name == "acme-corp"
    assert store.authenticate(token) == (renamed, token_id)  # tokens follow the organization
    with pytest.raises(AdminError, match="'beta' already exists"):
        store.rename_org("acme-corp", "beta")
    with pytest.raises(AdminError, match="invalid organization name"):
        store.rename_org("acme-corp", "bad name")
    with pytest.raises(AdminError, match="no organization named 'acme'"):
        store.rename_org("acme", "x")
    assert store.delete_org("acme-corp") == {"tokens": 1, "log_entries": 1}
    assert [t.name for t in store.list_orgs()] == ["beta"]
    assert store.authenticate(token) is None
    assert store.query_log(LogQuery()) == []
