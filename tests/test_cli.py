"""The ``scim-service`` command line through click's CliRunner, on a real SQLite file per test."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from flask import Flask

from scim_service.app import create_app
from scim_service.cli import main, parse_duration, pass_state
from scim_service.errors import Unauthorized
from scim_service.extension import ScimService, ScimState, get_state
from scim_service.hookspecs import hookimpl
from scim_service.model import Member
from scim_service.servicedb import LogEntry

Invoke = Callable[..., Result]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SCIM_DATABASE_URL": f"sqlite:///{tmp_path / 'scim.db'}",
        "SCIM_INSTANCE_PATH": str(tmp_path / "instance"),
        "SCIM_BACKEND": "sql",
        "SCIM_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def fresh(env: dict[str, str]) -> Invoke:
    """Run the CLI against the test's database, not yet upgraded."""

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def cli(fresh: Invoke) -> Invoke:
    """Run the CLI against the test's database, upgraded."""
    result = fresh("db", "upgrade")
    assert result.exit_code == 0, result.output
    return fresh


@pytest.fixture
def state(cli: Invoke, env: dict[str, str]) -> Iterator[ScimState]:
    """The app state a server would build from the same environment (for checking what the CLI did)."""
    app = create_app({k: v for k, v in env.items() if k != "SCIM_LOG_LEVEL"}, environ={})
    st = get_state(app)
    yield st
    st.close()


