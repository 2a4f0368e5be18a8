"""The operations endpoints over HTTP: ``/healthz``, ``/readyz`` and ``/metrics``, and request metrics.

They live outside the SCIM base path and take no authentication, so a load balancer, an orchestrator
or Prometheus can reach them. Each is registered only when its setting asks for it
(``SCIM_HEALTH_ENDPOINTS``, ``SCIM_METRICS``), and a path the host app already routes is an error at
start-up rather than a silent shadowing.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from scim_service.api.blueprint import BLUEPRINT_NAME
from scim_service.config import ConfigError
from scim_service.ops.metrics import Metrics, SeatsCollector, uninstrumented
from scim_service.ops.readiness import Readiness, service_readiness
from scim_service.state import get_state

OPS_KEY = "scim_ops"
SCIM_BLUEPRINT = BLUEPRINT_NAME  # the SCIM API's own requests are the ones measured


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def healthz() -> Response:
    """The process is up and serving requests: always 200 while it can answer at all."""
    return _no_store(jsonify(status="ok"))


def readyz() -> Response:
    """200 when the service database and the backend both answer in time; 503 naming those that did not."""
    readiness: Readiness = current_app.extensions[OPS_KEY]["readiness"]
    results = readiness.run()
    failed = [r.name for r in results if not r.ok]
    body = {
        "status": "unavailable" if failed else "ready",
        "checks": {r.name: r.to_dict() for r in results},
    }
    if failed:
        body["failed"] = failed
        current_app.logger.warning("readiness: %s", "; ".join(f"{r.name}: {r.error}" for r in results if not r.ok))
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    return _no_store(response)


def metrics() -> Response:
    """Every metric in the Prometheus text format (OpenMetrics when the scraper asks for it)."""
    instruments: Metrics = current_app.extensions[OPS_KEY]["metrics"]
    body, content_type = instruments.exposition(request.headers.get("Accept"))
    return _no_store(Response(body, content_type=content_type))


def create_health_blueprint() -> Blueprint:
    """A fresh blueprint with ``/healthz`` and ``/readyz`` (one per app, like the SCIM blueprint)."""
    bp = Blueprint("scim_health", __name__)
    bp.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    bp.add_url_rule("/readyz", view_func=readyz, methods=["GET"])
    return bp


def create_metrics_blueprint() -> Blueprint:
    """A fresh blueprint serving the metrics at its URL prefix."""
    bp = Blueprint("scim_metrics", __name__)
    bp.add_url_rule("", view_func=metrics, methods=["GET"])
    return bp


# -- request metrics: app-level hooks that look only at the SCIM blueprint's requests ----------------


def _start() -> None:
    if request.blueprint != SCIM_BLUEPRINT:
        return
    g.scim_metrics_started = time.perf_counter()
    current_app.extensions[OPS_KEY]["metrics"].in_progress.inc()


def _count(response: Response) -> Response:
    started = g.get("scim_metrics_started")
    if started is None:
        return response
    instruments: Metrics = current_app.extensions[OPS_KEY]["metrics"]
    who = g.get("scim_principal")
    profile = g.get("scim_profile")  # the request's IdP profile, with the tolerances that fired
    instruments.observe_request(
        endpoint=request.endpoint or "unknown",
        method=request.method,
        status=response.status_code,
        organization=who.tenant.name if who is not None else "",
        seconds=time.perf_counter() - started,
        tolerances=[(profile.name, t.value) for t in profile.fired] if profile is not None else (),
    )
    return response


def _finish(_error: BaseException | None) -> None:
    # Teardown runs even when a response could not be made, so the in-progress gauge never leaks.
    if g.pop("scim_metrics_started", None) is not None:
        current_app.extensions[OPS_KEY]["metrics"].in_progress.dec()


# -- registration -----------------------------------------------------------------------------------


def _refuse_collisions(app: Flask, paths: list[str], setting: str) -> None:
    taken = {rule.rule for rule in app.url_map.iter_rules()}
    clash = [p for p in paths if p in taken or p.rstrip("/") in taken]
    if clash:
        raise ConfigError(
            f"{setting}: the app already serves {', '.join(clash)}; turn the setting off or move them "
            f"(SCIM_HEALTH_PREFIX, SCIM_METRICS_PATH)"
        )


def register(app: Flask, metrics: Metrics | None) -> None:
    """Register the health endpoints and the metrics that the app's settings switch on."""
    state = get_state(app)
    config = state.config
    ops: dict[str, object] = {"metrics": metrics}
    app.extensions[OPS_KEY] = ops
    if config.get("SCIM_HEALTH_ENDPOINTS"):
        prefix = str(config.get("SCIM_HEALTH_PREFIX") or "")
        _refuse_collisions(app, [f"{prefix}/healthz", f"{prefix}/readyz"], "SCIM_HEALTH_ENDPOINTS")
        ops["readiness"] = service_readiness(
            state.service_engine,
            uninstrumented(state.backend),
            float(config["SCIM_READY_TIMEOUT"]),
            state.store.tables,
        )
        app.register_blueprint(create_health_blueprint(), url_prefix=prefix or None)
    if metrics is not None:
        path = str(config["SCIM_METRICS_PATH"])
        _refuse_collisions(app, [path], "SCIM_METRICS")
        metrics.add_collector(SeatsCollector(state.store, uninstrumented(state.backend)))
        app.register_blueprint(create_metrics_blueprint(), url_prefix=path)
        app.before_request(_start)
        app.after_request(_count)
        app.teardown_request(_finish)
