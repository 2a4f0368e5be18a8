"""The ``scim-service`` command line: database upgrades, organizations, tokens, users and the log.

Every invocation builds the app with :func:`~scim_service.app.create_app` once, so the commands see
exactly the configuration (``SCIM_*`` environment variables) the server sees. Data goes to stdout,
progress and warnings to stderr; an expected failure prints one ``Error: ...`` line and exits non-zero.
Plugins add commands through the ``scim_register_commands`` hook; their commands can take the app's
state with :func:`pass_state`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from alembic.util import CommandError

from scim_service import operations
from scim_service.config import ConfigError
from scim_service.durations import Retention, parse_duration, parse_when
from scim_service.errors import ScimError
from scim_service.model import Tenant, UserRecord
from scim_service.outbox import DeliveryReport
from scim_service.plugins import PluginError, entry_point_report
from scim_service.profiles import AUTO, PROFILE_CHOICES
from scim_service.servicedb.hostdb import TABLE_PREFIX
from scim_service.servicedb.migrate import upgrade_service_db
from scim_service.servicedb.outbox import StoredEvent
from scim_service.servicedb.store import AdminError, LogEntry, LogQuery, TokenInfo
from scim_service.sqlengine import engine_schema
from scim_service.state import ScimState

F = TypeVar("F", bound=Callable[..., Any])

_STATE_KEY = "scim_service.state"
_PLUGINS_KEY = "scim_service.plugin_commands"
_DATABASE_SHOWN_KEY = "scim_service.database_shown"


def database_label(url: sa.URL | str) -> str:
    """The database URL without its password, for the ``database:`` line."""
    return sa.make_url(url)._replace(password=None).render_as_string(hide_password=False)  # a namedtuple


# Failures an operator can fix; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    AdminError,
    ScimError,
    ConfigError,
    PluginError,
    sa.exc.ArgumentError,  # an unparsable SCIM_DATABASE_URL or a missing database driver
    CommandError,  # a migration that refuses the data it finds (it says what to fix)
)


class DurationType(click.ParamType):
    """A click parameter holding a :func:`parse_duration` duration."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        """Turn the text into a timedelta or fail with a usage error."""
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class WhenType(click.ParamType):
    """A click parameter holding a point in time: ISO 8601 (``2025-03-01T09:00Z``) or a duration ago (``2h``)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        """Turn the text into an aware UTC datetime or fail with a usage error."""
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value), datetime.now(UTC))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _progress(what: str, done: int) -> None:
    """Progress of a long job, on stderr (stdout stays for data)."""
    click.echo(f"... {done} {what}", err=True)


def _confirm(question: str, yes: bool) -> None:
    """Ask ``question`` on the terminal unless ``--yes``; no answer (no terminal) is no."""
    if yes:
        return
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:  # no terminal to answer on (a script, CI): that is a no
        agreed = False
        click.echo("", err=True)
    if not agreed:
        raise click.ClickException("nothing was changed (give --yes to skip the question)")


def _seats_argument(value: str) -> int | None:
    text = value.strip().lower()
    if text in {"unlimited", "none"}:
        return None
    if not text.isdigit():
        raise click.BadParameter(f"{value!r} is not a number of seats; give a whole number or 'unlimited'")
    return int(text)


def get_cli_state(ctx: click.Context | None = None) -> ScimState:
    """The app state of this invocation, built with ``create_app()`` on first use and closed at exit.

    A host app that runs the commands itself passes its own state as the context object
    (``main(obj=get_state(app))``); that state is used as it is and left open.
    """
    root = (ctx or click.get_current_context()).find_root()
    state = root.meta.get(_STATE_KEY)
    if state is None and isinstance(root.obj, ScimState):
        state = root.meta[_STATE_KEY] = root.obj
    if state is None:
        # Imported here: the app pulls in Flask and every plugin, which ``--help`` does not need.
        from scim_service.app import create_app
        from scim_service.extension import get_state

        state = get_state(create_app())
        root.meta[_STATE_KEY] = state
        root.call_on_close(state.close)
    return state


