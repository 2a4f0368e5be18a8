"""The admin web page: organizations and seats, tokens, the provisioning log, the troubleshooting guide.

Server-rendered Jinja templates, no JavaScript. Every page needs an administrator: one the host app's
``scim_admin_authenticate`` hook names, or one who logged in with ``SCIM_ADMIN_PASSWORD``. A SCIM
bearer token never opens it: nothing here looks at the Authorization header. Every form carries the
session's CSRF token and a POST without it changes nothing. Each change an administrator makes is
written to the service log (logger ``scim_service.admin``) with the administrator's name.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
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

from scim_service import operations
from scim_service.admin.session import COOKIE_NAME, AdminSession, SessionCodec, password_matches
from scim_service.admin.troubleshooting import guide
from scim_service.durations import format_duration, parse_duration, parse_when
from scim_service.errors import ScimError
from scim_service.hookspecs import AuthRequest
from scim_service.ops.metrics import uninstrumented
from scim_service.servicedb.store import AdminError, LogEntry, LogQuery
from scim_service.state import ScimState, get_state

ADMIN_KEY = "scim_admin"
PASSWORD_USER = "admin"  # the name a password login is known by in the service log
LOG_PAGE_SIZES = (50, 100, 200, 500)
DEFAULT_ROTATION_GRACE = "24h"

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
        retry_after = _count_login_attempt()
        if retry_after:
            response = _page(
                "login.html",
                429,
                error=f"Too many login attempts from your address; try again in {retry_after} seconds.",
                next=request.form.get("next", ""),
            )
            response.headers["Retry-After"] = str(retry_after)
            return response
        if password_matches(request.form.get("password"), _password()):
            _set_session(g.scim_admin_session.logged_in(PASSWORD_USER))
            log.info("admin login from %s", request.remote_addr)
            return redirect(_local_next(request.form.get("next")), code=303)
        log.warning("failed admin login from %s", request.remote_addr)
        error = "That password is not right."
    return _page("login.html", 401 if error else 200, error=error, next=request.values.get("next", ""))


def _count_login_attempt() -> int:
    """Count a login attempt against the address's failed-authentication budget; the seconds to wait
    when the address is over it (0: go on).

    Every attempt counts, before the password is checked: an address over the limit is refused even
    with the right password, or a guesser would learn the answer from the difference. The count is the
    one SCIM authentication uses (``SCIM_AUTH_FAILURE_LIMIT`` per ``SCIM_AUTH_FAILURE_WINDOW``, in the
    service database, so it holds across workers); nothing is written to the provisioning log.
    """
    st = _state()
    attempt = LogEntry(
        method="POST",
        path=request.path,
        status=401,
        detail="admin login attempt",
        client=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )
    try:
        outcome = st.store.record_auth_failure(
            attempt,
            limit=int(st.config["SCIM_AUTH_FAILURE_LIMIT"]),
            window=st.config["SCIM_AUTH_FAILURE_WINDOW"],
            log_entry=False,
        )
    except ScimError as exc:  # the database is away: the login cannot work anyway, and says why below
        log.warning("could not count an admin login attempt: %s", exc.detail)
        return 0
    if outcome.limited:
        log.warning("admin login attempts from %s over the limit (%d)", request.remote_addr, outcome.failures)
    return outcome.retry_after if outcome.limited else 0


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
    """The organization's tokens: id and visible prefix, description, creation, last use, expiry, state."""
    done = request.args.get("done")
    return _tokens_page(org, notice=done)


def _duration_field(name: str, default: str = "") -> timedelta | None:
    """A duration typed into a form (``90d``, ``24h``); None when left empty. ``AdminError`` if unreadable."""
    text = (request.form.get(name) or default).strip()
    if not text:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def create_token(org: str) -> Response:
    """Create a token, with an optional lifetime; the page shows it this once (it is stored only as a hash)."""
    description = (request.form.get("description") or "").strip() or None
    try:
        expires_in = _duration_field("expires_in")
        token_id, token = _state().store.create_token(org, description=description, expires_in=expires_in)
    except AdminError as exc:
        return _tokens_page(org, 400, error=str(exc))
    log.info("admin %s created token %s for organization %s", g.scim_admin_user, token_id, org)
    return _tokens_page(org, 201, created={"id": token_id, "token": token})


