"""The plugin manager: one per app, never a module global, and the choice of the backend.

Built-in and third-party plugins load alike from the ``scim_service`` entry-point group, but only those
``SCIM_PLUGINS`` allows (by default the built-in ones and the selected backend). An entry point whose
optional dependency is missing (``ldap3`` for ``ldap``) is recorded as unavailable with the extra that
installs it, and is an error only when its backend is selected. The order in which hooks run is stated
on the implementations, not left to the registration order: the built-in bearer-token authentication
is ``trylast`` (see :mod:`scim_service.auth`), so every other plugin's ``scim_authenticate`` runs
before it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import pluggy

from scim_service import hookspecs
from scim_service.backend import Backend
from scim_service.errors import ScimError


class PluginError(RuntimeError):
    """A configuration problem with plugins or the backend choice, reported at start-up."""


# The distribution whose entry points are the built-in plugins (allowed unless SCIM_PLUGINS says otherwise).
DISTRIBUTION = "scim-service"
LOADED, NOT_ALLOWED, UNAVAILABLE = "loaded", "not allowed", "unavailable"


@dataclasses.dataclass(frozen=True)
class EntryPointStatus:
    """What became of one installed ``scim_service`` entry point.

    ``status`` is ``loaded``, ``not allowed`` (``SCIM_PLUGINS`` leaves it out) or ``unavailable`` (an
    import failed); ``missing`` names the module that is not installed and ``install`` the pip command
    that adds it (``pip install 'scim-service[ldap]'``) when the distribution declares an extra for it.
    """

    name: str
    value: str
    distribution: str
    status: str
    missing: str | None = None
    install: str | None = None

    @property
    def reason(self) -> str:
        """One line for people: why it is not loaded and what to do ('' when loaded)."""
        if self.status == NOT_ALLOWED:
            return "not in SCIM_PLUGINS"
        if self.status == UNAVAILABLE:
            fix = f"; install it with: {self.install}" if self.install else ""
            return f"{self.missing or 'a dependency'} is not installed{fix}"
        return ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of ``scim-service plugins --json``."""
        return {**dataclasses.asdict(self), "reason": self.reason}


class ScimPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers the status of every installed entry point."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.entry_point_status: dict[str, EntryPointStatus] = {}


def allowed_plugins(config: Mapping[str, Any]) -> set[str] | None:
    """The entry-point names ``SCIM_PLUGINS`` allows besides the built-ins and the backend; None = all (``*``).

    Empty (the default) allows only the built-in plugins and the selected backend.
    """
    raw = config.get("SCIM_PLUGINS") or ""
    names = raw if isinstance(raw, (list, tuple, set, frozenset)) else str(raw).split(",")
    cleaned = {str(n).strip() for n in names if str(n).strip()}
    if "*" in cleaned:
        return None
    return cleaned


def _extra_for(dist: metadata.Distribution | None, module: str) -> str | None:
    """The pip command installing the extra of ``dist`` that requires ``module`` (ldap3 -> [ldap])."""
    if dist is None or not module:
        return None
    wanted = re.sub(r"[-_.]+", "-", module.split(".")[0]).lower()
    for requirement in dist.requires or ():
        match = re.match(r"\s*([A-Za-z0-9_.-]+).*;.*extra\s*==\s*[\"']([^\"']+)[\"']", requirement)
        if match and re.sub(r"[-_.]+", "-", match.group(1)).lower() == wanted:
            return f"pip install '{dist.metadata['Name']}[{match.group(2)}]'"
    return None


