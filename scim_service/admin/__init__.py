"""The admin web page (``SCIM_ADMIN_PATH``, default ``/admin``): its own blueprint, templates and session.

Off unless ``SCIM_ADMIN_PASSWORD`` is set or a plugin of the app implements the
``scim_admin_authenticate`` hook (how a host app puts the page behind its own login).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("scim_service.admin")

WEAK_PASSWORD_LENGTH = 12


def enabled(app: Flask) -> bool:
    """Whether the app's settings or plugins switch the admin page on."""
    from scim_service.state import get_state

    state = get_state(app)
    return bool(state.config.get("SCIM_ADMIN_PASSWORD")) or bool(state.pm.hook.scim_admin_authenticate.get_hookimpls())


def register(app: Flask) -> None:
    """Register the admin blueprint on ``app`` when it is enabled (see :func:`enabled`)."""
    if not enabled(app):
        return
    from scim_service.admin.session import SessionCodec, signing_key
    from scim_service.admin.views import ADMIN_KEY, create_blueprint
    from scim_service.config import ConfigError
    from scim_service.state import get_state

    config = get_state(app).config
    password = str(config.get("SCIM_ADMIN_PASSWORD") or "") or None
    if password and len(password) < WEAK_PASSWORD_LENGTH:
        log.warning("SCIM_ADMIN_PASSWORD is shorter than %d characters: anyone who can reach %s may guess it",
                    WEAK_PASSWORD_LENGTH, config["SCIM_ADMIN_PATH"])  # fmt: skip
    path = str(config["SCIM_ADMIN_PATH"])
    if any(rule.rule == path or rule.rule.startswith(path + "/") for rule in app.url_map.iter_rules()):
        raise ConfigError(f"SCIM_ADMIN_PATH: the app already serves {path}; choose another path")
    codec = SessionCodec(
        signing_key(config, app.config.get("SECRET_KEY")), int(config["SCIM_ADMIN_SESSION_HOURS"]) * 3600
    )
    app.extensions[ADMIN_KEY] = {"codec": codec, "password": password}
    app.register_blueprint(create_blueprint(), url_prefix=path)
