"""Bad input never gets a 500: generated bodies and parameters thrown at every endpoint.

Every answer must be a success or a SCIM error below 500, and a refused write must leave the
organization as it was.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_helpers import GROUP_SCHEMA, USER_SCHEMA, Scim, make_app, new_org
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim_service.extension import get_state

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
NAMES = [
    "userName",
    "USERNAME",
    "emails",
    "name",
    "active",
    "groups",
    "members",
    "id",
    "meta",
    "title",
    "displayName",
    "externalId",
    "phoneNumbers",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "name.givenName",
    'emails[type eq "work"].value',
    'members[value eq "x"]',
    "",
    "x" * 300,
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(NAMES),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
user_bodies = st.fixed_dictionaries(
    {"schemas": st.sampled_from([[USER_SCHEMA], [], ["urn:nope"], "x"])},
    optional={name: json_values for name in NAMES[:13]},
)
patch_ops = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace", "remove", "Add", "move", 7])},
        optional={"path": st.sampled_from(NAMES) | st.text(max_size=30), "value": json_values},
    ),
    max_size=4,
)
filters = st.sampled_from(
    ['userName eq "a"', "not (", 'emails[type eq "work"', "meta.lastModified gt 5", "pr"]
) | st.text(max_size=40)

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scim, str, str]:
    app = make_app(tmp_path_factory.mktemp("fuzz"))
    scim = Scim(app.test_client(), new_org(get_state(app), "fuzz", max_seats=10_000))
    user_id = scim.create_user("anchor", email="anchor@x.test")["id"]
    group_id = scim.create_group("anchors", [user_id])["id"]
    return scim, user_id, group_id


def assert_no_server_error(response: Any) -> None:
    """No 5xx, and a refusal is a SCIM error document."""
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.get_json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def _snapshot(scim: Scim, user_id: str, group_id: str) -> tuple[Any, Any]:
    user = scim.get(f"/Users/{user_id}").get_json()
    group = scim.get(f"/Groups/{group_id}").get_json()
    return user["meta"]["version"], group["meta"]["version"]


@FUZZ
@given(body=user_bodies)
def test_post_and_put_users(fuzz_client, body):
    scim, user_id, group_id = fuzz_client
    assert_no_server_error(scim.post("/Users", body))
    before = _snapshot(scim, user_id, group_id)
    response = scim.put(f"/Users/{user_id}", body)
    assert_no_server_error(response)
    if response.status_code >= 400:
        assert _snapshot(scim, user_id, group_id) == before
    else:  # put the anchor back for the next example
        scim.put(f"/Users/{user_id}", {"schemas": [USER_SCHEMA], "userName": "anchor"})


@FUZZ
@given(operations=patch_ops)
def test_patch_users_and_groups(fuzz_client, operations):
    scim, user_id, group_id = fuzz_client
    for path in (f"/Users/{user_id}", f"/Groups/{group_id}"):
        before = _snapshot(scim, user_id, group_id)
        response = scim.request("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": operations})
        assert_no_server_error(response)
        if response.status_code >= 400:
            assert _snapshot(scim, user_id, group_id) == before
    scim.put(f"/Users/{user_id}", {"schemas": [USER_SCHEMA], "userName": "anchor"})
    scim.put(
        f"/Groups/{group_id}", {"schemas": [GROUP_SCHEMA], "displayName": "anchors", "members": [{"value": user_id}]}
    )


@FUZZ
@given(
    expression=filters,
    sort=st.sampled_from(NAMES) | st.text(max_size=10),
    start=st.text(max_size=6),
    count=st.text(max_size=6),
)
def test_list_parameters(fuzz_client, expression, sort, start, count):
    scim, _user_id, _group_id = fuzz_client
    params = {"filter": expression, "sortBy": sort, "startIndex": start, "count": count, "attributes": sort}
    for path in ("/Users", "/Groups"):
        assert_no_server_error(scim.get(path, query_string=params))
    assert_no_server_error(
        scim.post(
            "/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": expression}
        )
    )


@FUZZ
@given(body=json_values)
def test_arbitrary_json_everywhere(fuzz_client, body):
    scim, user_id, group_id = fuzz_client
    raw = json.dumps(body)
    headers = scim.headers({"Content-Type": "application/scim+json"})
    for method, path in (
        ("POST", "/Users"),
        ("POST", "/Groups"),
        ("PUT", f"/Groups/{group_id}"),
        ("PATCH", f"/Users/{user_id}"),
        ("POST", "/Bulk"),
        ("POST", "/Users/.search"),
    ):
        assert_no_server_error(scim.client.open(scim.base + path, method=method, data=raw, headers=headers))
    scim.put(
        f"/Groups/{group_id}", {"schemas": [GROUP_SCHEMA], "displayName": "anchors", "members": [{"value": user_id}]}
    )


# Text with lone UTF-16 surrogates (what a truncated emoji from a Java or .NET IdP produces) mixed in.
surrogate_text = st.text(
    alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.sampled_from("ab é😀"),
    min_size=1,
    max_size=6,
).filter(lambda t: any(0xD800 <= ord(c) <= 0xDFFF for c in t))


def _deep(depth: int, kind: str) -> str:
    """JSON text nested ``depth`` levels deep (lists, objects or both in turn), written as text: Python's
    own encoder and hypothesis's printer would recurse on such a value."""
    opens = []
    for level in range(depth):
        use_list = kind == "list" or (kind == "mixed" and level % 2)
        opens.append("[" if use_list else '{"name": ')
    closes = ["]" if o == "[" else "}" for o in reversed(opens)]
    return "".join(opens) + '"x"' + "".join(closes)


