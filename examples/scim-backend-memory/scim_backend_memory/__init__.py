"""An in-memory storage backend for scim-service (``SCIM_BACKEND=memory``)."""

from scim_backend_memory.backend import MemoryBackend

__all__ = ["MemoryBackend"]
