"""Prometheus metrics of the SCIM service (``SCIM_METRICS=true``); no Flask here.

What is measured:

* ``scim_http_requests_total{endpoint,method,status,organization}``: every SCIM request, by Flask
  endpoint (``scim.users``, ...), method, status code and organization name (empty when the caller
  was not authenticated);
* ``scim_http_request_duration_seconds{endpoint,method}``: request latency histograms;
* ``scim_http_requests_in_progress``: requests being served now (summed over live workers);
* ``scim_backend_call_duration_seconds{backend,operation,outcome}``: every call into the storage
  backend, measured by :class:`TimedBackend`; ``outcome`` is ``ok`` or the class of the error it
  raised (``NotFound``, ``UniquenessConflict``, ``SeatLimitReached``, ``Unavailable``, ...);
* ``scim_tolerances_total{profile,tolerance}``: IdP deviations the request's profile accepted;
* ``scim_seats_used{organization}`` and ``scim_seats_max{organization}`` (the latter only for an
  organization with a limit): read from the store at scrape time, since they are the database's state
  and not any process's.

Under gunicorn every worker is a process with its own counters. With ``PROMETHEUS_MULTIPROC_DIR`` set
(``gunicorn.conf.py`` sets it when metrics are on) prometheus-client keeps each process's values in
files there and a scrape, whichever worker answers it, adds up the files of all workers, past and
present; gunicorn's ``child_exit`` hook (:func:`scim_service.ops.gunicorn_hooks.child_exit`) drops a
dead worker's in-progress gauge. The variable must be set before prometheus-client is first imported,
which is why this module imports it only when metrics are switched on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from scim_service.backend import Backend

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

    from scim_service.servicedb.store import ServiceStore

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BACKEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# The backend methods timed by TimedBackend: the storage contract, not the life-cycle hooks.
TIMED_OPERATIONS = frozenset(
    name
    for name, value in vars(Backend).items()
    if callable(value) and not name.startswith("_") and name not in {"from_config", "migrate", "close", "ping"}
)


def multiprocess_dir() -> str | None:
    """The folder of the per-process metric files, when prometheus-client runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The service's instruments, on a registry of their own (two apps in one process stay apart).

    In multiprocess mode the values live in the shared files instead, and :meth:`exposition` reads
    those, so every worker answers a scrape with the sum over all workers.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self._extra: list[Collector] = []
        self.requests = Counter(
            "scim_http_requests",
            "SCIM requests served, by endpoint, method, status code and organization.",
            ["endpoint", "method", "status", "organization"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "scim_http_request_duration_seconds",
            "Time to serve a SCIM request, by endpoint and method.",
            ["endpoint", "method"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "scim_http_requests_in_progress",
            "SCIM requests being served now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.backend_calls = Histogram(
            "scim_backend_call_duration_seconds",
            "Time spent in calls to the storage backend, by operation and outcome (ok or the error's class).",
            ["backend", "operation", "outcome"],
            buckets=BACKEND_BUCKETS,
            registry=self.registry,
        )
        self.tolerances = Counter(
            "scim_tolerances",
            "Deviations from the RFCs that an IdP profile accepted, by profile and tolerance.",
            ["profile", "tolerance"],
            registry=self.registry,
        )

    def add_collector(self, collector: Collector) -> None:
        """Add a collector that is read at scrape time (the seat counts), in either mode."""
        self._extra.append(collector)
        self.registry.register(collector)

    def observe_request(
        self,
        *,
        endpoint: str,
        method: str,
        status: int,
        organization: str,
        seconds: float,
        tolerances: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Count one served request, its latency and the tolerances (profile, tolerance) it needed."""
        self.requests.labels(endpoint, method, str(status), organization).inc()
        self.latency.labels(endpoint, method).observe(seconds)
        for profile, tolerance in tolerances:
            self.tolerances.labels(profile, tolerance).inc()

    def observe_backend_call(self, backend: str, operation: str, outcome: str, seconds: float) -> None:
        """Record one backend call's duration and outcome (``ok`` or the error's class name)."""
        self.backend_calls.labels(backend, operation, outcome).observe(seconds)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The text exposition of every metric and its content type (OpenMetrics if ``accept`` asks)."""
        from prometheus_client import CollectorRegistry
        from prometheus_client.exposition import choose_encoder

        registry = self.registry
        path = multiprocess_dir()
        if path:
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=path)
            for collector in self._extra:
                registry.register(collector)
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type


class SeatsCollector:
    """``scim_seats_used`` and ``scim_seats_max`` per organization, counted by the backend at scrape time.

    A scrape costs one seat count per organization. If the store does not answer, the seat metrics are
    left out of that scrape (and ``scim_seats_collect_ok`` is 0) rather than failing it.
    """

    def __init__(self, store: ServiceStore, backend: Backend) -> None:
        self.store = store
        self.backend = backend

    def describe(self) -> list[Any]:
        """Nothing to declare ahead (the metrics are built at each scrape)."""
        return []

    def collect(self) -> Iterator[Any]:
        """Yield the seat gauges of every organization."""
        from prometheus_client.core import GaugeMetricFamily

        used = GaugeMetricFamily("scim_seats_used", "Seats held in the organization.", labels=["organization"])
        limit = GaugeMetricFamily(
            "scim_seats_max", "The organization's seat limit (maxSeats), if it has one.", labels=["organization"]
        )
        ok = GaugeMetricFamily("scim_seats_collect_ok", "1 if the seat counts could be read at this scrape.")
        try:
            for tenant in self.store.list_orgs():
                used.add_metric([tenant.name], self.backend.count_seats(tenant))
                if tenant.max_seats is not None:
                    limit.add_metric([tenant.name], tenant.max_seats)
        except Exception:  # a scrape must not fail because the store is away; the gauge says so
            log.warning("could not count seats for the metrics", exc_info=True)
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        yield used
        yield limit
        yield ok


class TimedBackend:
    """A backend that times every storage call into :attr:`Metrics.backend_calls` and delegates the rest.

    Everything else (``name``, ``capabilities``, ``close``, a backend's own extra methods) is the
    wrapped backend's own, so the lifecycle, the CLI and the admin page see no difference.
    """

    def __init__(self, inner: Backend, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @property
    def inner(self) -> Backend:
        """The wrapped backend."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in TIMED_OPERATIONS or not callable(value):
            return value
        timed = _timed(value, self._metrics, str(getattr(self._inner, "name", type(self._inner).__name__)), name)
        # Cached on the instance: later lookups no longer reach __getattr__.
        self.__dict__[name] = timed
        return timed


def _timed(func: Callable[..., Any], metrics: Metrics, backend: str, operation: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            outcome = type(exc).__name__  # a small, fixed set: the core's error classes
            raise
        finally:
            metrics.observe_backend_call(backend, operation, outcome, time.perf_counter() - started)

    call.__name__ = operation
    call.__doc__ = func.__doc__
    return call


def metrics_for(config: Mapping[str, Any]) -> Metrics | None:
    """A fresh :class:`Metrics` when ``SCIM_METRICS`` is on, else None."""
    return Metrics() if config.get("SCIM_METRICS") else None


def instrument(backend: Backend, metrics: Metrics | None) -> Backend:
    """``backend`` timed into ``metrics``, or itself when metrics are off."""
    if metrics is None:
        return backend
    return TimedBackend(backend, metrics)  # type: ignore[return-value]  # a transparent stand-in


def uninstrumented(backend: Backend) -> Backend:
    """The backend behind a :class:`TimedBackend` (for reads that should not count as SCIM traffic)."""
    return backend.inner if isinstance(backend, TimedBackend) else backend
