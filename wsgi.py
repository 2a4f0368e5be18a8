"""Checkout compatibility shim: ``gunicorn wsgi:app`` still works; prefer ``scim_service.wsgi:app``."""

from scim_service.wsgi import app

__all__ = ["app"]
