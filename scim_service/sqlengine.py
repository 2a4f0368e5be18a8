"""How the service opens a SQL database: one place for SQLite pragmas, pool sizes and error mapping.

Both the service's own tables (organizations, tokens, log) and the ``sql`` backend open their engine
here, so SQLite behaves the same everywhere: WAL, a busy timeout, foreign keys, and write
transactions that take the write lock up front (``BEGIN IMMEDIATE``) so that a read-then-write
(uniqueness check, seat count) cannot interleave with another writer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from scim_service.errors import Unavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, config: Mapping[str, Any] | None = None) -> Engine:
    """Create an engine for ``url`` with the service's settings (``SCIM_DB_POOL_*``)."""
    config = config or {}
    sa_url = sa.engine.make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        database = sa_url.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            sa_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, say when transactions begin (see below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A write transaction asks for the lock at BEGIN; reads use a deferred transaction.
            mode = "IMMEDIATE" if conn.info.get("scim_write") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return sa.create_engine(
        sa_url,
        pool_size=int(config.get("SCIM_DB_POOL_SIZE") or 5),
        max_overflow=int(config.get("SCIM_DB_POOL_SIZE") or 5),
        pool_timeout=int(config.get("SCIM_DB_POOL_TIMEOUT") or 10),
        pool_pre_ping=True,
    )


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the database write lock from its start."""
    with translate_errors(), engine.connect() as conn:
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


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn a lost or unreachable database into ``Unavailable`` (503) instead of a 500."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        raise Unavailable(f"The database is unavailable: {_first_line(exc)}") from exc
    except sa.exc.InterfaceError as exc:
        raise Unavailable(f"The database connection failed: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
