"""The admin web page: organizations and seats, tokens, the provisioning log, the troubleshooting guide.

Server-rendered Jinja templates, no JavaScript. Every page needs an administrator: one the host app's
``scim_admin_authenticate`` hook names, or one who logged in with ``SCIM_ADMIN_PASSWORD``. A SCIM
bearer token never opens it: nothing here looks at the Authorization header. Every form carries the
session's CSRF token and a POST without it changes nothing. Each change an administrator makes is
written to the service log (logger ``scim_service.admin``) with the administrator's name.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from scim_service.admin.session import COOKIE_NAME, AdminSession, SessionCodec, password_matches
from scim_service.admin.troubleshooting import guide
from scim_service.hookspecs import AuthRequest
from scim_service.ops.metrics import uninstrumented
from scim_service.servicedb.store import AdminError, LogEntry
from scim_service.state import ScimState, get_state

ADMIN_KEY = "scim_admin"
PASSWORD_USER = "admin"  # the name a password login is known by in the service log
LOG_PAGE_SIZES = (50, 100, 200, 500)

log = logging.getLogger("scim_service.admin")


# Pages reachable without an administrator.
OPEN_ENDPOINTS = frozenset({"scim_admin.login", "scim_admin.static"})


def _state() -> ScimState:
    return get_state(current_app)


def _codec() -> SessionCodec:
    return current_app.extensions[ADMIN_KEY]["codec"]


def _password() -> str | None:
    return current_app.extensions[ADMIN_KEY]["password"]


# -- who is asking ----------------------------------------------------------------------------------


def _host_admin() -> str | None:
    """The administrator the host app's hook names for this request, if any."""
    st = _state()
    auth_request = AuthRequest(
        method=request.method,
        path=request.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        remote_addr=request.remote_addr,
    )
    found = st.pm.hook.scim_admin_authenticate(request=auth_request, config=st.config)
    return str(found) if found else None


def _require_admin() -> Response | None:
    session = _codec().load(request.cookies.get(COOKIE_NAME))
    g.scim_admin_new_session = session is None
    g.scim_admin_session = session or AdminSession()
    g.scim_admin_user = _host_admin() or g.scim_admin_session.user
    if request.method == "POST" and not g.scim_admin_session.csrf_ok(request.form.get("csrf_token")):
        # A form from another site, or from a session that has since expired: change nothing.
        return _page("denied.html", 400, reason="The form has expired or did not come from this page. Reload it.")
    if request.endpoint in OPEN_ENDPOINTS or g.scim_admin_user:
        return None
    if _password():
        return redirect(url_for("scim_admin.login", next=request.full_path.rstrip("?")))
    return _page("denied.html", 403, reason="The host application did not admit you to this page.")


def _harden(response: Response) -> Response:
    # Admin pages are never cached, framed, or given scripts to run.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    session: AdminSession | None = g.get("scim_admin_session")
    if session is not None and (g.get("scim_admin_new_session") or g.get("scim_admin_session_changed")):
        response.set_cookie(
            COOKIE_NAME,
            _codec().dump(session),
            max_age=_codec().max_age,
            path=url_for("scim_admin.orgs").rstrip("/") or "/",
            secure=request.is_secure,
            httponly=True,
            samesite="Strict",
        )
    return response


def _set_session(session: AdminSession) -> None:
    g.scim_admin_session = session
    g.scim_admin_session_changed = True


def _page(template: str, status: int = 200, **context: Any) -> Response:
    body = render_template(
        f"scim_admin/{template}",
        csrf_token=g.scim_admin_session.csrf,
        admin_user=g.get("scim_admin_user"),
        password_login=bool(_password()),
        **context,
    )
    return Response(body, status=status, mimetype="text/html")


def _local_next(target: str | None) -> str:
    """Where to go after a login: only a path of this admin page, never another site."""
    home = url_for("scim_admin.orgs")
    if not target:
        return home
    parts = urlsplit(target)
    prefix = home.rstrip("/")
    if parts.scheme or parts.netloc or not parts.path.startswith(prefix) or target.startswith("//"):
        return home
    return target


# -- login ------------------------------------------------------------------------------------------


def login() -> Response:
    """The password form; a right password starts a session with a fresh CSRF token."""
    if not _password():
        return _page("denied.html", 404, reason="Password login is not enabled (SCIM_ADMIN_PASSWORD).")
    if request.method == "GET" and g.scim_admin_user:
        return redirect(_local_next(request.args.get("next")), code=303)
    error = None
    if request.method == "POST":
        if password_matches(request.form.get("password"), _password()):
            _set_session(g.scim_admin_session.logged_in(PASSWORD_USER))
            log.info("admin login from %s", request.remote_addr)
            return redirect(_local_next(request.form.get("next")), code=303)
        log.warning("failed admin login from %s", request.remote_addr)
        error = "That password is not right."
    return _page("login.html", 401 if error else 200, error=error, next=request.values.get("next", ""))


