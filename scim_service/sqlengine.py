"""How the service opens a SQL database: one place for SQLite pragmas, pool sizes, retries and error mapping.

Both the service's own tables (organizations, tokens, log) and the ``sql`` backend open their engine
here, so each dialect behaves the same everywhere.

SQLite: WAL, a busy timeout, foreign keys, and write transactions that take the write lock up front
(``BEGIN IMMEDIATE``) so that a read-then-write (uniqueness check, seat count) cannot interleave with
another writer. Before ``BEGIN IMMEDIATE`` a writer takes an exclusive ``flock`` on a lock file beside
the database (:class:`SqliteWriteLock`): writers of every process and thread queue in the kernel and
the next one is woken the moment the holder commits, instead of polling in SQLite's busy handler,
which sleeps in steps of up to 100 ms (the p99 of contended writes). The lock file only orders the
writers; ``BEGIN IMMEDIATE`` and the busy timeout still guarantee atomicity, for writers that do not
use the lock file (another program, an older version) too.

PostgreSQL (and other server databases): a bounded pool per process (``SCIM_DB_POOL_SIZE``, overflow of
the same size, ``SCIM_DB_POOL_TIMEOUT`` seconds to wait for a free connection), a ping before each
checkout so connections broken by a server restart are replaced, and timeouts on every connection
(``SCIM_DB_CONNECT_TIMEOUT``, ``SCIM_DB_LOCK_TIMEOUT``, ``SCIM_DB_STATEMENT_TIMEOUT``, TCP keepalives
and a TCP user timeout) so an unreachable server, a lock held by a transaction that never ends or a
silently dropped network give a quick 503 with ``Retry-After``, not a hung worker. Transactions that lose
a serialization race or a deadlock (SQLSTATE 40001 / 40P01) are run again by :func:`retry_transient`.

Every driver failure becomes a SCIM error through :func:`translate_errors`, the one mapper: the
client's detail never holds the driver's message (hosts, ports, tenant ids); that goes to the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import math
import os
import random
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from scim_service.config import ConfigError
from scim_service.errors import Unavailable, store_failure

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
LOCK_FILE_SUFFIX = "-writelock"  # scim.db -> scim.db-writelock, beside SQLite's own -wal and -shm files
DEFAULT_POOL_SIZE = 5
DEFAULT_POOL_TIMEOUT = 10  # seconds a request waits for a free pooled connection before a 503
CONNECT_TIMEOUT_SECONDS = 5.0  # SCIM_DB_CONNECT_TIMEOUT: libpq connect_timeout unless the URL sets its own
LOCK_TIMEOUT_SECONDS = 5.0  # SCIM_DB_LOCK_TIMEOUT: longest wait for a row or table lock
STATEMENT_TIMEOUT_SECONDS = 15.0  # SCIM_DB_STATEMENT_TIMEOUT: longest statement (below gunicorn's 30 s)
# TCP keepalives find a peer that vanished while the connection idles in the pool (seconds).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 5, "keepalives_count": 3}
RETRY_AFTER_SECONDS = 5  # what a 503 of the database tells the client to wait
POOL_RECYCLE_SECONDS = 1800  # replace connections older than this (idle timeouts of proxies, balancers)
RETRY_ATTEMPTS = 5  # runs of a transaction that keeps losing serialization races or deadlocks
RETRY_BASE_DELAY = 0.02  # seconds; doubled after each failed run, with jitter, capped at RETRY_MAX_DELAY
RETRY_MAX_DELAY = 0.5
# serialization_failure and deadlock_detected: the server rolled the transaction back and running it
# again is safe (and the documented way to handle them).
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

P = ParamSpec("P")
R = TypeVar("R")


class TransientConflict(Unavailable):
    """A transaction was rolled back by the database because of a concurrent one (deadlock or
    serialization failure). :func:`retry_transient` runs it again; if every run loses, the client
    gets a 503 and may retry."""


SCHEMA_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(name: str) -> str:
    """``name`` if it is a valid ``SCIM_DB_SCHEMA``, else ``ValueError``."""
    if not isinstance(name, str) or not SCHEMA_NAME_RE.match(name):
        raise ValueError(
            f"invalid schema name {name!r}: up to 63 lower-case letters, digits and '_', not starting with a digit"
        )
    return name


def make_engine(url: str, config: Mapping[str, Any] | None = None) -> Engine:
    """Create an engine for ``url`` with the service's settings (``SCIM_DB_POOL_SIZE``,
    ``SCIM_DB_POOL_TIMEOUT`` and, on PostgreSQL, the ``SCIM_DB_*_TIMEOUT`` settings and ``SCIM_DB_SCHEMA``)."""
    config = config or {}
    sa_url = sa.engine.make_url(url)
    schema = config.get("SCIM_DB_SCHEMA")
    if schema and sa_url.get_backend_name() != "postgresql":
        raise ConfigError(f"SCIM_DB_SCHEMA is for PostgreSQL; {sa_url.get_backend_name()} has no schemas to choose")
    if sa_url.get_backend_name() == "sqlite":
        return _sqlite_engine(sa_url)
    pool_size = int(config.get("SCIM_DB_POOL_SIZE") or DEFAULT_POOL_SIZE)
    connect_args: dict[str, Any] = {}
    if sa_url.get_backend_name() == "postgresql":
        connect_args = postgres_connect_args(sa_url, config)
    return sa.create_engine(
        sa_url,
        connect_args=connect_args,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=int(config.get("SCIM_DB_POOL_TIMEOUT") or DEFAULT_POOL_TIMEOUT),
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_pre_ping=True,  # a connection broken by a server restart is replaced, not handed out
        pool_use_lifo=True,  # reuse the warmest connections, let the rest age out
        # SCIM_DB_SCHEMA: every table without an explicit schema (all of ours) is read and written there.
        # Per engine, so two apps in one process can use two schemas; the migrations read it back with
        # engine_schema.
        execution_options={"schema_translate_map": {None: check_schema_name(schema)}} if schema else {},
    )


def engine_schema(bind: Engine | Connection) -> str | None:
    """The schema an engine (or connection) puts the service's tables in (``SCIM_DB_SCHEMA``), or None."""
    translate = bind.get_execution_options().get("schema_translate_map") or {}
    return translate.get(None)


