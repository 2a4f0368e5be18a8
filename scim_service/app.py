"""``create_app``: the standalone service, built from the same parts a host app embeds.

The only place that reads ``SCIM_*`` environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from scim_service import config as settings
from scim_service.extension import ScimService
from scim_service.logformat import configure_logging


def standalone_config(
    config: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The standalone settings: defaults, then ``SCIM_*`` environment variables, then ``config``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = settings.defaults()
    values.update(settings.STANDALONE_DEFAULTS)
    values.update(settings.from_environ(env))
    values.update(config or {})
    return values


def create_app(config: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None) -> Flask:
    """Build the standalone app from :func:`standalone_config`."""
    values = standalone_config(config, environ=environ)
    instance_path = values.get("SCIM_INSTANCE_PATH")
    app = Flask("scim_service", instance_path=str(instance_path) if instance_path else None)
    app.config.update(values)
    configure_logging(
        str(values.get("SCIM_LOG_LEVEL") or "INFO"),
        settings.SETTINGS_BY_NAME["SCIM_LOG_FORMAT"].parse(str(values.get("SCIM_LOG_FORMAT") or "text")),
    )
    ScimService(app)
    proxies = int(app.config.get("SCIM_TRUSTED_PROXIES") or 0)
    if proxies:
        # Only the standalone app: a host app that embeds the service configures its own proxy handling.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies, x_prefix=proxies
        )
    return app