def logout() -> Response:
    """End the password session (a host-admitted administrator logs out of the host)."""
    _set_session(AdminSession())
    return redirect(url_for("scim_admin.login" if _password() else "scim_admin.orgs"), code=303)


# -- organizations and tokens -----------------------------------------------------------------------


def orgs() -> Response:
    """Every organization with its seats used of maxSeats, policies and IdP profile."""
    st = _state()
    backend = uninstrumented(st.backend)
    profiles = st.store.profiles()
    rows = []
    for tenant in st.store.list_orgs():
        try:
            used: int | None = backend.count_seats(tenant)
            error = None
        except Exception as exc:  # one organization's store failing must not hide the others
            used, error = None, getattr(exc, "detail", None) or type(exc).__name__
        limit = tenant.max_seats
        full = used is not None and limit is not None and used >= limit
        percent = 100 if full else (round(100 * used / limit) if used is not None and limit else 0)
        rows.append(
            {
                "tenant": tenant,
                "used": used,
                "error": error,
                "profile": profiles.get(tenant.name, "auto"),
                "full": full,
                "percent": percent,
            }
        )
    return _page("orgs.html", orgs=rows)


def _tokens_page(org: str, status: int = 200, **context: Any) -> Response:
    st = _state()
    try:
        tenant = st.store.get_org(org)
        tokens = st.store.list_tokens(org)
    except AdminError as exc:
        return _page("denied.html", 404, reason=str(exc))
    return _page("tokens.html", status, org=tenant, tokens=tokens, **context)


def tokens(org: str) -> Response:
    """The organization's tokens: ids, descriptions, creation, last use and revocation."""
    done = request.args.get("done")
    return _tokens_page(org, notice=done)


def create_token(org: str) -> Response:
    """Create a token; the page shows it this once (it is stored only as a hash)."""
    description = (request.form.get("description") or "").strip() or None
    try:
        token_id, token = _state().store.create_token(org, description=description)
    except AdminError as exc:
        return _tokens_page(org, 400, error=str(exc))
    log.info("admin %s created token %s for organization %s", g.scim_admin_user, token_id, org)
    return _tokens_page(org, 201, created={"id": token_id, "token": token})


def revoke_token(token_id: str) -> Response:
    """Revoke a token: every worker refuses it from its next request."""
    try:
        info = _state().store.revoke_token(token_id)
    except AdminError as exc:
        return _page("denied.html", 404, reason=str(exc))
    log.info("admin %s revoked token %s of organization %s", g.scim_admin_user, token_id, info.org_name)
    return redirect(url_for("scim_admin.tokens", org=info.org_name, done=f"Token {token_id} revoked."), code=303)


# -- the provisioning log and the guide -------------------------------------------------------------


def _log_filters() -> dict[str, Any]:
    args = request.args
    try:
        limit = int(args.get("limit") or LOG_PAGE_SIZES[0])
    except ValueError:
        limit = LOG_PAGE_SIZES[0]
    return {
        "org": (args.get("org") or "").strip(),
        "errors": args.get("errors") == "1",
        "limit": limit if limit in LOG_PAGE_SIZES else LOG_PAGE_SIZES[0],
    }


def provisioning_log() -> Response:
    """The provisioning log, newest first, with the CLI's filters; failed lines link to the guide."""
    st = _state()
    filters = _log_filters()
    error = None
    entries: list[LogEntry] = []
    try:
        entries = st.store.recent_log(
            org_name=filters["org"] or None, limit=filters["limit"], errors_only=filters["errors"]
        )
    except AdminError as exc:
        error = str(exc)
    the_guide = guide()
    rows = [
        {"entry": e, "help": the_guide.entry_for(e.status, e.scim_type) if e.status >= 400 else None} for e in entries
    ]
    return _page(
        "log.html",
        400 if error else 200,
        rows=rows,
        filters=filters,
        error=error,
        page_sizes=LOG_PAGE_SIZES,
        org_names=[t.name for t in st.store.list_orgs()],
    )


def troubleshooting() -> Response:
    """The troubleshooting guide (docs/troubleshooting.md), each table row an anchor."""
    return _page("troubleshooting.html", guide=guide())


def create_blueprint() -> Blueprint:
    """A fresh admin blueprint (one per app, like the SCIM blueprint): its pages, templates and stylesheet."""
    bp = Blueprint("scim_admin", __name__, template_folder="templates", static_folder="static")
    bp.before_request(_require_admin)
    bp.after_request(_harden)
    bp.add_url_rule("/login", view_func=login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", view_func=logout, methods=["POST"])
    bp.add_url_rule("/", view_func=orgs, methods=["GET"])
    bp.add_url_rule("/orgs/<org>/tokens", view_func=tokens, methods=["GET"])
    bp.add_url_rule("/orgs/<org>/tokens", view_func=create_token, methods=["POST"])
    bp.add_url_rule("/tokens/<token_id>/revoke", view_func=revoke_token, methods=["POST"])
    bp.add_url_rule("/log", view_func=provisioning_log, methods=["GET"])
    bp.add_url_rule("/troubleshooting", view_func=troubleshooting, methods=["GET"])
    return bp
