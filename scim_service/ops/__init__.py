"""Running the service in production: health and readiness endpoints, Prometheus metrics, gunicorn hooks.

``readiness`` and ``metrics`` hold the logic (no Flask); ``routes`` serves them over HTTP;
``gunicorn_hooks`` is what ``gunicorn.conf.py`` calls. The extension calls :func:`register`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from scim_service.ops.metrics import Metrics


def register(app: Flask, metrics: Metrics | None) -> None:
    """Register ``/healthz``, ``/readyz`` and ``/metrics`` on ``app`` as its settings ask."""
    from scim_service.ops.routes import register as register_routes

    register_routes(app, metrics)
