"""What every endpoint module shares: the request's state, caller and JSON body, and SCIM responses.

:func:`json_body` is the one place a request body is turned into JSON (a depth limit or other checks
of raw input belong there). The endpoint modules (``resources.py``, ``bulk.py``, ``discovery.py``)
import these helpers; ``blueprint.py`` assembles them into a blueprint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import Response, current_app, g, request

from scim_service.errors import InvalidSyntax, MethodNotAllowed, ScimError
from scim_service.hookspecs import Principal
from scim_service.safejson import load_json
from scim_service.state import ScimState, get_state

SCIM_MEDIA_TYPE = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

# The endpoint names of RFC 7644 §3.2, by lower-case name: a client may write them in any case
# (Microsoft's validator sends /users), so the blueprint's catch-all maps them to the routed spelling.
ENDPOINTS = {
    name.lower(): name
    for name in ("Users", "Groups", "Me", "ServiceProviderConfig", "Schemas", "ResourceTypes", "Bulk")
}


def canonical_path(rest: str) -> str:
    """``rest`` (a path below the base path, without its leading slash) with its first segment spelt
    as the endpoint is routed (``users/42`` -> ``Users/42``); unchanged when it names no endpoint."""
    head, sep, tail = rest.partition("/")
    return ENDPOINTS.get(head.lower(), head) + sep + tail


def state() -> ScimState:
    """The scim-service state of the current app."""
    return get_state(current_app)


def principal() -> Principal:
    """The authenticated caller of this request."""
    return g.scim_principal


def base_url() -> str:
    """Absolute URL of the SCIM root, without a trailing slash (for meta.location, Location and $ref).

    ``SCIM_PUBLIC_URL`` when set: the Host header is the client's to choose, and reflecting it lets
    anyone make the service hand out links to a host of their own.
    """
    st = state()
    public = st.config.get("SCIM_PUBLIC_URL")
    if public:
        return str(public) + st.base_path
    return request.host_url.rstrip("/") + request.script_root + st.base_path


def scim_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response with the SCIM media type."""
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
    response = Response(body, status=status, mimetype=SCIM_MEDIA_TYPE)
    # Identity data and errors are per caller: no shared or browser cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_body(error: ScimError) -> dict[str, Any]:
    """The RFC 7644 §3.12 error document."""
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(error.status), "detail": error.detail}
    if error.scim_type:
        body["scimType"] = error.scim_type
    return body


def error_response(error: ScimError) -> Response:
    """An error response; 401 carries the Bearer challenge (RFC 6750 §3)."""
    body = error_body(error)
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if error.status == 401 else {}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allowed)
    g.scim_error = error
    return scim_response(body, error.status, headers)


def json_body() -> Any:
    """The parsed request body: the one place a request's JSON is loaded.

    JSON is accepted under application/scim+json, application/json or no content type at all (several
    IdPs omit it); a body that is not JSON, too deep or with duplicate names is invalidSyntax, one with a
    lone surrogate invalidValue (:func:`scim_service.safejson.load_json`).
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidSyntax("The request has no body; a JSON object was expected.")
    return load_json(raw)


def if_match() -> str | None:
    """The version named by If-Match (weak or strong ETag, or ``*``), or None."""
    return _etag_value(request.headers.get("If-Match"))


def if_none_match() -> str | None:
    """The version named by If-None-Match, or None."""
    return _etag_value(request.headers.get("If-None-Match"))


def _etag_value(header: str | None) -> str | None:
    if header is None or not header.strip():
        return None
    value = header.split(",")[0].strip()
    if value == "*":
        return "*"
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def dispatch(handlers: Mapping[str, Callable[..., Response]], **kwargs: Any) -> Response:
    """Call the handler of the request's method, or answer 405 in SCIM form."""
    handler = handlers.get(request.method)
    if handler is None:
        raise MethodNotAllowed(request.method, handlers)
    return handler(**kwargs)
