"""The WSGI entry point for gunicorn: ``gunicorn wsgi:app``."""

from scim_service.app import create_app

app = create_app()