surrogate_bodies = st.fixed_dictionaries(
    {"schemas": st.just([USER_SCHEMA]), "userName": st.sampled_from(["ok-name"]) | surrogate_text},
    optional={"title": surrogate_text, "name": st.dictionaries(surrogate_text, st.text(max_size=4), min_size=1)},
).filter(lambda b: any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(b, ensure_ascii=False)))
deep_bodies = st.builds(_deep, st.integers(min_value=33, max_value=3000), st.sampled_from(["list", "dict", "mixed"]))
deep_filters = st.builds(
    lambda n, opener: opener * n + "userName pr" + ")" * n,
    st.integers(min_value=17, max_value=1500),
    st.sampled_from(["(", "not(", "not ("]),
)


@FUZZ
@given(raw=surrogate_bodies.map(json.dumps) | deep_bodies)
def test_surrogates_and_nesting_in_bodies_are_400_and_write_nothing(fuzz_client, raw):
    # json.dumps (ensure_ascii): a lone surrogate travels as a "\udxxx" escape, as IdPs send it.
    scim, user_id, group_id = fuzz_client
    headers = scim.headers({"Content-Type": "application/scim+json"})
    before = _snapshot(scim, user_id, group_id)
    count = scim.get("/Users?count=0").get_json()["totalResults"]
    for method, path in (
        ("POST", "/Users"),
        ("PUT", f"/Users/{user_id}"),
        ("PUT", f"/Groups/{group_id}"),
        ("PATCH", f"/Users/{user_id}"),
        ("POST", "/Bulk"),
        ("POST", "/Users/.search"),
    ):
        response = scim.client.open(scim.base + path, method=method, data=raw, headers=headers)
        assert_no_server_error(response)
        assert response.status_code == 400, (method, path, response.get_json())
        assert response.get_json()["scimType"] in ("invalidSyntax", "invalidValue")
    assert _snapshot(scim, user_id, group_id) == before
    assert scim.get("/Users?count=0").get_json()["totalResults"] == count


@FUZZ
@given(expression=deep_filters | surrogate_text.map(lambda t: f'userName eq "{json.dumps(t)[1:-1]}"'))
def test_surrogates_and_nesting_in_filters_are_400(fuzz_client, expression):
    scim, _user_id, _group_id = fuzz_client
    for path in ("/Users", "/Groups"):
        response = scim.get(path, query_string={"filter": expression})
        assert_no_server_error(response)
        assert response.status_code == 400
        assert response.get_json()["scimType"] == "invalidFilter"
    assert scim.get("/Users?count=1").status_code == 200
