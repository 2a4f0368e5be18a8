"""The HTTP layer: the only part of scim-service (with the extension) that imports Flask.

``blueprint.py`` builds the blueprint (:func:`create_blueprint`, a fresh one per app), ``http.py`` holds
the request and response helpers, and ``resources.py``, ``bulk.py`` and ``discovery.py`` the endpoints.
Request bodies are parsed here, at the edge, before anything reaches the lifecycle or the store.
"""

from __future__ import annotations

from scim_service.api.blueprint import create_blueprint

__all__ = ["create_blueprint"]
