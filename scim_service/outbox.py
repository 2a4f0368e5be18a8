"""The change-event outbox: each change event is written to the service database, then delivered to
the hook implementations, and retried until every implementation has it.

The guarantee (docs/embedding.md, "Delivery: the outbox"):

* **At least once.** An event is written (``scim_events``) right after the backend committed the
  change, then the implementations are called. One that raises gets the event again later: on the next
  event of the same resource, from a background retry in the process (``SCIM_EVENTS_RETRY_INTERVAL``,
  with a doubling backoff per event), or from ``scim-service events deliver``. An implementation that
  succeeded is not called again for that event, except by ``events replay``, by a retry after a crash
  between the call and the record of it, or when the plugin's name changed. Hooks must be idempotent.
* **In order per resource, per plugin.** A plugin gets a user's (or group's) events in the order they
  were written: while it has not taken an earlier event of a resource, it is not given a later one.
  Other plugins are not held back by its failure (a session killer still hears of a deactivation while
  a broken mirror waits). Across resources there is no order.
* **The window.** The backend (SQL, LDAP, a host's own) and the service database are different stores,
  so the change and its event cannot be one transaction. A process that dies between the backend's
  commit and the outbox insert (or a service database that refuses the insert) loses that event: it is
  then logged as an error and the hooks are called once, directly. Two changes of one resource
  committed at the same moment by two workers are written in the order their inserts reach the outbox.

Nothing here imports Flask; the extension hands in the app context (``context``) that background
deliveries run in, so a host's hooks can use its app as they do in a request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scim_service.events import EventHooks
from scim_service.model import GroupRecord, MatchPolicy, Member, SeatPolicy, Tenant, UserRecord
from scim_service.servicedb.outbox import OutboxStore, StoredEvent

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=10)  # the wait after an event's first failure; doubled after each one
BACKOFF_MAX = timedelta(hours=1)
BATCH = 500  # events read per query by deliver_pending and replay

# Which resource each event is about: what its order is kept per.
RESOURCE_TYPES = {
    "scim_user_created": "User",
    "scim_user_updated": "User",
    "scim_user_deactivated": "User",
    "scim_user_reactivated": "User",
    "scim_user_deleted": "User",
    "scim_group_changed": "Group",
    "scim_members_changed": "Group",
}

# Credentials in URLs (``postgresql://user:secret@host``) are cut from stored errors.
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


# -- the payload: a hook's arguments as JSON --------------------------------------------------------


def _members(members: Iterable[Member]) -> list[dict[str, Any]]:
    return [asdict(m) for m in members]


def _record(record: UserRecord | GroupRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": record.id,
        # password is never stored (it is dropped at the edge); kept out here too, should a backend hold one
        "data": {k: v for k, v in record.data.items() if k != "password"},
        "created": record.created.isoformat(),
        "last_modified": record.last_modified.isoformat(),
        "version": record.version,
    }
    if isinstance(record, UserRecord):
        out["deleted"] = record.deleted
        out["groups"] = _members(record.groups)
    else:
        out["members"] = None if record.members is None else _members(record.members)
    return out


def _encode(name: str, value: Any) -> Any:
    if isinstance(value, Tenant):
        return {**asdict(value), "seat_policy": value.seat_policy.value, "match_policy": value.match_policy.value}
    if isinstance(value, UserRecord | GroupRecord):
        return _record(value)
    if name in {"added", "removed"}:
        return _members(value) if name == "added" else list(value)
    return value


def encode_payload(event: str, kwargs: Mapping[str, Any]) -> str:
    """The JSON text of event ``event``'s hook arguments (records as their id, SCIM data, times, version
    and groups or members), from which :func:`decode_payload` rebuilds them."""
    return json.dumps({k: _encode(k, v) for k, v in kwargs.items()}, ensure_ascii=False, default=str)


def _member_list(values: Iterable[Mapping[str, Any]]) -> tuple[Member, ...]:
    return tuple(Member(**v) for v in values)


def decode_payload(event: str, payload: str) -> dict[str, Any]:
    """The hook arguments that :func:`encode_payload` wrote: a ``Tenant``, ``UserRecord`` or
    ``GroupRecord`` (as they were when the event happened), member tuples and plain values."""
    raw = json.loads(payload)
    out: dict[str, Any] = dict(raw)
    if "tenant" in raw:
        t = raw["tenant"]
        out["tenant"] = Tenant(
            id=t["id"],
            name=t["name"],
            max_seats=t.get("max_seats"),
            seat_policy=SeatPolicy(t.get("seat_policy", "all")),
            match_policy=MatchPolicy(t.get("match_policy", "email")),
        )
    if raw.get("user") is not None:
        u = raw["user"]
        out["user"] = UserRecord(
            id=u["id"],
            data=u["data"],
            created=datetime.fromisoformat(u["created"]),
            last_modified=datetime.fromisoformat(u["last_modified"]),
            version=u["version"],
            deleted=bool(u.get("deleted", False)),
            groups=_member_list(u.get("groups") or ()),
        )
    if raw.get("group") is not None:
        g = raw["group"]
        out["group"] = GroupRecord(
            id=g["id"],
            data=g["data"],
            created=datetime.fromisoformat(g["created"]),
            last_modified=datetime.fromisoformat(g["last_modified"]),
            version=g["version"],
            members=None if g.get("members") is None else _member_list(g["members"]),
        )
    if "added" in raw:
        out["added"] = _member_list(raw["added"])
    if "removed" in raw:
        out["removed"] = tuple(raw["removed"])
    return out


def resource_of(event: str, kwargs: Mapping[str, Any]) -> tuple[str, str]:
    """(resource type, id) of the resource event ``event`` is about."""
    resource_type = RESOURCE_TYPES[event]
    if resource_type == "User":
        user = kwargs.get("user")
        return resource_type, str(user.id if user is not None else kwargs["user_id"])
    return resource_type, str(kwargs["group_id"])


def backoff(attempts: int) -> timedelta:
    """How long the automatic retry waits after an event's ``attempts``-th failed delivery."""
    return min(BACKOFF_BASE * 2 ** max(0, attempts - 1), BACKOFF_MAX)


