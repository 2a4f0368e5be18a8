"""The Active Directory preset, tested without a domain controller: GUID ids, userAccountControl, mapping.

No AD server runs here (docs/ldap.md says so): these tests pin the conversions and the LDAP filters the
preset sends, which are what a real AD would see.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from scim_ldap.ad import (
    guid_filter_value,
    guid_to_bytes,
    guid_to_string,
    sam_account_name,
    uac_filter,
    uac_is_active,
    uac_with,
)
from scim_ldap.backend import LdapBackend
from scim_ldap.filters import TRUE, FilterCompiler
from scim_ldap.mapping import load_mapping
from scim_ldap.plan import FilterSplitter
from scim_ldap.pool import LdapSettings

from scim_service.errors import InvalidFilter
from scim_service.model import ENTERPRISE_SCHEMA
from scim_service.query.parser import parse_attr_path, parse_filter
from scim_service.query.resolve import resolve_filter, resolve_path
from scim_service.schemas.definitions import USER_RESOURCE

# The byte layout of a GUID in AD: the first three fields little-endian, the last two as they read.
GUID = "00112233-4455-6677-8899-aabbccddeeff"
GUID_BYTES = bytes.fromhex("33221100554477668899aabbccddeeff")
AD = {"SCIM_LDAP_PRESET": "ad"}


def compile_user(text: str, config: dict[str, Any] = AD) -> str:
    """The LDAP filter the AD mapping compiles a User filter to."""
    return FilterCompiler(load_mapping(config), "User", lambda _ref: None).compile(
        resolve_filter(parse_filter(text), USER_RESOURCE)
    )


def test_object_guid_bytes_are_the_mixed_endian_guid() -> None:
    assert guid_to_string(GUID_BYTES) == GUID
    assert guid_to_bytes(GUID) == GUID_BYTES
    for _ in range(50):
        value = uuid.uuid4()
        assert guid_to_string(guid_to_bytes(str(value))) == str(value)
    with pytest.raises(ValueError, match="16 bytes"):
        guid_to_string(b"\x01\x02")


def test_a_guid_filter_value_escapes_every_byte() -> None:
    # bytes that are filter syntax (* ( ) \ NUL) must match literally, as \2a \28 \29 \5c \00
    special = uuid.UUID(bytes_le=b"*()\\\x00" + bytes(range(11)))
    value = guid_filter_value(str(special))
    assert value.startswith("\\2a\\28\\29\\5c\\00")
    assert len(value) == 16 * 3 and value.count("\\") == 16
    assert bytes(int(h, 16) for h in value.split("\\")[1:]) == special.bytes_le
    assert compile_user(f'id eq "{GUID}"') == "(objectGUID=" + "".join(f"\\{b:02x}" for b in GUID_BYTES) + ")"
    assert compile_user(f'id eq "{GUID.upper()}"') == "(!(objectClass=*))", "ids are caseExact"


def test_user_account_control_keeps_every_bit_but_accountdisable() -> None:
    assert uac_with(None, True) == "512" and uac_with(None, False) == "514"  # NORMAL_ACCOUNT (+ ACCOUNTDISABLE)
    assert uac_with("66048", False) == "66050"  # DONT_EXPIRE_PASSWORD kept
    assert uac_with("66050", True) == "66048"
    assert uac_with("514", False) == "514" and uac_with("512", True) == "512"
    assert uac_is_active("512") and uac_is_active("66048") and uac_is_active(None)
    assert not uac_is_active("514") and not uac_is_active("66050")
    assert uac_filter(False) == "(userAccountControl:1.2.840.113556.1.4.803:=2)"
    assert uac_filter(True) == "(!(userAccountControl:1.2.840.113556.1.4.803:=2))"
    assert compile_user("active eq false") == uac_filter(False)
    assert compile_user("not (active eq true)") == f"(!{uac_filter(True)})"


def test_sam_account_name_from_user_name() -> None:
    assert sam_account_name("john.smith@example.com") == "john.smith"
    assert sam_account_name("a-very-long-user-name-indeed@example.com") == "a-very-long-user-nam"
    assert sam_account_name('we"ird/na[me]:x') == "we_ird_na_me__x"
    assert len(sam_account_name("x" * 64)) == 20


def test_the_ad_preset_mapping() -> None:
    m = load_mapping(AD)
    assert (m.id_attribute, m.id_format, m.active, m.active_format) == (
        "objectGUID",
        "guid",
        "userAccountControl",
        "uac",
    )
    assert m.user_attribute("userName").ldap == "userPrincipalName"  # type: ignore[union-attr]
    assert "user" in m.user_classes and "scimResource" not in m.user_classes + m.group_classes
    assert m.group_classes[-1] == "group" and m.group_placeholder is None  # AD allows empty groups
    assert m.server_timestamps and (m.created, m.last_modified) == ("whenCreated", "whenChanged")
    assert m.sam_account_name and m.primary_email == "mail"
    scim_only = {m.external_id, m.version, m.deleted, m.document}
    assert all(a.startswith("msDS-cloudExtensionAttribute") for a in scim_only) and len(scim_only) == 4
    # overrides apply to the preset's own table
    custom = load_mapping({**AD, "SCIM_LDAP_MAPPING": '{"user_attributes": {"title": null}, "deleted": "info"}'})
    assert custom.user_attribute("title") is None and custom.user_attribute("userName").ldap == "userPrincipalName"  # type: ignore[union-attr]
    assert custom.deleted == "info"
    with pytest.raises(ValueError, match="id_format"):
        load_mapping({**AD, "SCIM_LDAP_MAPPING": '{"id_format": "hex"}'})
    with pytest.raises(ValueError, match="SCIM_LDAP_PRESET"):
        load_mapping({"SCIM_LDAP_PRESET": "novell"})


def test_ad_filters_and_what_is_left_to_python() -> None:
    assert compile_user('userName gt "m"') == "(&(userPrincipalName>=m)(!(userPrincipalName=m)))"
    assert compile_user('userName eq "x)(cn=*"') == "(userPrincipalName=x\\29\\28cn=\\2a)"
    with pytest.raises(InvalidFilter, match="objectGUID"):
        compile_user(f'id gt "{GUID}"')
    compiler = FilterCompiler(load_mapping(AD), "User", lambda _ref: None)
    # What the directory cannot order or compare goes to the reference evaluator instead of a refusal.
    plan = FilterSplitter(compiler).plan(
        resolve_filter(parse_filter(f'id gt "{GUID}" and title eq "x"'), USER_RESOURCE)
    )
    assert plan.pushed == "(title=x)" and not plan.exact and plan.evaluated == ("id",)
    plan = FilterSplitter(compiler).plan(resolve_filter(parse_filter(f'id gt "{GUID}"'), USER_RESOURCE))
    assert plan.pushed == TRUE and not plan.exact
    assert compiler.sort_keys(resolve_path(parse_attr_path("id"), USER_RESOURCE), False) is None
    division = compiler.sort_keys(resolve_path(parse_attr_path(f"{ENTERPRISE_SCHEMA}:division"), USER_RESOURCE), False)
    assert division is not None and division[0].attribute == "division"


def test_the_backend_reads_and_writes_guids_and_account_control() -> None:
    settings = LdapSettings.from_config({"SCIM_LDAP_URL": "ldap://127.0.0.1:1", "SCIM_LDAP_BASE_DN": "dc=x"})
    backend = LdapBackend(settings, load_mapping(AD))  # never connects: these calls need no directory
    try:
        entry = {"raw_attributes": {"objectGUID": [GUID_BYTES]}, "attributes": {"userAccountControl": "66048"}}
        assert backend.codec.id(entry) == GUID
        other = str(uuid.uuid4())
        assert backend.codec.id_filter([GUID, other]) == (
            f"(|(objectGUID={guid_filter_value(GUID)})(objectGUID={guid_filter_value(other)}))"
        )
        assert backend.codec.stored_active(entry) is True
        assert backend.codec.active_value(False, entry) == "66050"
        assert backend.codec.active_value(True, None) == "512"
        assert backend.codec.active_filter(False) == uac_filter(False)
        assert not backend.capabilities.filter_operators and not backend.capabilities.sort_attributes
        assert backend.capabilities.cursor is True
    finally:
        backend.close()
