"""The PATCH engine (RFC 7644 §3.5.2) on user documents and group deltas, with Okta and Entra ID shapes.

The helpers apply PATCH under the ``entra`` profile (the widest: every tolerance), so the IdP shapes
below are accepted; what the strict ``generic`` profile answers to each is in ``tests/test_profiles.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scim_service.errors import InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget, ScimError
from scim_service.model import ENTERPRISE_SCHEMA as ENT
from scim_service.model import GroupChanges, Member
from scim_service.patch import PATCH_OP_SCHEMA, apply_group_patch, apply_user_patch
from scim_service.profiles import ENTRA, GENERIC, ActiveProfile, Profile
from scim_service.schemas.messages import load_patch_op


def body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)}


def user() -> dict[str, Any]:
    return {
        "userName": "bjensen",
        "active": True,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        ENT: {"employeeNumber": "1", "manager": {"value": "m0"}},
    }


def patch(*ops: dict[str, Any], doc: dict[str, Any] | None = None, profile: Profile = ENTRA) -> dict[str, Any]:
    return apply_user_patch(doc if doc is not None else user(), load_patch_op(body(*ops), ActiveProfile(profile)))


# -- the body ------------------------------------------------------------------------------------


def test_parse_patch_body() -> None:
    ops = load_patch_op(
        body({"op": "Add", "path": "title", "value": "x"}, {"OP": "remove", "PATH": "title"}), ActiveProfile(ENTRA)
    )
    assert [(o.op, o.path, o.value, o.index) for o in ops] == [("add", "title", "x", 1), ("remove", "title", None, 2)]


@pytest.mark.parametrize(
    ("raw", "error", "fragment"),
    [
        ({"Operations": [{"op": "add", "value": {}}]}, InvalidValue, "'schemas' attribute is missing"),
        ({"schemas": ["urn:x"], "Operations": []}, InvalidValue, f"does not contain {PATCH_OP_SCHEMA}"),
        ({"schemas": [PATCH_OP_SCHEMA]}, InvalidSyntax, "non-empty list"),
        ({"schemas": [PATCH_OP_SCHEMA], "Operations": []}, InvalidSyntax, "non-empty list"),
        ({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}, InvalidSyntax, "non-empty list"),
        ({"schemas": [PATCH_OP_SCHEMA], "Operations": ["add"]}, InvalidSyntax, "Operation 1 must be an object"),
        ({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "move"}]}, InvalidSyntax, "add, replace or remove"),
        ({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"path": "x"}]}, InvalidSyntax, "add, replace or remove"),
        ({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": "x"}]}, InvalidValue, "value is required"),
        ({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": 3, "value": 1}]}, InvalidPath, "string"),
        ([], InvalidSyntax, "JSON object"),
    ],
)
def test_body_errors(raw: Any, error: type[ScimError], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        load_patch_op(raw)


# -- users: simple attributes ---------------------------------------------------------------------


def test_okta_deactivate_without_path() -> None:
    result = patch({"op": "replace", "value": {"active": False}})
    assert result["active"] is False


def test_entra_boolean_strings() -> None:
    assert patch({"op": "Replace", "path": "active", "value": "False"})["active"] is False
    assert patch({"op": "Replace", "path": "active", "value": "true"}, doc={"userName": "x"})["active"] is True
    with pytest.raises(InvalidValue, match="'active': expected a boolean"):
        patch({"op": "replace", "path": "active", "value": "nope"})


def test_input_is_never_mutated() -> None:
    doc = user()
    before = copy.deepcopy(doc)
    result = apply_user_patch(
        doc,
        load_patch_op(
            body(
                {"op": "replace", "path": "name.givenName", "value": "B"},
                {"op": "add", "path": 'emails[type eq "work"].value', "value": "new@x.org"},
                {"op": "remove", "path": f"{ENT}:manager"},
            )
        ),
    )
    assert doc == before
    assert result["name"]["givenName"] == "B"


def test_result_is_in_stored_form() -> None:
    doc = {
        **user(),
        "id": "u1",
        "meta": {"version": "W/1"},
        "schemas": ["x"],
        "groups": [{"value": "g"}],
        "USERNAME": "x",
    }
    del doc["userName"]
    result = patch({"op": "replace", "path": "title", "value": "Boss"}, doc=doc)
    assert set(result) == {"userName", "active", "name", "emails", ENT, "title"}
    assert result["userName"] == "x"


def test_replace_and_add_simple() -> None:
    result = patch(
        {"op": "replace", "path": "displayName", "value": "Babs"}, {"op": "add", "path": "Title", "value": "T"}
    )
    assert result["displayName"] == "Babs"
    assert result["title"] == "T"  # canonical name


def test_remove_simple_and_null_value_removes() -> None:
    assert "displayName" not in patch({"op": "remove", "path": "displayName"}, doc={**user(), "displayName": "x"})
    assert "displayName" not in patch(
        {"op": "replace", "path": "displayName", "value": None}, doc={**user(), "displayName": "x"}
    )
    assert "nickName" not in patch({"op": "remove", "path": "nickName"})  # absent: no-op


def test_sub_attribute_paths() -> None:
    result = patch(
        {"op": "replace", "path": "name.familyName", "value": "J"},
        {"op": "add", "path": "name.middleName", "value": "M"},
    )
    assert result["name"] == {"givenName": "Barbara", "familyName": "J", "middleName": "M"}
    result = patch({"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"})
    assert "name" not in result  # an empty complex value is dropped


def test_complex_replace_merges_sub_attributes() -> None:
    result = patch({"op": "replace", "path": "name", "value": {"familyName": "Smith", "FORMATTED": "B Smith"}})
    assert result["name"] == {"givenName": "Barbara", "familyName": "Smith", "formatted": "B Smith"}


def test_required_attribute_cannot_be_removed() -> None:
    with pytest.raises(InvalidValue, match="userName is required"):
        patch({"op": "remove", "path": "userName"})
    with pytest.raises(InvalidValue, match="userName is required"):
        patch({"op": "replace", "path": "userName", "value": None})


def test_type_errors() -> None:
    with pytest.raises(InvalidValue, match="'displayName': expected a string"):
        patch({"op": "replace", "path": "displayName", "value": 5})
    with pytest.raises(InvalidValue, match=r"Unknown attribute 'name\.nosuch'"):
        patch({"op": "replace", "path": "name", "value": {"nosuch": "x"}}, profile=GENERIC)
    # Under a profile that ignores unknown attributes, the unknown sub-attribute is dropped.
    assert patch({"op": "replace", "path": "name", "value": {"nosuch": "x"}})["name"] == user()["name"]
    with pytest.raises(InvalidValue, match="'name': expected an object with sub-attributes"):
        patch({"op": "replace", "path": "name", "value": ["x"]})


# -- users: path-less value maps ------------------------------------------------------------------


def test_pathless_with_dotted_and_urn_keys() -> None:
    result = patch(
        {
            "op": "replace",
            "value": {
                "name.givenName": "Bab",
                f"{ENT}:employeeNumber": "7",
                ENT: {"department": "Sales", "manager": {"value": "m1", "displayName": "ignored"}},
                "urn:ietf:params:scim:schemas:core:2.0:User:nickName": "Babs",
                "schemas": ["ignored"],
            },
        }
    )
    assert result["name"]["givenName"] == "Bab"
    assert result["nickName"] == "Babs"
    assert result[ENT] == {"employeeNumber": "7", "manager": {"value": "m1"}, "department": "Sales"}


def test_pathless_unknown_attribute() -> None:
    with pytest.raises(InvalidValue, match="Unknown attribute 'nosuch'"):
        patch({"op": "add", "value": {"nosuch": 1}}, profile=GENERIC)
    assert patch({"op": "add", "value": {"nosuch": 1}}) == user()  # entra: ignored, with a log line


def test_pathless_value_must_be_a_map() -> None:
    with pytest.raises(InvalidValue, match="without a path, the value must be an object"):
        patch({"op": "replace", "value": "x"})


def test_pathless_id_is_ignored_unless_it_differs() -> None:
    assert patch({"op": "replace", "value": {"id": "u1", "title": "t"}})["title"] == "t"
    ok = apply_user_patch(
        user(), load_patch_op(body({"op": "replace", "value": {"id": "u1", "title": "t"}})), current_id="u1"
    )
    assert "id" not in ok
    with pytest.raises(Mutability, match="id is readOnly"):
        apply_user_patch(user(), load_patch_op(body({"op": "replace", "value": {"id": "other"}})), current_id="u1")


def test_remove_without_path_is_no_target() -> None:
    with pytest.raises(NoTarget, match="a remove needs a path"):
        patch({"op": "remove"})


# -- users: readOnly and unknown paths ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["id", "meta", "meta.created", "groups", "groups.value", f"{ENT}:manager.displayName"])
def test_read_only_paths(path: str) -> None:
    with pytest.raises(Mutability, match="readOnly"):
        patch({"op": "replace", "path": path, "value": "x"})


def test_read_only_in_a_value_map() -> None:
    with pytest.raises(Mutability, match="'groups' is readOnly"):
        patch({"op": "add", "value": {"groups": [{"value": "g1"}]}})


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("nosuch", "Unknown attribute 'nosuch'"),
        ("name.nosuch", "no sub-attribute 'nosuch'"),
        ('emails[type eq "work"].nosuch', "no sub-attribute 'nosuch'"),
        ('emails[nosuch eq "work"]', "nosuch"),
        ('name[givenName eq "x"]', "multi-valued complex attribute"),
        ('emails[type eq "work"', "']' to close"),
        ('emails[primary eq "yes"]', "Expected true or false"),
        ("urn:example:other:attr", "not a schema of the User resource"),
    ],
)
def test_bad_paths(path: str, fragment: str) -> None:
    with pytest.raises(InvalidPath, match=fragment.replace("[", r"\[")):
        patch({"op": "replace", "path": path, "value": "x"})


# -- users: multi-valued -----------------------------------------------------------------------------


def test_add_appends_without_exact_duplicates() -> None:
    result = patch(
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "babs@jensen.org", "type": "home"}, {"value": "third@x.org", "type": "other"}],
        }
    )
    assert [e["value"] for e in result["emails"]] == ["bjensen@example.com", "babs@jensen.org", "third@x.org"]


def test_add_a_single_value_to_multi_valued() -> None:
    result = patch({"op": "add", "path": "phoneNumbers", "value": {"value": "555", "type": "work"}})
    assert result["phoneNumbers"] == [{"value": "555", "type": "work"}]


def test_replace_multi_valued_replaces_the_list() -> None:
    result = patch({"op": "replace", "path": "emails", "value": [{"value": "only@x.org", "primary": "True"}]})
    assert result["emails"] == [{"value": "only@x.org", "primary": True}]
    assert "emails" not in patch({"op": "replace", "path": "emails", "value": []})


def test_filtered_sub_attribute_replace() -> None:
    result = patch({"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"})
    assert result["emails"][0] == {"value": "new@example.com", "type": "work", "primary": True}
    assert result["emails"][1]["value"] == "babs@jensen.org"


def test_entra_add_filtered_value_creates_the_element() -> None:
    doc = {"userName": "x"}
    result = patch({"op": "Add", "path": 'emails[type eq "work"].value', "value": "a@b.c"}, doc=doc)
    assert result["emails"] == [{"type": "work", "value": "a@b.c"}]
    result = patch({"op": "Replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "555"}, doc=doc)
    assert result["phoneNumbers"] == [{"type": "mobile", "value": "555"}]
    result = patch(
        {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Main St"},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Springfield"},
        doc=doc,
    )
    assert result["addresses"] == [{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}]


def test_filtered_without_match_and_not_an_eq_filter_is_no_target() -> None:
    with pytest.raises(NoTarget, match="matches no value of emails"):
        patch({"op": "replace", "path": 'emails[value co "@nowhere"].type', "value": "other"})
    with pytest.raises(NoTarget):
        patch({"op": "replace", "path": 'emails[type eq "a" or type eq "b"].value', "value": "x"})


def test_filtered_whole_element_replace_and_add() -> None:
    result = patch({"op": "replace", "path": 'emails[type eq "home"]', "value": {"value": "h@x.org", "type": "home"}})
    assert result["emails"][1] == {"value": "h@x.org", "type": "home"}
    result = patch({"op": "add", "path": 'emails[type eq "home"]', "value": {"display": "Home"}})
    assert result["emails"][1] == {"value": "babs@jensen.org", "type": "home", "display": "Home"}
    result = patch({"op": "add", "path": 'ims[type eq "skype"]', "value": {"value": "babs"}})
    assert result["ims"] == [{"type": "skype", "value": "babs"}]


def test_remove_filtered_elements() -> None:
    result = patch({"op": "remove", "path": 'emails[type eq "work"]'})
    assert result["emails"] == [{"value": "babs@jensen.org", "type": "home"}]
    assert "emails" not in patch({"op": "remove", "path": "emails[value pr]"})


def test_remove_filtered_without_match_is_a_no_op() -> None:
    assert patch({"op": "remove", "path": 'emails[type eq "other"]'}) == user()
    assert patch({"op": "remove", "path": 'phoneNumbers[type eq "work"]'}) == user()


def test_remove_filtered_sub_attribute() -> None:
    result = patch({"op": "remove", "path": 'emails[type eq "work"].primary'})
    assert result["emails"][0] == {"value": "bjensen@example.com", "type": "work"}


def test_remove_with_a_value_list() -> None:
    result = patch({"op": "remove", "path": "emails", "value": [{"value": "babs@jensen.org"}]})
    assert [e["value"] for e in result["emails"]] == ["bjensen@example.com"]


def test_multi_valued_sub_attribute_without_filter_applies_to_every_element() -> None:
    result = patch({"op": "replace", "path": "emails.type", "value": "other"})
    assert [e["type"] for e in result["emails"]] == ["other", "other"]
    result = patch({"op": "remove", "path": "emails.type"})
    assert all("type" not in e for e in result["emails"])


def test_filters_follow_the_evaluator_semantics() -> None:
    # case-insensitive type, boolean primary, and "and" over one element
    result = patch({"op": "replace", "path": 'emails[TYPE eq "WORK" and primary eq true].display', "value": "W"})
    assert result["emails"][0]["display"] == "W"
    assert "display" not in result["emails"][1]


# -- users: primary stays unique ----------------------------------------------------------------


def test_setting_primary_clears_the_others() -> None:
    result = patch({"op": "replace", "path": 'emails[type eq "home"].primary', "value": True})
    assert [e.get("primary") for e in result["emails"]] == [False, True]


def test_adding_a_primary_value_clears_the_others() -> None:
    result = patch({"op": "add", "path": "emails", "value": [{"value": "n@x.org", "primary": "True"}]})
    assert [e.get("primary") for e in result["emails"]] == [False, None, True]


def test_two_primaries_in_one_operation() -> None:
    with pytest.raises(InvalidValue, match="'emails': 2 values have primary set to true; at most one may"):
        patch(
            {
                "op": "replace",
                "path": "emails",
                "value": [{"value": "a", "primary": True}, {"value": "b", "primary": True}],
            }
        )
    with pytest.raises(InvalidValue, match="at most one"):
        patch({"op": "replace", "path": "emails.primary", "value": True})


# -- users: the enterprise extension ---------------------------------------------------------------


def test_enterprise_paths() -> None:
    result = patch(
        {"op": "Add", "path": f"{ENT}:manager", "value": "m2"},  # Entra sends the bare id
        {"op": "replace", "path": f"{ENT}:employeeNumber", "value": "9"},
        {"op": "add", "path": f"{ENT}:costCenter", "value": "CC"},
    )
    assert result[ENT] == {"employeeNumber": "9", "manager": {"value": "m2"}, "costCenter": "CC"}


def test_enterprise_sub_attribute_and_remove() -> None:
    result = patch({"op": "replace", "path": f"{ENT}:manager.value", "value": "m3"})
    assert result[ENT]["manager"] == {"value": "m3"}
    result = patch({"op": "Remove", "path": f"{ENT}:manager"}, {"op": "remove", "path": f"{ENT}:employeeNumber"})
    assert ENT not in result  # an empty extension is dropped


def test_whole_extension_path() -> None:
    result = patch({"op": "add", "path": ENT, "value": {"division": "D"}})
    assert result[ENT]["division"] == "D"
    assert ENT not in patch({"op": "remove", "path": ENT})
    result = patch({"op": "add", "path": ENT.upper(), "value": {"division": "D"}})
    assert result[ENT]["division"] == "D"


def test_extension_without_urn_prefix_resolves() -> None:
    assert patch({"op": "replace", "path": "department", "value": "Ops"})[ENT]["department"] == "Ops"


# -- atomicity ------------------------------------------------------------------------------------


def test_a_failing_operation_leaves_no_result() -> None:
    doc = user()
    before = copy.deepcopy(doc)
    with pytest.raises(InvalidPath):
        apply_user_patch(
            doc,
            load_patch_op(
                body({"op": "replace", "path": "title", "value": "x"}, {"op": "replace", "path": "nosuch", "value": 1})
            ),
        )
    assert doc == before


def test_operations_apply_in_order() -> None:
    result = patch(
        {"op": "add", "path": "title", "value": "a"},
        {"op": "remove", "path": "title"},
        {"op": "add", "path": "nickName", "value": "n"},
        {"op": "replace", "path": "nickName", "value": "m"},
    )
    assert "title" not in result
    assert result["nickName"] == "m"


# -- groups ---------------------------------------------------------------------------------------


def gpatch(*ops: dict[str, Any], data: dict[str, Any] | None = None) -> GroupChanges:
    return apply_group_patch(
        data if data is not None else {"displayName": "Admins"}, load_patch_op(body(*ops), ActiveProfile(ENTRA))
    )


def test_group_rename_okta_echoes_the_id() -> None:
    changes = gpatch({"op": "replace", "value": {"id": "g1", "displayName": "Ops"}})
    assert changes == GroupChanges(data={"displayName": "Ops"})


def test_group_rename_entra() -> None:
    changes = gpatch({"op": "Replace", "path": "displayName", "value": "Ops"})
    assert changes.data == {"displayName": "Ops"}
    assert changes.add == changes.remove == ()
    assert not changes.clear_members


def test_group_data_none_when_unchanged() -> None:
    assert gpatch({"op": "add", "path": "members", "value": [{"value": "u1"}]}).data is None
    assert gpatch({"op": "replace", "path": "displayName", "value": "Admins"}).data is None


def test_group_external_id() -> None:
    changes = gpatch({"op": "add", "path": "externalId", "value": "ext"})
    assert changes.data == {"displayName": "Admins", "externalId": "ext"}
    assert gpatch({"op": "remove", "path": "externalId"}, data={"displayName": "A", "externalId": "e"}).data == {
        "displayName": "A"
    }


def test_group_display_name_is_required() -> None:
    with pytest.raises(InvalidValue, match="displayName is required"):
        gpatch({"op": "remove", "path": "displayName"})


def test_add_members() -> None:
    changes = gpatch(
        {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "g2", "type": "group", "display": "G"}]}
    )
    assert changes.add == (Member("u1"), Member("g2", "Group", "G"))
    assert not changes.clear_members


def test_replace_members() -> None:
    changes = gpatch({"op": "replace", "path": "members", "value": [{"value": "u1"}]})
    assert changes == GroupChanges(add=(Member("u1"),), clear_members=True)
    changes = gpatch({"op": "replace", "value": {"members": [{"value": "u2"}], "displayName": "New"}})
    assert changes == GroupChanges(data={"displayName": "New"}, add=(Member("u2"),), clear_members=True)


def test_pathless_add_members() -> None:
    changes = gpatch({"op": "add", "value": {"members": [{"value": "u1"}]}})
    assert changes == GroupChanges(add=(Member("u1"),))


def test_entra_remove_members_with_value_list_never_clears() -> None:
    changes = gpatch({"op": "Remove", "path": "members", "value": [{"value": "id1"}, {"value": "id2"}]})
    assert changes == GroupChanges(remove=("id1", "id2"))


def test_remove_members_by_filter() -> None:
    assert gpatch({"op": "remove", "path": 'members[value eq "id1"]'}) == GroupChanges(remove=("id1",))
    changes = gpatch({"op": "remove", "path": 'members[value eq "a" or value eq "b" or VALUE eq "c"]'})
    assert changes.remove == ("a", "b", "c")


def test_remove_all_members() -> None:
    assert gpatch({"op": "remove", "path": "members"}) == GroupChanges(clear_members=True)


@pytest.mark.parametrize(
    ("op", "fragment"),
    [
        ({"op": "remove", "path": 'members[type eq "User"]'}, "selected only by id"),
        ({"op": "remove", "path": 'members[value eq "a" and value eq "b"]'}, "selected only by id"),
        ({"op": "remove", "path": 'members[value co "a"]'}, "selected only by id"),
        ({"op": "remove", "path": 'members[not (value eq "a")]'}, "selected only by id"),
        ({"op": "add", "path": 'members[value eq "a"]', "value": {"value": "a"}}, "only for remove"),
        ({"op": "remove", "path": 'members[value eq "a"].display'}, "cannot be removed"),
        ({"op": "replace", "path": "members.display", "value": "x"}, "cannot be patched"),
        ({"op": "remove", "path": "nosuch"}, "Unknown attribute"),
    ],
)
def test_unsupported_member_paths(op: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidPath, match=fragment):
        gpatch(op)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([{"display": "no value"}], "needs a value"),
        ([{"value": ""}], "needs a value"),
        ([{"value": 5}], "needs a value"),
        (["u1"], "must be an object"),
        ([{"value": "u1", "type": "Robot"}], "User or Group"),
    ],
)
def test_member_values_are_checked(value: Any, fragment: str) -> None:
    with pytest.raises(InvalidValue, match=fragment):
        gpatch({"op": "add", "path": "members", "value": value})


def test_group_read_only_paths() -> None:
    with pytest.raises(Mutability):
        gpatch({"op": "replace", "path": "id", "value": "x"})
    with pytest.raises(Mutability):
        gpatch({"op": "replace", "path": "meta.version", "value": "x"})


def test_successive_member_operations_combine_in_order() -> None:
    changes = gpatch(
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
        {"op": "remove", "path": "members", "value": [{"value": "a"}]},
        {"op": "remove", "path": 'members[value eq "c"]'},
        {"op": "add", "path": "members", "value": [{"value": "c"}]},
    )
    assert changes == GroupChanges(add=(Member("b"), Member("c")), remove=("a",))


def test_clear_then_add_then_remove() -> None:
    changes = gpatch(
        {"op": "add", "path": "members", "value": [{"value": "x"}]},
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
        {"op": "remove", "path": "members", "value": [{"value": "b"}, {"value": "old"}]},
    )
    # after the clear, "old" is gone anyway: no remove delta is needed for it
    assert changes == GroupChanges(add=(Member("a"),), clear_members=True)


def test_group_input_not_mutated() -> None:
    data = {"displayName": "Admins"}
    gpatch({"op": "replace", "path": "displayName", "value": "x"}, data=data)
    assert data == {"displayName": "Admins"}


def test_group_remove_without_path() -> None:
    with pytest.raises(NoTarget):
        gpatch({"op": "remove"})
