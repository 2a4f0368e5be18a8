"""The ``sql`` storage backend: users and groups in SQLite or PostgreSQL through SQLAlchemy Core.

Atomicity: every write runs in one :func:`~scim_service.sqlengine.write_transaction`. On SQLite that
transaction holds the database write lock from its start (``BEGIN IMMEDIATE``), so a uniqueness or
seat check and the write that follows cannot interleave with another writer. On PostgreSQL a user
write first locks its tenant's row in ``scim_tenant_state`` (``SELECT ... FOR UPDATE``), which
serialises the writers of one tenant; the unique index on (tenant, userName key) stays the last
word either way and its violation becomes ``UniquenessConflict``.

The product rules applied inside those transactions (which conflict to report, seat admission, member
checks and displays, versions) are :mod:`scim_service.rules`; this module holds the queries.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, Row

from scim_service import rules
from scim_service.backend import Backend
from scim_service.errors import InvalidValue, NotFound, ScimError, UniquenessConflict, store_failure
from scim_service.model import (
    Capabilities,
    GroupChanges,
    GroupRecord,
    Member,
    Page,
    SeatPolicy,
    Tenant,
    UserRecord,
)
from scim_service.query.ast import ListQuery
from scim_service.servicedb.hostdb import TABLE_PREFIX
from scim_service.sqlengine import (
    lift_timeouts,
    make_engine,
    read_transaction,
    retry_transient,
    translate_errors,
    use_schema,
    write_transaction,
)
from scim_sql.cursor import after_key, decode_cursor, encode_cursor, query_fingerprint
from scim_sql.dialects import install_sqlite_functions
from scim_sql.filters import FilterCompiler
from scim_sql.tables import SqlTables, email_rows, email_values, tables_for

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = tables_for().version_table  # of the default prefix
MAX_TEXT = 512  # the width of the indexed text columns
_CHUNK = 500  # ids per IN (...) list, well below every driver's parameter limit
_MIGRATE_LOCK = 0x5C1A_5017  # pg_advisory_xact_lock key: one migrating process at a time

P = ParamSpec("P")
R = TypeVar("R")


def _guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Let no driver exception escape a backend method: SCIM errors pass, the rest become 503/400."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with translate_errors():
                return fn(*args, **kwargs)
        except ScimError:
            raise
        except sa.exc.DataError as exc:
            # The client's value (a NUL character, a number out of range): a 400. The driver's text
            # may quote other values, so it goes to the log only.
            log.info("sql backend: the database rejected a value: %s", _first_line(exc))
            raise InvalidValue(
                "The database rejected a value (a NUL character, or a number or text out of range)"
            ) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise store_failure("The sql backend's database failed; retry later", _first_line(exc), log) from exc

    # A deadlock or serialization failure rolls the whole method's transaction back: run it again.
    return retry_transient(wrapper)


@contextlib.contextmanager
def _unique_group_name(values: Mapping[str, Any]) -> Iterator[None]:
    """Turn the unique index on a group's name key (taken by another group of the tenant) into the 409.

    Wraps the write transaction, so the write is rolled back first. Other integrity errors pass."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        if "display_name_key" not in str(exc.orig):
            raise
        raise rules.group_name_conflict(str(values.get("display_name") or "")) from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _now() -> datetime:
    # Milliseconds, the precision the API renders: a client that filters on a meta.lastModified it was
    # shown (``meta.lastModified eq "..."``, ``gt`` for incremental sync) must compare the stored instant.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or (required and value == ""):
        if required:
            raise InvalidValue(f"{key} is required and must be a non-empty string")
        return None
    # An optional "" is kept as "", not NULL: filters and sorts on the column must see what the document
    # holds ("" eq "", not eq null; sorted among the values, not last). Found by the property tests.
    if not isinstance(value, str):
        raise InvalidValue(f"{key} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise InvalidValue(f"{key} is longer than the {MAX_TEXT} characters the sql backend stores")
    return value


def _primary_email_column(data: Mapping[str, Any]) -> str | None:
    """The primary email's comparison key (:func:`scim_service.rules.primary_email_key`) as the indexed
    column holds it."""
    value = rules.primary_email_key(data)
    if value is not None and len(value) > MAX_TEXT:
        raise InvalidValue(f"the primary email is longer than the {MAX_TEXT} characters the sql backend stores")
    return value


MAX_OFFSET = 2**63 - 1
"""The largest OFFSET a page query binds (a signed 64-bit integer on SQLite and PostgreSQL)."""


@dataclass(frozen=True)
class _UserColumns:
    """The indexed columns derived from a user document."""

    user_name: str
    user_name_lower: str
    primary_email_lower: str | None
    external_id: str | None
    display_name: str | None
    active: bool

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> _UserColumns:
        user_name = _text(data, "userName", required=True)
        assert user_name is not None
        active = rules.document_active(data)
        return cls(
            user_name=user_name,
            user_name_lower=rules.comparison_key(user_name),
            primary_email_lower=_primary_email_column(data),
            external_id=_text(data, "externalId"),
            display_name=_text(data, "displayName"),
            active=active,
        )


class SqlBackend(Backend):
    """Users and groups of every tenant in SQL tables (SQLite or PostgreSQL).

    Build it with :meth:`from_config` (``SCIM_DATABASE_URL``), or hand in an engine the host app
    owns: ``SqlBackend(engine)``; then :meth:`close` leaves that engine alone.
    """

    name = "sql"
    replace_returns_groups = True  # replace_user reads the groups inside its transaction
    # The whole document is stored as JSON, so configured schema extensions need nothing more (custom_schemas).
    capabilities = Capabilities(
        filter=True, sort=True, etag=True, cursor=True, nested_groups=False, max_results=1000, custom_schemas=True
    )

    def __init__(
        self,
        engine: Engine,
        *,
        max_results: int | None = None,
        owns_engine: bool = False,
        table_prefix: str = TABLE_PREFIX,
    ) -> None:
        self.engine = engine
        self.tables: SqlTables = tables_for(table_prefix)  # SCIM_TABLE_PREFIX
        users, groups, group_members = self.tables.users, self.tables.groups, self.tables.group_members
        # The reads every user request runs, built once (bind parameters), not per call: statement building
        # and its cache key were a visible share of a request (docs/performance.md).
        self._load_user_stmt = sa.select(users).where(
            users.c.id == sa.bindparam("id"), users.c.tenant_id == sa.bindparam("tenant_id")
        )
        self._load_user_locked = self._load_user_stmt.with_for_update()
        self._user_groups_stmt = (
            sa.select(group_members.c.member_id, groups.c.id, groups.c.display_name)
            .join(groups, groups.c.id == group_members.c.group_id)
            .where(
                group_members.c.tenant_id == sa.bindparam("tenant_id"),
                group_members.c.member_id.in_(sa.bindparam("ids", expanding=True)),
            )
            .order_by(group_members.c.member_id, groups.c.id)
        )
        # The user writes, built once too: the columns come from the parameters at execution (the SET
        # and VALUES clauses follow the keys given), so a call builds no statement and no cache key.
        self._insert_user_stmt = users.insert()
        self._update_user_stmt = users.update().where(users.c.id == sa.bindparam("user_id_"))
        # PostgreSQL's per-tenant write lock (every write of a tenant takes it first).
        tenant_state = self.tables.tenant_state
        self._ensure_tenant_row = postgresql.insert(tenant_state).on_conflict_do_nothing()
        self._lock_tenant_row = (
            sa.select(tenant_state.c.tenant_id)
            .where(tenant_state.c.tenant_id == sa.bindparam("tenant_id"))
            .with_for_update()
        )
        self._owns_engine = owns_engine
        if max_results is not None:
            self.capabilities = replace(type(self).capabilities, max_results=max_results)
        install_sqlite_functions(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._compilers: dict[str, FilterCompiler] = {}

    # -- life of the backend -------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SqlBackend:
        """Open ``SCIM_DATABASE_URL`` with the service's engine settings (``SCIM_DB_SCHEMA`` among them); page
        size from ``SCIM_MAX_PAGE_SIZE``, table names from ``SCIM_TABLE_PREFIX``."""
        url = config.get("SCIM_DATABASE_URL")
        if not url:
            raise ValueError("SCIM_DATABASE_URL is not set: the sql backend needs a SQLAlchemy database URL")
        max_results = int(config.get("SCIM_MAX_PAGE_SIZE") or 1000)
        prefix = str(config.get("SCIM_TABLE_PREFIX") or TABLE_PREFIX)
        return cls(make_engine(str(url), config), max_results=max_results, owns_engine=True, table_prefix=prefix)

    @_guard
    def migrate(self, revision: str = "head") -> None:
        """Upgrade the backend's tables to ``revision`` (the newest by default) of its own alembic migrations."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("version_table", self.tables.version_table)
        cfg.attributes["table_prefix"] = self.tables.prefix  # the revisions name the tables with it
        with write_transaction(self.engine) as conn:
            lift_timeouts(conn)  # it may wait for another process's migration and rewrite large tables
            if self._postgres:  # two processes migrating at once must not both create the tables
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
            use_schema(conn)  # SCIM_DB_SCHEMA: created if missing, first on the search path
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def close(self) -> None:
        """Dispose of the engine's pool if this backend created the engine."""
        if self._owns_engine:
            self.engine.dispose()

    # -- helpers -------------------------------------------------------------------------------

    def _compiler(self, resource: str) -> FilterCompiler:
        compiler = self._compilers.get(resource)
        if compiler is None:
            compiler = self._compilers[resource] = FilterCompiler(
                resource,  # type: ignore[arg-type]
                self.engine.dialect.name,
                lower_collation=self._lower_collation(),
                tables=self.tables,
            )
        return compiler

    def _lower_collation(self) -> str | None:
        """On PostgreSQL, the ICU root collation when the server has it, so that case-insensitive
        filters and sorts fold non-ASCII letters whatever the database's LC_CTYPE (see PostgresJson)."""
        if not self._postgres:
            return None
        with read_transaction(self.engine) as conn:
            found = conn.execute(sa.text("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'")).first()
        return "und-x-icu" if found is not None else None

    def _lock_tenant(self, conn: Connection, tenant: Tenant) -> None:
        # SQLite: BEGIN IMMEDIATE already serialises every writer. PostgreSQL: lock the tenant's row.
        if not self._postgres:
            return
        conn.execute(self._ensure_tenant_row, {"tenant_id": tenant.id})
        conn.execute(self._lock_tenant_row, {"tenant_id": tenant.id})

    def _find_conflict(
        self, conn: Connection, tenant: Tenant, keys: rules.UserKeys, exclude_id: str | None
    ) -> UniquenessConflict | None:
        """The other records holding ``keys`` (the userName holder first), judged by the rules."""
        name_match = self.tables.users.c.user_name_lower == keys.user_name_lower
        match = [name_match]
        if keys.email is not None:
            match.append(self.tables.users.c.primary_email_lower == keys.email)
        stmt = sa.select(
            self.tables.users.c.id, self.tables.users.c.user_name_lower, self.tables.users.c.primary_email_lower
        ).where(self.tables.users.c.tenant_id == tenant.id, sa.or_(*match))
        if exclude_id is not None:
            stmt = stmt.where(self.tables.users.c.id != exclude_id)
        # At most one record holds the userName (unique index); with it, one email holder is enough.
        rows = conn.execute(stmt.order_by(sa.case((name_match, 0), else_=1)).limit(2)).all()
        holders = [rules.Holder(r.id, r.user_name_lower, r.primary_email_lower) for r in rows]
        return rules.uniqueness_conflict(keys, holders)

    def _seats_used(self, conn: Connection, tenant: Tenant) -> int:
        """The count of :func:`~scim_service.model.holds_seat` records, in SQL."""
        stmt = (
            sa.select(sa.func.count()).select_from(self.tables.users).where(self.tables.users.c.tenant_id == tenant.id)
        )
        if tenant.seat_policy is SeatPolicy.ACTIVE:
            stmt = stmt.where(self.tables.users.c.active.is_(sa.true()), self.tables.users.c.deleted.is_(sa.false()))
        return int(conn.execute(stmt).scalar_one())

    def _user_groups(self, conn: Connection, tenant: Tenant, user_ids: Sequence[str]) -> dict[str, list[Member]]:
        out: dict[str, list[Member]] = {uid: [] for uid in user_ids}
        for chunk in _chunks(list(user_ids)):
            rows = conn.execute(self._user_groups_stmt, {"tenant_id": tenant.id, "ids": chunk}).all()
            for row in rows:
                out[row.member_id].append(Member(value=row.id, type="Group", display=row.display_name))
        return out

    @staticmethod
    def _user_record(row: Row[Any], user_groups: Iterable[Member] = ()) -> UserRecord:
        return UserRecord(
            id=row.id,
            data=row.data,
            created=row.created,
            last_modified=row.last_modified,
            version=str(row.version),
            deleted=bool(row.deleted),
            groups=tuple(user_groups),
        )

    def _load_user(self, conn: Connection, tenant: Tenant, user_id: str, *, lock: bool = False) -> Row[Any] | None:
        return conn.execute(
            self._load_user_locked if lock else self._load_user_stmt, {"id": user_id, "tenant_id": tenant.id}
        ).first()

    def _bump_groups_of(self, conn: Connection, tenant: Tenant, member_ids: Any, now: datetime) -> None:
        """New version and lastModified for every group that has one of ``member_ids`` (a list or a subquery)."""
        affected = sa.select(self.tables.group_members.c.group_id).where(
            self.tables.group_members.c.tenant_id == tenant.id, self.tables.group_members.c.member_id.in_(member_ids)
        )
        conn.execute(
            self.tables.groups.update()
            .where(self.tables.groups.c.tenant_id == tenant.id, self.tables.groups.c.id.in_(affected))
            .values(version=self.tables.groups.c.version + 1, last_modified=now)
        )

    def _write_emails(
        self, conn: Connection, tenant: Tenant, user_id: str, data: Mapping[str, Any], *, replace: bool = False
    ) -> None:
        """Bring the user's ``scim_user_emails`` rows in step with its document (the emails.value index)."""
        if replace:
            conn.execute(self.tables.user_emails.delete().where(self.tables.user_emails.c.user_id == user_id))
        rows = email_rows(tenant.id, user_id, data)
        if rows:
            conn.execute(self.tables.user_emails.insert(), rows)

    # -- users ---------------------------------------------------------------------------------

    @_guard
    def create_user(self, tenant: Tenant, data: Mapping[str, Any]) -> UserRecord:
        """Insert a user after the uniqueness and seat checks, all in one write transaction."""
        cols = _UserColumns.of(data)
        keys = rules.user_keys(tenant, data)
        user_id = str(uuid.uuid4())
        now = _now()
        stored = copy.deepcopy(dict(data))
        try:
            with write_transaction(self.engine) as conn:
                self._lock_tenant(conn, tenant)
                conflict = self._find_conflict(conn, tenant, keys, None)
                if conflict is not None:
                    raise conflict
                if rules.needs_seat_check(tenant, active=cols.active):
                    rules.admit_seat(tenant, self._seats_used(conn, tenant))
                conn.execute(
                    self._insert_user_stmt,
                    {
                        "id": user_id,
                        "tenant_id": tenant.id,
                        "user_name": cols.user_name,
                        "user_name_lower": cols.user_name_lower,
                        "primary_email_lower": cols.primary_email_lower,
                        "external_id": cols.external_id,
                        "display_name": cols.display_name,
                        "active": cols.active,
                        "deleted": False,
                        "data": stored,
                        "created": now,
                        "last_modified": now,
                        "deactivated_at": None if cols.active else now,
                        "version": 1,
                    },
                )
                self._write_emails(conn, tenant, user_id, stored)
        except sa.exc.IntegrityError as exc:
            raise self._conflict_after_race(tenant, keys, None) from exc
        return UserRecord(id=user_id, data=stored, created=now, last_modified=now, version="1")

    def _conflict_after_race(self, tenant: Tenant, keys: rules.UserKeys, exclude_id: str | None) -> UniquenessConflict:
        """The unique index refused a write another transaction raced us to: name the holder."""
        with read_transaction(self.engine) as conn:
            conflict = self._find_conflict(conn, tenant, keys, exclude_id)
        return conflict or rules.duplicate_user_name(keys.user_name)

    @_guard
    def get_user(
        self, tenant: Tenant, user_id: str, *, include_groups: bool = True, include_deleted: bool = False
    ) -> UserRecord:
        """Read one user of the tenant; soft-deleted ones only with ``include_deleted``."""
        with read_transaction(self.engine) as conn:
            row = self._load_user(conn, tenant, user_id)
            if row is None or (row.deleted and not include_deleted):
                raise NotFound(f"User {user_id!r} not found")
            user_groups = self._user_groups(conn, tenant, [row.id])[row.id] if include_groups else []
        return self._user_record(row, user_groups)

    @_guard
    def replace_user(
        self,
        tenant: Tenant,
        user_id: str,
        data: Mapping[str, Any],
        *,
        expected_version: str | None = None,
        undelete: bool = False,
    ) -> UserRecord:
        """Replace the document; checks uniqueness, the seat a reactivation takes and the version."""
        cols = _UserColumns.of(data)
        keys = rules.user_keys(tenant, data)
        stored = copy.deepcopy(dict(data))
        now = _now()
        try:
            with write_transaction(self.engine) as conn:
                self._lock_tenant(conn, tenant)
                row = self._load_user(conn, tenant, user_id, lock=True)
                if row is None or (row.deleted and not undelete):
                    raise NotFound(f"User {user_id!r} not found")
                rules.check_version(expected_version, row.version, "user")
                keeps = not row.deleted and rules.keeps_keys(keys, row.user_name_lower, row.primary_email_lower)
                conflict = None if keeps else self._find_conflict(conn, tenant, keys, user_id)
                if conflict is not None:
                    raise conflict
                deleted = False if undelete else bool(row.deleted)
                if rules.needs_seat_check(
                    tenant,
                    active=cols.active,
                    deleted=deleted,
                    was_active=bool(row.active),
                    was_deleted=bool(row.deleted),
                ):
                    rules.admit_seat(tenant, self._seats_used(conn, tenant))
                was_active = bool(row.active) and not row.deleted
                if cols.active and not deleted:
                    deactivated_at = None
                elif was_active:
                    deactivated_at = now
                else:
                    deactivated_at = row.deactivated_at or now
                version = row.version + 1
                conn.execute(
                    self._update_user_stmt,
                    {
                        "user_id_": user_id,
                        "user_name": cols.user_name,
                        "user_name_lower": cols.user_name_lower,
                        "primary_email_lower": cols.primary_email_lower,
                        "external_id": cols.external_id,
                        "display_name": cols.display_name,
                        "active": cols.active,
                        "deleted": deleted,
                        "data": stored,
                        "last_modified": now,
                        "deactivated_at": deactivated_at,
                        "version": version,
                    },
                )
                if email_values(row.data) != email_values(stored):
                    self._write_emails(conn, tenant, user_id, stored, replace=True)
                display = rules.default_member_display(cols.display_name, cols.user_name)
                old_display = rules.default_member_display(row.display_name, row.user_name)
                if display != old_display:
                    # Only the computed displays follow the user; a display the client gave is kept.
                    conn.execute(
                        self.tables.group_members.update()
                        .where(
                            self.tables.group_members.c.tenant_id == tenant.id,
                            self.tables.group_members.c.member_id == user_id,
                            sa.or_(
                                self.tables.group_members.c.display == old_display,
                                self.tables.group_members.c.display.is_(None),
                            ),
                        )
                        .values(display=display)
                    )
                user_groups = self._user_groups(conn, tenant, [user_id])[user_id]
        except sa.exc.IntegrityError as exc:
            raise self._conflict_after_race(tenant, keys, user_id) from exc
        return UserRecord(
            id=user_id,
            data=stored,
            created=row.created,
            last_modified=now,
            version=str(version),
            deleted=deleted,
            groups=tuple(user_groups),
        )

    @_guard
    def delete_user(self, tenant: Tenant, user_id: str, *, hard: bool, expected_version: str | None = None) -> None:
        """Hard or soft delete; either way the user leaves its groups (which get a new version)."""
        now = _now()
        with write_transaction(self.engine) as conn:
            self._lock_tenant(conn, tenant)
            row = self._load_user(conn, tenant, user_id, lock=True)
            if row is None or row.deleted:
                raise NotFound(f"User {user_id!r} not found")
            rules.check_version(expected_version, row.version, "user")
            # Change the user row first: on PostgreSQL that waits for a group write that validated it.
            if hard:
                conn.execute(self.tables.users.delete().where(self.tables.users.c.id == user_id))
                # Explicit, so it also holds on a host engine without SQLite's foreign_keys pragma.
                conn.execute(self.tables.user_emails.delete().where(self.tables.user_emails.c.user_id == user_id))
            else:
                data = dict(row.data)
                data["active"] = False
                conn.execute(
                    self.tables.users.update()
                    .where(self.tables.users.c.id == user_id)
                    .values(
                        active=False,
                        deleted=True,
                        data=data,
                        last_modified=now,
                        deactivated_at=row.deactivated_at if not row.active else now,
                        version=row.version + 1,
                    )
                )
            self._bump_groups_of(conn, tenant, [user_id], now)
            conn.execute(
                self.tables.group_members.delete().where(
                    self.tables.group_members.c.tenant_id == tenant.id, self.tables.group_members.c.member_id == user_id
                )
            )

    @_guard
    def list_users(self, tenant: Tenant, query: ListQuery) -> Page[UserRecord]:
        """Filter, sort, page and count in SQL, in one read transaction (index or keyset cursor paging)."""
        # "= false", not "IS false": PostgreSQL uses an index only for the former (deleted is NOT NULL).
        condition = sa.and_(self.tables.users.c.tenant_id == tenant.id, self.tables.users.c.deleted == sa.false())
        with read_transaction(self.engine) as conn:
            rows, total, next_cursor = self._select_page(conn, "User", tenant, condition, query)
            by_user = self._user_groups(conn, tenant, [r.id for r in rows]) if query.include_groups and rows else {}
        return Page(
            resources=[self._user_record(r, by_user.get(r.id, ())) for r in rows],
            total_results=total,
            start_index=1 if query.cursor is not None else max(query.start_index, 1),
            next_cursor=next_cursor,
        )

    def _select_page(
        self, conn: Connection, resource: str, tenant: Tenant, condition: Any, query: ListQuery
    ) -> tuple[list[Row[Any]], int, str | None]:
        """The rows of one page, the exact total of the filter, and the cursor of the next page.

        Index paging (``query.cursor`` None) is LIMIT/OFFSET. Cursor paging seeks past the sort key
        the cursor holds (see :mod:`scim_sql.cursor`) and reads one row more than the page to know
        whether a next page exists.
        """
        compiler = self._compiler(resource)
        table = self.tables.users if resource == "User" else self.tables.groups
        if query.filter is not None:
            condition = sa.and_(condition, compiler.where(query.filter, tenant_id=tenant.id))
        keys = compiler.sort_keys(query.sort_by, query.descending)
        order = [key.desc() if desc else key.asc() for key, desc in keys]

        def count() -> int:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(condition)).scalar_one())

        # The page is read first: a page that is not full, with rows or at the start, gives the exact
        # total by itself (what precedes it plus what it holds), so the count(*) (a scan of the matches:
        # the whole tenant for a plain list) runs only for a full or an empty-past-the-start page. An
        # IdP's `userName eq` lookup before every create is such a short page.
        if query.cursor is None:
            start = max(query.start_index, 1)
            if query.count <= 0 or start - 1 > MAX_OFFSET:
                # No page to read: count only (an offset past a signed 64-bit integer is past every row,
                # and neither SQLite nor PostgreSQL can bind it).
                return [], count(), None
            stmt = sa.select(table).where(condition).order_by(*order).limit(query.count).offset(start - 1)
            rows = list(conn.execute(stmt).all())
            if len(rows) < query.count and (rows or start == 1):
                return rows, start - 1 + len(rows), None
            return rows, count(), None
        fingerprint = query_fingerprint(resource, tenant, query)
        seek = condition
        if query.cursor:
            seek = sa.and_(condition, after_key(keys, decode_cursor(query.cursor, fingerprint, len(keys))))
        if query.count <= 0:
            return [], count(), None
        labels = [f"_scim_key_{i}" for i in range(len(keys))]
        stmt = (
            sa.select(table, *[key.label(name) for (key, _desc), name in zip(keys, labels, strict=True)])
            .where(seek)
            .order_by(*order)
            .limit(query.count + 1)
        )
        rows = list(conn.execute(stmt).all())
        if len(rows) <= query.count:
            # The last page; the first one too when no cursor was given: then it holds every match.
            return rows, len(rows) if not query.cursor else count(), None
        rows = rows[: query.count]
        last = rows[-1]._mapping
        return rows, count(), encode_cursor(fingerprint, [last[name] for name in labels])

    @_guard
    def count_seats(self, tenant: Tenant) -> int:
        """Seat-holding records of the tenant under its seat policy."""
        with read_transaction(self.engine) as conn:
            return self._seats_used(conn, tenant)

    def _inactive_condition(self, tenant: Tenant, inactive_since: datetime | None) -> Any:
        condition = sa.and_(
            self.tables.users.c.tenant_id == tenant.id,
            sa.or_(self.tables.users.c.active.is_(sa.false()), self.tables.users.c.deleted.is_(sa.true())),
        )
        if inactive_since is not None:
            condition = sa.and_(condition, self.tables.users.c.last_modified < inactive_since)
        return condition

    @_guard
    def list_inactive_users(self, tenant: Tenant, *, inactive_since: datetime | None = None) -> list[UserRecord]:
        """The inactive and soft-deleted users :meth:`remove_inactive_users` would remove, by id."""
        condition = self._inactive_condition(tenant, inactive_since)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(self.tables.users).where(condition).order_by(self.tables.users.c.id)).all()
        return [self._user_record(r) for r in rows]

    @_guard
    def remove_tenant_data(
        self, tenant: Tenant, *, progress: Callable[[str, int], None] | None = None
    ) -> dict[str, int]:
        """Every group, membership and user of the tenant, one DELETE per table in one transaction."""
        with write_transaction(self.engine) as conn:
            self._lock_tenant(conn, tenant)
            conn.execute(self.tables.group_members.delete().where(self.tables.group_members.c.tenant_id == tenant.id))
            removed_groups = conn.execute(
                self.tables.groups.delete().where(self.tables.groups.c.tenant_id == tenant.id)
            ).rowcount
            conn.execute(self.tables.user_emails.delete().where(self.tables.user_emails.c.tenant_id == tenant.id))
            removed_users = conn.execute(
                self.tables.users.delete().where(self.tables.users.c.tenant_id == tenant.id)
            ).rowcount
            conn.execute(self.tables.tenant_state.delete().where(self.tables.tenant_state.c.tenant_id == tenant.id))
        counts = {"groups": int(removed_groups or 0), "users": int(removed_users or 0)}
        if progress is not None:
            progress("groups removed", counts["groups"])
            progress("users removed", counts["users"])
        return counts

    @_guard
    def remove_inactive_users(self, tenant: Tenant, *, inactive_since: datetime | None = None) -> list[str]:
        """Hard-delete inactive and soft-deleted users (optionally last modified before a time)."""
        now = _now()
        condition = self._inactive_condition(tenant, inactive_since)
        with write_transaction(self.engine) as conn:
            self._lock_tenant(conn, tenant)
            ids = list(
                conn.execute(
                    sa.select(self.tables.users.c.id).where(condition).order_by(self.tables.users.c.id)
                ).scalars()
            )
            for chunk in _chunks(ids):
                conn.execute(self.tables.users.delete().where(self.tables.users.c.id.in_(chunk)))
                conn.execute(self.tables.user_emails.delete().where(self.tables.user_emails.c.user_id.in_(chunk)))
                self._bump_groups_of(conn, tenant, list(chunk), now)
                conn.execute(
                    self.tables.group_members.delete().where(
                        self.tables.group_members.c.tenant_id == tenant.id,
                        self.tables.group_members.c.member_id.in_(chunk),
                    )
                )
        return ids

    # -- groups --------------------------------------------------------------------------------

    def _member_rows(
        self, conn: Connection, tenant: Tenant, group_id: str, members: Iterable[Member]
    ) -> list[dict[str, Any]]:
        """Membership rows for ``members`` (checked by :func:`scim_service.rules.check_members`), after
        finding each among the visible users of the tenant; the display as :func:`~scim_service.rules.member_display`
        has it (the client's, else computed from the user)."""
        checked = rules.check_members(members, nested_groups=self.capabilities.nested_groups, backend=self.name)
        ids = [member.value for member in checked]
        given = {member.value: member.display for member in checked}
        found: dict[str, Row[Any]] = {}
        for chunk in _chunks(ids):
            stmt = sa.select(
                self.tables.users.c.id, self.tables.users.c.user_name, self.tables.users.c.display_name
            ).where(
                self.tables.users.c.tenant_id == tenant.id,
                self.tables.users.c.deleted.is_(sa.false()),
                self.tables.users.c.id.in_(chunk),
            )
            if self._postgres:  # a concurrent delete of one of these users waits for this transaction
                stmt = stmt.with_for_update(read=True)
            found.update({row.id: row for row in conn.execute(stmt)})
        missing = [i for i in ids if i not in found]
        if missing:
            raise rules.unknown_members(missing)
        return [
            {
                "tenant_id": tenant.id,
                "group_id": group_id,
                "member_id": i,
                "member_type": "User",
                "display": rules.member_display(given[i], found[i].display_name, found[i].user_name),
            }
            for i in ids
        ]

    @staticmethod
    def _group_values(data: Mapping[str, Any]) -> dict[str, Any]:
        display_name = _text(data, "displayName")
        return {
            "display_name": display_name,
            "display_name_key": rules.group_name_key(display_name),
            "external_id": _text(data, "externalId"),
            "data": copy.deepcopy(dict(data)),
        }

    def _group_members(self, conn: Connection, group_ids: Sequence[str]) -> dict[str, list[Member]]:
        out: dict[str, list[Member]] = {gid: [] for gid in group_ids}
        for chunk in _chunks(list(group_ids)):
            rows = conn.execute(
                sa.select(self.tables.group_members)
                .where(self.tables.group_members.c.group_id.in_(chunk))
                .order_by(self.tables.group_members.c.group_id, self.tables.group_members.c.member_id)
            ).all()
            for row in rows:
                out[row.group_id].append(Member(value=row.member_id, type=row.member_type, display=row.display))
        return out

    @staticmethod
    def _group_record(row: Row[Any], members: Sequence[Member] | None) -> GroupRecord:
        return GroupRecord(
            id=row.id,
            data=row.data,
            created=row.created,
            last_modified=row.last_modified,
            version=str(row.version),
            members=None if members is None else tuple(members),
        )

    def _load_group(self, conn: Connection, tenant: Tenant, group_id: str, *, lock: bool = False) -> Row[Any]:
        stmt = sa.select(self.tables.groups).where(
            self.tables.groups.c.id == group_id, self.tables.groups.c.tenant_id == tenant.id
        )
        if lock:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise NotFound(f"Group {group_id!r} not found")
        return row

    @_guard
    def create_group(self, tenant: Tenant, data: Mapping[str, Any], members: Sequence[Member]) -> GroupRecord:
        """Insert a group and its (validated) members."""
        group_id = str(uuid.uuid4())
        now = _now()
        values = self._group_values(data)
        with _unique_group_name(values), write_transaction(self.engine) as conn:
            rows = self._member_rows(conn, tenant, group_id, members)
            conn.execute(
                self.tables.groups.insert().values(
                    id=group_id, tenant_id=tenant.id, created=now, last_modified=now, version=1, **values
                )
            )
            if rows:
                conn.execute(self.tables.group_members.insert(), rows)
        return GroupRecord(
            id=group_id,
            data=values["data"],
            created=now,
            last_modified=now,
            version="1",
            members=tuple(Member(r["member_id"], r["member_type"], r["display"]) for r in rows),
        )

    @_guard
    def get_group(self, tenant: Tenant, group_id: str, *, include_members: bool = True) -> GroupRecord:
        """Read one group of the tenant, with its members when asked."""
        with read_transaction(self.engine) as conn:
            row = self._load_group(conn, tenant, group_id)
            members = self._group_members(conn, [group_id])[group_id] if include_members else None
        return self._group_record(row, members)

    @_guard
    def replace_group(
        self,
        tenant: Tenant,
        group_id: str,
        data: Mapping[str, Any],
        members: Sequence[Member],
        *,
        expected_version: str | None = None,
    ) -> GroupRecord:
        """Replace attributes and the whole member list (PUT)."""
        now = _now()
        values = self._group_values(data)
        with _unique_group_name(values), write_transaction(self.engine) as conn:
            row = self._load_group(conn, tenant, group_id, lock=True)
            rules.check_version(expected_version, row.version, "group")
            rows = self._member_rows(conn, tenant, group_id, members)
            conn.execute(
                self.tables.groups.update()
                .where(self.tables.groups.c.id == group_id)
                .values(last_modified=now, version=row.version + 1, **values)
            )
            conn.execute(self.tables.group_members.delete().where(self.tables.group_members.c.group_id == group_id))
            if rows:
                conn.execute(self.tables.group_members.insert(), rows)
            row = self._load_group(conn, tenant, group_id)
            current = self._group_members(conn, [group_id])[group_id]
        return self._group_record(row, current)

    @_guard
    def patch_group(
        self,
        tenant: Tenant,
        group_id: str,
        changes: GroupChanges,
        *,
        expected_version: str | None = None,
        include_members: bool = True,
    ) -> GroupRecord:
        """Apply attribute changes, then clear, then removals, then additions; only changed rows are touched."""
        now = _now()
        values: dict[str, Any] = {} if changes.data is None else self._group_values(changes.data)
        with _unique_group_name(values), write_transaction(self.engine) as conn:
            row = self._load_group(conn, tenant, group_id, lock=True)
            rules.check_version(expected_version, row.version, "group")
            values.update(last_modified=now, version=row.version + 1)
            conn.execute(self.tables.groups.update().where(self.tables.groups.c.id == group_id).values(**values))
            if changes.clear_members:
                conn.execute(self.tables.group_members.delete().where(self.tables.group_members.c.group_id == group_id))
            removals = list(dict.fromkeys(changes.remove))
            for chunk in _chunks(removals):
                conn.execute(
                    self.tables.group_members.delete().where(
                        self.tables.group_members.c.group_id == group_id,
                        self.tables.group_members.c.member_id.in_(chunk),
                    )
                )
            if changes.add:
                rows = self._member_rows(conn, tenant, group_id, changes.add)
                present: set[str] = set()
                for chunk in _chunks([r["member_id"] for r in rows]):
                    present.update(
                        conn.execute(
                            sa.select(self.tables.group_members.c.member_id).where(
                                self.tables.group_members.c.group_id == group_id,
                                self.tables.group_members.c.member_id.in_(chunk),
                            )
                        ).scalars()
                    )
                new_rows = [r for r in rows if r["member_id"] not in present]
                if new_rows:
                    conn.execute(self.tables.group_members.insert(), new_rows)
            current = self._group_members(conn, [group_id])[group_id] if include_members else None
        # The row as just written, without reading it again.
        return GroupRecord(
            id=row.id,
            data=values.get("data", row.data),
            created=row.created,
            last_modified=now,
            version=str(values["version"]),
            members=None if current is None else tuple(current),
        )

    @_guard
    def delete_group(self, tenant: Tenant, group_id: str, *, expected_version: str | None = None) -> None:
        """Remove the group and its membership rows."""
        with write_transaction(self.engine) as conn:
            row = self._load_group(conn, tenant, group_id, lock=True)
            rules.check_version(expected_version, row.version, "group")
            # Explicit, so it also holds on a host engine without SQLite's foreign_keys pragma.
            conn.execute(self.tables.group_members.delete().where(self.tables.group_members.c.group_id == group_id))
            conn.execute(self.tables.groups.delete().where(self.tables.groups.c.id == group_id))

    @_guard
    def list_groups(self, tenant: Tenant, query: ListQuery) -> Page[GroupRecord]:
        """As :meth:`list_users`, for groups; members are read only when ``query.include_members``."""
        with read_transaction(self.engine) as conn:
            rows, total, next_cursor = self._select_page(
                conn, "Group", tenant, self.tables.groups.c.tenant_id == tenant.id, query
            )
            by_group = self._group_members(conn, [r.id for r in rows]) if query.include_members and rows else {}
        return Page(
            resources=[self._group_record(r, by_group.get(r.id, []) if query.include_members else None) for r in rows],
            total_results=total,
            start_index=1 if query.cursor is not None else max(query.start_index, 1),
            next_cursor=next_cursor,
        )