def _safe_error(text: str) -> str:
    return _URL_CREDENTIALS.sub(r"\1***@", text)


# -- delivery ------------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What a delivery run did: events now delivered to every implementation, events an implementation
    failed (they stay for a retry), events left waiting (held by another deliverer, in their backoff, or
    behind an earlier event of their resource)."""

    delivered: int = 0
    failed: int = 0
    waiting: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def seen(self) -> int:
        """Events looked at."""
        return self.delivered + self.failed + self.waiting


Progress = Callable[[DeliveryReport], None]


class Outbox:
    """Writes change events to the service database and delivers them to the hook implementations.

    ``retry_interval``: how often this process retries undelivered events in a background thread,
    started by an event when the last retry is that long ago (None: only ``events deliver`` and the
    next event of a resource retry). ``retention``: delivered events older than this are deleted by
    those retries (None: kept until ``events prune``). ``context`` is entered around deliveries outside
    a request (the app context). ``in_background=False`` runs the retries in the caller's thread (tests).
    """

    def __init__(
        self,
        store: OutboxStore,
        hooks: EventHooks,
        *,
        retry_interval: timedelta | None = timedelta(seconds=30),
        retention: timedelta | None = None,
        context: Callable[[], AbstractContextManager[Any]] | None = None,
        in_background: bool = True,
    ) -> None:
        self.store = store
        self.hooks = hooks
        self.retry_interval = retry_interval
        self.retention = retention
        self.context = context or contextlib.nullcontext
        self.in_background = in_background
        self._last_sweep = time.monotonic()  # the first background retry comes one interval after start
        self._sweep_lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    # -- the event of a request ------------------------------------------------------------------

    def publish(self, event: str, kwargs: Mapping[str, Any]) -> None:
        """Write event ``event`` and deliver it now to every implementation that is not waiting for an
        earlier event of the same resource (those earlier events are retried first, when due)."""
        tenant: Tenant = kwargs["tenant"]
        resource_type, resource_id = resource_of(event, kwargs)
        impls = self.hooks.implementations(event)
        if not impls:
            # Nobody waits for it: not written, so a service without event plugins pays nothing for the
            # outbox (docs/performance.md's per-request costs). A replay cannot hand it to a hook added later.
            self.maybe_retry()
            return
        try:
            stored, earlier = self.store.append(
                tenant.id, event, resource_type, resource_id, encode_payload(event, kwargs)
            )
        except Exception:
            # The window the module docstring describes: the change is stored, its event is not.
            log.exception(
                "could not write the %s event of %s %s to the outbox; the hooks are called once, without retries",
                event,
                resource_type,
                resource_id,
            )
            self.hooks.call(event, kwargs, impls)
            return
        try:
            blocked: set[str] = set()
            for old in earlier:
                blocked |= self._try(old, blocked, respect_backoff=True)[0]
            self._deliver(stored, blocked, kwargs=kwargs, impls=impls)
        except Exception:
            # The change is stored and the client must hear so; the event stays in the outbox, and once
            # its claim expires a retry delivers it (again, to any implementation that already had it).
            log.exception("delivering the %s event %d failed; it stays in the outbox for a retry", event, stored.id)
        self.maybe_retry()

    # -- one event -------------------------------------------------------------------------------

    def _try(
        self, event: StoredEvent, blocked: set[str], *, respect_backoff: bool, replay: bool = False
    ) -> tuple[set[str], bool]:
        """Claim and deliver ``event``; return the plugins that do not have it (so must not get later
        events of its resource in this run) and whether an implementation failed. An event held by
        someone else or in its backoff is left as it is."""
        missing = {key for key, _ in self.hooks.implementations(event.event)} - event.delivered_to
        now = self.store.now()
        # What the row already says saves a write transaction per event a retry cannot deliver anyway.
        if not replay and (
            (missing and not missing - blocked)  # every plugin it waits for waits for an earlier event
            or (event.locked_until is not None and event.locked_until > now)
            or (respect_backoff and event.next_attempt_at is not None and event.next_attempt_at > now)
        ):
            return missing, False
        fresh = self.store.claim(event.id, respect_backoff=respect_backoff)
        if fresh is None:
            return missing, False
        if fresh.delivered_at is not None and not replay:
            self.store.release(fresh.id)  # another deliverer finished it meanwhile
            return set(), False
        return self._deliver(fresh, blocked, replay=replay)

    def _deliver(
        self,
        event: StoredEvent,
        blocked: set[str],
        *,
        kwargs: Mapping[str, Any] | None = None,
        impls: list[Any] | None = None,
        replay: bool = False,
    ) -> tuple[set[str], bool]:
        """Call the implementations that do not have ``event`` yet (all of them on ``replay``) and are
        not in ``blocked``; record the outcome and release the claim. Return the plugins left without it."""
        impls = impls if impls is not None else self.hooks.implementations(event.event)
        keys = {key for key, _ in impls}
        skip = set(blocked) if replay else set(blocked) | set(event.delivered_to)
        due = [(k, i) for k, i in impls if k not in skip]
        succeeded: set[str] = set()
        failed: dict[str, str] = {}
        if due:
            try:
                args = kwargs if kwargs is not None else decode_payload(event.event, event.payload)
            except (ValueError, KeyError, TypeError) as exc:  # a payload this version cannot read
                failed = {k: f"unreadable payload: {type(exc).__name__}: {exc}" for k, _ in due}
            else:
                succeeded, failed = self.hooks.call(event.event, args, due)
        # A replay's failure does not take the event back from a plugin that had it: it is reported.
        have = set(event.delivered_to) | succeeded
        missing = keys - have
        error = _safe_error(next(iter(failed.values()))) if failed else None
        self.store.finish(
            event.id,
            delivered_to=have,
            complete=not missing,
            attempted=bool(due),
            error=error,
            backoff=backoff(event.attempts + 1) if failed else None,
        )
        return missing | set(failed), bool(failed)

    # -- retries and replays ---------------------------------------------------------------------

    def deliver_pending(
        self, *, org_id: str | None = None, respect_backoff: bool = False, progress: Progress | None = None
    ) -> DeliveryReport:
        """Deliver the undelivered events, oldest first, keeping the order per resource and plugin.

        ``respect_backoff`` (the background retry) leaves events whose next retry is not due; the
        command line retries them all now. Events another deliverer holds are left to it.
        """
        return self._walk(
            {"org_id": org_id, "undelivered": True},
            None,
            respect_backoff=respect_backoff,
            replay=False,
            progress=progress,
        )

    def replay(
        self,
        *,
        since_id: int | None = None,
        since: datetime | None = None,
        org_id: str | None = None,
        progress: Progress | None = None,
    ) -> DeliveryReport:
        """Deliver again every event from ``since_id`` (inclusive) or written at or after ``since``, to
        every implementation, delivered or not, oldest first; a failure holds back that plugin's later
        events of the resource as usual."""
        after = since_id - 1 if since_id is not None else None
        return self._walk(
            {"org_id": org_id, "since": since}, after, respect_backoff=False, replay=True, progress=progress
        )

    def _walk(
        self,
        where: dict[str, Any],
        after: int | None,
        *,
        respect_backoff: bool,
        replay: bool,
        progress: Progress | None,
    ) -> DeliveryReport:
        """Deliver the events ``where`` selects after id ``after``, oldest first, in batches; the one loop
        of :meth:`deliver_pending` and :meth:`replay`."""
        report = DeliveryReport()
        blocked: dict[tuple[str, str, str], set[str]] = {}
        with self.context():
            while batch := self.store.query(**where, after_id=after, limit=BATCH):
                for event in batch:
                    after = event.id
                    self._count(report, event, blocked, respect_backoff=respect_backoff, replay=replay)
                if progress is not None:
                    progress(report)
        return report

    def _count(
        self,
        report: DeliveryReport,
        event: StoredEvent,
        blocked: dict[tuple[str, str, str], set[str]],
        *,
        respect_backoff: bool,
        replay: bool,
    ) -> None:
        held = blocked.setdefault(event.resource, set())
        missing, failed = self._try(event, held, respect_backoff=respect_backoff, replay=replay)
        held |= missing
        if not missing:
            report.delivered += 1
        elif failed:
            report.failed += 1
            report.errors.append(f"event {event.id} ({event.event} {event.resource_type} {event.resource_id})")
        else:
            report.waiting += 1

    def maybe_retry(self) -> None:
        """Start the background retry (and prune) when ``retry_interval`` has passed since the last one."""
        if self.retry_interval is None:
            return
        now = time.monotonic()
        with self._sweep_lock:
            if now - self._last_sweep < self.retry_interval.total_seconds():
                return
            if self._sweeper is not None and self._sweeper.is_alive():
                return
            self._last_sweep = now
            if self.in_background:
                self._sweeper = threading.Thread(target=self.retry_quietly, name="scim-events-retry", daemon=True)
                self._sweeper.start()
                return
        self.retry_quietly()

    def retry_quietly(self) -> None:
        """One background retry: deliver what is due, then prune; failures are logged, never raised."""
        try:
            report = self.deliver_pending(respect_backoff=True)
            if report.delivered or report.failed:
                log.info(
                    "event retry: %d delivered, %d failed again, %d waiting",
                    report.delivered,
                    report.failed,
                    report.waiting,
                )
            if self.retention is not None:
                self.store.prune(self.store.now() - self.retention)
        except Exception:
            log.exception("retrying undelivered change events failed; the next retry tries again")

    def wait(self, timeout: float = 30) -> None:
        """Wait for a running background retry (tests, shutdown)."""
        sweeper = self._sweeper
        if sweeper is not None:
            sweeper.join(timeout)
