"""Kept for ``gunicorn wsgi:app`` from a checkout; the entry point is ``scim_service.wsgi:app``."""

from scim_service.wsgi import app

__all__ = ["app"]
