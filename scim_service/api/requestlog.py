"""One record per SCIM request: the request id, the provisioning log entry and the service log line.

The blueprint calls :func:`begin` first thing in ``before_request``, :func:`authentication_failed`
when no plugin authenticates the caller, and :func:`finish` in ``after_request``.

* Request id: the client's (or proxy's) ``X-Request-Id`` when it is short and made of safe
  characters, else a new random one; it is returned as ``X-Request-Id``, stored in the log entry and
  printed on the log line, so one id finds a request in the proxy's log, ours and the database.
* Failed authentications are counted per client address in the service database
  (:meth:`~scim_service.servicedb.store.ServiceStore.record_auth_failure`), which also files them in
  the provisioning log, one entry per address and window with a count. Past the limit the answer is
  429 with ``Retry-After``.
* Every other request gets its own provisioning log entry (``SCIM_PROVISIONING_LOG``).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Response, current_app, g, request

from scim_service.api.http import canonical_path
from scim_service.errors import ScimError, TooManyRequests, Unauthorized, Unavailable
from scim_service.hookspecs import Principal
from scim_service.safejson import load_json
from scim_service.servicedb.store import LogEntry, TokenRefused
from scim_service.state import get_state

REQUEST_ID_HEADER = "X-Request-Id"
# Letters, digits and . _ : - up to 64 characters (UUIDs, trace ids, AWS/nginx ids): nothing that
# could break a log line or a header.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Request and response bodies are read for the userName only up to this size.
_USER_NAME_BODY_MAX = 65_536

log = logging.getLogger("scim_service.request")
# A credential some clients put in the URL (RFC 6750 §2.3): never stored or printed in clear.
_SECRET_PARAM_RE = re.compile(r"(?i)([?&](?:access_token|token|password|secret)=)[^&#]*")


def redact_query(path: str) -> str:
    """``path`` with the values of ``access_token`` (and other secret-named) query parameters replaced
    by ``[redacted]``: what the provisioning log stores and the request log line prints."""
    return _SECRET_PARAM_RE.sub(r"\1[redacted]", path)


def request_id_of(header: str | None) -> str:
    """The request id to use: the given one when it is valid, else a new random one."""
    if header is not None:
        value = header.strip()
        if REQUEST_ID_RE.match(value):
            return value
    return uuid.uuid4().hex


def request_id() -> str:
    """The id of the current request."""
    rid = g.get("scim_request_id")
    if rid is None:
        rid = g.scim_request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    return str(rid)


def begin() -> None:
    """Start the request's clock and fix its id."""
    g.scim_started = time.perf_counter()
    g.scim_request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    g.scim_logged = False


def authentication_failed(refused: Unauthorized) -> ScimError:
    """Count and log a failed authentication; return the error to answer with: ``refused`` (401), or
    429 with ``Retry-After`` once the client's address is over ``SCIM_AUTH_FAILURE_LIMIT`` in the window."""
    st = get_state(current_app)
    g.scim_error = refused
    entry = _entry(401, refused, None)
    try:
        outcome = st.store.record_auth_failure(
            entry,
            limit=int(st.config["SCIM_AUTH_FAILURE_LIMIT"]),
            window=st.config["SCIM_AUTH_FAILURE_WINDOW"],
            log_entry=bool(st.config.get("SCIM_PROVISIONING_LOG")),
        )
    except ScimError as failure:  # the database is away: answer the 401 anyway
        log.warning("could not count the failed authentication: %s", failure.detail)
        return refused
    g.scim_logged = True
    if not outcome.limited:
        return refused
    return TooManyRequests(
        f"Too many failed authentications from this address ({outcome.failures} in the current window); "
        f"retry after {outcome.retry_after} seconds with a valid token.",
        retry_after=outcome.retry_after,
    )


def finish(response: Response) -> Response:
    """Add the request id (and ``Retry-After``) to the response, write the log entry unless it was
    written already, and print the request's log line."""
    st = get_state(current_app)
    rid = request_id()
    response.headers[REQUEST_ID_HEADER] = rid
    error: ScimError | None = g.get("scim_error")
    if isinstance(error, TooManyRequests | Unavailable):
        response.headers["Retry-After"] = str(error.retry_after)
    entry = _entry(response.status_code, error, g.get("scim_principal"), response)
    if st.config.get("SCIM_PROVISIONING_LOG") and not g.get("scim_logged"):
        try:
            st.store.record(entry)
        except ScimError as failure:  # the database is away: the request's own answer already says so
            log.warning("could not write the provisioning log entry: %s", failure.detail)
        except Exception:  # the log must never turn a served request into a failure
            log.exception("could not write the provisioning log entry")
    _log_line(entry, _org_name(g.get("scim_principal"), error))
    return response


