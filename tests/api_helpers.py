"""Helpers of the API tests: a real app on a real database, a SCIM client, error assertions.

:func:`make_app` opens a SQLite file in the folder it is given, unless a test runs inside
:func:`using_databases` (the ``api_database`` fixture of ``tests/conftest.py`` does that for the
PostgreSQL variant of every API test): then the folder names a fresh PostgreSQL database instead. The
same folder gives the same database, so two apps on one folder are two workers on one database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from flask import Flask
from flask.testing import FlaskClient

from scim_service.app import create_app
from scim_service.extension import ScimState, get_state

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
BASE = "/scim/v2"

IN_CI = os.environ.get("CI") == "true"


class DatabaseChooser(Protocol):
    """Says which database URL the app made for a folder uses (see :func:`using_databases`)."""

    def url_for(self, folder: Path) -> str:
        """The database URL for ``folder``: the same folder always gives the same database."""
        ...


_chooser: list[DatabaseChooser] = []


@contextmanager
def using_databases(chooser: DatabaseChooser) -> Iterator[None]:
    """Within the block, :func:`make_app` and :func:`database_url` take their database from ``chooser``."""
    _chooser.append(chooser)
    try:
        yield
    finally:
        _chooser.remove(chooser)


def database_url(folder: Path) -> str:
    """The database of the app made for ``folder``: a SQLite file in it, or the chooser's database."""
    if _chooser:
        return _chooser[-1].url_for(folder)
    return f"sqlite:///{folder}/scim.db"


def make_app(tmp_path: Path, **config: Any) -> Flask:
    """A standalone app on a fresh database for ``tmp_path``, its schema migrated, no environment variables read.

    SQLite (a file in ``tmp_path``) by default; PostgreSQL in the PostgreSQL variant of the API tests.
    An explicit ``SCIM_DATABASE_URL`` wins.
    """
    if "SCIM_DATABASE_URL" not in config:
        config["SCIM_DATABASE_URL"] = database_url(tmp_path)
    values = {"SCIM_LOG_LEVEL": "WARNING", **config}
    app = create_app(values, environ={})
    app.config["TESTING"] = True
    get_state(app).upgrade()
    return app


class Scim:
    """A SCIM client for one organization's token over the Flask test client."""

    def __init__(self, client: FlaskClient, token: str, base: str = BASE) -> None:
        self.client = client
        self.token = token
        self.base = base

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any):
        kwargs: dict[str, Any] = {"headers": self.headers(headers), **kw}
        if body is not None:
            kwargs["json"] = body
            kwargs["content_type"] = "application/scim+json"
        return self.client.open(self.base + path, method=method, **kwargs)

    def get(self, path: str, **kw: Any):
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any):
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any):
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, operations: list[dict[str, Any]], **kw: Any):
        return self.request("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": operations}, **kw)

    def delete(self, path: str, **kw: Any):
        return self.request("DELETE", path, **kw)

    def create_user(self, user_name: str, **attrs: Any) -> dict[str, Any]:
        response = self.post("/Users", user(user_name, **attrs))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def create_group(self, name: str, members: list[str] = ()) -> dict[str, Any]:
        body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": m} for m in members]}
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


def user(user_name: str, **attrs: Any) -> dict[str, Any]:
    """A User resource body; ``email`` sets one primary work email."""
    email = attrs.pop("email", None)
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": user_name, **attrs}
    if email:
        body["emails"] = [{"value": email, "type": "work", "primary": True}]
    return body


def new_org(state: ScimState, name: str, **kw: Any) -> str:
    """Create an organization and return a fresh token for it."""
    state.store.create_org(name, **kw)
    _id, token = state.store.create_token(name)
    return token


def assert_scim_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """The response is a SCIM error with this status (and scimType)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/scim+json"
    body = response.get_json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body
