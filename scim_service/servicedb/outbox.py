"""The change-event outbox in SQL (table ``scim_events``): append, claim, finish, list and prune events.

Only storage here; what an event holds and how it is delivered to the hooks is
:mod:`scim_service.outbox`. Any number of processes share one outbox: an event is delivered by whoever
*claims* it (an UPDATE that sets ``locked_until`` only where no live claim is), so two workers never
call the hooks for one event at the same time, and a claim left by a crashed worker expires.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from scim_service.servicedb.tables import EVENT_ERROR_MAX, ServiceTables, tables_for
from scim_service.sqlengine import read_transaction, run_write

# How long a claim holds: a deliverer that died mid-delivery leaves its events to others after this.
LEASE = timedelta(minutes=2)
DELETE_BATCH = 5000


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class StoredEvent:
    """One row of the outbox. ``payload`` is the JSON text of the hook's arguments; ``delivered_to``
    the plugins whose implementation succeeded so far."""

    id: int
    org_id: str
    event: str
    resource_type: str
    resource_id: str
    payload: str
    created: datetime
    delivered_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    delivered_to: frozenset[str] = frozenset()
    locked_until: datetime | None = None
    next_attempt_at: datetime | None = None

    @property
    def resource(self) -> tuple[str, str, str]:
        """What the order is kept per: (organization id, resource type, resource id)."""
        return (self.org_id, self.resource_type, self.resource_id)

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON data (``scim-service events list --json``)."""
        return {
            "id": self.id,
            "org_id": self.org_id,
            "event": self.event,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "created": self.created.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "delivered_to": sorted(self.delivered_to),
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "payload": json.loads(self.payload),
        }


def _row(row: Any) -> StoredEvent:
    return StoredEvent(
        id=int(row.id),
        org_id=row.org_id,
        event=row.event,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        payload=row.payload,
        created=_utc(row.created) or datetime.now(UTC),
        delivered_at=_utc(row.delivered_at),
        attempts=int(row.attempts or 0),
        last_error=row.last_error,
        delivered_to=frozenset(json.loads(row.delivered_to)) if row.delivered_to else frozenset(),
        locked_until=_utc(row.locked_until),
        next_attempt_at=_utc(row.next_attempt_at),
    )


def _same_resource(events: sa.Table, org_id: str, resource_type: str, resource_id: str) -> Any:
    return sa.and_(
        events.c.org_id == org_id, events.c.resource_type == resource_type, events.c.resource_id == resource_id
    )