def _entry(status: int, error: ScimError | None, who: Principal | None, response: Response | None = None) -> LogEntry:
    st = get_state(current_app)
    started = g.get("scim_started", time.perf_counter())
    resource_type, resource_id = _resource_of(request.path[len(request.script_root + st.base_path) :])
    one_resource = resource_id is not None or request.method == "POST"  # not a list, not a search
    if resource_id is None and response is not None and response.status_code == 201:
        resource_id = _created_id(response)
    org_id = who.tenant.id if who else None
    token_id = who.token_id if who else None
    if isinstance(error, TokenRefused):  # a known but revoked or expired token: file it under its org
        org_id, token_id = error.tenant.id, error.token_id
    profile = g.get("scim_profile")
    return LogEntry(
        org_id=org_id,
        token_id=token_id,
        method=request.method,
        path=redact_query(request.full_path.rstrip("?")),
        resource_type=resource_type,
        resource_id=resource_id,
        status=status,
        scim_type=error.scim_type if error else None,
        detail=error.detail if error else None,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        user_agent=request.headers.get("User-Agent"),
        client=request.remote_addr,
        # The IdP profile's tolerances this request needed (set by the resource handlers).
        tolerances=profile.summary() if profile is not None else None,
        request_id=request_id(),
        user_name=_user_name(resource_type, response if one_resource else None) if who else None,
    )


def _user_name(resource_type: str | None, response: Response | None) -> str | None:
    """The userName a /Users request was about: from its body (POST, PUT) or its answer when that is
    one user (``response`` None: a list or a search, whose answer names no single user)."""
    if resource_type != "Users":
        return None
    found = _user_name_in(request.get_data(cache=True) if request.content_length else b"")
    if found is None and response is not None and response.is_json and not response.is_streamed:
        found = _user_name_in(response.get_data(), ours=True)
    return found


def _user_name_in(raw: bytes, *, ours: bool = False) -> str | None:
    if not raw or len(raw) > _USER_NAME_BODY_MAX or b'"userName"' not in raw:
        return None
    try:
        # A client's body goes through the guarded loader (one the request was refused for, with a
        # lone surrogate, names no one); our own answer is plain JSON we wrote, and the C parser
        # reads it in a fraction of the guarded walk (docs/performance.md).
        doc: Any = json.loads(raw) if ours else load_json(raw)
    except (ScimError, ValueError):
        return None
    value = doc.get("userName") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value else None


def _org_name(who: Principal | None, error: ScimError | None) -> str | None:
    if who is not None:
        return who.tenant.name
    if isinstance(error, TokenRefused):
        return error.tenant.name
    return None


def _log_line(entry: LogEntry, org: str | None) -> None:
    fields = {
        "request_id": entry.request_id,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "scim_type": entry.scim_type,
        "duration_ms": entry.duration_ms,
        "org": org,
        "token_id": entry.token_id,
        "client": entry.client,
        "user_name": entry.user_name,
        "detail": entry.detail,
        "tolerances": entry.tolerances,
    }
    text = (
        f"{entry.method} {entry.path} {entry.status}{' ' + entry.scim_type if entry.scim_type else ''} "
        f"{entry.duration_ms:.0f}ms request_id={entry.request_id} org={org or '-'} token={entry.token_id or '-'} "
        f"client={entry.client or '-'}"
    )
    if entry.detail:
        text += f" detail={json.dumps(entry.detail, ensure_ascii=False)}"
    level = logging.WARNING if entry.status >= 500 else logging.INFO
    log.log(level, "%s", text, extra={"scim": {"event": "request", **fields}})


def _resource_of(rest: str) -> tuple[str | None, str | None]:
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return None, None
    kind = canonical_path(parts[0])
    ident = parts[1] if len(parts) > 1 and not parts[1].startswith(".") else None
    return kind, ident


def _created_id(response: Response) -> str | None:
    location = response.headers.get("Location")
    return location.rsplit("/", 1)[-1] if location else None
