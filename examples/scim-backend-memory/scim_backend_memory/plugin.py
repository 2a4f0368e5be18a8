"""The pluggy plugin: found through the ``scim_service`` entry-point group, it declares the backend."""

from __future__ import annotations

from scim_backend_memory.backend import MemoryBackend
from scim_service.backend import Backend
from scim_service.hookspecs import hookimpl


@hookimpl
def scim_register_backends() -> list[type[Backend]]:
    """Declare :class:`MemoryBackend`, selected by ``SCIM_BACKEND=memory``."""
    return [MemoryBackend]