def use_schema(conn: Connection) -> str | None:
    """Inside a migration's transaction: create the engine's ``SCIM_DB_SCHEMA`` if missing and put it first
    on the search path until the transaction ends, so the migrations' plain SQL and reflection find the
    tables where the engine's statements put them. Returns the schema (None: nothing to do)."""
    schema = engine_schema(conn)
    if schema is not None and conn.dialect.name == "postgresql":
        # Looked up first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the database even when
        # the schema is there, which a role given a ready schema by its DBA does not have.
        found = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first()
        if found is None:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.exec_driver_sql(f'SET LOCAL search_path TO "{schema}", public')
    return schema


def postgres_connect_args(sa_url: sa.engine.URL, config: Mapping[str, Any]) -> dict[str, Any]:
    """libpq parameters of every PostgreSQL connection: connect, lock and statement timeouts, keepalives.

    Options in the URL's query (``?connect_timeout=2&options=-c statement_timeout=0``) win over these.
    """
    connect = _seconds(config, "SCIM_DB_CONNECT_TIMEOUT", CONNECT_TIMEOUT_SECONDS)
    lock = _seconds(config, "SCIM_DB_LOCK_TIMEOUT", LOCK_TIMEOUT_SECONDS)
    statement = _seconds(config, "SCIM_DB_STATEMENT_TIMEOUT", STATEMENT_TIMEOUT_SECONDS)
    args: dict[str, Any] = {
        "connect_timeout": max(1, math.ceil(connect)),  # libpq takes whole seconds
        "application_name": "scim-service",
        # Unacknowledged data (a ping or a write on a network that silently drops packets) ends the
        # connection after this, instead of the kernel's ~15 minutes of retransmissions.
        "tcp_user_timeout": int(max(connect, 1) * 1000),
        **KEEPALIVES,
    }
    # The server enforces these per statement; later -c options (the URL's own) override earlier ones.
    options = f"-c lock_timeout={int(lock * 1000)} -c statement_timeout={int(statement * 1000)}"
    own = sa_url.query.get("options")
    if own:
        options += " " + (own if isinstance(own, str) else " ".join(own))
    args["options"] = options
    return {key: value for key, value in args.items() if key == "options" or key not in sa_url.query}


def _seconds(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key)
    return float(value) if value else default


