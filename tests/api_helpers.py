"""Helpers of the API tests: a real app on a real database, a SCIM client, error assertions.

:func:`make_app` opens a SQLite file in the folder it is given, unless a test runs inside
:func:`using_databases` (the ``api_database`` fixture of ``tests/conftest.py`` does that for the
PostgreSQL variant of every API test): then the folder names a fresh PostgreSQL database instead. The
same folder gives the same database, so two apps on one folder are two workers on one database.

Likewise, inside :func:`using_backend` (the LDAP variant of every API test) :func:`make_app` adds the
chooser's backend settings for the folder (``SCIM_BACKEND=ldap`` and a fresh subtree of the session's
directory); the service database (organizations, tokens, log) stays a SQLite file in the folder.
A test that uses something a backend declares it cannot do calls :func:`requires` first, which skips
it on that backend with the declaration as the reason.
"""

from __future__ import annotations

import os
import urllib.parse
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


class BackendChooser(Protocol):
    """Says which backend settings the app made for a folder uses (see :func:`using_backend`)."""

    def config_for(self, folder: Path) -> dict[str, str]:
        """``SCIM_BACKEND`` and its settings for ``folder``: the same folder always gives the same store."""
        ...


_backend_chooser: list[BackendChooser] = []


@contextmanager
def using_backend(chooser: BackendChooser) -> Iterator[None]:
    """Within the block, :func:`make_app` takes its backend settings from ``chooser``."""
    _backend_chooser.append(chooser)
    try:
        yield
    finally:
        _backend_chooser.remove(chooser)


def backend_config(folder: Path) -> dict[str, str]:
    """The backend settings of the app made for ``folder``: none (the SQL backend) or the chooser's."""
    if _backend_chooser:
        return dict(_backend_chooser[-1].config_for(folder))
    return {}


def database_url(folder: Path) -> str:
    """The database of the app made for ``folder``: a SQLite file in it, or the chooser's database."""
    if _chooser:
        return _chooser[-1].url_for(folder)
    return f"sqlite:///{folder}/scim.db"


def make_app(tmp_path: Path, **config: Any) -> Flask:
    """A standalone app on a fresh database for ``tmp_path``, its schema migrated, no environment variables read.

    SQLite (a file in ``tmp_path``) by default; PostgreSQL in the PostgreSQL variant of the API tests;
    the SQLite file plus a fresh LDAP subtree in the LDAP variant. Explicit settings win.
    """
    if "SCIM_DATABASE_URL" not in config:
        config["SCIM_DATABASE_URL"] = database_url(tmp_path)
    if "SCIM_BACKEND" not in config:
        for key, value in backend_config(tmp_path).items():
            config.setdefault(key, value)
    values = {"SCIM_LOG_LEVEL": "WARNING", **config}
    app = create_app(values, environ={})
    app.config["TESTING"] = True
    get_state(app).upgrade()
    return app


class Scim:
    """A SCIM client for one organization's token over the Flask test client.

    On a backend that declares a limit (``capabilities``; docs/plugins.md, "Capabilities"), a request
    that runs into it skips the test, as the conformance kit does: a ``cursor`` request when the backend
    declares ``cursor=False`` skips before it is sent; a filter or sortBy refused with 400
    (``invalidFilter``/``invalidValue``) skips only when the backend declares exactly that path and
    operator unsupported, and a 409 on a Group only when it declares unique group displayNames. The skip
    reason is the declaration and the server's answer. Any other refusal is returned to the test, which
    fails on it; a declared limit never excuses a wrong answer.
    """

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
        query = _query_of(path, kw.get("query_string"), body)
        backend = get_state(self.client.application).backend
        from scim_service.testing.kit import requirements as kit

        no_cursor = kit.requires.cursor.unmet(backend) if "cursor" in query else None
        if no_cursor:
            import pytest

            pytest.skip(f"{no_cursor} (the test pages with cursors)")
        response = self.client.open(self.base + path, method=method, **kwargs)
        if response.status_code in (400, 409):
            why = declared_refusal(self.client.application, method, path, query, response)
            if why:
                import pytest

                pytest.skip(why)
        return response

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


