"""``ScimService``: the Flask extension that mounts SCIM into an app, in the manner of flask-sqlalchemy.

State lives in ``app.extensions["scim"]``, never on the extension object, so one ``ScimService`` can
serve several apps and two apps in one process stay independent (each gets its own blueprint from
:func:`~scim_service.api.create_blueprint`). Configuration comes from the ``SCIM_*`` keys of
``app.config`` only. The state itself (:class:`~scim_service.state.ScimState`) lives in
:mod:`scim_service.state`, which the blueprints import instead of this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click
from flask import Flask, current_app

from scim_service import admin, ops
from scim_service import config as settings
from scim_service.api import create_blueprint
from scim_service.auth import BearerTokenAuth
from scim_service.backend import Backend
from scim_service.lifecycle import Lifecycle
from scim_service.model import DeletePolicy
from scim_service.ops.metrics import instrument, metrics_for
from scim_service.outbox import Outbox
from scim_service.plugins import build_backend, make_plugin_manager
from scim_service.reader import GroupReader, UserReader
from scim_service.schemas.definitions import RESOURCE_TYPES, ResourceTypeDef
from scim_service.schemas.extensions import ExtensionFileError, build_resource_types, load_extensions_file
from scim_service.servicedb.outbox import OutboxStore
from scim_service.servicedb.store import ServiceStore
from scim_service.servicedb.tables import tables_for
from scim_service.sqlengine import make_engine
from scim_service.state import EXTENSION_KEY, ScimState, get_state

__all__ = ["EXTENSION_KEY", "ScimService", "ScimState", "get_state"]


class ScimService:
    """Mounts the SCIM API on a Flask app.

    ``ScimService(app)`` or ``ScimService().init_app(app)``. ``backend`` hands in a ready Backend
    instance (one built on the host's own engine, say) instead of the one named by ``SCIM_BACKEND``;
    ``plugins`` are objects with ``@hookimpl`` functions (the host's authentication, event handlers;
    the built-in bearer tokens are ``trylast``, so a host's ``scim_authenticate`` is always asked
    first); ``load_entry_points=False`` ignores installed plugins.
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
        self._app: Flask | None = None
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
        store = ServiceStore(
            service_engine,
            touch_seconds=int(config["SCIM_TOKEN_TOUCH_SECONDS"]),
            retention=config["SCIM_PROVISIONING_LOG_RETENTION"],
            prune_every=int(config["SCIM_PROVISIONING_LOG_PRUNE_EVERY"]),
            expiry_warning=config["SCIM_TOKEN_EXPIRY_WARNING"],
            tables=tables_for(config["SCIM_TABLE_PREFIX"]),
        )
        pm = make_plugin_manager(
            self._plugins,
            builtin_plugins=[BearerTokenAuth(store)],
            load_entry_points=self._load_entry_points,
            config=config,
        )
        backend = self._backend if self._backend is not None else build_backend(pm, config)
        metrics = metrics_for(config)  # None unless SCIM_METRICS
        backend = instrument(backend, metrics)
        resource_types = _resource_types(config, backend)
        lifecycle = Lifecycle(
            backend,
            pm,
            DeletePolicy(config["SCIM_USER_DELETE"]),
            user_resource=resource_types[0],
            group_resource=resource_types[1],
        )
        # Change events go through the outbox in the service database (scim_service/outbox.py); retries
        # outside a request run in this app's context, as the hooks do in a request.
        lifecycle.events.outbox = Outbox(
            OutboxStore(service_engine, tables=store.tables),
            lifecycle.events,
            retry_interval=config["SCIM_EVENTS_RETRY_INTERVAL"],
            retention=config["SCIM_PROVISIONING_LOG_RETENTION"].max_age,
            context=app.app_context,
        )
        self._app = app
        app.extensions[EXTENSION_KEY] = ScimState(
            config=config,
            pm=pm,
            backend=backend,
            store=store,
            service_engine=service_engine,
            lifecycle=lifecycle,
            resource_types=resource_types,
        )
        # A fresh blueprint per app: two apps in one process never share routes or handlers.
        app.register_blueprint(create_blueprint(), url_prefix=base_path or None)
        ops.register(app, metrics)  # /healthz, /readyz, /metrics, as the settings ask
        admin.register(app)  # /admin, when a password or a host plugin enables it
        app.cli.add_command(_flask_cli_group(app))  # flask scim ...: the scim-service commands on this app

    def _state(self, app: Flask | None) -> ScimState:
        if app is None:
            app = self._app if self._app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
        return get_state(app)

    def users(self, org: str, *, app: Flask | None = None) -> UserReader:
        """Read the users of organization ``org`` from host code (``.get``, ``.find``, ``.is_active``, ``.list``).

        ``app`` defaults to the app this extension was initialised on, then to Flask's current app.
        ``AdminError`` when there is no such organization.
        """
        state = self._state(app)
        return UserReader(state.lifecycle, state.store.get_org(org), state.user_resource)

    def groups(self, org: str, *, app: Flask | None = None) -> GroupReader:
        """Read the groups of organization ``org`` from host code (``.get``, ``.find``, ``.members``, ``.list``)."""
        state = self._state(app)
        return GroupReader(state.lifecycle, state.store.get_org(org), state.group_resource)


def _flask_cli_group(app: Flask) -> click.Group:
    """``flask scim``: the commands of ``scim-service`` (the same click objects) on ``app``'s own state.

    Built per app so that the group knows its app without loading one; plugin commands are added to this
    group's copy of the command table, never to ``scim-service``'s.
    """
    from scim_service.cli import ScimGroup, main, use_state

    class FlaskScimGroup(ScimGroup):
        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            use_state(ctx, get_state(app))  # before --help lists the plugin commands
            return super().parse_args(ctx, args)

    return FlaskScimGroup(
        "scim",
        commands=dict(main.commands),
        help="scim-service's commands (scim-service --help) on this app's SCIM database and backend.",
    )


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
