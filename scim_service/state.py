"""The per-app state of scim-service (``app.extensions["scim"]``) and how the HTTP layer finds it.

Its own module so that the blueprints (``scim_service/api/``) and the extension (``extension.py``) both
import it and not each other: the extension builds a :class:`ScimState` and the blueprint reads it.
No Flask import here; ``get_state`` only reads the ``extensions`` mapping of the app it is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scim_service.backend import Backend
from scim_service.errors import NotMigrated, ScimError
from scim_service.lifecycle import Lifecycle
from scim_service.schemas.definitions import RESOURCE_TYPES, ResourceTypeDef
from scim_service.servicedb.store import ServiceStore

if TYPE_CHECKING:
    from flask import Flask

    from scim_service.outbox import Outbox

EXTENSION_KEY = "scim"

log = logging.getLogger("scim_service")

UNMIGRATED_DETAIL = (
    "The service database has no scim-service tables yet: run `scim-service db upgrade` "
    "(or `flask scim db upgrade` in a host app) and retry."
)


@dataclass
class ScimState:
    """Everything scim-service holds for one app."""

    config: dict[str, Any]
    pm: pluggy.PluginManager
    backend: Backend
    store: ServiceStore
    service_engine: Engine
    lifecycle: Lifecycle
    # This app's resource types: the base User and Group plus the configured schema extensions.
    resource_types: tuple[ResourceTypeDef, ...] = RESOURCE_TYPES
    # Set once the service tables were seen; they never go away, so the check stops asking.
    _tables_seen: bool = field(default=False, init=False, repr=False)
    _unmigrated_logged: bool = field(default=False, init=False, repr=False)

    @property
    def base_path(self) -> str:
        """The URL prefix of the SCIM endpoints ("" at the root), normalised at init_app."""
        return str(self.config["SCIM_BASE_PATH"])

    @property
    def outbox(self) -> Outbox:
        """The change-event outbox (``scim-service events ...``)."""
        outbox = self.lifecycle.events.outbox
        if outbox is None:  # pragma: no cover - the extension always sets one up
            raise RuntimeError("this app has no change-event outbox")
        return outbox

    @property
    def user_resource(self) -> ResourceTypeDef:
        """The app's User resource type."""
        return self.resource_types[0]

    @property
    def group_resource(self) -> ResourceTypeDef:
        """The app's Group resource type."""
        return self.resource_types[1]

    @property
    def max_results(self) -> int:
        """The largest page served: ``SCIM_MAX_PAGE_SIZE``, or less when the backend declares less."""
        return min(int(self.config["SCIM_MAX_PAGE_SIZE"]), self.backend.capabilities.max_results)

    def require_service_tables(self) -> None:
        """Raise ``NotMigrated`` (503) saying to run ``db upgrade`` while the service tables are missing.

        Asked on every request until the tables are seen, so an upgrade run beside a serving process
        takes effect without a restart; the warning is logged once per app, not once per request. A
        database that cannot be reached passes here: the request's own query reports that.
        """
        if self._tables_seen:
            return
        from scim_service.servicedb.migrate import service_tables_exist

        try:
            self._tables_seen = service_tables_exist(self.service_engine, self.store.tables.prefix)
        except (ScimError, sa.exc.SQLAlchemyError):
            return
        if self._tables_seen:
            return
        if not self._unmigrated_logged:
            self._unmigrated_logged = True
            log.error(
                "the service database %s has no scim-service tables: every SCIM request answers 503 until "
                "`scim-service db upgrade` (or `flask scim db upgrade`) runs",
                self.service_engine.url.render_as_string(hide_password=True),
            )
        raise NotMigrated(UNMIGRATED_DETAIL)

    def upgrade(self) -> None:
        """Create or migrate the service tables, then the backend's store (``scim-service db upgrade``)."""
        from scim_service.servicedb.migrate import upgrade_service_db

        upgrade_service_db(self.service_engine, self.store.tables.prefix)
        self.backend.migrate()

    def close(self) -> None:
        """Release the backend's and the service database's connections."""
        if self.lifecycle.events.outbox is not None:
            self.lifecycle.events.outbox.wait(5)  # a background event retry still using them
        self.backend.close()
        self.service_engine.dispose()


def get_state(app: Flask) -> ScimState:
    """The scim-service state of ``app``; a clear error if the extension was not initialised."""
    try:
        return app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError("scim-service is not initialised on this app: call ScimService(app)") from None
