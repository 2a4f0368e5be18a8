"""The SCIM blueprint: authentication, content negotiation, SCIM error responses, the provisioning log.

Error handlers live on the blueprint only, so a host app's own error pages stay untouched. Routing
errors (an unknown path or method under the base path) never reach blueprint handlers in Flask, so the
blueprint owns a catch-all route and dispatches methods itself to answer them in SCIM form.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from scim_service.errors import (
    InvalidSyntax,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ScimError,
    Unauthorized,
)
from scim_service.extension import ScimState, get_state
from scim_service.hookspecs import AuthRequest, Principal
from scim_service.servicedb.store import LogEntry

SCIM_MEDIA_TYPE = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

log = logging.getLogger("scim_service.api")

bp = Blueprint("scim", __name__)


# -- helpers the endpoint modules use ---------------------------------------------------------------


def state() -> ScimState:
    """The scim-service state of the current app."""
    return get_state(current_app)


def principal() -> Principal:
    """The authenticated caller of this request."""
    return g.scim_principal


def base_url() -> str:
    """Absolute URL of the SCIM root, without a trailing slash (for meta.location and $ref)."""
    return request.host_url.rstrip("/") + request.script_root + state().base_path


def scim_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response with the SCIM media type."""
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
    response = Response(body, status=status, mimetype=SCIM_MEDIA_TYPE)
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
    g.scim_error = error
    return scim_response(body, error.status, headers)


def json_body() -> Any:
    """The parsed request body. JSON is accepted under application/scim+json, application/json or
    no content type at all (several IdPs omit it); a body that is not JSON is invalidSyntax."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidSyntax("The request has no body; a JSON object was expected.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSyntax(f"The request body is not valid JSON: {exc}") from exc


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
        allowed = ", ".join(sorted(handlers))
        raise MethodNotAllowed(f"{request.method} is not allowed on this endpoint (allowed: {allowed}).")
    return handler(**kwargs)


# -- request life ---------------------------------------------------------------------------------------


@bp.before_request
def _authenticate() -> None:
    g.scim_started = time.perf_counter()
    g.scim_principal = None
    g.scim_error = None
    st = state()
    # /Bulk has its own, advertised limit (maxPayloadSize); every other endpoint the general one.
    limit_key = "SCIM_BULK_MAX_PAYLOAD_BYTES" if request.endpoint == "scim.bulk" else "SCIM_MAX_BODY_BYTES"
    if request.content_length is not None and request.content_length > st.config[limit_key]:
        raise PayloadTooLarge(f"The request body is larger than {st.config[limit_key]} bytes.")
    auth_request = AuthRequest(
        method=request.method,
        path=request.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        remote_addr=request.remote_addr,
    )
    found = st.pm.hook.scim_authenticate(request=auth_request, config=st.config)
    if found is None:
        raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")
    g.scim_principal = found


@bp.after_request
def _record(response: Response) -> Response:
    st = state()
    if not st.config.get("SCIM_PROVISIONING_LOG"):
        return response
    who: Principal | None = g.get("scim_principal")
    error: ScimError | None = g.get("scim_error")
    started = g.get("scim_started", time.perf_counter())
    resource_type, resource_id = _resource_of(request.path[len(request.script_root + st.base_path) :])
    if resource_id is None and response.status_code == 201:
        resource_id = _created_id(response)
    entry = LogEntry(
        org_id=who.tenant.id if who else None,
        token_id=who.token_id if who else None,
        method=request.method,
        path=request.full_path.rstrip("?"),
        resource_type=resource_type,
        resource_id=resource_id,
        status=response.status_code,
        scim_type=error.scim_type if error else None,
        detail=error.detail if error else None,
        duration_ms=int((time.perf_counter() - started) * 1000),
        user_agent=request.headers.get("User-Agent"),
        client=request.remote_addr,
        # The IdP profile's tolerances this request needed (set by the resource handlers).
        tolerances=profile.summary() if (profile := g.get("scim_profile")) is not None else None,
    )
    try:
        st.store.record(entry)
    except ScimError as failure:  # the database is away: the request's own answer already says so
        log.warning("could not write the provisioning log entry: %s", failure.detail)
    except Exception:  # the log must never turn a served request into a failure
        log.exception("could not write the provisioning log entry")
    log.info(
        "%s %s -> %s%s",
        request.method,
        request.full_path.rstrip("?"),
        response.status_code,
        f" {error.scim_type or ''} {error.detail}" if error else "",
    )
    return response


def _resource_of(rest: str) -> tuple[str | None, str | None]:
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return None, None
    kind = parts[0]
    ident = parts[1] if len(parts) > 1 and not parts[1].startswith(".") else None
    return kind, ident


def _created_id(response: Response) -> str | None:
    location = response.headers.get("Location")
    return location.rsplit("/", 1)[-1] if location else None


@bp.errorhandler(ScimError)
def _scim_error(error: ScimError) -> Response:
    return error_response(error)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    # A bug must still answer in SCIM form, without a stack trace; the trace goes to the log.
    from werkzeug.exceptions import HTTPException

    if isinstance(error, HTTPException):
        return error_response(ScimError(error.description or error.name, status=error.code or 500))
    log.exception("unexpected error serving %s %s", request.method, request.path)
    return error_response(ScimError("Internal server error; the request was not applied.", status=500))


@bp.route("/", methods=METHODS)
@bp.route("/<path:rest>", methods=METHODS)
def _unknown(rest: str = "") -> Response:
    raise NotFound(f"No SCIM endpoint at '/{rest}'.")
