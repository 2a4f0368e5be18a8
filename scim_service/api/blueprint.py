"""The SCIM blueprint, built fresh per app: authentication, body limits, SCIM error responses, the log.

:func:`create_blueprint` assembles a new :class:`~flask.Blueprint` each time it is called: the request
hooks and error handlers below, then the routes of ``resources.py``, ``bulk.py`` and ``discovery.py``
(each module's ``add_routes``). Nothing is registered when a module is imported, so two apps in one
process each get their own blueprint.

Error handlers live on the blueprint only, so a host app's own error pages stay untouched. Routing
errors (an unknown path or method under the base path) never reach blueprint handlers in Flask, so the
blueprint owns a catch-all route and dispatches methods itself to answer them in SCIM form.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, g, request

from scim_service.api import bulk, discovery, resources
from scim_service.api.http import METHODS, error_response, state
from scim_service.errors import NotFound, PayloadTooLarge, ScimError, Unauthorized
from scim_service.hookspecs import AuthRequest, Principal
from scim_service.servicedb.store import LogEntry

BLUEPRINT_NAME = "scim"

log = logging.getLogger("scim_service.api")


def create_blueprint() -> Blueprint:
    """A new SCIM blueprint with every route, request hook and error handler; register it once per app."""
    bp = Blueprint(BLUEPRINT_NAME, __name__)
    bp.before_request(_authenticate)
    bp.after_request(_record)
    bp.register_error_handler(ScimError, _scim_error)
    bp.register_error_handler(Exception, _unexpected)
    resources.add_routes(bp)
    bulk.add_routes(bp)
    discovery.add_routes(bp)
    # Last, so that every real endpoint is matched before it.
    bp.add_url_rule("/", "_unknown", _unknown, methods=METHODS)
    bp.add_url_rule("/<path:rest>", "_unknown", _unknown, methods=METHODS)
    return bp


# -- request life ---------------------------------------------------------------------------------------


def _authenticate() -> None:
    g.scim_started = time.perf_counter()
    g.scim_principal = None
    g.scim_error = None
    st = state()
    # /Bulk has its own, advertised limit (maxPayloadSize); every other endpoint the general one.
    limit_key = "SCIM_BULK_MAX_PAYLOAD_BYTES" if request.endpoint == f"{BLUEPRINT_NAME}.bulk" else "SCIM_MAX_BODY_BYTES"
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


def _scim_error(error: ScimError) -> Response:
    return error_response(error)


def _unexpected(error: Exception) -> Response:
    # A bug must still answer in SCIM form, without a stack trace; the trace goes to the log.
    from werkzeug.exceptions import HTTPException

    if isinstance(error, HTTPException):
        return error_response(ScimError(error.description or error.name, status=error.code or 500))
    log.exception("unexpected error serving %s %s", request.method, request.path)
    return error_response(ScimError("Internal server error; the request was not applied.", status=500))


def _unknown(rest: str = "") -> Response:
    raise NotFound(f"No SCIM endpoint at '/{rest}'.")
