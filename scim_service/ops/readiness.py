"""Readiness: does each dependency of the service answer within a time limit?

No Flask here: ``scim_service/ops/routes.py`` turns a :class:`Readiness` into ``/readyz``.

Each check runs in a daemon thread of its own, all checks at once, and the caller waits at most the
timeout for all of them. A check that hangs (a database behind a dropped network route, a directory
that accepts the connection and never answers) is reported as timed out and left to finish on its own;
until it does, that check is not started again, so a prober calling every few seconds cannot pile up
threads or connections behind a dead server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scim_service.backend import Backend
from scim_service.errors import ScimError
from scim_service.servicedb.tables import ServiceTables, tables_for
from scim_service.sqlengine import read_transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``ok``, how long it took (or was waited for), and why it failed."""

    name: str
    ok: bool
    seconds: float
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (milliseconds, rounded)."""
        out: dict[str, object] = {"ok": self.ok, "ms": round(self.seconds * 1000, 1)}
        if self.error:
            out["error"] = self.error
        return out


class _Check:
    """One named check with at most one run in flight."""

    def __init__(self, name: str, func: Callable[[], None]) -> None:
        self.name = name
        self.func = func
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None
        self._since = 0.0
        self._error: str | None = None

    def start(self) -> threading.Thread | None:
        """Start a run; None when the previous run has not finished yet."""
        with self._lock:
            if self._running is not None and self._running.is_alive():
                return None
            self._error = None
            self._since = time.monotonic()
            thread = threading.Thread(target=self._run, name=f"scim-readiness-{self.name}", daemon=True)
            self._running = thread
        thread.start()
        return thread

    def _run(self) -> None:
        try:
            self.func()
        except ScimError as exc:
            self._error = exc.detail
        except Exception as exc:  # a readiness check reports every failure, whatever its kind
            log.warning("readiness check %s failed", self.name, exc_info=True)
            self._error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")

    def result(self, thread: threading.Thread | None, timeout: float) -> CheckResult:
        """What the run in ``thread`` came to, waiting at most until ``timeout`` seconds after its start."""
        if thread is None:
            waited = time.monotonic() - self._since
            return CheckResult(self.name, False, waited, f"the previous check is still running after {waited:.1f}s")
        thread.join(max(0.0, self._since + timeout - time.monotonic()))
        elapsed = time.monotonic() - self._since
        if thread.is_alive():
            return CheckResult(self.name, False, elapsed, f"no answer within {timeout:g}s")
        return CheckResult(self.name, self._error is None, elapsed, self._error)


class Readiness:
    """The checks of ``/readyz``: named callables that return when their dependency answers."""

    def __init__(self, checks: Mapping[str, Callable[[], None]], timeout: float) -> None:
        self.timeout = timeout
        self._checks = [_Check(name, func) for name, func in checks.items()]

    def run(self) -> list[CheckResult]:
        """Run every check at once; each result within ``timeout`` seconds (so all of them too)."""
        started = [(check, check.start()) for check in self._checks]
        return [check.result(thread, self.timeout) for check, thread in started]


def service_database_check(engine: Engine, tables: ServiceTables | None = None) -> Callable[[], None]:
    """A check that the service database answers and holds the service tables (migrated)."""
    organizations = (tables or tables_for()).organizations

    def check() -> None:
        with read_transaction(engine) as conn:
            conn.execute(sa.select(organizations.c.id).limit(1)).first()

    return check


def backend_check(backend: Backend) -> Callable[[], None]:
    """A check that the storage backend answers (:meth:`Backend.ping`)."""
    return backend.ping


def service_readiness(
    engine: Engine, backend: Backend, timeout: float, tables: ServiceTables | None = None
) -> Readiness:
    """The service's readiness: its database (``database``) and its backend (``backend``)."""
    database = service_database_check(engine, tables)
    return Readiness({"database": database, "backend": backend_check(backend)}, timeout)