def rotate_token(token_id: str) -> Response:
    """Replace a token: the new one works now and is shown this once; the old one keeps working for
    the grace period (so the IdP can be updated) and is then revoked."""
    store = _state().store
    try:
        org = store.get_token(token_id).org_name
    except AdminError as exc:
        return _page("denied.html", 404, reason=str(exc))
    try:
        grace = _duration_field("grace", DEFAULT_ROTATION_GRACE) or timedelta(0)
        old, new_id, token = store.rotate_token(token_id, grace)
    except AdminError as exc:
        return _tokens_page(org, 400, error=str(exc))
    log.info(
        "admin %s rotated token %s of %s to %s (grace %s)",
        g.scim_admin_user,
        token_id,
        org,
        new_id,
        format_duration(grace),
    )
    ends = old.revoked_at.strftime("%Y-%m-%d %H:%M UTC") if old.revoked_at else "now"
    notice = f"Token {token_id} replaced by {new_id}; the old one stops working at {ends}."
    return _tokens_page(org, 201, created={"id": new_id, "token": token}, notice=notice)


def revoke_token(token_id: str) -> Response:
    """Revoke a token: every worker refuses it from its next request."""
    try:
        info = _state().store.revoke_token(token_id)
    except AdminError as exc:
        return _page("denied.html", 404, reason=str(exc))
    log.info("admin %s revoked token %s of organization %s", g.scim_admin_user, token_id, info.org_name)
    return redirect(url_for("scim_admin.tokens", org=info.org_name, done=f"Token {token_id} revoked."), code=303)


# -- the provisioning log and the guide -------------------------------------------------------------


def _log_query(now: datetime) -> tuple[dict[str, Any], LogQuery]:
    """The filters of the log form, as typed (to show them again) and as the store's query.

    The same filters as ``scim-service log``: organization, since/until (an ISO time or a duration
    ago), user (userName or id), status (``409``, ``4xx`` or ``error``), request id, failed only.
    ``AdminError`` names a filter that cannot be read.
    """
    args = request.args
    try:
        limit = int(args.get("limit") or LOG_PAGE_SIZES[0])
    except ValueError:
        limit = LOG_PAGE_SIZES[0]
    form = {
        "org": (args.get("org") or "").strip(),
        "since": (args.get("since") or "").strip(),
        "until": (args.get("until") or "").strip(),
        "user": (args.get("user") or "").strip(),
        "status": (args.get("status") or "").strip(),
        "request_id": (args.get("request_id") or "").strip(),
        "errors": args.get("errors") == "1",
        "limit": limit if limit in LOG_PAGE_SIZES else LOG_PAGE_SIZES[0],
    }

    def when(name: str) -> datetime | None:
        if not form[name]:
            return None
        try:
            return parse_when(form[name], now)
        except ValueError as exc:
            raise AdminError(f"{name}: {exc}") from None

    query = LogQuery(
        org_name=form["org"] or None,
        since=when("since"),
        until=when("until"),
        user=form["user"] or None,
        status=form["status"] or None,
        errors_only=form["errors"],
        request_id=form["request_id"] or None,
        limit=form["limit"],
    )
    query.status_range()  # an unreadable status is an AdminError now, not a failed page later
    return form, query


def provisioning_log() -> Response:
    """The provisioning log, newest first, with the CLI's filters; failed lines link to the guide.

    The search is the CLI's own (:func:`scim_service.operations.search_log`): a user is found by its
    userName and by its current id, through the backend.
    """
    st = _state()
    error = None
    entries: list[LogEntry] = []
    form: dict[str, Any] = {"limit": LOG_PAGE_SIZES[0]}
    try:
        form, query = _log_query(datetime.now(UTC))
        entries = operations.search_log(st.store, uninstrumented(st.backend), query)
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
        filters=form,
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
    bp.add_url_rule("/tokens/<token_id>/rotate", view_func=rotate_token, methods=["POST"])
    bp.add_url_rule("/tokens/<token_id>/revoke", view_func=revoke_token, methods=["POST"])
    bp.add_url_rule("/log", view_func=provisioning_log, methods=["GET"])
    bp.add_url_rule("/troubleshooting", view_func=troubleshooting, methods=["GET"])
    return bp
