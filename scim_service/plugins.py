"""The plugin manager: one per app, never a module global, and the choice of the backend.

Built-in and third-party plugins load alike from the ``scim_service`` entry-point group. The order in
which hooks run is stated on the implementations, not left to the registration order: the built-in
bearer-token authentication is ``trylast`` (see :mod:`scim_service.auth`), so every other plugin's
``scim_authenticate`` runs before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from scim_service import hookspecs
from scim_service.backend import Backend
from scim_service.errors import ScimError


class PluginError(RuntimeError):
    """A configuration problem with plugins or the backend choice, reported at start-up."""


# The optional dependency (top-level module) -> the setup.cfg extra that installs it.
OPTIONAL_EXTRAS = {"ldap3": "ldap", "psycopg": "postgres"}


@dataclass(frozen=True)
class UnavailablePlugin:
    """An installed entry point that could not load because a module it imports is missing."""

    name: str
    missing_module: str

    @property
    def hint(self) -> str:
        """How to make it available: the extra to install, or else the missing module."""
        extra = OPTIONAL_EXTRAS.get(self.missing_module.split(".")[0])
        if extra:
            return f"pip install 'scim-service[{extra}]'"
        return f"install the Python package providing {self.missing_module!r}"


# The entry points this package ships itself; SCIM_PLUGINS always allows them (their commands, like
# `scim-service ldap schema`, are needed before their backend is selected).
BUILTIN_ENTRY_POINTS = frozenset({"sql", "ldap"})


def allowed_entry_points(config: Mapping[str, Any]) -> frozenset[str] | None:
    """The entry-point names ``SCIM_PLUGINS`` allows (None: all installed, for ``*``).

    Unset or empty: the built-in ones and the selected backend; otherwise those plus the named ones.
    """
    names = {part.strip() for part in str(config.get("SCIM_PLUGINS") or "").split(",") if part.strip()}
    if "*" in names:
        return None
    return frozenset(names | BUILTIN_ENTRY_POINTS | {str(config.get("SCIM_BACKEND") or "sql")})


class ScimPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers the entry points whose optional dependency is missing."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.unavailable: dict[str, UnavailablePlugin] = {}
        self.not_allowed: set[str] = set()

    def load_entry_points(self, group: str, allowed: frozenset[str] | None = None) -> None:
        """Register every entry point of ``group``; one with a missing dependency is noted, not fatal.

        A plain ``pip install scim-service`` has no ldap3 or psycopg: the SQLite default must still start,
        and the missing backend fails only when it is selected (see :func:`build_backend`).
        """
        for ep in entry_points(group=group):
            if self.is_blocked(ep.name) or self.get_plugin(ep.name) is not None:
                continue
            if allowed is not None and ep.name not in allowed:
                self.not_allowed.add(ep.name)
                continue
            try:
                plugin = ep.load()
            except ModuleNotFoundError as exc:
                self.unavailable[ep.name] = UnavailablePlugin(ep.name, exc.name or str(exc))
                continue
            self.register(plugin, name=ep.name)


def make_plugin_manager(
    extra_plugins: Iterable[object] = (),
    *,
    builtin_plugins: Iterable[object] = (),
    load_entry_points: bool = True,
    allowed: frozenset[str] | None = None,
) -> ScimPluginManager:
    """Build a fresh plugin manager with the hook specs, the built-ins, entry points and extras.

    ``builtin_plugins`` (the bearer-token authentication) and ``extra_plugins`` (a host app's auth or
    event handlers) are registered alike; which ``scim_authenticate`` is asked first is decided by the
    implementations' ``tryfirst``/``trylast`` marks, not by this order. ``check_pending`` makes a
    misspelled ``scim_`` hook fail here.
    """
    pm = ScimPluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for plugin in builtin_plugins:
        pm.register(plugin)
    if load_entry_points:
        pm.load_entry_points(hookspecs.PROJECT, allowed)
    for plugin in extra_plugins:
        if pm.is_registered(plugin):
            continue
        pm.register(plugin)
    pm.check_pending()
    return pm


def entry_point_report(pm: pluggy.PluginManager) -> list[dict[str, str]]:
    """Every installed ``scim_service`` entry point with its state: ``loaded`` or ``unavailable``.

    An unavailable one carries the ``hint`` (the extra to install); this is what ``scim-service plugins`` shows.
    """
    unavailable: dict[str, UnavailablePlugin] = getattr(pm, "unavailable", {})
    rows: list[dict[str, str]] = []
    for ep in sorted(entry_points(group=hookspecs.PROJECT), key=lambda e: e.name):
        row = {"name": ep.name, "module": ep.value, "state": "not loaded", "hint": ""}
        if ep.name in unavailable:
            row["state"], row["hint"] = "unavailable", unavailable[ep.name].hint
        elif ep.name in getattr(pm, "not_allowed", ()):
            row["state"], row["hint"] = "not allowed", "add it to SCIM_PLUGINS"
        elif pm.get_plugin(ep.name) is not None:
            row["state"] = "loaded"
        rows.append(row)
    return rows


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
    missing = getattr(pm, "unavailable", {}).get(name)
    if cls is None and missing is not None:
        raise PluginError(
            f"SCIM_BACKEND={name!r} needs the optional dependency {missing.missing_module!r}: {missing.hint}"
        )
    if cls is None:
        known = ", ".join(sorted(backends)) or "none"
        raise PluginError(f"SCIM_BACKEND={name!r} is not an installed backend (installed: {known})")
    try:
        return cls.from_config(config)
    except ScimError:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise PluginError(f"backend {name!r} could not be configured: {exc}") from exc
