"""The HTTP layer: one blueprint, the only part of scim-service (with the extension) that imports Flask."""

from __future__ import annotations

from flask import Flask


def register(app: Flask, base_path: str) -> None:
    """Register the SCIM blueprint on ``app`` under ``base_path`` ("" serves it at the root)."""
    from scim_service.api import bulk, discovery, resources  # noqa: F401 - they add their routes to the blueprint
    from scim_service.api.blueprint import bp

    app.register_blueprint(bp, url_prefix=base_path or None)
