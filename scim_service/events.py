"""Change events: the hooks that tell plugins and host apps about a stored change.

A change event fires after the backend stored the change. By then the change is final, so a hook that
raises must not turn it into an error for the IdP (which would retry and get 409): each implementation
is called on its own, and its failure is logged with the hook's name and plugin and counted, never
raised. The other implementations still run.

With an outbox (:class:`~scim_service.outbox.Outbox`, which the extension always sets up) every event
is first written to the service database and then delivered; an implementation that failed gets the
event again later, in order per resource (docs/embedding.md, "Delivery: the outbox").
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pluggy import HookImpl

    from scim_service.outbox import Outbox

log = logging.getLogger(__name__)


def plugin_key(impl: HookImpl) -> str:
    """A name for the plugin of ``impl`` that is the same in every process: the name it was registered
    under, or, for a plugin registered without one (pluggy then names it by its ``id()``), its module
    or class. The outbox records which plugins already have an event by these names."""
    if impl.plugin_name != str(id(impl.plugin)):
        return impl.plugin_name
    plugin = impl.plugin
    if isinstance(plugin, type) or hasattr(plugin, "__file__"):  # a class or a module
        return str(getattr(plugin, "__module__", None) or getattr(plugin, "__name__", "")) + (
            "." + plugin.__qualname__ if isinstance(plugin, type) else ""
        )
    cls = type(plugin)
    return f"{cls.__module__}.{cls.__qualname__}"


class EventHooks:
    """Calls the change-event hooks (``scim_user_created`` and the others in :mod:`scim_service.hookspecs`).

    ``outbox``: where events are written before they are delivered (None: called once, directly, as
    before the outbox existed; tests of the lifecycle alone use that).
    """

    def __init__(self, pm: pluggy.PluginManager, outbox: Outbox | None = None) -> None:
        self.pm = pm
        self.outbox = outbox
        self.failures = 0  # hook implementation calls that raised since the process started

    def emit(self, name: str, **kwargs: Any) -> None:
        """Publish event ``name`` with the hook's arguments ``kwargs``; never raises for a hook's failure."""
        if self.outbox is not None:
            self.outbox.publish(name, kwargs)
            return
        self.call(name, kwargs, self.implementations(name))

    def implementations(self, name: str) -> list[tuple[str, HookImpl]]:
        """The implementations of hook ``name`` in call order, each with its :func:`plugin_key`.

        pluggy calls the last registered implementation first; that order is kept. Two plugins with one
        key (two instances of a class) are told apart by a ``#2`` suffix, in registration order.
        """
        caller = getattr(self.pm.hook, name)
        found: list[tuple[str, HookImpl]] = []
        seen: dict[str, int] = {}
        for impl in caller.get_hookimpls():  # registration order: keys stay stable as plugins are added
            if impl.hookwrapper or impl.wrapper:
                continue  # wrappers wrap a call chain; change events have none to wrap
            key = plugin_key(impl)
            seen[key] = seen.get(key, 0) + 1
            found.append((key if seen[key] == 1 else f"{key}#{seen[key]}", impl))
        found.reverse()
        return found

    def call(
        self, name: str, kwargs: Mapping[str, Any], impls: Sequence[tuple[str, HookImpl]], skip: Collection[str] = ()
    ) -> tuple[set[str], dict[str, str]]:
        """Call each of ``impls`` (but those whose key is in ``skip``) with ``kwargs``; return the keys
        that succeeded and, by key, the error of each that raised (logged and counted here)."""
        succeeded: set[str] = set()
        failed: dict[str, str] = {}
        for key, impl in impls:
            if key in skip:
                continue
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                self.failures += 1
                failed[key] = f"{key}: {type(exc).__name__}: {exc}"
                log.exception(
                    "the %s hook of plugin %s failed; the change is stored and the client was answered normally",
                    name,
                    key,
                )
            else:
                succeeded.add(key)
        return succeeded, failed
