"""Change events: the hooks that tell plugins and host apps about a stored change.

A change event fires after the backend stored the change. By then the change is final, so a hook that
raises must not turn it into an error for the IdP (which would retry and get 409, while the host never
hears of the change again): each implementation is called on its own, and its failure is logged with
the hook's name and plugin and counted, never raised. The other implementations still run.
"""

from __future__ import annotations

import logging
from typing import Any

import pluggy

log = logging.getLogger(__name__)


class EventHooks:
    """Calls the change-event hooks (``scim_user_created`` and the others in :mod:`scim_service.hookspecs`)."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.failures = 0  # hook implementations that raised since the process started

    def emit(self, name: str, **kwargs: Any) -> None:
        """Call every implementation of hook ``name`` with ``kwargs``; log and count the ones that raise."""
        caller = getattr(self.pm.hook, name)
        # pluggy calls the last registered implementation first; keep that order.
        for impl in reversed(caller.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue  # wrappers wrap a call chain; change events have none to wrap
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception:
                self.failures += 1
                log.exception(
                    "the %s hook of plugin %s failed; the change is stored and the client was answered normally",
                    name,
                    impl.plugin_name,
                )
