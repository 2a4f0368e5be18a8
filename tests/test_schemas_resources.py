"""Validation of incoming User and Group documents."""

from __future__ import annotations

import re
from typing import Any

import pytest

from scim_service.errors import InvalidSyntax, InvalidValue
from scim_service.model import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, Member
from scim_service.profiles import ENTRA, ActiveProfile
from scim_service.schemas.definitions import Attribute, ResourceTypeDef, Schema
from scim_service.schemas.resources import load_group, load_resource, load_user

# The tolerances of IdP profiles are exercised under ``entra`` (the widest); strict ``generic`` is the default.
LENIENT = ActiveProfile(ENTRA)


def user(**attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": "bjensen@example.com", **attributes}


def group(**attributes: Any) -> dict[str, Any]:
    return {"schemas": [GROUP_SCHEMA], "displayName": "Engineering", **attributes}


class TestLoadUser:
    def test_full_user(self) -> None:
        loaded = load_user(
            {
                "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
                "externalId": "00u1",
                "userName": "bjensen@example.com",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
                "active": True,
                ENTERPRISE_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
            }
        )
        assert loaded.ignored == ()
        assert loaded.data == {
            "externalId": "00u1",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
            "active": True,
            ENTERPRISE_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
        }

    def test_names_are_made_canonical(self) -> None:
        loaded = load_user(
            {
                "SCHEMAS": [USER_SCHEMA.upper()],
                "USERNAME": "a",
                "Name": {"GIVENNAME": "A"},
                "emails": [{"VALUE": "a@example.com", "Primary": True}],
                ENTERPRISE_SCHEMA.lower(): {"DEPARTMENT": "R&D"},
            }
        )
        assert loaded.data == {
            "userName": "a",
            "name": {"givenName": "A"},
            "emails": [{"value": "a@example.com", "primary": True}],
            ENTERPRISE_SCHEMA: {"department": "R&D"},
            "active": True,
        }

    def test_schemas_is_not_in_the_data_and_active_defaults_to_true(self) -> None:
        assert load_user(user()).data == {"userName": "bjensen@example.com", "active": True}

    def test_read_only_attributes_are_dropped_silently(self) -> None:
        loaded = load_user(
            user(
                id="client-chosen",
                meta={"resourceType": "User"},
                groups=[{"value": "g1"}],
                **{ENTERPRISE_SCHEMA: {"manager": {"value": "m1", "displayName": "Boss"}}},
            )
        )
        assert loaded.data == {
            "userName": "bjensen@example.com",
            "active": True,
            ENTERPRISE_SCHEMA: {"manager": {"value": "m1"}},
        }
        assert loaded.ignored == ()

    def test_password_is_accepted_and_never_kept(self) -> None:
        loaded = load_user(user(password="s3cret!"))
        assert "password" not in loaded.data
        assert "s3cret!" not in repr(loaded)

    def test_password_is_still_type_checked(self) -> None:
        with pytest.raises(InvalidValue, match="password"):
            load_user(user(password=12345))

    def test_unknown_attributes_and_schemas_are_listed(self) -> None:
        body = {
            "schemas": [USER_SCHEMA, "urn:acme:params:scim:schemas:extension:acme:2.0:User"],
            "userName": "a",
            "favouriteColour": "blue",
            "name": {"givenName": "A", "nickname": "x"},
            "emails": [{"value": "a@example.com", "verified": True}, {"value": "b@example.com", "verified": 1}],
        }
        with pytest.raises(InvalidValue, match="Unknown schema 'urn:acme"):
            load_user(body)  # strict: an unknown schema is refused
        profile = ActiveProfile(ENTRA)
        loaded = load_user(body, profile=profile)
        assert {t.value for t in profile.fired} == {"unknown_schema_ignored", "unknown_attribute_ignored"}
        assert len(loaded.ignored) == 4
        assert set(loaded.ignored) == {
            "urn:acme:params:scim:schemas:extension:acme:2.0:User",
            "favouriteColour",
            "name.nickname",
            "emails.verified",
        }
        assert loaded.data == {
            "userName": "a",
            "name": {"givenName": "A"},
            "emails": [{"value": "a@example.com"}, {"value": "b@example.com"}],
            "active": True,
        }

    def test_unknown_extension_attributes_are_listed_with_their_urn(self) -> None:
        body = user(**{ENTERPRISE_SCHEMA: {"badge": "7", "manager": {"value": "m", "level": 2}}})
        with pytest.raises(InvalidValue, match=f"Unknown attribute '{ENTERPRISE_SCHEMA}:badge'"):
            load_user(body)
        loaded = load_user(body, profile=LENIENT)
        assert loaded.ignored == (f"{ENTERPRISE_SCHEMA}:badge", f"{ENTERPRISE_SCHEMA}:manager.level")
        assert loaded.data[ENTERPRISE_SCHEMA] == {"manager": {"value": "m"}}

    def test_fully_qualified_attribute_names(self) -> None:
        loaded = load_user(
            {
                "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
                f"{USER_SCHEMA}:userName": "a",
                f"{ENTERPRISE_SCHEMA}:department": "Sales",
                ENTERPRISE_SCHEMA: {"costCenter": "42"},
            }
        )
        assert loaded.data == {
            "userName": "a",
            ENTERPRISE_SCHEMA: {"department": "Sales", "costCenter": "42"},
            "active": True,
        }

    @pytest.mark.parametrize("text, expected", [("true", True), ("False", False), ("TRUE", True), (" false ", False)])
    def test_booleans_as_strings(self, text: str, expected: bool) -> None:
        body = user(active=text, emails=[{"value": "a@example.com", "primary": text}])
        with pytest.raises(InvalidValue, match="expected a boolean"):
            load_user(body)
        loaded = load_user(body, profile=LENIENT)
        assert loaded.data["active"] is expected
        assert loaded.data["emails"][0]["primary"] is expected

    def test_null_and_empty_values_are_unassigned(self) -> None:
        loaded = load_user(user(displayName=None, emails=[], name={}, **{ENTERPRISE_SCHEMA: {}}))
        assert loaded.data == {"userName": "bjensen@example.com", "active": True}

    def test_binary_values(self) -> None:
        loaded = load_user(user(x509Certificates=[{"value": "TUlJREJqQ0NBZTRnQXdJQkFnSUJB"}]))
        assert loaded.data["x509Certificates"] == [{"value": "TUlJREJqQ0NBZTRnQXdJQkFnSUJB"}]
        with pytest.raises(InvalidValue, match=r"x509Certificates\[0\]\.value': expected a base64"):
            load_user(user(x509Certificates=[{"value": "not base64!"}]))


class TestUserErrors:
    @pytest.mark.parametrize("body", [[], "text", 42, None, [user()]])
    def test_body_not_an_object(self, body: object) -> None:
        with pytest.raises(InvalidSyntax, match="JSON object"):
            load_user(body)

    def test_schemas_missing(self) -> None:
        with pytest.raises(InvalidValue, match=r"'schemas' attribute is missing.*core:2.0:User"):
            load_user({"userName": "a"})

    def test_schemas_without_the_core_schema(self) -> None:
        with pytest.raises(InvalidValue, match=re.escape(f"does not contain {USER_SCHEMA}")):
            load_user({"schemas": [ENTERPRISE_SCHEMA], "userName": "a"})
        with pytest.raises(InvalidValue, match="does not contain"):
            load_user({"schemas": [GROUP_SCHEMA], "userName": "a"})

    def test_schemas_not_a_list(self) -> None:
        with pytest.raises(InvalidValue, match="array of schema URNs"):
            load_user({"schemas": USER_SCHEMA, "userName": "a"})

    @pytest.mark.parametrize("value", [None, "", "   "])
    def test_user_name_missing_or_empty(self, value: object) -> None:
        body = user(userName=value)
        with pytest.raises(InvalidValue, match="'userName': is required"):
            load_user(body)

    def test_user_name_absent(self) -> None:
        with pytest.raises(InvalidValue, match="'userName': is required"):
            load_user({"schemas": [USER_SCHEMA]})

    def test_user_name_a_number(self) -> None:
        with pytest.raises(InvalidValue, match="'userName': expected a string, got the number 42"):
            load_user(user(userName=42))

    def test_emails_not_a_list(self) -> None:
        with pytest.raises(InvalidValue, match="'emails': expected an array"):
            load_user(user(emails={"value": "a@example.com"}))

    def test_active_maybe(self) -> None:
        with pytest.raises(
            InvalidValue, match=r"'active': expected a boolean \(true or false\), got the string \"maybe\""
        ):
            load_user(user(active="maybe"))

    def test_active_a_number(self) -> None:
        with pytest.raises(InvalidValue, match="'active': expected a boolean"):
            load_user(user(active=1))

    def test_nested_error_has_a_path(self) -> None:
        with pytest.raises(InvalidValue, match=r"'emails\[1\]\.value': expected a string"):
            load_user(user(emails=[{"value": "a@example.com"}, {"value": 7}]))
        with pytest.raises(InvalidValue, match="'name': expected an object"):
            load_user(user(name="Barbara Jensen"))
        with pytest.raises(InvalidValue, match=re.escape(f"'{ENTERPRISE_SCHEMA}:manager.value': expected a string")):
            load_user(user(**{ENTERPRISE_SCHEMA: {"manager": {"value": 1}}}))

    def test_extension_not_an_object(self) -> None:
        with pytest.raises(InvalidValue, match=re.escape(f"'{ENTERPRISE_SCHEMA}': expected an object")):
            load_user(user(**{ENTERPRISE_SCHEMA: "Sales"}))

    def test_several_problems_in_one_detail(self) -> None:
        with pytest.raises(InvalidValue) as caught:
            load_user(user(userName=1, active="maybe", title=["x"]))
        detail = caught.value.detail
        assert "'userName'" in detail and "'active'" in detail and "'title'" in detail
        assert caught.value.status == 400 and caught.value.scim_type == "invalidValue"

    def test_two_primary_values(self) -> None:
        emails = [{"value": "a@example.com", "primary": True}, {"value": "b@example.com", "primary": "true"}]
        with pytest.raises(InvalidValue, match="'emails': 2 values have primary set to true; at most one may"):
            load_user(user(emails=emails), profile=LENIENT)

    def test_one_primary_value_is_fine(self) -> None:
        emails = [{"value": "a@example.com", "primary": True}, {"value": "b@example.com", "primary": False}]
        assert load_user(user(emails=emails)).data["emails"] == emails


# A custom resource with types the core schemas do not use, to show the fields come from the definitions.
_CUSTOM = Schema(
    "urn:example:params:scim:schemas:core:2.0:Device",
    "Device",
    "test",
    (
        Attribute("serial", "string", required=True),
        Attribute("seenAt", "dateTime"),
        Attribute("ports", "integer", multi_valued=True),
        Attribute("load", "decimal"),
    ),
)
_CUSTOM_RESOURCE = ResourceTypeDef("Device", "Device", "/Devices", "test", _CUSTOM)


class TestGeneratedFromDefinitions:
    def test_valid_custom_resource(self) -> None:
        loaded = load_resource(
            _CUSTOM_RESOURCE,
            {
                "schemas": [_CUSTOM.id],
                "serial": "X1",
                "seenAt": "2024-05-01T12:30:00.5+02:00",
                "ports": [1, 2],
                "load": 0.5,
            },
        )
        assert loaded.data == {"serial": "X1", "seenAt": "2024-05-01T12:30:00.5+02:00", "ports": [1, 2], "load": 0.5}

    @pytest.mark.parametrize(
        "value", ["2024-05-01", "yesterday", "2024-13-01T00:00:00Z", "2024-05-01 12:00:00", 1714567890]
    )
    def test_date_time_must_be_xsd(self, value: object) -> None:
        with pytest.raises(InvalidValue, match="'seenAt': expected a date and time in ISO 8601"):
            load_resource(_CUSTOM_RESOURCE, {"schemas": [_CUSTOM.id], "serial": "X1", "seenAt": value})

    def test_integer_and_decimal(self) -> None:
        with pytest.raises(InvalidValue, match=r"'ports\[0\]': expected an integer"):
            load_resource(_CUSTOM_RESOURCE, {"schemas": [_CUSTOM.id], "serial": "X1", "ports": [1.5]})
        with pytest.raises(InvalidValue, match="'load': expected a number"):
            load_resource(_CUSTOM_RESOURCE, {"schemas": [_CUSTOM.id], "serial": "X1", "load": "high"})


class TestLoadGroup:
    def test_group_with_members(self) -> None:
        loaded = load_group(
            group(
                externalId="okta-1",
                members=[
                    {"value": "u1", "display": "Barbara"},
                    {"value": "g2", "type": "Group", "$ref": "https://x/Groups/g2"},
                    {"value": "u3", "type": "user"},
                ],
            )
        )
        assert loaded.data == {"displayName": "Engineering", "externalId": "okta-1"}
        assert loaded.members == (
            Member("u1", "User", "Barbara"),
            Member("g2", "Group"),
            Member("u3", "User"),
        )

    def test_members_are_deduplicated(self) -> None:
        loaded = load_group(group(members=[{"value": "u1"}, {"value": "u2"}, {"value": "u1", "display": "again"}]))
        assert loaded.members == (Member("u1"), Member("u2"))

    def test_no_members(self) -> None:
        assert load_group(group()).members == ()
        assert load_group(group(members=[])).members == ()

    def test_bad_member_type(self) -> None:
        with pytest.raises(InvalidValue, match=r"'members\[0\]\.type': expected User or Group, got \"Device\""):
            load_group(group(members=[{"value": "d1", "type": "Device"}]))

    def test_member_without_value(self) -> None:
        with pytest.raises(InvalidValue, match=r"'members\[1\]\.value': is required"):
            load_group(group(members=[{"value": "u1"}, {"display": "nobody"}]))

    def test_members_not_a_list(self) -> None:
        with pytest.raises(InvalidValue, match="'members': expected an array"):
            load_group(group(members="u1"))

    @pytest.mark.parametrize("value", [None, "", " "])
    def test_display_name_required(self, value: object) -> None:
        with pytest.raises(InvalidValue, match="'displayName': is required"):
            load_group(group(displayName=value))

    def test_group_schemas_required(self) -> None:
        with pytest.raises(InvalidValue, match=re.escape(GROUP_SCHEMA)):
            load_group({"schemas": [USER_SCHEMA], "displayName": "x"})

    def test_unknown_and_read_only(self) -> None:
        with pytest.raises(InvalidValue, match="Unknown attribute 'owner'"):
            load_group(group(id="x", meta={}, owner="me"))
        loaded = load_group(group(id="x", meta={}, owner="me"), profile=LENIENT)
        assert loaded.data == {"displayName": "Engineering"}
        assert loaded.ignored == ("owner",)

    def test_not_an_object(self) -> None:
        with pytest.raises(InvalidSyntax):
            load_group("Engineering")
