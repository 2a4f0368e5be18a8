"""Rendering records as SCIM documents, load -> render round trips, and the attribute projection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from scim_service.model import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, GroupRecord, Member, UserRecord
from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE
from scim_service.schemas.projection import includes, project
from scim_service.schemas.render import etag, format_datetime, render_group, render_user
from scim_service.schemas.resources import load_group, load_user

BASE = "https://scim.example.com/scim/v2"
CREATED = datetime(2024, 5, 1, 8, 30, 0, 123456, tzinfo=UTC)
MODIFIED = datetime(2024, 5, 2, 10, 0, 0, tzinfo=timezone(timedelta(hours=2)))


def user_record(data: dict[str, Any], **kwargs: Any) -> UserRecord:
    return UserRecord(id="u-1", data=data, created=CREATED, last_modified=MODIFIED, version="3", **kwargs)


def group_record(data: dict[str, Any], members: tuple[Member, ...] | None = ()) -> GroupRecord:
    return GroupRecord(id="g-1", data=data, created=CREATED, last_modified=MODIFIED, version="7", members=members)


FULL_USER = {
    "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
    "externalId": "00u1",
    "userName": "bjensen@example.com",
    "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
    "displayName": "Babs",
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@example.org", "type": "home"},
    ],
    "active": True,
    ENTERPRISE_SCHEMA: {"department": "R&D", "manager": {"value": "u-9"}},
}


class TestRender:
    def test_etag_is_weak(self) -> None:
        assert etag("3") == 'W/"3"'

    def test_datetime_format(self) -> None:
        assert format_datetime(CREATED) == "2024-05-01T08:30:00.123Z"
        assert format_datetime(MODIFIED) == "2024-05-02T08:00:00.000Z"
        assert format_datetime(datetime(2024, 1, 1)) == "2024-01-01T00:00:00.000Z"  # naive = UTC

    def test_user(self) -> None:
        record = user_record(load_user(FULL_USER).data, groups=(Member("g-1", "Group", "Engineering"), Member("g-2")))
        document = render_user(record, BASE)
        assert document == {
            **{k: v for k, v in FULL_USER.items()},
            "id": "u-1",
            "groups": [
                {"value": "g-1", "$ref": f"{BASE}/Groups/g-1", "display": "Engineering", "type": "direct"},
                {"value": "g-2", "$ref": f"{BASE}/Groups/g-2", "type": "direct"},
            ],
            "meta": {
                "resourceType": "User",
                "created": "2024-05-01T08:30:00.123Z",
                "lastModified": "2024-05-02T08:00:00.000Z",
                "location": f"{BASE}/Users/u-1",
                "version": 'W/"3"',
            },
        }
        assert list(document)[:2] == ["schemas", "id"]

    def test_user_without_enterprise_data_or_groups(self) -> None:
        document = render_user(user_record({"userName": "a", "active": False}), BASE)
        assert document["schemas"] == [USER_SCHEMA]
        assert "groups" not in document
        assert document["active"] is False

    def test_empty_enterprise_data_is_left_out(self) -> None:
        document = render_user(user_record({"userName": "a", ENTERPRISE_SCHEMA: {}}), BASE)
        assert document["schemas"] == [USER_SCHEMA]
        assert ENTERPRISE_SCHEMA not in document

    def test_soft_deleted_user_renders_inactive(self) -> None:
        assert render_user(user_record({"userName": "a", "active": True}, deleted=True), BASE)["active"] is False

    def test_password_is_never_rendered(self) -> None:
        assert "password" not in render_user(user_record({"userName": "a", "password": "x"}), BASE)

    def test_render_does_not_share_the_record_data(self) -> None:
        data = {"userName": "a", "emails": [{"value": "a@example.com"}]}
        render_user(user_record(data), BASE)["emails"][0]["value"] = "changed"
        assert data["emails"][0]["value"] == "a@example.com"

    def test_group(self) -> None:
        record = group_record(
            {"displayName": "Engineering", "externalId": "okta-g"},
            (Member("u-1", "User", "Babs"), Member("g-2", "Group")),
        )
        assert render_group(record, BASE) == {
            "schemas": [GROUP_SCHEMA],
            "id": "g-1",
            "displayName": "Engineering",
            "externalId": "okta-g",
            "members": [
                {"value": "u-1", "$ref": f"{BASE}/Users/u-1", "display": "Babs", "type": "User"},
                {"value": "g-2", "$ref": f"{BASE}/Groups/g-2", "type": "Group"},
            ],
            "meta": {
                "resourceType": "Group",
                "created": "2024-05-01T08:30:00.123Z",
                "lastModified": "2024-05-02T08:00:00.000Z",
                "location": f"{BASE}/Groups/g-1",
                "version": 'W/"7"',
            },
        }

    @pytest.mark.parametrize("members", [None, ()])
    def test_group_without_members(self, members: tuple[Member, ...] | None) -> None:
        assert "members" not in render_group(group_record({"displayName": "x"}, members), BASE)


class TestRoundTrip:
    def test_user_round_trip(self) -> None:
        document = render_user(user_record(load_user(FULL_USER).data), BASE)
        reloaded = load_user(document)  # id, meta and groups are readOnly: dropped on the way back in
        assert reloaded.ignored == ()
        assert reloaded.data == load_user(FULL_USER).data

    def test_group_round_trip(self) -> None:
        body = {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Engineering",
            "externalId": "x",
            "members": [{"value": "u-1", "display": "Babs"}, {"value": "g-2", "type": "Group"}],
        }
        loaded = load_group(body)
        document = render_group(group_record(loaded.data, loaded.members), BASE)
        again = load_group(document)
        assert again.data == loaded.data == {"displayName": "Engineering", "externalId": "x"}
        assert again.members == loaded.members == (Member("u-1", "User", "Babs"), Member("g-2", "Group"))


@pytest.fixture
def user_document() -> dict[str, Any]:
    document = render_user(user_record(load_user(FULL_USER).data, groups=(Member("g-1", "Group", "Eng"),)), BASE)
    document["password"] = "leaked?"  # the projection must drop it whatever the document holds
    return document


class TestProjection:
    def test_nothing_asked_returns_everything_but_never_attributes(self, user_document: dict[str, Any]) -> None:
        projected = project(user_document, USER_RESOURCE, None, None)
        assert "password" not in projected
        assert projected == {k: v for k, v in user_document.items() if k != "password"}

    def test_attributes_user_name_keeps_id_and_schemas(self, user_document: dict[str, Any]) -> None:
        projected = project(user_document, USER_RESOURCE, ["userName"], None)
        assert projected == {"schemas": user_document["schemas"], "id": "u-1", "userName": "bjensen@example.com"}

    def test_names_are_case_insensitive(self, user_document: dict[str, Any]) -> None:
        assert set(project(user_document, USER_RESOURCE, ["USERNAME", "Emails"], None)) == {
            "schemas",
            "id",
            "userName",
            "emails",
        }

    def test_sub_attribute_keeps_only_that_sub_attribute(self, user_document: dict[str, Any]) -> None:
        projected = project(user_document, USER_RESOURCE, ["name.givenName"], None)
        assert projected == {"schemas": user_document["schemas"], "id": "u-1", "name": {"givenName": "Barbara"}}

    def test_sub_attribute_of_a_multi_valued_attribute(self, user_document: dict[str, Any]) -> None:
        projected = project(user_document, USER_RESOURCE, ["emails.value", "meta.lastModified"], None)
        assert projected["emails"] == [{"value": "bjensen@example.com"}, {"value": "babs@example.org"}]
        assert projected["meta"] == {"lastModified": "2024-05-02T08:00:00.000Z"}

    def test_password_is_never_returned_even_when_asked(self, user_document: dict[str, Any]) -> None:
        assert "password" not in project(user_document, USER_RESOURCE, ["password", "userName"], None)

    def test_id_cannot_be_excluded(self, user_document: dict[str, Any]) -> None:
        projected = project(user_document, USER_RESOURCE, None, ["id", "emails", "name.formatted"])
        assert projected["id"] == "u-1"
        assert "emails" not in projected
        assert projected["name"] == {"givenName": "Barbara", "familyName": "Jensen"}

    def test_urn_qualified_names(self, user_document: dict[str, Any]) -> None:
        projected = project(user_document, USER_RESOURCE, [f"{ENTERPRISE_SCHEMA}:department"], None)
        assert projected[ENTERPRISE_SCHEMA] == {"department": "R&D"}
        assert "userName" not in projected
        projected = project(user_document, USER_RESOURCE, [f"{USER_SCHEMA.lower()}:userName"], None)
        assert projected["userName"] == "bjensen@example.com"

    def test_whole_extension(self, user_document: dict[str, Any]) -> None:
        projected = project(user_document, USER_RESOURCE, [ENTERPRISE_SCHEMA], None)
        assert projected[ENTERPRISE_SCHEMA] == user_document[ENTERPRISE_SCHEMA]
        excluded = project(user_document, USER_RESOURCE, None, [ENTERPRISE_SCHEMA])
        assert ENTERPRISE_SCHEMA not in excluded and excluded["userName"] == "bjensen@example.com"

    def test_extension_attribute_excluded(self, user_document: dict[str, Any]) -> None:
        projected = project(user_document, USER_RESOURCE, None, ["department"])
        assert projected[ENTERPRISE_SCHEMA] == {"manager": {"value": "u-9"}}

    def test_unknown_names_are_ignored(self, user_document: dict[str, Any]) -> None:
        assert project(user_document, USER_RESOURCE, None, ["shoeSize", "name.nope"]) == project(
            user_document, USER_RESOURCE, None, None
        )
        assert set(project(user_document, USER_RESOURCE, ["shoeSize", "userName"], None)) == {
            "schemas",
            "id",
            "userName",
        }

    def test_comma_separated_value(self, user_document: dict[str, Any]) -> None:
        assert set(project(user_document, USER_RESOURCE, ["userName, displayName"], None)) == {
            "schemas",
            "id",
            "userName",
            "displayName",
        }

    def test_excluded_members(self) -> None:
        document = render_group(group_record({"displayName": "Eng"}, (Member("u-1"),)), BASE)
        projected = project(document, GROUP_RESOURCE, None, ["members"])
        assert "members" not in projected
        assert projected["displayName"] == "Eng" and projected["id"] == "g-1"

    def test_attributes_win_over_excluded(self, user_document: dict[str, Any]) -> None:
        assert "userName" in project(user_document, USER_RESOURCE, ["userName"], ["userName"])

    def test_includes(self) -> None:
        assert includes(GROUP_RESOURCE, None, None, "members")
        assert not includes(GROUP_RESOURCE, None, ["members"], "members")
        assert includes(GROUP_RESOURCE, None, ["members.display"], "members")
        assert not includes(GROUP_RESOURCE, ["displayName"], None, "members")
        assert includes(GROUP_RESOURCE, ["members.value"], None, "members")
        assert includes(USER_RESOURCE, ["userName"], None, "id")
        assert not includes(USER_RESOURCE, None, None, "password")
        assert not includes(USER_RESOURCE, ["groups"], None, "members")  # not a User attribute
        assert includes(USER_RESOURCE, ["GROUPS"], None, "groups")
        assert not includes(USER_RESOURCE, None, ["groups"], "groups")
