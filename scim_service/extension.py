"""``ScimService``: the Flask extension that mounts SCIM into an app, in the manner of flask-sqlalchemy.

State lives in ``app.extensions["scim"]``, never on the extension object, so one ``ScimService`` can
serve several apps and two apps in one process stay independent. Configuration comes from the
``SCIM_*`` keys of ``app.config`` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pluggy
from flask import Flask
from sqlalchemy.engine import Engine

from scim_service import config as settings
from scim_service.auth import BearerTokenAuth
from scim_service.backend import Backend
from scim_service.lifecycle import Lifecycle
from scim_service.model import DeletePolicy
from scim_service.plugins import build_backend, make_plugin_manager
from scim_service.schemas.definitions import RESOURCE_TYPES, ResourceTypeDef
from scim_service.schemas.extensions import ExtensionFileError, build_resource_types, load_extensions_file
from scim_service.servicedb.store import ServiceStore
from scim_service.sqlengine import make_engine

EXTENSION_KEY = "scim"


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

    @property
    def base_path(self) -> str:
        """The URL prefix of the SCIM endpoints ("" at the root), normalised at init_app."""
        return str(self.config["SCIM_BASE_PATH"])

    @property
    def user_resource(self) -> ResourceTypeDef:
        """The app's User resource type."""
        return self.resource_types[0]

    @property
    def group_resource(self) -> ResourceTypeDef:
        """The app's Group resource type."""
        return self.resource_types[1]

    def upgrade(self) -> None:
        """Create or migrate the service tables, then the backend's store (``scim-service db upgrade``)."""
        from scim_service.servicedb.migrate import upgrade_service_db

        upgrade_service_db(self.service_engine)
        self.backend.migrate()

    def close(self) -> None:
        """Release the backend's and the service database's connections."""
        self.backend.close()
        self.service_engine.dispose()


class ScimService:
    """Mounts the SCIM API on a Flask app.

    ``ScimService(app)`` or ``ScimService().init_app(app)``. ``backend`` hands in a ready Backend
    instance (one built on the host's own engine, say) instead of the one named by ``SCIM_BACKEND``;
    ``plugins`` are objects with ``@hookimpl`` functions (the host's authentication, event handlers),
    consulted before the built-in ones; ``load_entry_points=False`` ignores installed plugins.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        backend: Backend | None = None,
        plugins: Iterable[object] = (),
        load_entry_points: bool = True,
    ) -> None:
        self._backend = backend
        self._plugins = tuple(plugins)
        self._load_entry_points = load_entry_points
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read the app's ``SCIM_*`` config, build the state and register the blueprint."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("scim-service is already initialised on this app; call init_app once per app.")
        config = settings.defaults()
        config.update({k: v for k, v in app.config.items() if k.startswith("SCIM_")})
        parsed = settings.from_environ({k: v for k, v in config.items() if isinstance(v, str)})
        config.update(parsed)
        if not config.get("SCIM_DATABASE_URL"):
            config["SCIM_DATABASE_URL"] = f"sqlite:///{app.instance_path}/scim.db"
        base_path = settings.SETTINGS_BY_NAME["SCIM_BASE_PATH"].parse(str(config["SCIM_BASE_PATH"]))
        config["SCIM_BASE_PATH"] = base_path

        service_engine = make_engine(config["SCIM_DATABASE_URL"], config)
        store = ServiceStore(service_engine, touch_seconds=int(config["SCIM_TOKEN_TOUCH_SECONDS"]))
        pm = make_plugin_manager(
            self._plugins, builtin_plugins=[BearerTokenAuth(store)], load_entry_points=self._load_entry_points
        )
        backend = self._backend if self._backend is not None else build_backend(pm, config)
        resource_types = _resource_types(config, backend)
        lifecycle = Lifecycle(
            backend,
            pm,
            DeletePolicy(config["SCIM_USER_DELETE"]),
            user_resource=resource_types[0],
            group_resource=resource_types[1],
        )
        app.extensions[EXTENSION_KEY] = ScimState(
            config=config,
            pm=pm,
            backend=backend,
            store=store,
            service_engine=service_engine,
            lifecycle=lifecycle,
            resource_types=resource_types,
        )

        from scim_service.api import register  # the blueprint imports this module: import late

        register(app, base_path)


def _resource_types(config: dict[str, Any], backend: Backend) -> tuple[ResourceTypeDef, ResourceTypeDef]:
    """User and Group with the extensions of ``SCIM_SCHEMA_EXTENSIONS_FILE``; a bad file, or a backend
    that cannot store custom schemas, stops start-up with a ``ConfigError`` saying why."""
    path = config.get("SCIM_SCHEMA_EXTENSIONS_FILE")
    if not path:
        return RESOURCE_TYPES[0], RESOURCE_TYPES[1]
    try:
        extensions = load_extensions_file(path)
    except ExtensionFileError as exc:
        raise settings.ConfigError(f"SCIM_SCHEMA_EXTENSIONS_FILE: {exc}") from None
    if extensions and not backend.capabilities.custom_schemas:
        raise settings.ConfigError(
            f"SCIM_SCHEMA_EXTENSIONS_FILE: the {backend.name!r} backend cannot store custom schema extensions "
            f"(its capabilities do not include custom_schemas); remove the setting or use a backend that can"
        )
    return build_resource_types(extensions)


def get_state(app: Flask) -> ScimState:
    """The scim-service state of ``app``; a clear error if the extension was not initialised."""
    try:
        return app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError("scim-service is not initialised on this app: call ScimService(app)") from None