class OutboxStore:
    """The ``scim_events`` table of the service database. ``clock`` returns the current UTC time; ``tables``
    are the service's tables under the app's ``SCIM_TABLE_PREFIX`` (the default prefix's when not given)."""

    def __init__(
        self, engine: Engine, *, clock: Callable[[], datetime] | None = None, tables: ServiceTables | None = None
    ) -> None:
        self.engine = engine
        self.events = (tables or tables_for()).events
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        """The current time, in UTC."""
        return _utc(self.clock()) or datetime.now(UTC)

    def append(
        self, org_id: str, event: str, resource_type: str, resource_id: str, payload: str
    ) -> tuple[StoredEvent, list[StoredEvent]]:
        """Write a new event, claimed by the caller for delivery; return it and the earlier undelivered
        events of the same resource (oldest first), which must go to a plugin before it does.

        The look for earlier events and the insert are one transaction under a lock on the resource
        (SQLite's write lock, a PostgreSQL advisory lock), so two workers appending events of one
        resource see each other's.
        """
        now = self.now()
        common: dict[str, Any] = {
            "org_id": org_id,
            "event": event,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "payload": payload,
            "created": now,
            "attempts": 0,
        }

        def work(conn: Connection) -> tuple[StoredEvent, list[StoredEvent]]:
            if conn.dialect.name == "postgresql":
                key = zlib.crc32(f"{org_id}/{resource_type}/{resource_id}".encode()) - 2**31
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            earlier = conn.execute(
                sa.select(self.events)
                .where(
                    _same_resource(self.events, org_id, resource_type, resource_id),
                    self.events.c.delivered_at.is_(None),
                )
                .order_by(self.events.c.id)
            ).all()
            values = {**common, "locked_until": now + LEASE}
            new_id = int(conn.execute(self.events.insert().values(values)).inserted_primary_key[0])  # type: ignore[index]
            return _row(_Values(id=new_id, **values)), [_row(r) for r in earlier]

        return run_write(self.engine, work)

    def claim(self, event_id: int, *, respect_backoff: bool = True) -> StoredEvent | None:
        """Take event ``event_id`` for delivery if nobody holds it (and, with ``respect_backoff``, its
        retry is due); return it as it is now, held by this caller for :data:`LEASE`, or None."""
        now = self.now()
        condition = sa.and_(
            self.events.c.id == event_id,
            sa.or_(self.events.c.locked_until.is_(None), self.events.c.locked_until <= now),
        )
        if respect_backoff:
            condition = sa.and_(
                condition, sa.or_(self.events.c.next_attempt_at.is_(None), self.events.c.next_attempt_at <= now)
            )

        def work(conn: Connection) -> StoredEvent | None:
            result = conn.execute(self.events.update().where(condition).values(locked_until=now + LEASE))
            if not result.rowcount:
                return None
            return _row(conn.execute(sa.select(self.events).where(self.events.c.id == event_id)).one())

        return run_write(self.engine, work)

    def release(self, event_id: int) -> None:
        """Give up a claim without delivering."""
        run_write(
            self.engine,
            lambda conn: conn.execute(
                self.events.update().where(self.events.c.id == event_id).values(locked_until=None)
            ),
        )

    def finish(
        self,
        event_id: int,
        *,
        delivered_to: Iterable[str],
        complete: bool,
        attempted: bool,
        error: str | None,
        backoff: timedelta | None,
    ) -> None:
        """Record a delivery and release the claim: the plugins that have the event now, whether it is
        delivered (every implementation has it), whether any implementation was called (``attempts``
        counts those runs), and the first failure, if any (then the automatic retry waits ``backoff``)."""
        now = self.now()
        values: dict[str, Any] = {
            "delivered_to": json.dumps(sorted(set(delivered_to))),
            "locked_until": None,
        }
        if attempted:
            values["attempts"] = self.events.c.attempts + 1
        if complete:
            values["delivered_at"] = sa.func.coalesce(self.events.c.delivered_at, now)
            values["next_attempt_at"] = None
        if error is not None:
            values["last_error"] = _clip(error)
            if not complete and backoff is not None:
                values["next_attempt_at"] = now + backoff

        def work(conn: Connection) -> None:
            conn.execute(self.events.update().where(self.events.c.id == event_id).values(values))

        run_write(self.engine, work)

    def get(self, event_id: int) -> StoredEvent | None:
        """One event by id."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(sa.select(self.events).where(self.events.c.id == event_id)).first()
        return None if row is None else _row(row)

    def query(
        self,
        *,
        org_id: str | None = None,
        undelivered: bool = False,
        after_id: int | None = None,
        since: datetime | None = None,
        resource: tuple[str, str, str] | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[StoredEvent]:
        """Events oldest first (by id, the order they were written), narrowed by each argument given;
        ``newest`` with ``limit``: the last ``limit`` of them (still oldest first)."""
        query = sa.select(self.events).order_by(self.events.c.id.desc() if newest else self.events.c.id)
        if org_id is not None:
            query = query.where(self.events.c.org_id == org_id)
        if undelivered:
            query = query.where(self.events.c.delivered_at.is_(None))
        if after_id is not None:
            query = query.where(self.events.c.id > after_id)
        if since is not None:
            query = query.where(self.events.c.created >= _utc(since))
        if resource is not None:
            query = query.where(_same_resource(self.events, *resource))
        if limit is not None:
            query = query.limit(limit)
        with read_transaction(self.engine) as conn:
            found = [_row(r) for r in conn.execute(query)]
        return found[::-1] if newest else found

    def count_undelivered(self, org_id: str | None = None) -> int:
        """How many events still wait for a plugin."""
        query = sa.select(sa.func.count()).select_from(self.events).where(self.events.c.delivered_at.is_(None))
        if org_id is not None:
            query = query.where(self.events.c.org_id == org_id)
        with read_transaction(self.engine) as conn:
            return int(conn.execute(query).scalar() or 0)

    def prune(self, before: datetime) -> int:
        """Delete delivered events delivered before ``before``, in batches; undelivered ones stay."""
        return self._delete(sa.and_(self.events.c.delivered_at.is_not(None), self.events.c.delivered_at < _utc(before)))

    def delete_org(self, org_id: str) -> int:
        """Delete every event of an organization (when the organization is removed)."""
        return self._delete(self.events.c.org_id == org_id)

    def _delete(self, condition: Any) -> int:
        removed = 0
        while True:

            def work(conn: Connection) -> int:
                batch = sa.select(self.events.c.id).where(condition).limit(DELETE_BATCH).scalar_subquery()
                return int(conn.execute(self.events.delete().where(self.events.c.id.in_(batch))).rowcount or 0)

            count = run_write(self.engine, work)
            removed += count
            if count < DELETE_BATCH:
                return removed


@dataclass(frozen=True)
class _Values:
    """A just-inserted row, read like a result row."""

    id: int
    org_id: str
    event: str
    resource_type: str
    resource_id: str
    payload: str
    created: datetime
    attempts: int
    locked_until: datetime | None = None
    delivered_at: datetime | None = None
    last_error: None = None
    delivered_to: str | None = None
    next_attempt_at: None = None


def _clip(text: str, limit: int = EVENT_ERROR_MAX) -> str:
    """An error for the ``last_error`` column: one line, storable everywhere, at most ``limit`` characters."""
    line = " ".join(text.replace("\x00", "\ufffd").split())
    line = line.encode("utf-8", "replace").decode("utf-8")
    return line if len(line) <= limit else line[: limit - 1] + "…"