def lift_timeouts(conn: Connection) -> None:
    """Lift the lock and statement timeouts for the rest of ``conn``'s transaction (a migration, which
    may wait for another process's migration and may rewrite large tables)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")


def _sqlite_engine(sa_url: sa.engine.URL) -> Engine:
    path = _sqlite_file(sa_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        sa_url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, say when transactions begin (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _set_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction asks for the lock at BEGIN; reads use a deferred transaction.
        mode = "IMMEDIATE" if conn.info.get("scim_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    if path is not None:
        _write_locks[engine] = _lock_beside(path)
    return engine


def _set_wal(cursor: Any) -> None:
    """Switch the file to WAL. Two first connections to a new file that switch it at once can get
    "database is locked" at once (SQLite does not wait in its busy handler for this lock), which
    a readiness probe on a fresh file met; so the switch is retried for up to about a second."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.02)


WAL_ATTEMPTS = 50


def _sqlite_file(sa_url: sa.engine.URL) -> Path | None:
    """The file of a SQLite URL; None for an in-memory or temporary database (nothing to share)."""
    database = sa_url.database
    if not database or database == ":memory:":
        return None
    if str(sa_url.query.get("uri", "")).lower() in {"true", "1"} and database.startswith("file:"):
        parts = urlsplit(database)
        mode = sa_url.query.get("mode") or parse_qs(parts.query).get("mode", [""])[0]
        if mode == "memory" or parts.path in {"", ":memory:"}:
            return None
        return Path(parts.path).expanduser()
    return Path(database).expanduser()


