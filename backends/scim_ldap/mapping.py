"""Where each SCIM attribute lives in the directory: the configurable attribute mapping and its presets.

The default (``openldap``) stores users as ``inetOrgPerson`` and groups as ``groupOfNames``, both with
the auxiliary class ``scimResource`` of :mod:`scim_ldap.schema` for what has no standard home. The
``ad`` preset names Active Directory's classes and attributes. ``SCIM_LDAP_MAPPING`` (a JSON object, or
``@path`` to a JSON file) overrides single fields, for example to put ``externalId`` into an existing
attribute where an operator cannot load a schema.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scim_service.model import ENTERPRISE_SCHEMA

# kinds of mapped values
STRING, DN = "string", "dn"


@dataclass(frozen=True)
class AttributeMap:
    """One SCIM attribute path stored in one LDAP attribute.

    ``scim`` is the dotted path (``name.givenName``; ``emails`` for the values of a multi-valued
    attribute; an enterprise attribute as ``<urn>:employeeNumber``). ``ordering_rule`` names the rule the
    server-side sort uses (None: not sortable); ``filter_ordering`` says the LDAP attribute has an
    ORDERING rule of its own, so ``gt ge lt le`` filters work; ``substrings`` that it has a SUBSTR rule.
    """

    scim: str
    ldap: str
    multi: bool = False
    ordering_rule: str | None = "caseIgnoreOrderingMatch"
    filter_ordering: bool = False
    substrings: bool = True
    kind: str = STRING


def _ent(attr: str) -> str:
    return f"{ENTERPRISE_SCHEMA}:{attr}"


OPENLDAP_USER_ATTRIBUTES: tuple[AttributeMap, ...] = (
    AttributeMap("userName", "uid"),
    AttributeMap("name.formatted", "cn"),
    AttributeMap("name.givenName", "givenName"),
    AttributeMap("name.familyName", "sn"),
    AttributeMap("displayName", "displayName"),
    AttributeMap("title", "title"),
    AttributeMap("userType", "employeeType"),
    AttributeMap("preferredLanguage", "preferredLanguage"),
    AttributeMap("emails", "mail", multi=True),
    AttributeMap("phoneNumbers", "telephoneNumber", multi=True, ordering_rule=None),
    AttributeMap(_ent("employeeNumber"), "employeeNumber"),
    AttributeMap(_ent("department"), "departmentNumber"),
    AttributeMap(_ent("organization"), "o"),
    AttributeMap(_ent("manager"), "manager", ordering_rule=None, substrings=False, kind=DN),
)

# AD compares strings with >= and <= natively (filter_ordering) and has no caseIgnoreOrderingMatch by
# name, so its sort keys name no rule. mail and telephoneNumber are single-valued in AD: the primary
# email and the first phone number go there, the others stay in the document.
AD_USER_ATTRIBUTES: tuple[AttributeMap, ...] = (
    AttributeMap("userName", "userPrincipalName", ordering_rule="", filter_ordering=True),
    AttributeMap("name.givenName", "givenName", ordering_rule="", filter_ordering=True),
    AttributeMap("name.familyName", "sn", ordering_rule="", filter_ordering=True),
    AttributeMap("displayName", "displayName", ordering_rule="", filter_ordering=True),
    AttributeMap("title", "title", ordering_rule="", filter_ordering=True),
    AttributeMap("userType", "employeeType", ordering_rule="", filter_ordering=True),
    AttributeMap("preferredLanguage", "preferredLanguage", ordering_rule="", filter_ordering=True),
    AttributeMap(_ent("employeeNumber"), "employeeNumber", ordering_rule="", filter_ordering=True),
    AttributeMap(_ent("department"), "department", ordering_rule="", filter_ordering=True),
    AttributeMap(_ent("organization"), "company", ordering_rule="", filter_ordering=True),
    AttributeMap(_ent("division"), "division", ordering_rule="", filter_ordering=True),
    AttributeMap(_ent("manager"), "manager", ordering_rule=None, substrings=False, kind=DN),
)


@dataclass(frozen=True)
class LdapMapping:
    """The whole mapping: object classes, naming, container names and the attribute tables.

    ``fillers`` are LDAP attributes the object class requires; when SCIM gives no value the backend
    writes the first non-empty SCIM path of the list and records the attribute in ``filler``, so filters
    and reads treat it as absent. ``group_placeholder`` is the member value that keeps a groupOfNames
    legal while SCIM has it empty (None where the server allows empty groups, as AD does).
    """

    preset: str = "openldap"
    user_classes: tuple[str, ...] = ("inetOrgPerson", "scimResource")
    group_classes: tuple[str, ...] = ("groupOfNames", "scimResource")
    user_filter: str = "(objectClass=inetOrgPerson)"
    group_filter: str = "(objectClass=groupOfNames)"
    tenant_class: str = "organizationalUnit"
    people_ou: str = "People"
    groups_ou: str = "Groups"
    user_rdn: str = "uid"
    group_rdn: str = "cn"
    id_attribute: str = "entryUUID"
    id_format: str = "uuid"  # "uuid": a UUID string (entryUUID); "guid": a binary GUID (AD objectGUID)
    active_format: str = "boolean"  # "boolean": TRUE/FALSE; "uac": the ACCOUNTDISABLE bit of userAccountControl
    server_timestamps: bool = False  # True: created/last_modified are kept by the server, never written
    sam_account_name: bool = False  # True: new users get a sAMAccountName derived from userName (AD)
    dn_attribute: str = "entryDN"
    member_attribute: str = "member"
    group_placeholder: str | None = "cn=scim-empty-group-placeholder"
    external_id: str = "scimExternalId"
    active: str = "scimActive"
    deleted: str = "scimDeleted"
    created: str = "scimCreated"
    last_modified: str = "scimLastModified"
    version: str = "scimVersion"
    primary_email: str = "scimPrimaryEmail"
    document: str = "scimDocument"
    filler: str = "scimFiller"
    fillers: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "cn": ("name.formatted", "displayName", "userName"),
            "sn": ("name.familyName", "userName"),
        }
    )
    user_attributes: tuple[AttributeMap, ...] = OPENLDAP_USER_ATTRIBUTES
    group_attributes: tuple[AttributeMap, ...] = (AttributeMap("displayName", "cn"),)

    def user_attribute(self, scim: str) -> AttributeMap | None:
        """The mapping of a SCIM user path (compared case-insensitively), or None."""
        return _find(self.user_attributes, scim)

    def group_attribute(self, scim: str) -> AttributeMap | None:
        """The mapping of a SCIM group path (compared case-insensitively), or None."""
        return _find(self.group_attributes, scim)

    def user_read_attributes(self) -> list[str]:
        """Every LDAP attribute a user read needs."""
        own = [m.ldap for m in self.user_attributes]
        return sorted(set(own) | set(self._meta_attributes()))

    def group_read_attributes(self, *, members: bool) -> list[str]:
        """Every LDAP attribute a group read needs (``member`` only when asked)."""
        attrs = {m.ldap for m in self.group_attributes} | set(self._meta_attributes())
        if members:
            attrs.add(self.member_attribute)
        return sorted(attrs)

    def _meta_attributes(self) -> list[str]:
        return [
            self.id_attribute,
            self.external_id,
            self.active,
            self.deleted,
            self.created,
            self.last_modified,
            self.version,
            self.document,
            self.filler,
            "createTimestamp",
            "modifyTimestamp",
        ]


def _find(table: tuple[AttributeMap, ...], scim: str) -> AttributeMap | None:
    lowered = scim.lower()
    return next((m for m in table if m.scim.lower() == lowered), None)


# Active Directory has no scimResource: the attributes SCIM needs beyond AD's own go into the twenty
# msDS-cloudExtensionAttribute1..20 (single-valued strings in the base schema since Windows Server 2012,
# meant for customer data); meta timestamps are AD's whenCreated/whenChanged (whole seconds).
AD_PRESET: dict[str, Any] = {
    "preset": "ad",
    "user_classes": ("top", "person", "organizationalPerson", "user"),
    "group_classes": ("top", "group"),
    "user_filter": "(&(objectCategory=person)(objectClass=user))",
    "group_filter": "(objectClass=group)",
    "people_ou": "People",
    "groups_ou": "Groups",
    "user_rdn": "cn",
    "id_attribute": "objectGUID",
    "id_format": "guid",
    "dn_attribute": "distinguishedName",
    "group_placeholder": None,
    "active": "userAccountControl",
    "active_format": "uac",
    "server_timestamps": True,
    "created": "whenCreated",
    "last_modified": "whenChanged",
    "sam_account_name": True,
    "external_id": "msDS-cloudExtensionAttribute1",
    "version": "msDS-cloudExtensionAttribute2",
    "deleted": "msDS-cloudExtensionAttribute3",
    "primary_email": "mail",
    "document": "msDS-cloudExtensionAttribute4",
    "filler": "msDS-cloudExtensionAttribute5",
    "fillers": {},
    "user_attributes": AD_USER_ATTRIBUTES,
    "group_attributes": (AttributeMap("displayName", "cn", ordering_rule="", filter_ordering=True),),
}


def load_mapping(config: Mapping[str, Any]) -> LdapMapping:
    """The mapping of ``SCIM_LDAP_PRESET`` (``openldap`` or ``ad``) with ``SCIM_LDAP_MAPPING`` overrides applied."""
    preset = str(config.get("SCIM_LDAP_PRESET") or "openldap").strip().lower()
    if preset == "openldap":
        fields: dict[str, Any] = {}
    elif preset == "ad":
        fields = dict(AD_PRESET)
    else:
        raise ValueError(f"SCIM_LDAP_PRESET: expected openldap or ad, got {preset!r}")
    raw = config.get("SCIM_LDAP_MAPPING")
    if raw:
        fields.update(_overrides(raw, fields))
    mapping = LdapMapping(**fields)
    if mapping.id_format not in ("uuid", "guid"):
        raise ValueError(f"SCIM_LDAP_MAPPING.id_format: expected uuid or guid, got {mapping.id_format!r}")
    if mapping.active_format not in ("boolean", "uac"):
        raise ValueError(f"SCIM_LDAP_MAPPING.active_format: expected boolean or uac, got {mapping.active_format!r}")
    return mapping


def _overrides(raw: Any, preset: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("@"):
            text = Path(text[1:]).read_text()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"SCIM_LDAP_MAPPING is not valid JSON: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ValueError("SCIM_LDAP_MAPPING must be a JSON object")
    known = {f.name for f in dataclasses.fields(LdapMapping)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ValueError(f"SCIM_LDAP_MAPPING: unknown key {key!r}; known keys: {', '.join(sorted(known))}")
        if key in ("user_attributes", "group_attributes"):
            defaults = LdapMapping()
            current = preset.get(key, getattr(defaults, key))
            base = {m.scim: m for m in current}
            out[key] = _attribute_table(key, value, base)
        elif key in ("user_classes", "group_classes"):
            out[key] = tuple(value)
        else:
            out[key] = value
    return out


def _attribute_table(key: str, value: Any, base: dict[str, AttributeMap]) -> tuple[AttributeMap, ...]:
    """``{"title": "title", "nickName": {"ldap": "nick", "ordering_rule": null}, "userType": null}`` on the defaults."""
    if not isinstance(value, Mapping):
        raise ValueError(f"SCIM_LDAP_MAPPING.{key} must map SCIM paths to LDAP attributes")
    table = dict(base)
    for scim, spec in value.items():
        if spec is None:
            table.pop(scim, None)
        elif isinstance(spec, str):
            previous = table.get(scim)
            table[scim] = dataclasses.replace(previous, ldap=spec) if previous else AttributeMap(scim, spec)
        elif isinstance(spec, Mapping):
            table[scim] = AttributeMap(scim=scim, **spec)
        else:
            raise ValueError(f"SCIM_LDAP_MAPPING.{key}.{scim}: expected an attribute name, an object or null")
    return tuple(table.values())
