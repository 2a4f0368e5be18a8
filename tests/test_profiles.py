"""IdP profiles: the catalogue, detection, each tolerance refused by ``generic`` and applied (and recorded)
by a profile that allows it, the organization setting (store, CLI, migration) and the provisioning log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa

from scim_service.errors import InvalidSyntax, InvalidValue, NoTarget, ScimError
from scim_service.model import ENTERPRISE_SCHEMA as ENT
from scim_service.model import USER_SCHEMA
from scim_service.patch import PATCH_OP_SCHEMA, apply_group_patch, apply_user_patch
from scim_service.profiles import (
    AUTO_PROFILE,
    ENTRA,
    GENERIC,
    OKTA,
    PROFILE_CHOICES,
    PROFILES,
    ActiveProfile,
    Profile,
    Tolerance,
    detect,
    get_profile,
    resolve,
)
from scim_service.schemas.messages import load_patch_op
from scim_service.schemas.resources import load_group, load_user
from scim_service.servicedb.store import AdminError, LogEntry, ServiceStore
from scim_service.sqlengine import make_engine

OKTA_UA = "Okta SCIM Client 1.0.0"
ENTRA_UA = "Microsoft Azure AD SCIM provisioning 1.0.0"


def body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)}


def user_doc() -> dict[str, Any]:
    return {"userName": "bjensen", "active": True, "emails": [{"value": "b@example.com", "type": "home"}]}


# -- the catalogue ------------------------------------------------------------------------------


def test_every_tolerance_is_documented_and_named() -> None:
    for tolerance in Tolerance:
        assert tolerance.value == tolerance.name.lower()
        assert len(tolerance.summary) > 60, f"{tolerance.name} needs a description"
        assert "RFC" in tolerance.summary, f"{tolerance.name} must say what the RFC wants instead"


def test_profiles() -> None:
    assert set(PROFILES) == {"generic", "okta", "entra", "onelogin", "jumpcloud", "google"}
    assert AUTO_PROFILE.tolerances == frozenset(Tolerance) and "auto" not in PROFILES
    assert PROFILE_CHOICES[0] == "auto"
    assert GENERIC.tolerances == frozenset()
    assert ENTRA.tolerances == frozenset(Tolerance)
    assert {p.name for p in PROFILES.values() if p.group_patch_no_content} == {"okta", "entra"}
    assert {p.name for p in PROFILES.values() if p.user_patch_no_content} == {"entra"}
    assert AUTO_PROFILE.group_patch_no_content and not AUTO_PROFILE.user_patch_no_content
    for profile in PROFILES.values():
        assert profile.title and profile.description
    with pytest.raises(ValueError, match="unknown IdP profile 'ping'"):
        get_profile("ping")
    assert get_profile(" Okta ") is OKTA


@pytest.mark.parametrize(
    ("user_agent", "query", "expected"),
    [
        (OKTA_UA, (), "okta"),
        ("okta scim client 2.3", (), "okta"),
        (ENTRA_UA, (), "entra"),
        ("python-requests/2.31", ("aadOptscim062020",), "entra"),
        ("python-requests/2.31", (), "auto"),
        (None, (), "auto"),
        ("OneLogin", (), "auto"),  # not a reliable sign: OneLogin is chosen by setting only
        ("Mozilla/5.0 (compatible; Oktavian)", (), "auto"),
    ],
)
def test_detection(user_agent: str | None, query: tuple[str, ...], expected: str) -> None:
    assert detect(user_agent, query).name == expected
    assert resolve("auto", user_agent, query).name == expected
    assert resolve(None, user_agent, query).name == expected


def test_a_setting_wins_over_detection() -> None:
    assert resolve("generic", OKTA_UA).name == "generic"
    assert resolve("onelogin", ENTRA_UA).name == "onelogin"


def test_active_profile_records_each_tolerance_once_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    active = ActiveProfile(ENTRA, label="PATCH /scim/v2/Users/1")
    with caplog.at_level(logging.INFO, logger="scim_service.profiles"):
        assert active.allows(Tolerance.CAPITALISED_OPS, "op 'Add'")
        assert active.allows(Tolerance.CAPITALISED_OPS, "op 'Remove'")
        assert active.allows(Tolerance.STRING_BOOLEANS, "active = 'False'")
    assert active.summary() == "entra: capitalised_ops, string_booleans"
    lines = [r.getMessage() for r in caplog.records if r.name == "scim_service.profiles"]
    assert lines == [
        "PATCH /scim/v2/Users/1: profile entra applied tolerance capitalised_ops: op 'Add'",
        "PATCH /scim/v2/Users/1: profile entra applied tolerance string_booleans: active = 'False'",
    ]
    strict = ActiveProfile(GENERIC)
    assert not strict.allows(Tolerance.CAPITALISED_OPS, "x")
    assert strict.summary() == "generic"  # the profile, even when nothing fired
    assert "the auto and entra profiles accept it" in (strict.refusal_hint() or "")


# -- each tolerance: refused by generic, applied and recorded by a profile that allows it ------------


def _user_patch(profile: Profile, *ops: dict[str, Any]) -> tuple[dict[str, Any], ActiveProfile]:
    active = ActiveProfile(profile)
    return apply_user_patch(user_doc(), load_patch_op(body(*ops), active)), active


PATCH_CASES = [
    (
        Tolerance.CAPITALISED_OPS,
        {"op": "Replace", "path": "title", "value": "Lead"},
        InvalidSyntax,
        "in lower case",
        lambda doc: doc["title"] == "Lead",
    ),
    (
        Tolerance.STRING_BOOLEANS,
        {"op": "replace", "path": "active", "value": "False"},
        InvalidValue,
        "'active': expected a boolean",
        lambda doc: doc["active"] is False,
    ),
    (
        Tolerance.PATHLESS_QUALIFIED_KEYS,
        {"op": "replace", "value": {"name.givenName": "Bab", f"{ENT}:department": "Ops"}},
        InvalidValue,
        "put 'name.givenName' in the operation's path",
        lambda doc: doc["name"] == {"givenName": "Bab"} and doc[ENT] == {"department": "Ops"},
    ),
    (
        Tolerance.PATHLESS_QUALIFIED_KEYS,
        {"op": "replace", "value": {'emails[type eq "home"].value': "new@example.com"}},
        InvalidValue,
        "must be attribute names",
        lambda doc: doc["emails"] == [{"value": "new@example.com", "type": "home"}],
    ),
    (
        Tolerance.VALUE_PATH_CREATES,
        {"op": "add", "path": 'emails[type eq "work"].value', "value": "w@example.com"},
        NoTarget,
        "matches no value of emails",
        lambda doc: {"type": "work", "value": "w@example.com"} in doc["emails"],
    ),
    (
        Tolerance.REMOVE_WITH_VALUE,
        {"op": "remove", "path": "emails", "value": [{"value": "b@example.com"}]},
        InvalidSyntax,
        "a remove operation takes no value",
        lambda doc: "emails" not in doc,
    ),
    (
        Tolerance.MANAGER_BARE_STRING,
        {"op": "add", "path": f"{ENT}:manager", "value": "m-42"},
        InvalidValue,
        "expected an object with sub-attributes",
        lambda doc: doc[ENT] == {"manager": {"value": "m-42"}},
    ),
    (
        Tolerance.UNKNOWN_ATTRIBUTE_IGNORED,
        {"op": "add", "value": {"favouriteColour": "blue", "title": "T"}},
        InvalidValue,
        "Unknown attribute 'favouriteColour'",
        lambda doc: doc["title"] == "T" and "favouriteColour" not in doc,
    ),
    (
        Tolerance.UNKNOWN_SCHEMA_IGNORED,
        {"op": "add", "value": {"urn:acme:scim:custom:1.0:User": {"badge": "7"}, "title": "T"}},
        InvalidValue,
        "names no schema of the User resource",
        lambda doc: doc["title"] == "T" and len(doc) == 4,
    ),
]


@pytest.mark.parametrize(("tolerance", "op", "error", "fragment", "check"), PATCH_CASES)
def test_patch_tolerances(
    tolerance: Tolerance, op: dict[str, Any], error: type[ScimError], fragment: str, check: Any
) -> None:
    with pytest.raises(error, match=fragment):
        _user_patch(GENERIC, op)
    # A profile with every tolerance but this one refuses it the same way.
    without = Profile("test", "t", "t", tolerances=frozenset(Tolerance) - {tolerance})
    with pytest.raises(error, match=fragment):
        _user_patch(without, op)
    doc, active = _user_patch(ENTRA, op)
    assert check(doc), doc
    assert list(active.fired) == [tolerance]


def test_group_remove_with_a_value_list_is_refused_strictly_and_never_clears() -> None:
    data = {"displayName": "Admins"}
    remove = body({"op": "remove", "path": "members", "value": [{"value": "u1"}]})
    with pytest.raises(InvalidSyntax, match=r'members\[value eq "..."\]'):
        apply_group_patch(data, load_patch_op(remove, ActiveProfile(GENERIC)))
    active = ActiveProfile(ENTRA)
    changes = apply_group_patch(data, load_patch_op(remove, active))
    assert changes.remove == ("u1",) and not changes.clear_members
    assert list(active.fired) == [Tolerance.REMOVE_WITH_VALUE]
    onelogin = ActiveProfile(PROFILES["onelogin"])
    assert apply_group_patch(data, load_patch_op(remove, onelogin)).remove == ("u1",)


def test_rfc_forms_fire_no_tolerance() -> None:
    """What the RFC allows is accepted by generic and records nothing, in every profile."""
    ops = (
        {"op": "replace", "value": {"active": False, "name": {"givenName": "B"}, ENT: {"department": "X"}}},
        {"op": "add", "path": "emails", "value": [{"value": "w@example.com", "type": "work"}]},
        {"op": "remove", "path": 'emails[type eq "home"]'},
        {"op": "replace", "path": f"{ENT}:manager", "value": {"value": "m1"}},
    )
    for profile in PROFILES.values():
        doc, active = _user_patch(profile, *ops)
        assert doc["emails"] == [{"value": "w@example.com", "type": "work"}]
        assert not active.fired, profile.name
    group_ops = body(
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": 'members[value eq "u2"]'},
        {"op": "replace", "path": "members", "value": []},
    )
    active = ActiveProfile(GENERIC)
    changes = apply_group_patch({"displayName": "G"}, load_patch_op(group_ops, active))
    assert changes.clear_members and not active.fired


LOAD_CASES = [
    (Tolerance.STRING_BOOLEANS, {"active": "False"}, "expected a boolean", lambda d: d["active"] is False),
    (
        Tolerance.MANAGER_BARE_STRING,
        {ENT: {"manager": "m-1"}},
        "expected an object",
        lambda d: d[ENT] == {"manager": {"value": "m-1"}},
    ),
    (
        Tolerance.UNKNOWN_ATTRIBUTE_IGNORED,
        {"shoeSize": 42},
        "Unknown attribute 'shoeSize'",
        lambda d: "shoeSize" not in d,
    ),
    (
        Tolerance.UNKNOWN_SCHEMA_IGNORED,
        {"urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User": {"x": "y"}},
        "Unknown schema",
        lambda d: set(d) == {"userName", "active"},
    ),
]


@pytest.mark.parametrize(("tolerance", "extra", "fragment", "check"), LOAD_CASES)
def test_load_tolerances(tolerance: Tolerance, extra: dict[str, Any], fragment: str, check: Any) -> None:
    payload = {"schemas": [USER_SCHEMA], "userName": "a", **extra}
    if ENT in extra:
        payload["schemas"].append(ENT)
    with pytest.raises(InvalidValue, match=fragment):
        load_user(payload)
    active = ActiveProfile(ENTRA)
    assert check(load_user(payload, profile=active).data)
    assert list(active.fired) == [tolerance]


def test_entra_adscim_group_schema() -> None:
    payload = {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group",
        ],
        "displayName": "Sales",
    }
    with pytest.raises(InvalidValue, match="Unknown schema"):
        load_group(payload)
    active = ActiveProfile(ENTRA)
    assert load_group(payload, profile=active).data == {"displayName": "Sales"}
    assert list(active.fired) == [Tolerance.UNKNOWN_SCHEMA_IGNORED]


# -- the organization setting ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Any) -> ServiceStore:
    from scim_service.servicedb.migrate import upgrade_service_db

    engine = make_engine(f"sqlite:///{tmp_path}/svc.db")
    upgrade_service_db(engine)
    return ServiceStore(engine)


def test_store_profile_setting(store: ServiceStore) -> None:
    acme = store.create_org("acme")
    assert store.get_profile("acme") == "auto" and store.profile_of(acme.id) == "auto"
    store.create_org("globex", profile="Okta")
    assert store.profiles() == {"acme": "auto", "globex": "okta"}
    assert store.set_profile("acme", "ENTRA") == "entra"
    assert store.profile_of(acme.id) == "entra"
    assert store.profile_of("no-such-id") == "auto"
    with pytest.raises(AdminError, match="profile must be one of auto, generic, okta"):
        store.set_profile("acme", "ping")
    with pytest.raises(AdminError, match="profile must be one of"):
        store.create_org("initech", profile="ping")
    with pytest.raises(AdminError, match="no organization named 'nope'"):
        store.set_profile("nope", "okta")


def test_log_entry_keeps_the_tolerances(store: ServiceStore) -> None:
    store.create_org("acme")
    store.record(LogEntry(method="PATCH", path="/scim/v2/Users/1", status=200, tolerances="entra: capitalised_ops"))
    store.record(LogEntry(method="GET", path="/scim/v2/Users", status=200))
    entries = store.recent_log()
    assert [e.tolerances for e in entries] == [None, "entra: capitalised_ops"]
    assert entries[1].to_dict()["tolerances"] == "entra: capitalised_ops"


def test_migration_0002_keeps_existing_organizations_and_tokens(tmp_path: Any) -> None:
    from alembic import command

    from scim_service.servicedb.migrate import alembic_config, current_revision, head_revision, upgrade_service_db
    from scim_service.sqlengine import write_transaction

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    config = alembic_config()
    with write_transaction(engine) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO organizations (id, name, max_seats, seat_policy, match_policy, created) "
                "VALUES ('o1', 'acme', 5, 'all', 'email', '2024-01-01 00:00:00')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO tokens (id, org_id, token_hash, created) VALUES ('t1', 'o1', 'h', '2024-01-01 00:00:00')"
            )
        )
    # Later revisions keep what 0002 did: upgrade to the newest one.
    assert upgrade_service_db(engine) == ("0001", head_revision())
    assert current_revision(engine) == head_revision()
    store = ServiceStore(engine)
    assert store.get_profile("acme") == "auto"
    assert [t.id for t in store.list_tokens("acme")] == ["t1"]
    engine.dispose()


def test_cli_profiles(tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from scim_service.cli import main

    env = {"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", "SCIM_LOG_LEVEL": "WARNING"}
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    assert cli("db", "upgrade").exit_code == 0
    created = cli("orgs", "create", "acme", "--profile", "okta")
    assert created.exit_code == 0 and "IdP profile okta" in created.output
    assert cli("orgs", "create", "globex").exit_code == 0
    assert {r["name"]: r["profile"] for r in json.loads(cli("orgs", "list", "--json").stdout)} == {
        "acme": "okta",
        "globex": "auto",
    }
    changed = cli("orgs", "set-profile", "globex", "entra")
    assert changed.exit_code == 0 and "IdP profile entra" in changed.output
    assert "entra" in cli("orgs", "list").stdout.splitlines()[2].split()
    bad = cli("orgs", "set-profile", "globex", "ping")
    assert bad.exit_code != 0 and "ping" in bad.output
    missing = cli("orgs", "set-profile", "nope", "okta")
    assert missing.exit_code != 0 and "no organization named 'nope'" in missing.output