class SqliteWriteLock:
    """An exclusive ``flock`` on a file beside a SQLite database, taken before ``BEGIN IMMEDIATE``.

    SQLite's own lock has no queue: a writer that finds it taken sleeps in its busy handler (1, 2,
    5 ... then 100 ms steps) and polls again, so under contention a write waits up to 100 ms longer
    than it must. Waiters on a ``flock`` sleep in the kernel and are woken when the holder releases it.
    Each acquisition opens its own file description, so threads of one process queue as separate
    processes do; the kernel drops the lock of a process that dies.

    The lock orders writers; it is not what makes them atomic (``BEGIN IMMEDIATE`` is), so when the
    file cannot be opened (a read-only folder) writers go without it, as before. The wait has no
    timeout of its own: ``flock`` offers none, and bounding it with a helper thread cost about a tenth
    of the write throughput (measured with ``tests/benchmarks/bench_sqlite_lock.py``). A holder is a write
    transaction, whose statements the busy timeout bounds, and a dead holder's lock is freed. One
    object serves every engine on a file, so a thread that already holds it (a write transaction
    opened inside another, on a second engine of the same file) does not wait for itself: it meets
    SQLite's lock and busy timeout, as before.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._warned = False
        self._holders = threading.local()  # .depth: this thread's nesting of held()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the body of the ``with`` block."""
        depth = getattr(self._holders, "depth", 0)
        fd = self._acquire() if depth == 0 else None
        self._holders.depth = depth + 1
        try:
            yield
        finally:
            self._holders.depth = depth
            if fd is not None:
                os.close(fd)  # closing the only descriptor of the file description releases the flock

    def _acquire(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("SQLite writers go without the lock file %s (%s): they will poll instead", self.path, exc)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # sleeps in the kernel until the holder lets go (GIL released)
        except BaseException:
            os.close(fd)
            raise
        return fd


_write_locks: weakref.WeakKeyDictionary[Engine, SqliteWriteLock] = weakref.WeakKeyDictionary()
_locks_by_file: dict[Path, SqliteWriteLock] = {}
_locks_guard = threading.Lock()


def _lock_beside(database: Path) -> SqliteWriteLock:
    """The one lock object of a database file (shared by its engines)."""
    path = database.resolve()
    path = path.with_name(path.name + LOCK_FILE_SUFFIX)
    with _locks_guard:
        return _locks_by_file.setdefault(path, SqliteWriteLock(path))


def write_lock_of(engine: Engine) -> SqliteWriteLock | None:
    """The cross-process write lock of an engine made by :func:`make_engine` on a SQLite file, else None
    (server databases, in-memory SQLite, and engines a host app created itself)."""
    return _write_locks.get(engine)


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the database write lock from its start (and,
    on a database file, the :class:`SqliteWriteLock` before that, released after the commit).

    A deadlock or serialization failure leaves it as :class:`TransientConflict`; wrap the function
    that opens it in :func:`retry_transient` to run it again.
    """
    lock = _write_locks.get(engine)
    with translate_errors(), engine.connect() as conn, lock.held() if lock else contextlib.nullcontext():
        conn.info["scim_write"] = True
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info.pop("scim_write", None)


@contextlib.contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (one consistent snapshot for a list and its count)."""
    with translate_errors(), engine.connect() as conn, conn.begin():
        yield conn


def run_write(engine: Engine, work: Callable[[Connection], R], *, attempts: int = RETRY_ATTEMPTS) -> R:
    """Run ``work(conn)`` in a write transaction, again (up to ``attempts`` runs) if it loses a
    deadlock or serialization race. ``work`` must have no effect outside the transaction."""

    @retry_transient(attempts=attempts)
    def once() -> R:
        with write_transaction(engine) as conn:
            return work(conn)

    return once()


@overload
def retry_transient(fn: Callable[P, R], *, attempts: int = RETRY_ATTEMPTS) -> Callable[P, R]: ...


@overload
def retry_transient(
    fn: None = None, *, attempts: int = RETRY_ATTEMPTS
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def retry_transient(
    fn: Callable[P, R] | None = None, *, attempts: int = RETRY_ATTEMPTS
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated function again when its transaction is rolled back by a deadlock or a
    serialization failure, with a short jittered, growing pause between runs.

    The function must open (and so roll back) its own transaction: a retry inside a caller's open
    transaction would replay only part of it. After ``attempts`` lost runs the last
    :class:`TransientConflict` (a 503) propagates.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(1, attempts + 1):
                try:
                    return func(*args, **kwargs)
                except (TransientConflict, sa.exc.DBAPIError) as exc:
                    if not is_transient(exc):
                        raise
                    if attempt == attempts:
                        log.warning("%s lost %d runs to concurrent transactions: %s", func.__qualname__, attempts, exc)
                        if isinstance(exc, TransientConflict):
                            raise
                        raise _transient(exc) from exc
                    delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                    log.info(
                        "retrying %s (run %d of %d) after %s", func.__qualname__, attempt + 1, attempts, _sqlstate(exc)
                    )
                    time.sleep(delay)
            raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

        return wrapper

    return decorate if fn is None else decorate(fn)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a deadlock or serialization failure."""
    return _sqlstate(exc) in RETRYABLE_SQLSTATES


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        orig = getattr(current, "orig", None)
        for candidate in (current, orig):
            # psycopg 3 says .sqlstate, psycopg2 .pgcode
            code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(code, str):
                return code
        current = current.__cause__ or current.__context__
    return None


def _transient(exc: BaseException) -> TransientConflict:
    log.info("concurrent transaction: %s", _first_line(exc))
    return TransientConflict("The database rolled the transaction back because of a concurrent one; retry the request")


# SQLSTATEs of a statement the server gave up on: lock_not_available (SCIM_DB_LOCK_TIMEOUT) and
# query_canceled (SCIM_DB_STATEMENT_TIMEOUT).
TIMEOUT_SQLSTATES = frozenset({"55P03", "57014"})


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """The one mapper of database failures: a lost, unreachable or timed-out database becomes
    ``Unavailable`` (503 with ``Retry-After``) instead of a 500 or a hang.

    Deadlocks and serialization failures become :class:`TransientConflict` (also a 503), which
    :func:`retry_transient` recognises. The driver's message never reaches the client: it can name
    the database host and port or values of other tenants; it goes to the service log.
    """
    try:
        yield
    except sa.exc.TimeoutError as exc:  # the pool had no free connection within SCIM_DB_POOL_TIMEOUT
        raise store_failure("No database connection became free in time; retry later", exc, log) from exc
    except sa.exc.DBAPIError as exc:
        if is_transient(exc):
            raise _transient(exc) from exc
        missing = _missing_table(exc)
        if missing is not None:  # an operator's step left out; a table name is no secret
            raise store_failure(
                f"The database is not initialised (no such table: {missing}): run `scim-service db upgrade` first",
                exc,
                log,
            ) from exc
        if _sqlstate(exc) in TIMEOUT_SQLSTATES:
            raise store_failure("The database did not answer in time (busy or locked); retry later", exc, log) from exc
        if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or exc.connection_invalidated:
            raise store_failure("The database is unavailable; retry later", exc, log) from exc
        raise


_MISSING_TABLE = re.compile(r'no such table: ([\w.]+)|relation "([\w.]+)" does not exist')


def _missing_table(exc: BaseException) -> str | None:
    """The table a statement found missing (SQLite's "no such table", PostgreSQL's 42P01), else None."""
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.ProgrammingError):
        return None
    found = _MISSING_TABLE.search(_first_line(exc))
    return (found.group(1) or found.group(2)) if found else None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
