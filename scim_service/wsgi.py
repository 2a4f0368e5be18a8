"""The WSGI entry point of an installed package: ``gunicorn scim_service.wsgi:app``.

The app is built by the factory from the environment (``SCIM_*`` settings), so a plain
``pip install scim-service`` serves without a checkout's top-level ``wsgi.py``.
"""

from scim_service.app import create_app

app = create_app()
