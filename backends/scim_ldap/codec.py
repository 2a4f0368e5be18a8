"""Entries <-> SCIM: how a directory entry becomes a user or group record, and a document becomes attributes.

The SCIM document is kept whole as JSON in ``scimDocument`` (so attributes without a directory home
round-trip); the mapped attributes are written beside it, and on read a value an administrator changed in
a mapped attribute wins over the document (:meth:`EntryCodec.overlay`). Nothing here talks to the
directory: references (``manager``) are resolved by a callable the backend passes in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import ldap3
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE
from ldap3.utils.dn import escape_rdn

from scim_ldap.ad import guid_filter_value, guid_to_string, uac_filter, uac_is_active, uac_with
from scim_ldap.directory import Entry, first, values
from scim_ldap.filters import escape
from scim_ldap.mapping import DN, AttributeMap, LdapMapping
from scim_ldap.schema import OBJECT_CLASS
from scim_service import rules
from scim_service.errors import InvalidValue
from scim_service.model import ENTERPRISE_SCHEMA, GroupRecord, Member, UserRecord
from scim_service.query.evaluator import get_ci

# Key of a group's stored document that holds the member displays the client gave (member id -> display):
# the directory keeps members as DNs only. "$" cannot start a SCIM attribute name (RFC 7643 §2.1), so the
# key never meets group data.
MEMBER_DISPLAYS = "$memberDisplays"
MAX_DISPLAY = rules.MAX_MEMBER_DISPLAY  # characters of a given member display
# userName and a group's displayName name their entries. OpenLDAP's mdb keys an entry by its RDN (as
# given and normalised), which fails with "other" (an LDAP 80, a 503) somewhere past 240 bytes; a name
# this long is a client's mistake, so it is refused (400) before anything is written.
MAX_NAME_BYTES = 200

Changes = dict[str, list[tuple[str, list[str]]]]


def now() -> datetime:
    """The current instant in milliseconds, the precision the API renders (as the SQL backend does).

    A client that filters on a meta.lastModified it was shown (``eq``, or ``gt`` for incremental sync)
    must compare the stored instant.
    """
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def stamp(moment: datetime) -> str:
    """GeneralizedTime with microseconds, in UTC."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S.%fZ")