def _query_of(path: str, query_string: Any, body: Any) -> dict[str, str]:
    """The query parameters of a request (its URL, ``query_string`` and a /.search body), by lower-cased name."""
    found: dict[str, str] = {}
    if "?" in path:
        found.update(urllib.parse.parse_qsl(path.partition("?")[2], keep_blank_values=True))
    if isinstance(query_string, str):
        found.update(urllib.parse.parse_qsl(query_string.lstrip("?"), keep_blank_values=True))
    elif isinstance(query_string, dict):
        found.update({str(k): str(v) for k, v in query_string.items()})
    if path.partition("?")[0].endswith("/.search") and isinstance(body, dict):
        found.update({str(k): str(v) for k, v in body.items() if k in ("filter", "sortBy")})
    return {k.lower() if k.lower() in ("filter", "sortby", "cursor") else k: v for k, v in found.items()}


def declared_refusal(app: Flask, method: str, path: str, query: dict[str, str], response: Any) -> str | None:
    """Why ``response`` (a 400 or 409) is a refusal the app's backend declares, or None when it declares none.

    A 400 ``invalidFilter`` to a filter with a path and operator the backend declares it cannot evaluate,
    a 400 ``invalidValue`` to a sortBy it declares it cannot sort by, a 409 on /Groups when it declares
    unique group displayNames.
    """
    from scim_service.query.parser import parse_attr_path, parse_filter
    from scim_service.query.resolve import resolve_filter, resolve_path
    from scim_service.testing.kit import requirements as kit

    state = get_state(app)
    backend = state.backend
    route = path.partition("?")[0].strip("/").split("/")[0]
    resource = {"Users": "User", "Groups": "Group"}.get(route)
    if resource is None:
        return None
    definition = state.user_resource if resource == "User" else state.group_resource
    try:
        body = response.get_json(silent=True) or {}
    except Exception:  # not JSON: not a SCIM refusal
        return None
    asked = "".join(f" {k}={v!r}" for k, v in query.items() if k in ("filter", "sortby"))
    answer = f"{method.upper()} /{route}{asked}: the server answered {response.status_code} {body.get('scimType')}"
    answer += f": {body.get('detail')}"
    why = None
    try:
        if response.status_code == 400 and body.get("scimType") == "invalidFilter" and query.get("filter"):
            why = kit.declared_filter_refusal(
                backend, resource, resolve_filter(parse_filter(query["filter"]), definition)
            )
        elif response.status_code == 400 and body.get("scimType") == "invalidValue" and query.get("sortby"):
            why = kit.declared_sort_refusal(
                backend, resource, resolve_path(parse_attr_path(query["sortby"]), definition)
            )
    except Exception:  # a filter or sortBy that does not parse or resolve is the test's own error case
        return None
    return f"{why}; {answer}" if why else None


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


def backend_name(app: Flask) -> str:
    """The name of the app's backend (``sql``, ``ldap``, ...)."""
    return get_state(app).backend.name


def requires(
    app: Flask,
    *,
    filter: str | None = None,
    resource: str = "User",
    sort: str | None = None,
    cursor: bool = False,
) -> None:
    """Skip the test when the app's backend declares it cannot do what the test is about to use.

    ``filter`` is a filter of ``resource`` (``'emails[type eq "work"]'``; every path and operator in
    it is looked up in ``capabilities.filter_operators``), ``sort`` a sortBy path (looked up
    in ``capabilities.sort_attributes``) and ``cursor`` cursor paging (``capabilities.cursor``). The
    skip reason is the backend's declaration, as the conformance kit words it (docs/plugins.md,
    "Capabilities"); a backend that declares nothing
    against the feature runs the test, so an undeclared refusal fails it.
    """
    from scim_service.query.parser import parse_attr_path, parse_filter
    from scim_service.query.resolve import resolve_filter, resolve_path
    from scim_service.testing.kit import requirements as kit

    state = get_state(app)
    backend = state.backend
    definition = state.user_resource if resource == "User" else state.group_resource
    reasons: list[str] = []
    if filter is not None:
        why = kit.declared_filter_refusal(backend, resource, resolve_filter(parse_filter(filter), definition))
        if why:
            reasons.append(f"{why} (filter {filter!r})")
    if sort is not None:
        why = kit.declared_sort_refusal(backend, resource, resolve_path(parse_attr_path(sort), definition))
        if why:
            reasons.append(why)
    if cursor:
        reasons += kit.unmet(backend, [kit.requires.cursor])
    if reasons:
        import pytest

        pytest.skip("; ".join(reasons))