def use_state(ctx: click.Context, state: ScimState) -> None:
    """Make ``state`` (a host app's) the state of ``ctx``'s invocation; it is used as it is and left open.

    ``flask scim`` calls it, so the commands of :data:`main` run on the host app's extension and backend.
    """
    ctx.find_root().meta[_STATE_KEY] = state


def pass_state(func: F) -> F:
    """Decorate a command to receive the app state as its first argument (for plugin commands too).

    The first such command of an invocation prints ``database: <url>`` (password hidden) on stderr, so
    an operator sees which database a command is about to change.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = get_cli_state()
        root = click.get_current_context().find_root()
        if not root.meta.get(_DATABASE_SHOWN_KEY):
            root.meta[_DATABASE_SHOWN_KEY] = True
            click.echo(f"database: {database_label(state.service_engine.url)}", err=True)
        return func(state, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _error_line(exc: BaseException) -> str:
    text = str(getattr(exc, "detail", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    lowered = text.lower()
    if "db upgrade" in lowered:
        return line
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        line += " (run `scim-service db upgrade` first)"
    return line


class ScimGroup(click.Group):
    """The root group: turns expected errors into one line, and loads plugin commands on demand."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; an expected error becomes ``Error: <one line>`` and exit status 1."""
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as exc:
            raise click.ClickException(_error_line(exc)) from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, or else one a plugin registers (which needs the app to be built)."""
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self.load_plugin_commands(ctx)
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, plugin ones included when the app can be built."""
        try:
            self.load_plugin_commands(ctx)
        except Exception as exc:
            # Help still lists the built-in commands when the app cannot be built; say why plugins are missing.
            click.echo(f"Warning: plugin commands are not listed: {_error_line(exc)}", err=True)
        return super().list_commands(ctx)

    def load_plugin_commands(self, ctx: click.Context) -> None:
        """Ask the plugins for their commands, once per invocation; they may not replace built-ins."""
        root = ctx.find_root()
        if root.meta.get(_PLUGINS_KEY):
            return
        root.meta[_PLUGINS_KEY] = True
        state = get_cli_state(root)
        builtins = {name: self.commands[name] for name in BUILTIN_COMMANDS if name in self.commands}
        state.pm.hook.scim_register_commands(cli=self)
        for name, command in builtins.items():
            if self.commands.get(name) is not command:
                click.echo(f"Warning: a plugin tried to replace the built-in command {name!r}; ignored", err=True)
                self.commands[name] = command


@click.group(cls=ScimGroup)
@click.version_option(package_name="scim-service", prog_name="scim-service")
def main() -> None:
    """Administer scim-service: databases, organizations, tokens, users and the provisioning log.

    Configuration comes from the same SCIM_* environment variables the server reads
    (SCIM_DATABASE_URL, SCIM_BACKEND, ...).
    """


# -- output helpers ------------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _info(message: str) -> None:
    click.echo(message, err=True)


# -- db ------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Create or upgrade the database tables."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: ScimState) -> None:
    """Create or upgrade the service tables, then the storage backend's schema."""
    # The lines below say what was done; alembic's own INFO chatter would only repeat it.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    prefix = state.store.tables.prefix
    before, after = upgrade_service_db(state.service_engine, prefix)
    # Where the tables are, when the host chose it: a prefix or schema changed after the first upgrade
    # starts empty tables beside the old ones, which this line makes visible.
    where = [f"named {prefix}*"] if prefix != TABLE_PREFIX else []
    schema = engine_schema(state.service_engine)
    where += [f"in schema {schema}"] if schema else []
    place = f" ({', '.join(where)})" if where else ""
    if before == after:
        _info(f"service tables: already at revision {after}{place}")
    else:
        _info(f"service tables: upgraded from {before or 'an empty database'} to revision {after}{place}")
    state.backend.migrate()
    _info(f"backend {state.backend.name!r}: schema created or upgraded")


