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

import io
import logging

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed

from scim_service.api import bulk, discovery, requestlog, resources
from scim_service.api.http import METHODS, canonical_path, error_response, state
from scim_service.errors import (
    MethodNotAllowed,
    NotFound,
    NotMigrated,
    PayloadTooLarge,
    ScimError,
    Unauthorized,
    Unavailable,
)
from scim_service.hookspecs import AuthRequest

BLUEPRINT_NAME = "scim"

log = logging.getLogger("scim_service.api")


def create_blueprint() -> Blueprint:
    """A new SCIM blueprint with every route, request hook and error handler; register it once per app."""
    bp = Blueprint(BLUEPRINT_NAME, __name__)
    bp.before_app_request(_routing_error)
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


def _routing_error() -> Response | None:
    """A request under the base path that no route takes (TRACE or another unknown method, ``//Users``
    which werkzeug would redirect with an HTML 308) gets a SCIM error; elsewhere the host app's own.

    Flask raises routing errors before any blueprint hook or handler runs, so this is an app-level
    hook; it answers only for paths under the base path."""
    failure = request.routing_exception
    base = state().base_path
    if failure is None or not (request.path == base or request.path.startswith(base + "/")):
        return None
    if isinstance(failure, WerkzeugMethodNotAllowed):
        return error_response(_method_not_allowed(failure))
    return error_response(NotFound(f"No SCIM endpoint at '{request.path[len(base) :]}'."))


def _method_not_allowed(failure: WerkzeugMethodNotAllowed) -> MethodNotAllowed:
    """The 405 of a method no SCIM route takes (TRACE, an unknown one), naming the endpoint's own methods.

    Every SCIM view starts with :func:`~scim_service.api.http.dispatch`, whose handler table is the one
    place an endpoint's methods are written; called with a method it has no handler for, it raises the
    405 before anything runs, so the view is asked rather than a second list kept here."""
    try:
        endpoint, args = current_app.url_map.bind_to_environ(request.environ).match(method="GET")
    except HTTPException:
        endpoint, args = "", {}
    view = current_app.view_functions.get(endpoint)
    if view is not None and endpoint.startswith(BLUEPRINT_NAME + "."):
        try:
            view(**args)
        except MethodNotAllowed as error:
            return error
    return MethodNotAllowed(request.method, failure.valid_methods or METHODS)


def _authenticate() -> None:
    requestlog.begin()
    g.scim_principal = None
    g.scim_error = None
    st = state()
    st.require_service_tables()  # an unmigrated database: a 503 saying what to run, not a 500 per query
    # /Bulk has its own, advertised limit (maxPayloadSize); every other endpoint the general one.
    is_bulk = canonical_path(request.path[len(st.base_path) + 1 :]) == "Bulk"
    limit_key = "SCIM_BULK_MAX_PAYLOAD_BYTES" if is_bulk else "SCIM_MAX_BODY_BYTES"
    limit = st.config[limit_key]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        _read_chunked_body(limit)
    auth_request = AuthRequest(
        method=request.method,
        path=request.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        remote_addr=request.remote_addr,
    )
    try:
        found = st.pm.hook.scim_authenticate(request=auth_request, config=st.config)
        if found is None:
            raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")
    except Unauthorized as refused:  # counted per client address; past the limit a 429
        raise requestlog.authentication_failed(refused) from None
    g.scim_principal = found


def _read_chunked_body(limit: int) -> None:
    """A chunked body (no Content-Length; the server ends the stream) is read here, at most ``limit``
    bytes and one more to tell it is too long: a 413 at the limit, however much the client sends.

    werkzeug's own cap only truncates such a stream, so the body read is handed back as a stream of
    known length for the handlers."""
    stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(65_536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    body = b"".join(chunks)
    request.environ["wsgi.input"] = io.BytesIO(body)
    request.environ["CONTENT_LENGTH"] = str(len(body))
    request.environ.pop("HTTP_TRANSFER_ENCODING", None)
    request.__dict__.pop("content_length", None)  # werkzeug caches it; it is known now


def _record(response: Response) -> Response:
    return requestlog.finish(response)


def _scim_error(error: ScimError) -> Response:
    if error.status >= 500 and g.get("scim_principal") is None and not isinstance(error, NotMigrated):
        # An unauthenticated caller learns nothing of the storage (host, port, driver text); the operator's
        # log keeps the real reason.
        log.warning(
            "%s %s answered %s before authentication: %s", request.method, request.path, error.status, error.detail
        )
        error.detail = (
            "The database or directory is unavailable; retry later."
            if isinstance(error, Unavailable)
            else "The service is temporarily unavailable; retry later."
        )
    profile = g.get("scim_profile")
    hint = profile.refusal_hint() if profile is not None and error.status == 400 else None
    if hint and hint not in error.detail:
        # A 400 that another profile would have accepted says so: the admin's fix is one setting away.
        error.detail = f"{error.detail} {hint}"
    return error_response(error)


def _unexpected(error: Exception) -> Response:
    # A bug must still answer in SCIM form, without a stack trace; the trace goes to the log.
    if isinstance(error, HTTPException):
        return error_response(ScimError(error.description or error.name, status=error.code or 500))
    log.exception("unexpected error serving %s %s", request.method, request.path)
    return error_response(ScimError("Internal server error; the request was not applied.", status=500))


def _unknown(rest: str = "") -> Response:
    """No route matched: an endpoint written in another case (``/users``, ``/GROUPS/42``) is served by
    its route; anything else is a SCIM 404."""
    canonical = canonical_path(rest)
    if canonical != rest:
        prefix = request.path[: len(request.path) - len(rest)]
        adapter = current_app.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match(prefix + canonical, method=request.method)
        except HTTPException:
            endpoint, args = None, {}
        view = current_app.view_functions.get(endpoint) if endpoint else None
        if view is not None and not endpoint.endswith("._unknown"):
            return view(**args)
    raise NotFound(f"No SCIM endpoint at '/{rest}'.")