def _load_entry_points(pm: ScimPluginManager, config: Mapping[str, Any]) -> None:
    """Register every allowed entry point of the group; record the others and the failed imports."""
    allowed = allowed_plugins(config)
    backend = str(config.get("SCIM_BACKEND") or "sql")
    for ep in metadata.entry_points(group=hookspecs.PROJECT):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else ""
        status = _status_maker(ep, dist_name)
        builtin = dist_name == DISTRIBUTION or ep.name == backend
        if allowed is not None and not builtin and ep.name not in allowed:
            pm.entry_point_status[ep.name] = status(NOT_ALLOWED)
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except ModuleNotFoundError as exc:
            # An optional dependency that is not installed: the plugin is unavailable, not the service.
            missing = exc.name or ""
            pm.entry_point_status[ep.name] = status(UNAVAILABLE, missing, _extra_for(dist, missing))
            continue
        pm.register(plugin, name=ep.name)
        pm.entry_point_status[ep.name] = status(LOADED)


def _status_maker(ep: metadata.EntryPoint, dist_name: str) -> Any:
    """A maker of :class:`EntryPointStatus` records for ``ep``."""

    def make(status: str, missing: str | None = None, install: str | None = None) -> EntryPointStatus:
        return EntryPointStatus(ep.name, ep.value, dist_name, status, missing, install)

    return make


def entry_point_report(config: Mapping[str, Any]) -> list[EntryPointStatus]:
    """The status of every installed entry point under ``config`` (``scim-service plugins``), by name."""
    pm = ScimPluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    _load_entry_points(pm, config)
    return sorted(pm.entry_point_status.values(), key=lambda s: s.name)


def make_plugin_manager(
    extra_plugins: Iterable[object] = (),
    *,
    builtin_plugins: Iterable[object] = (),
    load_entry_points: bool = True,
    config: Mapping[str, Any] | None = None,
) -> ScimPluginManager:
    """Build a fresh plugin manager with the hook specs, the built-ins, entry points and extras.

    ``builtin_plugins`` (the bearer-token authentication) and ``extra_plugins`` (a host app's auth or
    event handlers) are registered alike; which ``scim_authenticate`` is asked first is decided by the
    implementations' ``tryfirst``/``trylast`` marks, not by this order. ``check_pending`` makes a
    misspelled ``scim_`` hook fail here. ``config`` gives ``SCIM_PLUGINS`` and ``SCIM_BACKEND`` (the
    entry points allowed); without it every entry point is.
    """
    pm = ScimPluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for plugin in builtin_plugins:
        pm.register(plugin)
    if load_entry_points:
        _load_entry_points(pm, config if config is not None else {"SCIM_PLUGINS": "*"})
    for plugin in extra_plugins:
        if pm.is_registered(plugin):
            continue
        pm.register(plugin)
    pm.check_pending()
    return pm


def installed_backends(pm: pluggy.PluginManager) -> dict[str, type[Backend]]:
    """All Backend classes the plugins declare, by name. Two classes with one name is an error."""
    found: dict[str, type[Backend]] = {}
    for classes in pm.hook.scim_register_backends():
        for cls in classes or ():
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise PluginError(f"scim_register_backends returned {cls!r}, which is not a Backend subclass")
            other = found.get(cls.name)
            if other is not None and other is not cls:
                raise PluginError(
                    f"two installed plugins declare a backend named {cls.name!r}: "
                    f"{other.__module__}.{other.__qualname__} and {cls.__module__}.{cls.__qualname__}"
                )
            found[cls.name] = cls
    return found


def build_backend(pm: pluggy.PluginManager, config: Mapping[str, Any]) -> Backend:
    """Instantiate the backend named by ``SCIM_BACKEND`` (default ``sql``) from the config."""
    name = str(config.get("SCIM_BACKEND") or "sql")
    backends = installed_backends(pm)
    cls = backends.get(name)
    status = getattr(pm, "entry_point_status", {}).get(name)
    if cls is None and status is not None and status.status == UNAVAILABLE:
        raise PluginError(f"SCIM_BACKEND={name!r} is not available: {status.reason}")
    if cls is None:
        known = ", ".join(sorted(backends)) or "none"
        raise PluginError(f"SCIM_BACKEND={name!r} is not an installed backend (installed: {known})")
    try:
        return cls.from_config(config)
    except ScimError:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise PluginError(f"backend {name!r} could not be configured: {exc}") from exc
