"""SQL statements and transactions per request, over HTTP (Flask's test client) on SQLite (issue 12).

Counted with SQLAlchemy event listeners on every engine of the process (``before_cursor_execute``
and ``begin``), so the service database (token, organization, provisioning log) and the ``sql``
backend are both seen. The bounds are upper bounds: a change that adds a statement or a transaction to
a hot request fails here, and lowering a bound records an improvement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_helpers import USER_SCHEMA, Scim, make_app, new_org

from scim_service.extension import get_state

# (statements, transactions) per request, measured before the work of issue 12 (perf branch, 03:50 UTC).
BEFORE = {
    "get": (5, 4),
    "filter": (6, 4),
    "post": (5, 4),
    "patch_active": (10, 6),
    "put": (10, 6),
    "delete": (8, 5),
    "group_add": (10, 5),
}

# What they are now, asserted as upper bounds. GET: token and organization (one statement), the user
# and its groups (one read transaction), the log insert. A filter: the same, its page read first (a
# short page is its own total: no count). Writes: the token, the current user (the If-Match/PATCH
# base), the write transaction, the log insert.
BOUND = {
    "get": (4, 3),
    "filter": (4, 3),
    "post": (4, 3),
    "patch_active": (6, 4),
    "put": (6, 4),
    "delete": (7, 4),
    "group_add": (8, 4),
}


@dataclass
class Counts:
    """What one request ran."""

    statements: int = 0
    transactions: int = 0


@contextmanager
def counting() -> Iterator[Counts]:
    """Count the statements (BEGIN excluded) and transactions run in the block, on any engine."""
    counts = Counts()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            counts.statements += 1

    def on_begin(_conn: Any) -> None:
        counts.transactions += 1

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_execute)
    sa.event.listen(sa.engine.Engine, "begin", on_begin)
    try:
        yield counts
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_execute)
        sa.event.remove(sa.engine.Engine, "begin", on_begin)


@pytest.fixture
def scim_sqlite(tmp_path: Path) -> Iterator[Scim]:
    """A client of organization 'acme' on a SQLite app (this module measures SQLite only)."""
    app = make_app(tmp_path, SCIM_BACKEND="sql")
    state = get_state(app)
    try:
        yield Scim(app.test_client(), new_org(state, "acme"))
    finally:
        state.close()


def _cost(scim: Scim, method: str, path: str, body: Any = None, status: int | tuple[int, ...] = 200) -> Counts:
    # The same request once before counting: the token's last-used touch (once a minute) and first-use
    # caches are not what a steady client pays.
    with counting() as counts:
        response = scim.request(method, path, body)
    wanted = status if isinstance(status, tuple) else (status,)
    assert response.status_code in wanted, response.get_data(as_text=True)
    return counts


def _within(counts: Counts, bound: tuple[int, int]) -> None:
    assert counts.statements <= bound[0] and counts.transactions <= bound[1], (counts, bound)


def _user(scim: Scim, name: str) -> str:
    return scim.create_user(name)["id"]


def test_read_costs(scim_sqlite: Scim) -> None:
    scim = scim_sqlite
    user_id = _user(scim, "ann")
    scim.get(f"/Users/{user_id}")  # warm: the token's last-used touch happens on first use
    got = _cost(scim, "GET", f"/Users/{user_id}")
    found = _cost(scim, "GET", '/Users?filter=userName eq "ann"')
    print("get", got, "filter", found)
    _within(got, BOUND["get"])
    _within(found, BOUND["filter"])


def test_user_write_costs(scim_sqlite: Scim) -> None:
    scim = scim_sqlite
    user_id = _user(scim, "ann")
    scim.get(f"/Users/{user_id}")
    post = _cost(
        scim, "POST", "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob"}, 201
    )
    patch = _cost(
        scim,
        "PATCH",
        f"/Users/{user_id}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
        (200, 204),
    )
    put = _cost(
        scim,
        "PUT",
        f"/Users/{user_id}",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann", "active": True},
    )
    delete = _cost(scim, "DELETE", f"/Users/{user_id}", status=204)
    print("post", post, "patch", patch, "put", put, "delete", delete)
    _within(post, BOUND["post"])
    _within(patch, BOUND["patch_active"])
    _within(put, BOUND["put"])
    _within(delete, BOUND["delete"])


def _group_add_cost(scim: Scim, members: int, query: str = "") -> Counts:
    state_users = [_user(scim, f"m{n}") for n in range(members + 1)]
    group = scim.create_group("big", state_users[:members])
    scim.get(f"/Groups/{group['id']}?excludedAttributes=members")
    return _cost(
        scim,
        "PATCH",
        f"/Groups/{group['id']}{query}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": state_users[-1]}]}],
        },
        (200, 204),
    )


@pytest.mark.parametrize(
    ("profile", "query"),
    [("auto", ""), ("okta", ""), ("entra", ""), ("generic", "?excludedAttributes=members")],
)
def test_group_add_costs_the_same_at_10_and_1000_members(tmp_path: Path, profile: str, query: str) -> None:
    # The generic profile answers 200 with the group: without its members (as asked) nothing in the
    # membership check or the version bump may read the member list either.
    costs = []
    for members in (10, 1000):
        app = make_app(tmp_path / str(members), SCIM_BACKEND="sql")
        state = get_state(app)
        try:
            token = new_org(state, "acme")
            state.store.set_profile("acme", profile)
            costs.append(_group_add_cost(Scim(app.test_client(), token), members, query))
        finally:
            state.close()
    print("group add", profile, costs)
    small, large = costs
    assert (large.statements, large.transactions) == (small.statements, small.transactions)
    _within(small, BOUND["group_add"])


def test_the_token_touch_rides_on_the_log_insert(tmp_path: Path) -> None:
    app = make_app(tmp_path, SCIM_BACKEND="sql")
    state = get_state(app)
    try:
        # One request first: the process's one-time checks (are the service tables there?) are done.
        assert Scim(app.test_client(), new_org(state, "acme")).get("/ServiceProviderConfig").status_code == 200
        token_id, token = state.store.create_token("acme")
        scim = Scim(app.test_client(), token)
        assert state.store.get_token(token_id).last_used is None
        first = _cost(scim, "GET", "/ServiceProviderConfig")  # the token's first use: its touch is due
        assert state.store.get_token(token_id).last_used is not None
        warm = _cost(scim, "GET", "/ServiceProviderConfig")
        assert first.transactions == warm.transactions == 2  # the token read, the log insert
        assert first.statements == warm.statements + 1  # the touch, in the log insert's transaction
    finally:
        state.close()


def test_a_written_user_is_answered_with_its_groups_without_a_second_read(scim_sqlite: Scim) -> None:
    scim = scim_sqlite
    user_id = _user(scim, "ann")
    group = scim.create_group("staff", [user_id])
    put = scim.put(f"/Users/{user_id}", {"schemas": [USER_SCHEMA], "userName": "ann", "displayName": "Ann"})
    patched = scim.patch(f"/Users/{user_id}", [{"op": "replace", "path": "active", "value": False}])
    got = scim.get(f"/Users/{user_id}").get_json()
    assert [g["value"] for g in put.get_json()["groups"]] == [group["id"]]
    assert patched.status_code == 200 and patched.get_json()["groups"] == got["groups"]
    assert patched.get_json()["meta"] == got["meta"]


def test_a_page_counts_only_when_it_cannot_tell_its_total(scim_sqlite: Scim) -> None:
    """The total of a short page is what precedes it plus what it holds; a full page, or an empty one
    past the start, still asks count(*). Totals stay exact either way."""
    scim = scim_sqlite
    for n in range(5):
        _user(scim, f"u{n}")

    def page(query: str) -> tuple[int, int, int]:
        with counting() as counts:
            body = scim.get(f"/Users?{query}").get_json()
        return body["totalResults"], len(body["Resources"]) if "Resources" in body else 0, counts.statements

    short, full = page("count=10"), page("count=5")
    assert short[:2] == (5, 5) and full[:2] == (5, 5)
    assert full[2] == short[2] + 1  # only the full page counted
    assert page("startIndex=4&count=10")[:2] == (5, 2)  # short, past the start: 3 before it + 2
    assert page("startIndex=9&count=10")[:2] == (5, 0)  # empty past the start: counted
    assert page("count=0")[:2] == (5, 0)
    assert page('filter=userName eq "u3"')[:2] == (1, 1)
    assert page('filter=userName eq "nobody"')[:2] == (0, 0)
    first = scim.get("/Users?cursor=&count=10").get_json()
    assert first["totalResults"] == 5 and "nextCursor" not in first
    paged = scim.get("/Users?cursor=&count=2").get_json()
    assert paged["totalResults"] == 5 and paged["nextCursor"]
    last = scim.get(f"/Users?cursor={paged['nextCursor']}&count=10").get_json()
    assert last["totalResults"] == 5 and len(last["Resources"]) == 3