def parse_stamp(text: str | None) -> datetime | None:
    """A GeneralizedTime (with or without fractions) as an aware datetime, or None."""
    if not text:
        return None
    for fmt in ("%Y%m%d%H%M%S.%fZ", "%Y%m%d%H%M%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def scim_get(data: Mapping[str, Any], path: str) -> Any:
    """The value at a mapping path (``name.givenName``, ``<enterprise urn>:department``) of a document."""
    container: Any = data
    if path.startswith(ENTERPRISE_SCHEMA + ":"):
        container = get_ci(data, ENTERPRISE_SCHEMA)
        path = path[len(ENTERPRISE_SCHEMA) + 1 :]
        if not isinstance(container, Mapping):
            return None
    for part in path.split("."):
        if not isinstance(container, Mapping):
            return None
        container = get_ci(container, part)
    return container


def scim_set(data: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with None remove) the value at a mapping path, creating intermediate dicts."""
    container: dict[str, Any] = data
    if path.startswith(ENTERPRISE_SCHEMA + ":"):
        path = path[len(ENTERPRISE_SCHEMA) + 1 :]
        nested = data.get(ENTERPRISE_SCHEMA)
        if not isinstance(nested, dict):
            if value is None:
                return
            nested = data[ENTERPRISE_SCHEMA] = {}
        container = nested
    parts = path.split(".")
    for part in parts[:-1]:
        nested = container.get(part)
        if not isinstance(nested, dict):
            if value is None:
                return
            nested = container[part] = {}
        container = nested
    if value is None:
        container.pop(parts[-1], None)
    else:
        container[parts[-1]] = value


def check_name(value: str, label: str) -> None:
    """``InvalidValue`` when ``value`` is too long to name an entry (see :data:`MAX_NAME_BYTES`)."""
    size = len(escape_rdn(value).encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise InvalidValue(
            f"{label} is too long for the ldap backend, where it names the directory entry: at most "
            f'{MAX_NAME_BYTES} bytes (UTF-8, with , + " \\ < > ; = escaped), this one has {size}'
        )


def rdn_value(entry: Entry, rdn_attr: str) -> str:
    """The value of ``rdn_attr`` that names the entry (as stored, not as escaped in the DN)."""
    rdn = ldap3.utils.dn.parse_dn(entry["dn"])[0]
    found = values(entry, rdn_attr)
    raw = rdn[1]
    # parse_dn keeps escapes; pick the attribute value that the RDN names.
    for v in found:
        if escape_rdn(v).lower() == raw.lower() or v.lower() == raw.lower():
            return v
    return found[0] if found else raw


class EntryCodec:
    """Reads and writes entries under one mapping: ids, ``active``, documents, records and attributes."""

    def __init__(self, mapping: LdapMapping) -> None:
        self.mapping = mapping

    # -- what to read ---------------------------------------------------------------------------

    def user_attrs(self) -> list[str]:
        """The LDAP attributes a user read asks for."""
        return [*self.mapping.user_read_attributes(), "objectClass", self.mapping.primary_email]

    def group_attrs(self, *, members: bool) -> list[str]:
        """The LDAP attributes a group read asks for (``member`` only with ``members``)."""
        return [*self.mapping.group_read_attributes(members=members), "objectClass"]

    # -- ids and active, in the mapping's formats ------------------------------------------------

    def id(self, entry: Entry) -> str:
        """The SCIM id of an entry: its entryUUID, or its binary objectGUID as a GUID string."""
        if self.mapping.id_format == "guid":
            raw = entry.get("raw_attributes", {}).get(self.mapping.id_attribute) or [b""]
            return guid_to_string(raw[0])
        return str(first(entry, self.mapping.id_attribute))

    def id_filter(self, ids: Sequence[str]) -> str:
        """``(id=a)`` or ``(|(id=a)(id=b)...)`` for canonical ids, a GUID as escaped bytes."""
        attr = self.mapping.id_attribute
        if self.mapping.id_format == "guid":
            atoms = "".join(f"({attr}={guid_filter_value(i)})" for i in ids)
        else:
            atoms = "".join(f"({attr}={escape(i)})" for i in ids)
        return atoms if len(ids) == 1 else f"(|{atoms})"

    def active_filter(self, active: bool) -> str:
        """Entries whose ``active`` is stored as ``active`` (absent counts as active)."""
        m = self.mapping
        if m.active_format == "uac":
            return uac_filter(active, m.active)
        return f"(!({m.active}=FALSE))" if active else f"({m.active}=FALSE)"

    def active_value(self, active: bool, entry: Entry | None) -> str:
        """The stored form of ``active`` (AD: userAccountControl with only the ACCOUNTDISABLE bit changed)."""
        if self.mapping.active_format == "uac":
            return uac_with(first(entry, self.mapping.active) if entry else None, active)
        return "TRUE" if active else "FALSE"

    def stored_active(self, entry: Entry) -> bool | None:
        """The stored ``active`` of an entry (None when the entry has none)."""
        raw = first(entry, self.mapping.active)
        if raw is None:
            return None
        return uac_is_active(raw) if self.mapping.active_format == "uac" else raw.upper() == "TRUE"

    def is_deleted(self, entry: Entry) -> bool:
        """Whether the user entry is soft-deleted."""
        return (first(entry, self.mapping.deleted) or "").upper() == "TRUE"

    def version(self, entry: Entry) -> str:
        """The entry's ``scimVersion`` ("0" when it has none)."""
        return first(entry, self.mapping.version) or "0"

    # -- documents and records -------------------------------------------------------------------

    def document(self, entry: Entry) -> dict[str, Any] | None:
        """The stored SCIM document of an entry, or None (none stored, or not a JSON object)."""
        raw = entry.get("raw_attributes", {}).get(self.mapping.document)
        if not raw:
            return None
        try:
            doc = json.loads(raw[0].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        return doc if isinstance(doc, dict) else None

    def fillers(self, entry: Entry) -> set[str]:
        """The (lower-cased) attributes of the entry that hold a filler, not a SCIM value."""
        return {v.lower() for v in values(entry, self.mapping.filler)}

    def overlay(self, entry: Entry, doc: dict[str, Any] | None, table: Sequence[AttributeMap]) -> dict[str, Any]:
        """The SCIM data of an entry: the stored document with the directory's own values laid over it.

        A value an administrator changed in the directory wins; an entry without a document (created by
        another tool) is read from its attributes alone.
        """
        has_doc = doc is not None
        data: dict[str, Any] = doc if doc is not None else {}
        fillers = self.fillers(entry)
        for m in table:
            if m.kind == DN:
                continue
            ldap_values = [] if m.ldap.lower() in fillers else values(entry, m.ldap)
            current = scim_get(data, m.scim)
            if has_doc and current in (None, "", []) and not ldap_values:
                continue
            if has_doc and current is None:
                continue  # the document did not set it: a value only the directory has stays there
            if m.multi:
                kept = [e for e in current or [] if isinstance(e, Mapping)]
                lowered = {v.lower() for v in ldap_values}
                merged = [e for e in kept if str(e.get("value", "")).lower() in lowered]
                seen = {str(e.get("value", "")).lower() for e in merged}
                merged += [{"value": v} for v in ldap_values if v.lower() not in seen]
                scim_set(data, m.scim, merged or None)
            else:
                if isinstance(current, str) and any(v == current for v in ldap_values):
                    continue
                if isinstance(current, str) and any(v.lower() == current.lower() for v in ldap_values):
                    continue  # the same value under the attribute's case-insensitive equality
                scim_set(data, m.scim, ldap_values[0] if ldap_values else None)
        external = first(entry, self.mapping.external_id)
        if external is not None or has_doc:
            scim_set(data, "externalId", external)
        active = self.stored_active(entry)
        if active is not None:
            data["active"] = active
        return data

    def _times(self, entry: Entry) -> tuple[datetime, datetime]:
        m = self.mapping
        created = parse_stamp(first(entry, m.created) or first(entry, "createTimestamp")) or now()
        modified = parse_stamp(first(entry, m.last_modified) or first(entry, "modifyTimestamp"))
        return created, modified or created

    def user_record(self, entry: Entry, groups: Sequence[Member] = ()) -> UserRecord:
        """The user record of an entry, with the given group memberships."""
        created, modified = self._times(entry)
        return UserRecord(
            id=self.id(entry),
            data=self.overlay(entry, self.document(entry), self.mapping.user_attributes),
            created=created,
            last_modified=modified,
            version=self.version(entry),
            deleted=self.is_deleted(entry),
            groups=tuple(groups),
        )

    def group_display(self, entry: Entry) -> str | None:
        """A group's displayName: the document's when it names the entry (case-insensitively), else ``cn``."""
        doc = self.document(entry) or {}
        names = values(entry, "cn")
        wanted = doc.get("displayName")
        if isinstance(wanted, str) and any(n.lower() == wanted.lower() for n in names):
            return next(n for n in names if n == wanted) if wanted in names else wanted
        return names[0] if names else None

    def group_record(self, entry: Entry, members: Sequence[Member] | None) -> GroupRecord:
        """The group record of an entry; ``members`` None when they were not read."""
        created, modified = self._times(entry)
        data = self.overlay(entry, self.document(entry), ())
        data.pop(MEMBER_DISPLAYS, None)  # storage detail, shown through the members
        display = self.group_display(entry)
        if display is not None:
            data["displayName"] = display
        return GroupRecord(
            id=self.id(entry),
            data=data,
            created=created,
            last_modified=modified,
            version=self.version(entry),
            members=tuple(members) if members is not None else None,
        )

    def member_dns(self, entry: Entry) -> list[str]:
        """The member DNs of a group entry, without the placeholder."""
        placeholder = (self.mapping.group_placeholder or "").lower()
        return [v for v in values(entry, self.mapping.member_attribute) if v.lower() != placeholder]

    def given_displays(self, entry: Entry) -> dict[str, str]:
        """The member displays the client gave, kept in the group's document (member id -> display)."""
        raw = (self.document(entry) or {}).get(MEMBER_DISPLAYS)
        if not isinstance(raw, Mapping):
            return {}
        return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}

    @staticmethod
    def displays_of(members: Sequence[Member]) -> dict[str, str]:
        """member id -> display for the members that carry one (the first mention of a member counts)."""
        seen: set[str] = set()
        out: dict[str, str] = {}
        for member in members:
            if member.value in seen:
                continue
            seen.add(member.value)
            if member.display is not None:
                if len(member.display) > MAX_DISPLAY:
                    raise InvalidValue(f"Member {member.value!r}: display is longer than {MAX_DISPLAY} characters")
                out[member.value] = member.display
        return out

    # -- writing ---------------------------------------------------------------------------------

    @staticmethod
    def group_document(data: Mapping[str, Any], displays: Mapping[str, str]) -> str:
        """The stored JSON of a group: its SCIM data plus the given member displays (when there are any)."""
        doc = {k: v for k, v in data.items() if k != MEMBER_DISPLAYS}
        if displays:
            doc[MEMBER_DISPLAYS] = dict(sorted(displays.items()))
        return json.dumps(doc, ensure_ascii=False, sort_keys=True)

    def group_attributes(
        self, data: Mapping[str, Any], displays: Mapping[str, str] | None = None
    ) -> tuple[dict[str, list[str]], str]:
        """The LDAP attributes of group data (empty lists for absent ones) and its displayName."""
        display = data.get("displayName")
        if not isinstance(display, str) or not display.strip():
            raise InvalidValue("displayName is required and must be a non-empty string")
        check_name(display, "displayName")
        external = data.get("externalId")
        attrs = {
            self.mapping.external_id: [external] if isinstance(external, str) and external else [],
            self.mapping.document: [self.group_document(data, displays or {})],
        }
        for m in self.mapping.group_attributes:
            if m.ldap != self.mapping.group_rdn:
                value = scim_get(data, m.scim)
                attrs[m.ldap] = [str(value)] if isinstance(value, str) and value else []
        return attrs, display

    @staticmethod
    def scim_values(data: Mapping[str, Any], m: AttributeMap, resolve: Callable[[str], str | None]) -> list[str]:
        """The LDAP values of one mapped attribute; a reference (DN kind) goes through ``resolve``."""
        value = scim_get(data, m.scim)
        if m.kind == DN:
            ref = get_ci(value, "value") if isinstance(value, Mapping) else value
            dn = resolve(ref) if isinstance(ref, str) else None
            return [dn] if dn else []
        raw: list[Any]
        raw = [get_ci(e, "value") if isinstance(e, Mapping) else e for e in value or []] if m.multi else [value]
        out: list[str] = []
        seen: set[str] = set()
        for v in raw:
            if v is None or isinstance(v, bool | Mapping | list) or v == "":
                continue
            text = str(v)
            if text.lower() not in seen:  # the directory refuses values equal under its matching rule
                seen.add(text.lower())
                out.append(text)
        return out

    def user_attributes(
        self,
        data: Mapping[str, Any],
        resolve: Callable[[str], str | None],
        *,
        deleted: bool,
        entry: Entry | None = None,
    ) -> tuple[dict[str, list[str]], str]:
        """The LDAP attributes (every mapped one, empty lists for absent ones) and the userName."""
        user_name = data.get("userName")
        if not isinstance(user_name, str) or not user_name.strip():
            raise InvalidValue("userName is required and must be a non-empty string")
        check_name(user_name, "userName")
        active = rules.document_active(data)
        m = self.mapping
        attrs: dict[str, list[str]] = {a.ldap: self.scim_values(data, a, resolve) for a in m.user_attributes}
        fillers: list[str] = []
        for ldap_attr, sources in m.fillers.items():
            if attrs.get(ldap_attr):
                continue
            for source in sources:
                candidate = scim_get(data, source)
                if isinstance(candidate, str) and candidate:
                    attrs[ldap_attr] = [candidate]
                    fillers.append(ldap_attr)
                    break
        external = data.get("externalId")
        attrs.update(
            {
                m.external_id: [external] if isinstance(external, str) and external else [],
                m.active: [self.active_value(active and not deleted, entry)]
                if "active" in data or deleted or m.active_format == "uac"
                else [],
                m.deleted: ["TRUE" if deleted else "FALSE"],
                # The matching key (rules.primary_email_key), as the sql backend's column holds it.
                m.primary_email: [e] if (e := rules.primary_email_key(data)) else [],
                m.document: [json.dumps(dict(data), ensure_ascii=False, sort_keys=True)],
            }
        )
        if m.fillers:
            attrs[m.filler] = fillers
        return attrs, user_name

    def new_entry_attributes(self) -> dict[str, list[str]]:
        """Version 1 and, unless the server keeps them (AD), the created and lastModified times."""
        attrs = {self.mapping.version: ["1"]}
        if not self.mapping.server_timestamps:
            moment = stamp(now())
            attrs.update({self.mapping.created: [moment], self.mapping.last_modified: [moment]})
        return attrs

    def cas(self, entry: Entry) -> Changes:
        """The version compare-and-swap plus lastModified, to put in every modify of ``entry``."""
        version = first(entry, self.mapping.version)
        changes: Changes = {}
        if not self.mapping.server_timestamps:
            changes[self.mapping.last_modified] = [(MODIFY_REPLACE, [stamp(now())])]
        if version is None:
            changes[self.mapping.version] = [(MODIFY_ADD, ["1"])]
        else:
            changes[self.mapping.version] = [(MODIFY_DELETE, [version]), (MODIFY_ADD, [str(int(version) + 1)])]
        classes = {c.lower() for c in values(entry, "objectClass")}
        if classes and OBJECT_CLASS.lower() not in classes and OBJECT_CLASS in self.mapping.user_classes:
            changes["objectClass"] = [(MODIFY_ADD, [OBJECT_CLASS])]
        return changes
