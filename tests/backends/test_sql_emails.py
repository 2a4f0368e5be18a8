"""The email side table (``scim_user_emails``): kept in step with every user write, filled by migration
0002 from documents written at 0001, and giving ``emails.value`` filters exactly the evaluator's answers.

Every filter result is compared with :func:`~scim_service.query.evaluator.evaluate_list` over the
documents the API renders, and with the same filter compiled through the JSON document
(``FilterCompiler(email_index=False)``), so a side table out of step with the documents fails here.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from scim_sql.backend import MIGRATIONS_DIR, VERSION_TABLE, SqlBackend
from scim_sql.filters import FilterCompiler, prefix_end
from scim_sql.tables import EMAIL_MAX, email_rows, email_values, user_emails, users

from scim_service.errors import UniquenessConflict
from scim_service.model import MatchPolicy, Page, Tenant
from scim_service.query.ast import ListQuery
from scim_service.query.evaluator import evaluate_list
from scim_service.query.parser import parse_filter
from scim_service.query.resolve import resolve_filter
from scim_service.schemas.definitions import USER_RESOURCE
from scim_service.schemas.render import render_user

BASE = "https://scim.test/scim/v2"
LONG = "l" * 600 + "@example.com"  # longer than the EMAIL_MAX characters the side table keeps
MAXCHAR = chr(0x10FFFF)


def resolved(text: str) -> Any:
    return resolve_filter(parse_filter(text), USER_RESOURCE)


def assert_emails_in_step(backend: SqlBackend, tenant: Tenant) -> int:
    """Assert the tenant's side-table rows are exactly those its stored users' documents give; their number."""
    e = user_emails
    with backend.engine.connect() as conn:
        expected = sorted(
            (r["user_id"], r["ordinal"], r["tenant_id"], r["value_lower"], r["value_key"])
            for u in conn.execute(
                sa.select(users.c.id, users.c.tenant_id, users.c.data).where(users.c.tenant_id == tenant.id)
            )
            for r in email_rows(u.tenant_id, u.id, u.data)
        )
        stored = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(e.c.user_id, e.c.ordinal, e.c.tenant_id, e.c.value_lower, e.c.value_key).where(
                    e.c.tenant_id == tenant.id
                )
            )
        )
        # No row may outlive its user or name another tenant's user.
        orphans = conn.execute(
            sa.select(sa.func.count())
            .select_from(e.outerjoin(users, users.c.id == e.c.user_id))
            .where(e.c.tenant_id == tenant.id, sa.or_(users.c.id.is_(None), users.c.tenant_id != e.c.tenant_id))
        ).scalar_one()
    assert stored == expected
    assert orphans == 0
    return len(stored)


def matching(backend: SqlBackend, tenant: Tenant, text: str) -> set[str]:
    """Ids list_users returns for ``text``, once :func:`assert_filter_agrees` has checked them."""
    query = ListQuery(filter=resolved(text), count=10_000)
    page = backend.list_users(tenant, query)
    assert_filter_agrees(backend, tenant, text, query, page)
    return {u.id for u in page.resources}


def assert_filter_agrees(backend: SqlBackend, tenant: Tenant, text: str, query: ListQuery, page: Page) -> None:
    """``page`` holds what the reference evaluator selects for ``query``, in its order and with its total, and
    what the same filter selects through the JSON documents alone (without the email side table)."""
    everyone = backend.list_users(tenant, ListQuery(count=10_000)).resources
    oracle, total = evaluate_list([render_user(r, BASE) for r in everyone], query)
    got = [u.id for u in page.resources]
    assert got == [d["id"] for d in oracle], f"{text}: differs from the reference evaluator"
    assert page.total_results == total
    json_only = FilterCompiler(
        "User", backend.engine.dialect.name, lower_collation=backend._lower_collation(), email_index=False
    )
    condition = sa.and_(users.c.tenant_id == tenant.id, users.c.deleted.is_(sa.false()), json_only.where(query.filter))
    with backend.engine.connect() as conn:
        assert set(conn.execute(sa.select(users.c.id).where(condition)).scalars()) == set(got), text


def uses_side_table(backend: SqlBackend, text: str) -> bool:
    compiler = FilterCompiler("User", backend.engine.dialect.name)
    sql = str(compiler.where(resolved(text), tenant_id="t").compile(dialect=backend.engine.dialect))
    return "scim_user_emails" in sql


def email(value: Any, **extra: Any) -> dict[str, Any]:
    return {"value": value, **extra}


# -- the rows a document gives ----------------------------------------------------------------------


def test_email_values_are_the_evaluators_values() -> None:
    data = {
        "emails": [
            email("A@Example.COM", type="work"),
            {"type": "home"},  # no value
            email(5),  # not a string: no string compare can match it
            "bare@example.com",  # not an object: no emails.value
            email(""),
            {"VALUE": "Upper@Key.org"},  # keys are case-insensitive
            email("İSTANBUL@x.tr"),  # str.lower() makes it longer
            email(LONG),
        ]
    }
    assert email_values(data) == [
        (0, "a@example.com", "a@example.com"),
        (4, "", ""),
        (5, "upper@key.org", "upper@key.org"),
        (6, "İSTANBUL@x.tr".lower(), "İSTANBUL@x.tr".lower()),
        (7, LONG[:EMAIL_MAX], LONG[:EMAIL_MAX]),
    ]
    # The comparison key (rules.comparison_key) beside the lower-cased text: fullwidth, ß, edges.
    assert email_values({"emails": [email("\u200b\uff33traße@X.de\u00a0")]}) == [
        (0, "\u200b\uff53traße@x.de\u00a0", "strasse@x.de")
    ]
    assert email_values({"emails": email("Single@X.org")}) == [(0, "single@x.org", "single@x.org")]
    assert email_values({"userName": "x"}) == [] == email_values({"emails": None})


def test_prefix_end_bounds_exactly_the_strings_with_the_prefix() -> None:
    assert prefix_end("ab") == "ac"
    assert prefix_end("") is None
    assert prefix_end(MAXCHAR * 2) is None
    assert prefix_end("a" + MAXCHAR) == "b"
    assert prefix_end("a" + chr(0xD7FF)) == "a" + chr(0xE000)
    words = ["a", "ab", "ab" + MAXCHAR, "ab" + MAXCHAR + "z", "ac", "aa", "b", "", "ab\x00", "ab" + chr(0x10000)]
    for prefix in ["a", "ab", "ab" + MAXCHAR, "", MAXCHAR]:
        end = prefix_end(prefix)
        for word in words:
            in_range = word >= prefix and (end is None or word < end)
            assert in_range == word.startswith(prefix), (prefix, word)


# -- every write keeps it in step ----------------------------------------------------------------------


def test_every_user_write_keeps_the_side_table_in_step(backend: SqlBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, {"userName": "a", "emails": [email("A@Example.com", primary=True)]})
    b = backend.create_user(tenant, {"userName": "b", "emails": [email("b@x.org"), email("shared@x.org")]})
    c = backend.create_user(tenant, {"userName": "c", "active": False, "emails": [email("c@x.org")]})
    rows = assert_emails_in_step(backend, tenant)
    assert rows >= 4
    assert matching(backend, tenant, 'emails.value eq "a@example.COM"') == {a.id}

    # replace: the new emails only
    backend.replace_user(tenant, a.id, {"userName": "a", "emails": [email("new@Example.com"), email("shared@x.org")]})
    assert_emails_in_step(backend, tenant)
    assert matching(backend, tenant, 'emails.value eq "a@example.com"') == set()
    assert matching(backend, tenant, 'emails.value eq "shared@x.org"') == {a.id, b.id}
    # replace without an email change, and a replace that drops every email
    backend.replace_user(
        tenant, b.id, {"userName": "b", "displayName": "B", "emails": [email("b@x.org"), email("shared@x.org")]}
    )
    backend.replace_user(tenant, c.id, {"userName": "c", "active": False})
    assert_emails_in_step(backend, tenant)
    assert matching(backend, tenant, 'emails.value sw "c@"') == set()

    # soft delete: never matches, whatever the side table keeps
    backend.delete_user(tenant, b.id, hard=False)
    assert_emails_in_step(backend, tenant)
    assert matching(backend, tenant, 'emails.value eq "shared@x.org"') == {a.id}
    assert matching(backend, tenant, 'emails[value eq "b@x.org"]') == set()
    # undelete (reactivation in place) with other emails
    backend.replace_user(tenant, b.id, {"userName": "b", "emails": [email("back@x.org")]}, undelete=True)
    assert_emails_in_step(backend, tenant)
    assert matching(backend, tenant, 'emails.value eq "back@x.org"') == {b.id}
    assert matching(backend, tenant, 'emails.value eq "b@x.org"') == set()

    # hard delete and remove_inactive_users take the rows along
    backend.delete_user(tenant, a.id, hard=True)
    rows = assert_emails_in_step(backend, tenant)
    assert rows >= 1
    assert matching(backend, tenant, 'emails.value eq "shared@x.org"') == set()
    backend.replace_user(tenant, c.id, {"userName": "c", "active": False, "emails": [email("c@x.org")]})
    backend.delete_user(tenant, b.id, hard=False)
    assert set(backend.remove_inactive_users(tenant)) == {b.id, c.id}
    rows = assert_emails_in_step(backend, tenant)
    assert rows == 0


def test_a_failed_write_leaves_no_rows(backend: SqlBackend, tenant: Tenant) -> None:
    backend.create_user(tenant, {"userName": "dup", "emails": [email("one@x.org")]})
    with pytest.raises(UniquenessConflict):  # the point is the rollback of the side-table rows
        backend.create_user(tenant, {"userName": "DUP", "emails": [email("two@x.org")]})
    assert_emails_in_step(backend, tenant)
    assert matching(backend, tenant, 'emails.value eq "two@x.org"') == set()


def test_tenants_do_not_see_each_others_emails(backend: SqlBackend, make_tenant: Callable[..., Tenant]) -> None:
    t1, t2 = make_tenant(), make_tenant()
    u1 = backend.create_user(t1, {"userName": "x", "emails": [email("same@x.org")]})
    u2 = backend.create_user(t2, {"userName": "x", "emails": [email("same@x.org")]})
    assert matching(backend, t1, 'emails.value eq "same@x.org"') == {u1.id}
    assert matching(backend, t2, 'emails.value sw "same"') == {u2.id}


# -- exactly the evaluator's semantics ---------------------------------------------------------------


EMAILS = [
    "Alice@Example.com",
    "alice@example.org",
    "ÉMILE@x.fr",
    "STRASSE@x.de",
    "straße@x.de",
    "İSTANBUL@x.tr",
    "50%_off@x.org",
    "a_b@x.org",
    "",
    LONG,
    LONG[: EMAIL_MAX - 1],
    LONG[:EMAIL_MAX],
    "z" + MAXCHAR + "@x.org",
]


@pytest.fixture
def people(backend: SqlBackend, make_tenant: Callable[..., Tenant]) -> tuple[SqlBackend, Tenant, list[str]]:
    """Users whose emails mix case, Unicode, LIKE wildcards, "", values around the cut, odd elements."""
    rng = random.Random(11)
    tenant = make_tenant(match_policy=MatchPolicy.USERNAME)
    for i in range(40):
        emails: list[Any] = []
        for _ in range(rng.randint(0, 3)):
            element: dict[str, Any] = {"type": rng.choice(["work", "home", "Work"])}
            if rng.random() < 0.9:
                element["value"] = rng.choice(EMAILS)
            if rng.random() < 0.3:
                element["primary"] = rng.random() < 0.5
            emails.append(element)
        if i % 13 == 0:
            emails.append(email(7))  # a value of the wrong type
        if any(len(e.get("value", "")) > EMAIL_MAX for e in emails if isinstance(e.get("value"), str)):
            # The backend refuses a primary email that long (its own rule): make a short one primary.
            for e in emails:
                e.pop("primary", None)
            emails.insert(0, email(f"u{i}@x.org", primary=True))
        data: dict[str, Any] = {"userName": f"u{i}"}
        if emails or rng.random() < 0.5:
            data["emails"] = emails
        created = backend.create_user(tenant, data)
        if i % 9 == 0:
            backend.delete_user(tenant, created.id, hard=False)
    assert_emails_in_step(backend, tenant)
    return backend, tenant, EMAILS


def _variants(value: str) -> list[str]:
    return [value, value.upper(), value.lower(), value[:5], value[:1]]


def test_eq_ne_sw_match_the_evaluator(people: tuple[SqlBackend, Tenant, list[str]]) -> None:
    backend, tenant, values = people
    seen_hits = 0
    for value in values:
        for variant in _variants(value):
            for op in ("eq", "ne", "sw"):
                seen_hits += len(matching(backend, tenant, f"emails.value {op} {json.dumps(variant)}"))
    # The boundaries of the cut: an eq of EMAIL_MAX characters and a longer sw go through the JSON path.
    for length in (EMAIL_MAX - 1, EMAIL_MAX, EMAIL_MAX + 1, len(LONG)):
        seen_hits += len(matching(backend, tenant, f'emails.value eq "{LONG[:length]}"'))
        seen_hits += len(matching(backend, tenant, f'emails.value sw "{LONG[:length]}"'))
    assert seen_hits > 100  # the corpus really matches


@pytest.mark.parametrize(
    "text",
    [
        'emails[type eq "work" and value eq "alice@example.com"]',
        'emails[value eq "alice@example.com" and type eq "home"]',
        'emails[value sw "ALICE" and not (type eq "work")]',
        'emails[value eq "straße@x.de" or value sw "İ"]',
        'emails[value eq "straße@x.de" or type eq "home"]',
        'emails[value eq "strasse@x.de"]',
        'emails[value ne "alice@example.com"]',
        'emails[value sw ""]',
        'emails[value eq ""]',
        'emails[primary eq true and value sw "a"]',
        'not (emails[value eq "alice@example.com"])',
        'emails.value eq "a_b@x.org" or userName eq "u3"',
        'emails.value sw "50%" and not (emails.value eq "a_b@x.org")',
        'emails.value sw "a%"',
        "emails.value eq null",
        "emails.value ne null",
        "emails.value pr",
        'emails.value co "example"',
        'emails.value ew ".DE"',
        'emails.value gt "s"',
        'emails eq "alice@example.com"',
    ],
)
def test_value_paths_and_fallbacks_match_the_evaluator(people: tuple[SqlBackend, Tenant, list[str]], text: str) -> None:
    backend, tenant, _ = people
    matching(backend, tenant, text)


def test_the_side_table_serves_eq_and_sw_only(backend: SqlBackend) -> None:
    for text in [
        'emails.value eq "x@y.org"',
        'emails.value ne "x@y.org"',
        'emails.value sw "x"',
        'emails[value eq "x@y.org"]',
        'emails[type eq "work" and value eq "x@y.org"]',
        'emails[value eq "a" or value sw "b"]',
        # value eq inside a value path compares the element's stored key (SQL cannot compute it).
        'emails[value eq "a" or type eq "work"]',
        'urn:ietf:params:scim:schemas:core:2.0:User:emails.value eq "x"',
        'emails eq "x@y.org"',  # the resolver reads it as emails.value
    ]:
        assert uses_side_table(backend, text), text
    for text in [
        'emails.value co "x"',
        'emails.value ew "x"',
        'emails.value gt "x"',
        "emails.value pr",
        "emails.value eq null",
        'emails[type eq "work"]',
        'emails[value sw "a" or type eq "work"]',
        f'emails.value eq "{"x" * EMAIL_MAX}"',
        f'emails.value sw "{"x" * (EMAIL_MAX + 1)}"',
        'emails.type eq "work"',
    ]:
        assert not uses_side_table(backend, text), text


def test_without_the_tenant_the_lookup_correlates_and_still_matches(backend: SqlBackend, tenant: Tenant) -> None:
    u = backend.create_user(tenant, {"userName": "x", "emails": [email("Corr@X.org")]})
    compiler = FilterCompiler("User", backend.engine.dialect.name)
    condition = sa.and_(users.c.tenant_id == tenant.id, compiler.where(resolved('emails.value eq "corr@x.org"')))
    with backend.engine.connect() as conn:
        assert list(conn.execute(sa.select(users.c.id).where(condition)).scalars()) == [u.id]


# -- migration 0002 on SQLite ----------------------------------------------------------------------------


def _alembic(backend: SqlBackend) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_table", VERSION_TABLE)
    return cfg


def test_migration_0002_backfills_users_written_at_0001(tmp_path: Path) -> None:
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/old.db"})
    backend.migrate("0001")
    with backend.engine.connect() as conn:
        assert "scim_user_emails" not in sa.inspect(conn).get_table_names()
    tenant = Tenant(id="old", name="old")
    now = datetime.now(UTC)
    rng = random.Random(5)
    docs = []
    # More users than one backfill batch (2000), with every shape of emails.
    for i in range(4500):
        emails: list[Any] = [email(f"User{i}@Example.com", type="work", primary=True)]
        if i % 3 == 0:
            emails.append(email(rng.choice(EMAILS), type="home"))
        if i % 7 == 0:
            emails.append({"type": "other"})
        data: dict[str, Any] = {"userName": f"user{i}", "emails": emails}
        if i % 11 == 0:
            del data["emails"]
        docs.append(
            {
                "id": str(uuid.uuid4()),
                "tenant_id": tenant.id,
                "user_name": data["userName"],
                "user_name_lower": data["userName"],
                "primary_email_lower": None,
                "external_id": None,
                "display_name": None,
                "active": True,
                "deleted": i % 10 == 5,
                "data": data,
                "created": now,
                "last_modified": now,
                "deactivated_at": None,
                "version": 1,
            }
        )
    with backend.engine.begin() as conn:
        conn.execute(users.insert(), docs)

    backend.migrate()

    rows = assert_emails_in_step(backend, tenant)

    assert rows > 4500
    target = docs[4321]
    assert matching(backend, tenant, 'emails.value eq "USER4321@example.com"') == {target["id"]}
    assert matching(backend, tenant, 'emails.value eq "user4325@example.com"') == set()  # soft-deleted
    assert len(matching(backend, tenant, 'emails[type eq "work" and value sw "user43"]')) > 50
    matching(backend, tenant, 'emails.value eq "alice@example.com"')
    # Writes after the upgrade keep it in step.
    backend.replace_user(tenant, target["id"], {"userName": "user4321", "emails": [email("moved@x.org")]})
    assert matching(backend, tenant, 'emails.value eq "moved@x.org"') == {target["id"]}
    assert_emails_in_step(backend, tenant)

    # Downgrade drops the table; upgrading again rebuilds it from the documents.
    with backend.engine.begin() as conn:
        cfg = _alembic(backend)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with backend.engine.connect() as conn:
        assert "scim_user_emails" not in sa.inspect(conn).get_table_names()
    backend.migrate()
    assert_emails_in_step(backend, tenant)
    assert matching(backend, tenant, 'emails.value eq "moved@x.org"') == {target["id"]}
    backend.close()