# -- plugins -------------------------------------------------------------------------------------


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List every installed plugin entry point: loaded, not allowed (SCIM_PLUGINS) or unavailable.

    An unavailable plugin lacks an optional dependency; the reason names the extra that installs it.
    """
    # The report needs only the settings, not the app: it works when the selected backend cannot load.
    from scim_service.app import standalone_config

    root = click.get_current_context().find_root()
    host = root.meta.get(_STATE_KEY) or (root.obj if isinstance(root.obj, ScimState) else None)
    config = host.config if host is not None else standalone_config()
    report = entry_point_report(config)
    if as_json:
        _json([status.as_dict() for status in report])
        return
    _table(
        ["NAME", "STATUS", "DISTRIBUTION", "OBJECT", "REASON"],
        [[s.name, s.status, s.distribution, s.value, s.reason or None] for s in report],
    )


# -- organizations -------------------------------------------------------------------------------

SEAT_CHOICE = click.Choice(["all", "active"], case_sensitive=False)
MATCH_CHOICE = click.Choice(["email", "username"], case_sensitive=False)
PROFILE_CHOICE = click.Choice(list(PROFILE_CHOICES), case_sensitive=False)


@main.group()
def orgs() -> None:
    """Organizations (tenants): their seats, matching policies and IdP profiles."""


def _org_dict(tenant: Tenant, used: int | None, profile: str | None = None) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "id": tenant.id,
        "seats_used": used,
        "max_seats": tenant.max_seats,
        "seat_policy": tenant.seat_policy.value,
        "match_policy": tenant.match_policy.value,
        "profile": profile,
    }


def _describe(tenant: Tenant, profile: str | None = None) -> str:
    seats = "unlimited" if tenant.max_seats is None else str(tenant.max_seats)
    return (
        f"{tenant.name}: maxSeats {seats}, seats counted: {tenant.seat_policy.value} users, "
        f"matching on {tenant.match_policy.value}" + (f", IdP profile {profile}" if profile else "")
    )


@orgs.command("create")
@click.argument("name")
@click.option("--max-seats", type=click.IntRange(min=0), default=None, help="Seat limit (default: unlimited).")
@click.option(
    "--seats", "seat_policy", type=SEAT_CHOICE, default="all", show_default=True, help="Users holding a seat."
)
@click.option(
    "--match", "match_policy", type=MATCH_CHOICE, default="email", show_default=True, help="POST /Users match."
)
@click.option(
    "--profile",
    type=PROFILE_CHOICE,
    default=AUTO,
    show_default=True,
    help="IdP profile: the tolerances its requests get (auto: Okta/Entra by User-Agent, every tolerance "
    "for any other client; generic: strict RFC).",
)
@pass_state
def orgs_create(
    state: ScimState, name: str, max_seats: int | None, seat_policy: str, match_policy: str, profile: str
) -> None:
    """Create the organization NAME."""
    tenant = state.store.create_org(
        name, max_seats=max_seats, seat_policy=seat_policy, match_policy=match_policy, profile=profile
    )
    _info(f"created organization {_describe(tenant, state.store.get_profile(name))}")


@orgs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def orgs_list(state: ScimState, as_json: bool) -> None:
    """List organizations with the seats they use."""
    rows = []
    profiles = state.store.profiles()
    for tenant in state.store.list_orgs():
        try:
            used: int | None = state.backend.count_seats(tenant)
        except ScimError as exc:
            # One unreachable store must not hide the list an operator is troubleshooting with.
            _info(f"Warning: could not count the seats of {tenant.name}: {_error_line(exc)}")
            used = None
        rows.append(_org_dict(tenant, used, profiles.get(tenant.name)))
    if as_json:
        _json(rows)
        return
    _table(
        ["NAME", "SEATS", "SEAT POLICY", "MATCH", "PROFILE"],
        [
            [
                r["name"],
                f"{'?' if r['seats_used'] is None else r['seats_used']}/"
                f"{'unlimited' if r['max_seats'] is None else r['max_seats']}",
                r["seat_policy"],
                r["match_policy"],
                r["profile"],
            ]
            for r in rows
        ],
    )


@orgs.command("set-seats")
@click.argument("name")
@click.argument("seats")
@pass_state
def orgs_set_seats(state: ScimState, name: str, seats: str) -> None:
    """Set the seat limit of NAME to SEATS (a number, or 'unlimited')."""
    tenant = state.store.set_seats(name, _seats_argument(seats))
    _info(f"updated organization {_describe(tenant)}")
    if tenant.max_seats is not None:
        used = state.backend.count_seats(tenant)
        if used > tenant.max_seats:
            _info(
                f"Warning: {tenant.name} already uses {used} seats, more than {tenant.max_seats}: "
                "new users will be refused until seats are freed"
            )


@orgs.command("update")
@click.argument("name")
@click.option("--seats", "seat_policy", type=SEAT_CHOICE, default=None, help="Users holding a seat.")
@click.option("--match", "match_policy", type=MATCH_CHOICE, default=None, help="POST /Users match.")
@pass_state
def orgs_update(state: ScimState, name: str, seat_policy: str | None, match_policy: str | None) -> None:
    """Change the seat or match policy of NAME."""
    if seat_policy is None and match_policy is None:
        raise click.UsageError("nothing to change: give --seats and/or --match")
    tenant = state.store.update_org(name, seat_policy=seat_policy, match_policy=match_policy)
    _info(f"updated organization {_describe(tenant)}")


@orgs.command("set-profile")
@click.argument("name")
@click.argument("profile", type=PROFILE_CHOICE)
@pass_state
def orgs_set_profile(state: ScimState, name: str, profile: str) -> None:
    """Set the IdP profile of NAME: auto (detect per request; every tolerance for an unrecognised client),
    generic (strict RFC) or an IdP's name.

    The profile decides which deviations from the RFC the organization's requests may use (see
    docs/profiles.md); it takes effect on the next request of every worker.
    """
    chosen = state.store.set_profile(name, profile)
    _info(f"organization {name}: IdP profile {chosen}")


@orgs.command("rename")
@click.argument("old")
@click.argument("new")
@pass_state
def orgs_rename(state: ScimState, old: str, new: str) -> None:
    """Rename the organization OLD to NEW: its id, tokens, users and log stay as they are."""
    tenant = state.store.rename_org(old, new)
    _info(f"renamed organization {old} to {tenant.name}")


@orgs.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def orgs_delete(state: ScimState, name: str, yes: bool) -> None:
    """Delete the organization NAME with all its users, groups, tokens and provisioning log entries.

    Its tokens are revoked first, so nothing is provisioned into it while it is removed; if the
    command is interrupted, running it again finishes the job.
    """
    tenant = state.store.get_org(name)
    tokens_ = [t for t in state.store.list_tokens(name) if t.usable]
    _confirm(
        f"Delete organization {tenant.name} ({tenant.id}) with all its users and groups, "
        f"{len(tokens_)} usable token(s) and its provisioning log? This cannot be undone.",
        yes,
    )
    started = time.monotonic()
    removed = operations.delete_org(state.store, state.backend, name, progress=_progress)
    _info(
        f"deleted organization {tenant.name}: {removed['users']} users, {removed['groups']} groups, "
        f"{removed['tokens']} tokens, {removed['log_entries']} log entries in {time.monotonic() - started:.1f}s"
    )


# -- tokens --------------------------------------------------------------------------------------


@main.group()
def tokens() -> None:
    """Bearer tokens: an identity provider uses one to provision an organization."""


def _token_dict(info: TokenInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "org": info.org_name,
        "prefix": info.prefix,
        "state": info.state,
        "created": _iso(info.created),
        "last_used": _iso(info.last_used),
        "expires_at": _iso(info.expires_at),
        "revoked": info.revoked,
        "revoked_at": _iso(info.revoked_at),
        "replaced_by": info.replaced_by,
        "description": info.description,
    }


@tokens.command("create")
@click.argument("org")
@click.option("--description", default=None, help="What the token is for (e.g. 'Okta production').")
@click.option("--expires-in", type=DurationType(), default=None, help="Lifetime, e.g. 90d (default: it never expires).")
@click.option("--json", "as_json", is_flag=True, help='Print only {"id": ..., "token": ...}.')
@pass_state
def tokens_create(
    state: ScimState, org: str, description: str | None, expires_in: timedelta | None, as_json: bool
) -> None:
    """Create a bearer token for ORG and print it (it cannot be shown again)."""
    token_id, token = state.store.create_token(org, description=description, expires_in=expires_in)
    if as_json:
        click.echo(json.dumps({"id": token_id, "token": token}))
        return
    info = state.store.get_token(token_id)
    click.echo(token)
    ends = f"; it expires at {_when(info.expires_at)}" if info.expires_at else ""
    _info(
        f"Created token {token_id} ({info.prefix}...) for {org}{ends}. Copy it now: it is shown only this once "
        "(only a hash of it is stored)."
    )


@tokens.command("list")
@click.argument("org")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def tokens_list(state: ScimState, org: str, as_json: bool) -> None:
    """List the tokens of ORG: prefix, state, expiry, last use (never the tokens themselves)."""
    infos = state.store.list_tokens(org)
    if as_json:
        _json([_token_dict(i) for i in infos])
        return
    _table(
        ["ID", "PREFIX", "STATE", "CREATED", "LAST USED", "EXPIRES", "REVOKED", "DESCRIPTION"],
        [
            [
                i.id,
                f"{i.prefix}..." if i.prefix else None,
                i.state + (f" (by {i.replaced_by})" if i.replaced_by else ""),
                _when(i.created),
                _when(i.last_used),
                _when(i.expires_at) if i.expires_at else "never",
                _when(i.revoked_at),
                i.description,
            ]
            for i in infos
        ],
    )


@tokens.command("revoke")
@click.argument("token_ref", metavar="ID|PREFIX")
@pass_state
def tokens_revoke(state: ScimState, token_ref: str) -> None:
    """Revoke a token (by id or prefix): every server process refuses it from its next request."""
    before = state.store.get_token(token_ref)
    info = state.store.revoke_token(token_ref)
    if before.revoked:
        _info(f"token {info.id} of {info.org_name} was already revoked at {_when(info.revoked_at)}")
    else:
        _info(f"revoked token {info.id} of {info.org_name}")


@tokens.command("rotate")
@click.argument("token_ref", metavar="ID|PREFIX")
@click.option(
    "--grace",
    type=DurationType(),
    default="24h",
    show_default=True,
    help="How long the old token keeps working (0s: revoke it now).",
)
@click.option(
    "--expires-in", type=DurationType(), default=None, help="Lifetime of the new token (default: the old one's)."
)
@click.option("--json", "as_json", is_flag=True, help='Print only {"id": ..., "token": ..., "replaces": ...}.')
@pass_state
def tokens_rotate(
    state: ScimState, token_ref: str, grace: timedelta, expires_in: timedelta | None, as_json: bool
) -> None:
    """Replace a token: a new one now, the old one revoked automatically after the grace period.

    Give the new token to the identity provider within the grace period.
    """
    old, new_id, token = state.store.rotate_token(token_ref, grace, expires_in=expires_in)
    if as_json:
        click.echo(
            json.dumps({"id": new_id, "token": token, "replaces": old.id, "old_revoked_at": _iso(old.revoked_at)})
        )
        return
    click.echo(token)
    _info(
        f"Created token {new_id} for {old.org_name} to replace {old.id}, which stops working at "
        f"{_when(old.revoked_at)}. Copy the new token now: it is shown only this once."
    )


# -- users ---------------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Users of an organization."""


