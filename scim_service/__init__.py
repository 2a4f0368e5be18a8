"""scim-service: a SCIM 2.0 service provider as a Flask microservice with pluggable storage.

``create_app``, ``ScimService`` and ``get_state`` are imported lazily so that a backend plugin can
import the core (``scim_service.backend``, ``scim_service.model``) without importing Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ScimService", "__version__", "create_app", "get_state"]

if TYPE_CHECKING:
    from scim_service.app import create_app
    from scim_service.extension import ScimService
    from scim_service.state import get_state


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from scim_service.app import create_app

        return create_app
    if name == "ScimService":
        from scim_service.extension import ScimService

        return ScimService
    if name == "get_state":
        from scim_service.state import get_state

        return get_state
    raise AttributeError(f"module 'scim_service' has no attribute {name!r}")
