"""The WSGI entry point of an installed service: ``gunicorn scim_service.wsgi:app``.

``app`` is the standalone app built by :func:`~scim_service.app.create_app` from the ``SCIM_*``
environment variables, so a wheel installed without the source tree serves with no file of its own.
"""

from __future__ import annotations

from scim_service.app import create_app

app = create_app()
