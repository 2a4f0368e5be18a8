"""The schema definitions against the RFC 7643 §8.7.1 representation, and attribute-path resolution."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from scim_service.model import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from scim_service.schemas.definitions import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_USER_SCHEMA_DEF,
    GROUP_RESOURCE,
    GROUP_SCHEMA_DEF,
    USER_RESOURCE,
    USER_SCHEMA_DEF,
    Attribute,
    Schema,
    resolve_attribute,
    split_urn_path,
)

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "rfc7643-schemas.json"

# Characteristic name in the RFC's JSON -> (Attribute field, value when the JSON leaves it out).
CHARACTERISTICS: dict[str, tuple[str, Any]] = {
    "type": ("type", None),
    "multiValued": ("multi_valued", False),
    "required": ("required", False),
    "caseExact": ("case_exact", False),
    "mutability": ("mutability", "readWrite"),
    "returned": ("returned", "default"),
    "uniqueness": ("uniqueness", "none"),
    "canonicalValues": ("canonical_values", ()),
    "referenceTypes": ("reference_types", ()),
}


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, Any]]:
    if not REFERENCE.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"The RFC 7643 reference schemas are missing: {REFERENCE}")
        pytest.skip(f"The RFC 7643 reference schemas are not here: {REFERENCE}")
    return {schema["id"]: schema for schema in json.loads(REFERENCE.read_text())}


def _compare(ours: tuple[Attribute, ...], theirs: list[dict[str, Any]], where: str) -> list[str]:
    """Every difference between our attribute definitions and the reference ones, as readable lines."""
    problems: list[str] = []
    our_names = [a.name for a in ours]
    their_names = [a["name"] for a in theirs]
    if our_names != their_names:
        problems.append(f"{where}: attributes {our_names} != {their_names}")
    by_name = {a.name: a for a in ours}
    for expected in theirs:
        attribute = by_name.get(expected["name"])
        if attribute is None:
            continue
        path = f"{where}.{attribute.name}"
        for key, (field_name, default) in CHARACTERISTICS.items():
            want = expected.get(key, default)
            if isinstance(want, list):
                want = tuple(want)
            got = getattr(attribute, field_name)
            if got != want:
                problems.append(f"{path}: {key} is {got!r}, the RFC has {want!r}")
        if not attribute.description:
            problems.append(f"{path}: no description")
        elif attribute.description == expected.get("description"):
            problems.append(f"{path}: description copied from the RFC")
        problems += _compare(attribute.sub_attributes, expected.get("subAttributes", []), path)
    return problems


@pytest.mark.parametrize(
    "schema", [USER_SCHEMA_DEF, ENTERPRISE_USER_SCHEMA_DEF, GROUP_SCHEMA_DEF], ids=lambda s: s.name
)
def test_every_characteristic_matches_the_rfc(schema: Schema, reference: dict[str, dict[str, Any]]) -> None:
    expected = reference[schema.id]
    assert schema.name == expected["name"]
    assert _compare(schema.attributes, expected["attributes"], schema.name) == []


def test_the_comparison_notices_a_difference(reference: dict[str, dict[str, Any]]) -> None:
    # Guard against a comparison that can never fail.
    changed = (Attribute("userName", "string", required=False, description="x"), *USER_SCHEMA_DEF.attributes[1:])
    problems = _compare(changed, reference[USER_SCHEMA]["attributes"], "User")
    assert any("userName: required" in p for p in problems)
    assert any("userName: uniqueness" in p for p in problems)


def test_common_attributes() -> None:
    by_name = {a.name: a for a in COMMON_ATTRIBUTES}
    assert set(by_name) == {"id", "externalId", "meta"}
    assert by_name["id"].mutability == "readOnly"
    assert by_name["id"].returned == "always"
    assert by_name["id"].case_exact and by_name["id"].uniqueness == "server"
    assert by_name["externalId"].case_exact and by_name["externalId"].mutability == "readWrite"
    meta = by_name["meta"]
    assert meta.type == "complex" and meta.mutability == "readOnly"
    subs = {s.name: s for s in meta.sub_attributes}
    assert set(subs) == {"resourceType", "created", "lastModified", "location", "version"}
    assert subs["created"].type == subs["lastModified"].type == "dateTime"
    assert subs["location"].type == "reference"


def test_resource_types() -> None:
    assert USER_RESOURCE.endpoint == "/Users"
    assert USER_RESOURCE.schema is USER_SCHEMA_DEF
    assert USER_RESOURCE.extensions == ((ENTERPRISE_USER_SCHEMA_DEF, False),)
    assert GROUP_RESOURCE.endpoint == "/Groups"
    assert GROUP_RESOURCE.schema.id == GROUP_SCHEMA
    assert GROUP_RESOURCE.extensions == ()


def test_invalid_definitions_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown SCIM type"):
        Attribute("x", "text")
    with pytest.raises(ValueError, match="mutability"):
        Attribute("x", "string", mutability="readonly")
    with pytest.raises(ValueError, match="sub-attributes"):
        Attribute("x", "string", sub_attributes=(Attribute("y", "string"),))


class TestResolve:
    def test_case_insensitive_names_come_back_canonical(self) -> None:
        resolved = resolve_attribute(USER_RESOURCE, "USERNAME")
        assert resolved.schema_urn == USER_SCHEMA
        assert resolved.attribute.name == "userName"
        assert resolved.sub_attribute is None

    def test_sub_attribute(self) -> None:
        resolved = resolve_attribute(USER_RESOURCE, "name", "GIVENNAME")
        assert resolved.dotted == "name.givenName"
        assert resolved.leaf.name == "givenName"

    def test_dotted_name(self) -> None:
        assert resolve_attribute(USER_RESOURCE, "emails.value").dotted == "emails.value"

    def test_common_attributes_belong_to_the_core_schema(self) -> None:
        assert resolve_attribute(USER_RESOURCE, "id").schema_urn == USER_SCHEMA
        assert resolve_attribute(GROUP_RESOURCE, "externalId").schema_urn == GROUP_SCHEMA
        resolved = resolve_attribute(GROUP_RESOURCE, "meta", "lastmodified")
        assert resolved.schema_urn == GROUP_SCHEMA and resolved.leaf.type == "dateTime"

    def test_extension_attribute_without_schema(self) -> None:
        resolved = resolve_attribute(USER_RESOURCE, "employeeNumber")
        assert resolved.schema_urn == ENTERPRISE_SCHEMA

    def test_schema_restricts_the_search(self) -> None:
        resolved = resolve_attribute(USER_RESOURCE, "manager", "value", schema=ENTERPRISE_SCHEMA.upper())
        assert resolved.schema_urn == ENTERPRISE_SCHEMA
        assert resolved.dotted == "manager.value"
        with pytest.raises(LookupError, match="userName"):
            resolve_attribute(USER_RESOURCE, "userName", schema=ENTERPRISE_SCHEMA)
        assert resolve_attribute(USER_RESOURCE, "id", schema=USER_SCHEMA.lower()).schema_urn == USER_SCHEMA

    def test_unknown_names(self) -> None:
        with pytest.raises(LookupError, match="'nope'"):
            resolve_attribute(USER_RESOURCE, "nope")
        with pytest.raises(LookupError, match="no sub-attribute 'nope'"):
            resolve_attribute(USER_RESOURCE, "name", "nope")
        with pytest.raises(LookupError, match="no sub-attributes"):
            resolve_attribute(USER_RESOURCE, "userName", "x")
        with pytest.raises(LookupError, match="not a schema"):
            resolve_attribute(USER_RESOURCE, "userName", schema="urn:example:nope")
        with pytest.raises(LookupError):
            resolve_attribute(GROUP_RESOURCE, "employeeNumber")  # not an extension of Group


class TestSplitUrnPath:
    def test_extension_path(self) -> None:
        assert split_urn_path(f"{ENTERPRISE_SCHEMA}:manager.value") == (ENTERPRISE_SCHEMA, "manager.value")

    def test_case_insensitive_and_canonical(self) -> None:
        assert split_urn_path(f"{USER_SCHEMA.lower()}:name.givenName") == (USER_SCHEMA, "name.givenName")

    def test_plain_path(self) -> None:
        assert split_urn_path("emails.value") == (None, "emails.value")
        assert split_urn_path("urn:example:custom:attr") == (None, "urn:example:custom:attr")

    def test_bare_urn(self) -> None:
        assert split_urn_path(ENTERPRISE_SCHEMA) == (ENTERPRISE_SCHEMA, "")

    def test_restricted_to_a_resource(self) -> None:
        path = f"{ENTERPRISE_SCHEMA}:department"
        assert split_urn_path(path, GROUP_RESOURCE) == (None, path)
        assert split_urn_path(path, USER_RESOURCE) == (ENTERPRISE_SCHEMA, "department")

    def test_longest_prefix_wins(self) -> None:
        # A hypothetical extension whose URN extends the core one must win over the core schema.
        from scim_service.schemas.definitions import ResourceTypeDef

        longer = Schema(f"{USER_SCHEMA}:acme", "Acme", "test", (Attribute("badge", "string"),))
        resource = ResourceTypeDef("U", "U", "/U", "", USER_SCHEMA_DEF, ((longer, False),))
        assert split_urn_path(f"{USER_SCHEMA}:acme:badge", resource) == (longer.id, "badge")
        assert split_urn_path(f"{USER_SCHEMA}:acmeX", resource) == (USER_SCHEMA, "acmeX")