def assert_fails_with(result: Result, message: str) -> None:
    """The command failed with one ``Error: ...`` line naming ``message``: no traceback, nothing on stdout."""
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "Traceback" not in result.output
    # The ``database: <url>`` line every database command prints first is not part of the error.
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("database: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and message in lines[0], lines[0]


# -- db ------------------------------------------------------------------------------------------


def test_db_upgrade(fresh: Invoke, env: dict[str, str]) -> None:
    first = fresh("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert first.stdout == ""
    assert "service tables: upgraded from an empty database to revision" in first.stderr
    assert "backend 'sql'" in first.stderr
    path = env["SCIM_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"scim_organizations", "scim_tokens", "scim_provisioning_log", "scim_service_alembic_version"} <= names
    again = fresh("db", "upgrade")
    assert again.exit_code == 0 and "service tables: already at revision" in again.stderr


def test_commands_before_db_upgrade_say_what_to_do(fresh: Invoke) -> None:
    assert_fails_with(fresh("orgs", "list"), "run `scim-service db upgrade` first")


def test_bad_configuration_is_one_line(fresh: Invoke, env: dict[str, str]) -> None:
    env["SCIM_BACKEND"] = "nosuchbackend"
    assert_fails_with(fresh("orgs", "list"), "SCIM_BACKEND='nosuchbackend' is not an installed backend")


# -- orgs ----------------------------------------------------------------------------------------


def test_orgs_create_and_list(cli: Invoke) -> None:
    created = cli("orgs", "create", "acme", "--max-seats", "10")
    assert created.exit_code == 0, created.output
    assert created.stdout == "" and "created organization acme" in created.stderr
    assert cli("orgs", "create", "beta", "--seats", "active", "--match", "username").exit_code == 0

    listed = cli("orgs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["acme", "beta"]
    assert set(rows[0]) == {"name", "id", "seats_used", "max_seats", "seat_policy", "match_policy", "profile"}
    assert rows[0] | {"id": None} == {
        "name": "acme",
        "id": None,
        "seats_used": 0,
        "max_seats": 10,
        "seat_policy": "all",
        "match_policy": "email",
        "profile": "auto",
    }
    assert rows[1]["max_seats"] is None and rows[1]["seat_policy"] == "active" and rows[1]["match_policy"] == "username"

    text = cli("orgs", "list").stdout.splitlines()
    assert text[0].split() == ["NAME", "SEATS", "SEAT", "POLICY", "MATCH", "PROFILE"]
    assert text[1].split() == ["acme", "0/10", "all", "email", "auto"]
    assert text[2].split() == ["beta", "0/unlimited", "active", "username", "auto"]


def test_orgs_errors(cli: Invoke) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    assert_fails_with(cli("orgs", "create", "acme"), "organization 'acme' already exists")
    assert_fails_with(cli("orgs", "create", "no spaces"), "invalid organization name 'no spaces'")
    assert_fails_with(cli("orgs", "set-seats", "ghost", "3"), "no organization named 'ghost'")
    assert_fails_with(cli("orgs", "update", "ghost", "--seats", "all"), "no organization named 'ghost'")
    bad_choice = cli("orgs", "create", "x", "--seats", "some")
    assert bad_choice.exit_code == 2 and "'some' is not one of" in bad_choice.stderr
    negative = cli("orgs", "create", "x", "--max-seats", "-1")
    assert negative.exit_code == 2 and "--max-seats" in negative.stderr
    bad_seats = cli("orgs", "set-seats", "acme", "lots")
    assert bad_seats.exit_code == 2 and "'lots' is not a number of seats" in bad_seats.stderr
    nothing = cli("orgs", "update", "acme")
    assert nothing.exit_code == 2 and "nothing to change" in nothing.stderr


def test_orgs_set_seats_and_update(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    result = cli("orgs", "set-seats", "acme", "25")
    assert result.exit_code == 0 and "maxSeats 25" in result.stderr
    assert state.store.get_org("acme").max_seats == 25
    assert cli("orgs", "set-seats", "acme", "unlimited").exit_code == 0
    assert state.store.get_org("acme").max_seats is None
    result = cli("orgs", "update", "acme", "--seats", "active", "--match", "username")
    assert result.exit_code == 0, result.output
    tenant = state.store.get_org("acme")
    assert (tenant.seat_policy.value, tenant.match_policy.value) == ("active", "username")


def test_set_seats_below_usage_warns(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    tenant = state.store.get_org("acme")
    for name in ("ann", "bob"):
        state.backend.create_user(tenant, {"userName": name, "active": True})
    result = cli("orgs", "set-seats", "acme", "1")
    assert result.exit_code == 0
    assert "already uses 2 seats, more than 1" in result.stderr
    assert json.loads(cli("orgs", "list", "--json").stdout)[0]["seats_used"] == 2


# -- tokens --------------------------------------------------------------------------------------


def test_tokens_create_json_is_exactly_id_and_token(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    result = cli("tokens", "create", "acme", "--description", "Okta", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"id", "token"}
    assert data["token"].startswith("scim_")
    tenant, token_id = state.store.authenticate(data["token"])  # type: ignore[misc]
    assert tenant.name == "acme" and token_id == data["id"]


def test_tokens_create_text_warns_it_is_shown_once(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    result = cli("tokens", "create", "acme")
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert "\n" not in token and token.startswith("scim_")
    assert "shown only this once" in result.stderr and token not in result.stderr
    assert state.store.authenticate(token) is not None


def test_tokens_list_and_revoke(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    data = json.loads(cli("tokens", "create", "acme", "--description", "Entra", "--json").stdout)
    state.store.authenticate(data["token"])  # sets last used

    listed = cli("tokens", "list", "acme", "--json")
    assert listed.exit_code == 0
    (row,) = json.loads(listed.stdout)
    assert set(row) == {
        "id",
        "org",
        "prefix",
        "state",
        "created",
        "last_used",
        "expires_at",
        "revoked",
        "revoked_at",
        "replaced_by",
        "description",
    }
    assert row["prefix"] == data["token"][:13] and row["state"] == "active" and row["expires_at"] is None
    assert row["id"] == data["id"] and row["description"] == "Entra" and row["revoked"] is False
    assert row["last_used"] is not None and row["revoked_at"] is None
    assert data["token"] not in listed.output and data["token"].removeprefix("scim_") not in listed.output

    text = cli("tokens", "list", "acme")
    assert text.stdout.splitlines()[0].split()[:4] == ["ID", "PREFIX", "STATE", "CREATED"]
    assert data["id"] in text.stdout and "Entra" in text.stdout and data["token"] not in text.output

    revoked = cli("tokens", "revoke", data["id"])
    assert revoked.exit_code == 0 and f"revoked token {data['id']} of acme" in revoked.stderr
    with pytest.raises(Unauthorized, match="revoked"):
        state.store.authenticate(data["token"])
    assert json.loads(cli("tokens", "list", "acme", "--json").stdout)[0]["revoked"] is True
    again = cli("tokens", "revoke", data["id"])
    assert again.exit_code == 0 and "already revoked" in again.stderr

    assert_fails_with(cli("tokens", "revoke", "nope"), "no token has the id 'nope'")
    assert_fails_with(cli("tokens", "create", "ghost", "--json"), "no organization named 'ghost'")
    assert_fails_with(cli("tokens", "list", "ghost"), "no organization named 'ghost'")


# -- users remove-inactive -----------------------------------------------------------------------


def test_parse_duration() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("30", "d", "1.5d", "30 days", "-3d"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_users_remove_inactive(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme", "--max-seats", "3").exit_code == 0
    tenant = state.store.get_org("acme")
    state.backend.create_user(tenant, {"userName": "active-ann", "active": True})
    state.backend.create_user(tenant, {"userName": "gone-bob", "active": False})
    state.backend.create_user(tenant, {"userName": "gone-cy", "active": False})
    assert state.backend.count_seats(tenant) == 3

    # They went inactive just now: not inactive for 30 days yet.
    recent = cli("users", "remove-inactive", "acme", "--inactive-for", "30d")
    assert recent.exit_code == 0, recent.output
    assert recent.stdout.startswith("removed 0 users inactive since before ")
    assert recent.stdout.strip().endswith(" from acme")
    assert state.backend.count_seats(tenant) == 3

    result = cli("users", "remove-inactive", "acme", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "removed 2 inactive users from acme"
    assert state.backend.count_seats(tenant) == 1

    latest, earlier = state.store.recent_log(org_name="acme")
    assert (latest.method, latest.path, latest.status) == ("CLI", "users remove-inactive", 200)
    assert latest.detail == "admin removed 2 inactive users" and latest.org_id == tenant.id
    assert (earlier.detail or "").startswith("admin removed 0 users inactive since before")

    bad = cli("users", "remove-inactive", "acme", "--inactive-for", "a month")
    assert bad.exit_code == 2 and "'a month' is not a duration" in bad.stderr
    assert_fails_with(cli("users", "remove-inactive", "ghost"), "no organization named 'ghost'")


# -- log -----------------------------------------------------------------------------------------


def test_log_shows_recent_entries(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    assert cli("orgs", "create", "beta").exit_code == 0
    acme, beta = state.store.get_org("acme"), state.store.get_org("beta")
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    state.store.record(LogEntry("POST", "/scim/v2/Users", 201, at=t0, org_id=acme.id, token_id="t1"))
    state.store.record(
        LogEntry(
            "POST",
            "/scim/v2/Users",
            403,
            at=t0 + timedelta(seconds=1),
            org_id=acme.id,
            detail="Seat limit reached: the organization uses all of its 3 seats.",
        )
    )
    state.store.record(LogEntry("GET", "/scim/v2/Groups", 200, at=t0 + timedelta(seconds=2), org_id=beta.id))

    as_json = cli("log", "--json")
    assert as_json.exit_code == 0, as_json.output
    entries = json.loads(as_json.stdout)
    assert [e["status"] for e in entries] == [200, 403, 201]
    assert {"at", "org_id", "org_name", "token_id", "method", "path", "status", "scim_type", "detail"} <= set(
        entries[0]
    )
    assert entries[1]["org_name"] == "acme" and entries[1]["detail"].startswith("Seat limit reached")

    assert [e["status"] for e in json.loads(cli("log", "--org", "acme", "--json").stdout)] == [403, 201]
    assert [e["status"] for e in json.loads(cli("log", "--errors", "--json").stdout)] == [403]
    assert [e["status"] for e in json.loads(cli("log", "--limit", "1", "--json").stdout)] == [200]

    text = cli("log", "--org", "acme", "--errors")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:4] == ["AT", "ORG", "STATUS", "METHOD"]
    assert len(lines) == 2 and "403" in lines[1] and "Seat limit reached" in lines[1] and "acme" in lines[1]

    assert_fails_with(cli("log", "--org", "ghost"), "no organization named 'ghost'")
    empty = cli("log", "--org", "beta", "--errors")
    assert empty.exit_code == 0 and empty.stdout == "" and "no log entries" in empty.stderr


# -- plugin commands -----------------------------------------------------------------------------


class CommandPlugin:
    """A plugin adding a command, and trying to replace a built-in one."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def scim_register_commands(self, cli: click.Group) -> None:
        self.calls += 1

        @cli.command("count-orgs")
        @pass_state
        def count_orgs(state: ScimState) -> None:
            """Print how many organizations there are."""
            click.echo(str(len(state.store.list_orgs())))

        @cli.command("log")
        def hijack() -> None:
            click.echo("hijacked")


def test_plugins_add_commands_once_and_cannot_replace_builtins(cli: Invoke, env: dict[str, str]) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    plugin = CommandPlugin()
    app = Flask("host")
    app.config.update({k: v for k, v in env.items() if k != "SCIM_LOG_LEVEL"})
    ScimService(app, plugins=[plugin])
    host_state = get_state(app)
    builtin_log = main.commands["log"]
    runner = CliRunner()
    try:
        result = runner.invoke(main, ["count-orgs"], obj=host_state, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert result.stdout == "1\n"
        assert plugin.calls == 1
        assert "tried to replace the built-in command 'log'" in result.stderr
        assert main.commands["log"] is builtin_log

        helped = runner.invoke(main, ["--help"], obj=host_state, catch_exceptions=False)
        assert "count-orgs" in helped.stdout
        assert plugin.calls == 2  # once per invocation, though help both lists and looks up commands
        log = runner.invoke(main, ["log", "--json"], obj=host_state, catch_exceptions=False)
        assert "hijacked" not in log.stdout
    finally:
        main.commands.pop("count-orgs", None)
        main.commands["log"] = builtin_log
        host_state.close()


# -- issue 13: organizations, tokens, users, the log ------------------------------------------------


def _users_of(state: ScimState, org: str) -> None:
    tenant = state.store.get_org(org)
    ann = state.backend.create_user(tenant, {"userName": "ann", "active": True})
    state.backend.create_user(tenant, {"userName": "bob", "active": False})
    cy = state.backend.create_user(tenant, {"userName": "cy", "active": True})
    state.backend.delete_user(tenant, cy.id, hard=False)  # soft-deleted: invisible to SCIM
    state.backend.create_group(tenant, {"displayName": "staff"}, [Member(ann.id)])


def test_orgs_delete_asks_then_removes_everything_and_leaves_other_orgs(
    cli: Invoke, state: ScimState, env: dict[str, str]
) -> None:
    for name in ("acme", "beta"):
        assert cli("orgs", "create", name).exit_code == 0
        _users_of(state, name)
    token = json.loads(cli("tokens", "create", "acme", "--json").stdout)["token"]
    acme = state.store.get_org("acme")
    state.store.record(LogEntry("GET", "/scim/v2/Users", 200, org_id=acme.id))

    refused = cli("orgs", "delete", "acme")  # no terminal answer: no
    assert refused.exit_code == 1 and "Delete organization acme" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert state.store.authenticate(token) is not None
    kept = CliRunner().invoke(main, ["orgs", "delete", "acme"], input="n\n", env=env)
    assert kept.exit_code == 1 and state.store.get_org("acme") == acme

    done = cli("orgs", "delete", "acme", "--yes")
    assert done.exit_code == 0, done.output
    assert "deleted organization acme: 3 users, 1 groups, 1 tokens, 1 log entries" in done.stderr
    assert "users removed" in done.stderr  # progress on stderr
    assert [o["name"] for o in json.loads(cli("orgs", "list", "--json").stdout)] == ["beta"]
    assert state.store.authenticate(token) is None
    assert state.backend.count_seats(acme) == 0
    assert state.backend.list_inactive_users(acme) == []
    beta = state.store.get_org("beta")
    assert state.backend.count_seats(beta) == 3  # the other organization is untouched
    assert_fails_with(cli("orgs", "delete", "acme", "--yes"), "no organization named 'acme'")


def test_orgs_rename(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    assert cli("orgs", "create", "beta").exit_code == 0
    token = json.loads(cli("tokens", "create", "acme", "--json").stdout)["token"]
    result = cli("orgs", "rename", "acme", "acme-corp")
    assert result.exit_code == 0 and "renamed organization acme to acme-corp" in result.stderr
    tenant, _ = state.store.authenticate(token)  # type: ignore[misc]
    assert tenant.name == "acme-corp"
    assert_fails_with(cli("orgs", "rename", "acme-corp", "beta"), "organization 'beta' already exists")
    assert_fails_with(cli("orgs", "rename", "ghost", "x"), "no organization named 'ghost'")


def test_users_list_show_and_remove_inactive_dry_run(cli: Invoke, state: ScimState, env: dict[str, str]) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    _users_of(state, "acme")
    listed = json.loads(cli("users", "list", "acme", "--json").stdout)
    assert sorted((u["userName"], u["active"]) for u in listed) == [("ann", True), ("bob", False)]
    inactive = json.loads(cli("users", "list", "acme", "--inactive", "--json").stdout)
    assert sorted((u["userName"], u["deleted"]) for u in inactive) == [("bob", False), ("cy", True)]
    text = cli("users", "list", "acme")
    assert text.stdout.splitlines()[0].split() == ["ID", "USERNAME", "STATE", "LAST", "MODIFIED"]
    assert "2 users in acme" in text.stderr

    ann_id = next(u["id"] for u in listed if u["userName"] == "ann")
    tenant = state.store.get_org("acme")
    state.store.record(LogEntry("PATCH", f"/scim/v2/Users/{ann_id}", 204, org_id=tenant.id, resource_id=ann_id))
    by_name = json.loads(cli("users", "show", "acme", "ANN").stdout)
    assert by_name["id"] == ann_id and by_name["active"] is True and by_name["groups"][0]["display"] == "staff"
    assert [e["method"] for e in by_name["log"]] == ["PATCH"]
    assert json.loads(cli("users", "show", "acme", ann_id).stdout)["userName"] == "ann"
    cy_id = next(u["id"] for u in inactive if u["userName"] == "cy")
    assert json.loads(cli("users", "show", "acme", cy_id).stdout)["deleted"] is True
    assert_fails_with(cli("users", "show", "acme", "nobody"), "no user of acme has the id or userName 'nobody'")

    dry = cli("users", "remove-inactive", "acme", "--dry-run")
    assert dry.exit_code == 0 and "dry run: would remove 2 inactive users from acme" in dry.stderr
    assert sorted(line.split()[1] for line in dry.stdout.splitlines()) == ["bob", "cy"]
    assert state.backend.count_seats(tenant) == 3  # nothing removed
    unanswered = cli("users", "remove-inactive", "acme")  # all of them, and no --yes: it asks
    assert unanswered.exit_code == 1 and "Remove ALL 2 inactive and deleted users of acme" in unanswered.stderr
    assert state.backend.count_seats(tenant) == 3
    answered = CliRunner().invoke(main, ["users", "remove-inactive", "acme"], input="y\n", env=env)
    assert answered.exit_code == 0 and "removed 2 inactive users from acme" in answered.stdout
    assert state.backend.count_seats(tenant) == 1


def test_tokens_expiry_rotation_and_prefix_in_the_cli(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    made = cli("tokens", "create", "acme", "--expires-in", "90d", "--description", "Okta")
    assert made.exit_code == 0 and "it expires at" in made.stderr
    token = made.stdout.strip()
    (row,) = json.loads(cli("tokens", "list", "acme", "--json").stdout)
    expires = datetime.fromisoformat(row["expires_at"])
    assert timedelta(days=89, hours=23) < expires - datetime.now(UTC) <= timedelta(days=90)
    assert row["prefix"] == token[:13] and row["prefix"] + "..." in cli("tokens", "list", "acme").stdout

    rotated = cli("tokens", "rotate", row["prefix"], "--grace", "1h", "--json")  # named by its prefix
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert new["replaces"] == row["id"] and new["token"] != token
    assert state.store.authenticate(token) is not None and state.store.authenticate(new["token"]) is not None
    rows = {r["id"]: r for r in json.loads(cli("tokens", "list", "acme", "--json").stdout)}
    assert rows[row["id"]]["state"] == "rotating" and rows[row["id"]]["replaced_by"] == new["id"]
    assert rows[new["id"]]["description"] == "Okta" and rows[new["id"]]["expires_at"] is not None
    assert "rotating (by " + new["id"] in cli("tokens", "list", "acme").stdout
    now_revoked = cli("tokens", "rotate", new["id"], "--grace", "0s")
    assert now_revoked.exit_code == 0 and "stops working at" in now_revoked.stderr
    with pytest.raises(Unauthorized):
        state.store.authenticate(new["token"])
    bad = cli("tokens", "create", "acme", "--expires-in", "soon")
    assert bad.exit_code == 2 and "'soon' is not a duration" in bad.stderr


def test_log_filters_and_prune(cli: Invoke, state: ScimState) -> None:
    assert cli("orgs", "create", "acme").exit_code == 0
    acme = state.store.get_org("acme")
    now = datetime.now(UTC)
    alice = state.backend.create_user(acme, {"userName": "alice@example.com"})
    old = now - timedelta(days=2)
    state.store.record(LogEntry("GET", "/old", 200, at=now - timedelta(days=40), org_id=acme.id))
    state.store.record(
        LogEntry(
            "POST",
            "/scim/v2/Users",
            409,
            at=old,
            org_id=acme.id,
            scim_type="uniqueness",
            detail="userName taken",
            user_name="alice@example.com",
            request_id="okta-req-1",
        )
    )
    # A PATCH answered 204 names only the id: found by the userName through the backend.
    state.store.record(LogEntry("PATCH", f"/Users/{alice.id}", 204, at=old, org_id=acme.id, resource_id=alice.id))
    state.store.record(LogEntry("GET", "/scim/v2/Groups", 500, at=now - timedelta(minutes=5), org_id=acme.id))

    def statuses(*args: str) -> list[int]:
        result = cli("log", "--json", *args)
        assert result.exit_code == 0, result.output
        return [e["status"] for e in json.loads(result.stdout)]

    assert statuses("--user", "Alice@Example.com") == [204, 409]  # same time: the later written first
    assert statuses("--since", "3d", "--until", "1d") == statuses("--user", "alice@example.com")
    assert statuses("--since", "1h") == [500]
    assert statuses("--since", (now - timedelta(days=41)).date().isoformat(), "--until", "30d") == [200]
    assert statuses("--status", "4xx") == [409]
    assert statuses("--status", "5xx", "--org", "acme") == [500]
    assert statuses("--request-id", "okta-req-1") == [409]
    text = cli("log", "--request-id", "okta-req-1").stdout
    assert "409 uniqueness" in text and "alice@example.com" in text and "okta-req-1" in text
    bad = cli("log", "--since", "yesterday-ish")
    assert bad.exit_code == 2 and "is not a time" in bad.stderr
    assert_fails_with(cli("log", "--status", "nope"), "status 'nope'")

    pruned = cli("log", "prune")  # the default retention: 90 days
    assert pruned.exit_code == 0 and pruned.stdout.strip() == "deleted 0 log entries"
    pruned = cli("log", "prune", "--older-than", "30d")
    assert pruned.exit_code == 0 and pruned.stdout.strip() == "deleted 1 log entries"
    assert "keeping entries younger than 30d" in pruned.stderr
    pruned = cli("log", "prune", "--keep-rows", "1")
    assert pruned.stdout.strip() == "deleted 2 log entries"
    assert statuses() == [500]


def test_default_backend_methods_work_for_a_backend_that_does_not_override_them(tmp_path: Path) -> None:
    """The contract's list_inactive_users and remove_tenant_data, as a third-party backend gets them."""
    from scim_backend_memory.backend import MemoryBackend

    from scim_service.backend import Backend
    from scim_service.model import Tenant

    assert MemoryBackend.remove_tenant_data is Backend.remove_tenant_data
    backend = MemoryBackend.from_config({"SCIM_MAX_PAGE_SIZE": "2"})
    acme, beta = Tenant(id="a", name="acme"), Tenant(id="b", name="beta")
    users = [backend.create_user(acme, {"userName": f"u{n}", "active": n % 2 == 0}) for n in range(5)]
    for n in range(3):
        backend.create_group(acme, {"displayName": f"g{n}"}, [Member(users[n].id)])
    backend.create_user(beta, {"userName": "other"})
    backend.delete_user(acme, users[0].id, hard=False)
    inactive = backend.list_inactive_users(acme)
    assert {u.user_name for u in inactive} >= {"u1", "u3"}  # visible inactive users at least
    progress: list[tuple[str, int]] = []
    removed = backend.remove_tenant_data(acme, progress=lambda what, n: progress.append((what, n)))
    assert removed == {"groups": 3, "users": 5}
    assert ("groups removed", 3) in progress and progress[-1] == ("users removed", 5)
    assert backend.count_seats(acme) == 0
    assert backend.count_seats(beta) == 1
