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

AD_USER_ATTRIBUTES: tuple[AttributeMap, ...] = (
    AttributeMap("userName", "userPrincipalName"),
    AttributeMap("name.formatted", "cn"),
    AttributeMap("name.givenName", "givenName"),
    AttributeMap("name.familyName", "sn"),
    AttributeMap("displayName", "displayName"),
    AttributeMap("title", "title"),
    AttributeMap("emails", "mail"),
    AttributeMap("phoneNumbers", "telephoneNumber", ordering_rule=None),
    AttributeMap(_ent("employeeNumber"), "employeeNumber"),
    AttributeMap(_ent("department"), "department"),
    AttributeMap(_ent("organization"), "company"),
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


AD_PRESET: dict[str, Any] = {
    "preset": "ad",
    "user_classes": ("user",),
    "group_classes": ("group",),
    "user_filter": "(&(objectClass=user)(!(objectClass=computer)))",
    "group_filter": "(objectClass=group)",
    "people_ou": "People",
    "groups_ou": "Groups",
    "user_rdn": "cn",
    "id_attribute": "objectGUID",
    "dn_attribute": "distinguishedName",
    "group_placeholder": None,
    "fillers": {},
    "user_attributes": AD_USER_ATTRIBUTES,
    "group_attributes": (AttributeMap("displayName", "cn"),),
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
        fields.update(_overrides(raw))
    return LdapMapping(**fields)


def _overrides(raw: Any) -> dict[str, Any]:
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
            base = {m.scim: m for m in (OPENLDAP_USER_ATTRIBUTES if key == "user_attributes" else ())}
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