def _user_row(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.id,
        "userName": user.user_name,
        "active": user.active,
        "deleted": user.deleted,
        "lastModified": _iso(user.last_modified),
    }


@users.command("list")
@click.argument("org")
@click.option("--inactive", is_flag=True, help="Only the users `users remove-inactive` would remove.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def users_list(state: ScimState, org: str, inactive: bool, as_json: bool) -> None:
    """List the users of ORG: id, userName, state and last change."""
    tenant = state.store.get_org(org)
    found = operations.list_users(state.backend, tenant, inactive=inactive)
    rows = [_user_row(u) for u in found]
    if as_json:
        _json(rows)
        return
    _table(
        ["ID", "USERNAME", "STATE", "LAST MODIFIED"],
        [
            [
                r["id"],
                r["userName"],
                "deleted" if r["deleted"] else ("active" if r["active"] else "inactive"),
                _when(datetime.fromisoformat(r["lastModified"])) if r["lastModified"] else None,
            ]
            for r in rows
        ],
    )
    _info(f"{len(rows)} {'inactive ' if inactive else ''}users in {tenant.name}")


@users.command("show")
@click.argument("org")
@click.argument("ref", metavar="ID|USERNAME")
@click.option("--log", "log_limit", type=click.IntRange(0, 1000), default=10, show_default=True, help="Log entries.")
@pass_state
def users_show(state: ScimState, org: str, ref: str, log_limit: int) -> None:
    """Show one user of ORG (by id or userName) as JSON, with its latest provisioning log entries."""
    tenant = state.store.get_org(org)
    user = operations.require_user(state.backend, tenant, ref)
    document = operations.user_document(user)
    if log_limit:
        query = LogQuery(org_name=org, user=user.user_name or user.id, user_ids=(user.id,), limit=log_limit)
        document["log"] = [_log_dict(e) for e in state.store.query_log(query)]
    _json(document)


@users.command("remove-inactive")
@click.argument("org")
@click.option(
    "--inactive-for",
    type=DurationType(),
    default=None,
    help="Only users inactive (last changed) for at least this long, e.g. 30d, 12h, 90m. Default: all (asks first).",
)
@click.option("--dry-run", is_flag=True, help="List the users that would be removed; remove nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def users_remove_inactive(state: ScimState, org: str, inactive_for: timedelta | None, dry_run: bool, yes: bool) -> None:
    """Delete the inactive and soft-deleted users of ORG for good, freeing their seats."""
    tenant = state.store.get_org(org)
    since = datetime.now(UTC) - inactive_for if inactive_for is not None else None
    scope = f"users inactive since before {_when(since)}" if since else "inactive users"
    if dry_run:
        doomed = state.backend.list_inactive_users(tenant, inactive_since=since)
        for user in doomed:
            click.echo(
                f"{user.id}  {user.user_name}  {'deleted' if user.deleted else 'inactive'}  {_when(user.last_modified)}"
            )
        _info(f"dry run: would remove {len(doomed)} {scope} from {tenant.name}")
        return
    if inactive_for is None:
        count = len(state.backend.list_inactive_users(tenant))
        _confirm(
            f"Remove ALL {count} inactive and deleted users of {tenant.name} for good, however recently they "
            "were deactivated? (--inactive-for 30d limits it; --dry-run lists them)",
            yes,
        )
    started = time.monotonic()
    _info(f"removing {scope} from {tenant.name} ...")
    removed = state.backend.remove_inactive_users(tenant, inactive_since=since)
    state.store.record(
        LogEntry(
            method="CLI",
            path="users remove-inactive",
            status=200,
            org_id=tenant.id,
            resource_type="User",
            detail=f"admin removed {len(removed)} {scope}",
            duration_ms=(time.monotonic() - started) * 1000,
            client="scim-service cli",
        )
    )
    click.echo(f"removed {len(removed)} {scope} from {tenant.name}")


# -- provisioning log ----------------------------------------------------------------------------


def _log_dict(entry: LogEntry) -> dict[str, Any]:
    return entry.to_dict()


_LOG_HEADERS = ["AT", "ORG", "STATUS", "METHOD", "PATH", "USER", "TOKEN", "MS", "REQUEST ID", "DETAIL", "PROFILE"]


def _log_row(e: LogEntry) -> list[Any]:
    status = str(e.status) if not e.scim_type else f"{e.status} {e.scim_type}"
    if e.repeat_count > 1:
        status += f" x{e.repeat_count}"
    return [
        _when(e.at),
        e.org_name or e.org_id,
        status,
        e.method,
        e.path,
        e.user_name,
        e.token_id,
        f"{e.duration_ms:.0f}",
        e.request_id,
        e.detail,
        e.tolerances,
    ]


def _log_line(e: LogEntry) -> str:
    return "  ".join("-" if c is None else str(c) for c in _log_row(e))


@main.group("log", invoke_without_command=True)
@click.option("--org", default=None, help="Only this organization.")
@click.option("--errors", "errors_only", is_flag=True, help="Only failed requests (status 400 and above).")
@click.option("--since", type=WhenType(), default=None, help="From this time: ISO (2025-03-01T09:00Z) or ago (2h, 1d).")
@click.option("--until", type=WhenType(), default=None, help="Before this time: ISO or ago.")
@click.option("--user", default=None, help="Only requests about this user: userName (any case) or id.")
@click.option("--status", default=None, help="Only this status (409), class (4xx) or 'error'.")
@click.option("--request-id", default=None, help="Only the request with this X-Request-Id.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="How many entries.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries as they are written (Ctrl-C stops).")
@click.option("--interval", type=click.FloatRange(0.05, 60), default=2.0, show_default=True, help="--follow poll.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (JSON lines with --follow).")
@click.pass_context
def log_command(
    ctx: click.Context,
    org: str | None,
    errors_only: bool,
    since: datetime | None,
    until: datetime | None,
    user: str | None,
    status: str | None,
    request_id: str | None,
    limit: int,
    follow: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Show the provisioning log, newest first: who called, what, the outcome and the error.

    Filters combine. `log prune` applies the retention now.
    """
    if ctx.invoked_subcommand is not None:
        return
    state = get_cli_state(ctx)
    query = LogQuery(
        org_name=org,
        since=since,
        until=until,
        user=user,
        status=status,
        errors_only=errors_only,
        request_id=request_id,
        limit=limit,
    )
    if follow:
        _follow(state, query, interval, as_json)
        return
    entries = operations.search_log(state.store, state.backend, query)
    if as_json:
        _json([_log_dict(e) for e in entries])
        return
    if not entries:
        _info("no log entries")
        return
    _table(_LOG_HEADERS, [_log_row(e) for e in entries])


def _follow(state: ScimState, query: LogQuery, interval: float, as_json: bool) -> None:
    """Print the last entries in time order, then new ones as they come, until interrupted."""
    # Resolve the user once; then poll by id. Entries are numbered when they are inserted, and a
    # transaction may commit after a later-numbered one: look back over recent ids and skip those seen.
    query = dataclasses.replace(query, oldest_first=True)
    if query.user:
        query = dataclasses.replace(
            query, user_ids=operations.user_ids_named(state.store, state.backend, query.user, query.org_name)
        )
    seen: set[int] = set()
    after: int | None = None
    try:
        while True:
            entries = state.store.query_log(dataclasses.replace(query, after_id=after))
            for entry in entries:
                if entry.id in seen:
                    continue
                seen.add(entry.id or 0)
                click.echo(json.dumps(_log_dict(entry), ensure_ascii=False) if as_json else _log_line(entry))
            if seen:
                after = max(seen) - _FOLLOW_LOOKBACK
                seen = {i for i in seen if i > after}
            query = dataclasses.replace(query, limit=max(query.limit, 1000))
            time.sleep(interval)
    except KeyboardInterrupt:
        return


_FOLLOW_LOOKBACK = 50


@log_command.command("prune")
@click.option("--older-than", type=DurationType(), default=None, help="Delete entries older than this (e.g. 30d).")
@click.option("--keep-rows", type=click.IntRange(min=1), default=None, help="Keep only the newest N entries.")
@pass_state
def log_prune(state: ScimState, older_than: timedelta | None, keep_rows: int | None) -> None:
    """Apply the retention now: SCIM_PROVISIONING_LOG_RETENTION, or --older-than / --keep-rows."""
    if older_than is not None or keep_rows is not None:
        rule = Retention(max_age=older_than, max_rows=keep_rows)
    else:
        rule = state.store.retention
    if rule.keeps_everything:
        _info("the retention keeps every entry (SCIM_PROVISIONING_LOG_RETENTION=none): nothing to prune")
        return
    _info(f"pruning the provisioning log, keeping {rule.describe()} ...")
    removed = state.store.apply_retention(rule, progress=_progress)
    click.echo(f"deleted {removed} log entries")


# -- change events (the outbox) ------------------------------------------------------------------


def _event_status(e: StoredEvent) -> str:
    if e.delivered_at is not None:
        return "delivered"
    return "failing" if e.last_error else "pending"


def _org_names(state: ScimState) -> dict[str, str]:
    return {t.id: t.name for t in state.store.list_orgs()}


def _org_id(state: ScimState, org: str | None) -> str | None:
    return None if org is None else state.store.get_org(org).id


def _report_line(report: DeliveryReport) -> str:
    return f"{report.delivered} delivered, {report.failed} failed, {report.waiting} waiting"


def _report_progress(report: DeliveryReport) -> None:
    _info(f"... {report.seen} events: {_report_line(report)}")


@main.group("events")
def events_group() -> None:
    """Change events: list the outbox, retry undelivered events, replay, prune.

    Every change is written to the outbox (scim_events) and delivered to the hook implementations
    (scim_user_created, ...); an implementation that fails gets the event again, in order per resource.
    """


@events_group.command("list")
@click.option("--org", default=None, help="Only this organization.")
@click.option("--undelivered", is_flag=True, help="Only events some hook implementation still waits for.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="How many events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with each event's payload).")
@pass_state
def events_list(state: ScimState, org: str | None, undelivered: bool, limit: int, as_json: bool) -> None:
    """Show events in the order they happened: the newest ones, or with --undelivered the oldest waiting."""
    found = state.outbox.store.query(
        org_id=_org_id(state, org), undelivered=undelivered, limit=limit, newest=not undelivered
    )
    names = _org_names(state)
    if as_json:
        _json([{**e.to_dict(), "org": names.get(e.org_id), "status": _event_status(e)} for e in found])
        return
    if not found:
        _info("no undelivered events" if undelivered else "no events")
        return
    _table(
        ["ID", "CREATED", "ORG", "EVENT", "RESOURCE", "STATUS", "ATTEMPTS", "NEXT RETRY", "LAST ERROR"],
        [
            [
                e.id,
                _when(e.created),
                names.get(e.org_id, e.org_id),
                e.event,
                f"{e.resource_type} {e.resource_id}",
                _event_status(e),
                e.attempts,
                _when(e.next_attempt_at) if e.delivered_at is None and e.next_attempt_at else None,
                e.last_error if e.delivered_at is None else None,
            ]
            for e in found
        ],
    )


@events_group.command("deliver")
@click.option("--org", default=None, help="Only this organization's events.")
@pass_state
def events_deliver(state: ScimState, org: str | None) -> None:
    """Deliver the undelivered events now, oldest first, whatever their backoff.

    Exits with status 1 when an implementation failed again (the events stay for the next try).
    """
    report = state.outbox.deliver_pending(org_id=_org_id(state, org), progress=_report_progress)
    click.echo(_report_line(report))
    if report.failed:
        raise click.ClickException(
            f"{report.failed} event(s) failed again, the first: {report.errors[0]}; see `events list --undelivered`"
        )


@events_group.command("replay")
@click.option(
    "--since",
    "since_text",
    required=True,
    help="From this event id (a number), or this time: ISO (2025-03-01T09:00Z) or ago (2h, 1d).",
)
@click.option("--org", default=None, help="Only this organization's events.")
@pass_state
def events_replay(state: ScimState, since_text: str, org: str | None) -> None:
    """Deliver events again to every implementation, delivered or not, in the order they happened
    (hooks must be idempotent: they may see an event twice)."""
    text = since_text.strip()
    since_id = int(text) if text.isdigit() else None
    since = None if since_id is not None else WhenType().convert(text, None, click.get_current_context())
    report = state.outbox.replay(since_id=since_id, since=since, org_id=_org_id(state, org), progress=_report_progress)
    click.echo(f"replayed {report.seen} events: {_report_line(report)}")
    if report.failed:
        raise click.ClickException(f"{report.failed} event(s) failed, the first: {report.errors[0]}")


@events_group.command("prune")
@click.option(
    "--older-than", type=DurationType(), default=None, help="Delete events delivered longer ago than this (e.g. 30d)."
)
@pass_state
def events_prune(state: ScimState, older_than: timedelta | None) -> None:
    """Delete delivered events older than the log retention's age (or --older-than); undelivered ones stay."""
    age = older_than if older_than is not None else state.outbox.retention
    if age is None:
        _info("the retention keeps every event (SCIM_PROVISIONING_LOG_RETENTION has no age): give --older-than")
        return
    removed = state.outbox.store.prune(datetime.now(UTC) - age)
    click.echo(f"deleted {removed} delivered events")


BUILTIN_COMMANDS: frozenset[str] = frozenset(main.commands)
