"""The /Schemas, /ResourceTypes and /ServiceProviderConfig documents."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from scim_service.model import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, Capabilities
from scim_service.schemas.discovery import resource_type_documents, schema_documents, service_provider_config

BASE = "https://scim.example.com/scim/v2"
REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "rfc7643-schemas.json"


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, Any]]:
    if not REFERENCE.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"The RFC 7643 reference schemas are missing: {REFERENCE}")
        pytest.skip(f"The RFC 7643 reference schemas are not here: {REFERENCE}")
    return {schema["id"]: schema for schema in json.loads(REFERENCE.read_text())}


# What a characteristic means when the RFC's representation leaves it out.
DEFAULTS = {"caseExact": False, "uniqueness": "none"}


def _differences(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], where: str) -> list[str]:
    problems = []
    if [a["name"] for a in ours] != [a["name"] for a in theirs]:
        problems.append(f"{where}: attribute names differ")
    for mine, expected in zip(ours, theirs, strict=False):
        path = f"{where}.{expected['name']}"
        for key, value in expected.items():
            if key in ("description", "subAttributes"):
                continue
            if mine.get(key) != value:
                problems.append(f"{path}: {key} is {mine.get(key)!r}, the RFC has {value!r}")
        for key in set(mine) - set(expected) - {"description", "subAttributes"}:
            if mine[key] != DEFAULTS.get(key, object()):
                problems.append(f"{path}: extra {key}={mine[key]!r}")
        if not isinstance(mine.get("description"), str) or not mine["description"]:
            problems.append(f"{path}: no description")
        problems += _differences(mine.get("subAttributes", []), expected.get("subAttributes", []), path)
    return problems


def test_schema_documents_match_the_rfc(reference: dict[str, dict[str, Any]]) -> None:
    documents = schema_documents(BASE)
    assert [d["id"] for d in documents] == [USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA]
    for document in documents:
        expected = reference[document["id"]]
        assert document["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
        assert document["name"] == expected["name"]
        assert document["description"]
        assert document["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{document['id']}"}
        assert _differences(document["attributes"], expected["attributes"], document["name"]) == []
    json.dumps(documents)  # plain JSON


def test_schema_document_shape() -> None:
    user = schema_documents(BASE)[0]
    attributes = {a["name"]: a for a in user["attributes"]}
    assert attributes["emails"]["subAttributes"][2]["canonicalValues"] == ["work", "home", "other"]
    assert attributes["profileUrl"]["referenceTypes"] == ["external"]
    assert "subAttributes" not in attributes["userName"]
    assert "referenceTypes" not in attributes["userName"]
    assert "canonicalValues" not in attributes["userName"]


def test_resource_types() -> None:
    user, group = resource_type_documents(BASE)
    assert user == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": user["description"],
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"},
    }
    assert group["endpoint"] == "/Groups"
    assert group["schema"] == GROUP_SCHEMA
    assert "schemaExtensions" not in group
    assert group["meta"] == {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/Group"}


class TestServiceProviderConfig:
    def test_defaults(self) -> None:
        document = service_provider_config(BASE, Capabilities(), max_results=200)
        assert document == {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": 200},
            "changePassword": {"supported": False},
            "sort": {"supported": True},
            "etag": {"supported": True},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": document["authenticationSchemes"][0]["description"],
                    "specUri": "https://www.rfc-editor.org/info/rfc6750",
                    "primary": True,
                }
            ],
            "meta": {"resourceType": "ServiceProviderConfig", "location": f"{BASE}/ServiceProviderConfig"},
        }
        assert "pagination" not in document
        assert document["authenticationSchemes"][0]["description"]

    def test_capabilities_are_reflected(self) -> None:
        capabilities = Capabilities(filter=False, sort=False, etag=False, max_results=50)
        document = service_provider_config(
            BASE,
            capabilities,
            patch=False,
            bulk={"supported": True, "maxOperations": 10, "maxPayloadSize": 1048576},
            change_password=True,
            max_results=1000,
            documentation_uri="https://docs.example.com/scim",
        )
        assert document["filter"] == {"supported": False, "maxResults": 50}  # the backend's limit wins
        assert document["sort"] == {"supported": False}
        assert document["etag"] == {"supported": False}
        assert document["patch"] == {"supported": False}
        assert document["changePassword"] == {"supported": True}
        assert document["bulk"] == {"supported": True, "maxOperations": 10, "maxPayloadSize": 1048576}
        assert document["documentationUri"] == "https://docs.example.com/scim"

    def test_cursor_pagination(self) -> None:
        document = service_provider_config(BASE, Capabilities(cursor=True), max_results=100)
        assert document["pagination"] == {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "maxPageSize": 100,
        }
        document = service_provider_config(
            BASE, Capabilities(cursor=True), max_results=100, default_page_size=25, cursor_timeout=600
        )
        assert document["pagination"]["defaultPageSize"] == 25
        assert document["pagination"]["cursorTimeout"] == 600
