"""The ``ldap`` storage backend: the contract methods, over users and groups of every tenant in a directory.

Layout: each tenant is the subtree ``ou=<tenant id>,<SCIM_LDAP_BASE_DN>`` with ``ou=People`` (users,
named ``uid=<userName>``), ``ou=Groups`` (groupOfNames named ``cn=<displayName>``) and the lock entry
``cn=scim-lock``. The SCIM id is the server's ``entryUUID``, stable across renames.

The parts: :mod:`scim_ldap.lock` (the tenant lock), :mod:`scim_ldap.codec` (entries <-> SCIM records and
attributes), :mod:`scim_ldap.directory` (searches, result codes, the layout), :mod:`scim_ldap.filters`
(SCIM filters and sortBy to LDAP), :mod:`scim_ldap.controls` (sort and VLV controls).

Atomicity without transactions:

* **Tenant lock.** Every write of a tenant runs while holding the tenant's lock (:mod:`scim_ldap.lock`),
  so the uniqueness and seat checks, plain searches over what is stored, hold across processes and hosts.
* **userName** is also the entry's RDN, so the directory itself refuses a second entry with the same
  userName (case-insensitively: uid's equality rule), lock or no lock.
* **Versions.** Every modify of an entry deletes the old ``scimVersion`` value and adds the next one
  in the same operation, so a write based on a stale version fails and writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import ldap3
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE
from ldap3.utils.dn import escape_rdn

from scim_ldap.ad import sam_account_name
from scim_ldap.codec import EntryCodec, rdn_value
from scim_ldap.directory import (
    ALREADY_EXISTS,
    CONSTRAINT,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    OC_VIOLATION,
    Conn,
    Entry,
    Layout,
    any_of,
    canonical_id,
    chunks,
    count,
    error,
    first,
    search,
    shown,
    values,
    why,
)
from scim_ldap.filters import FALSE, TRUE, FilterCompiler, escape, generalized_time, key_pattern
from scim_ldap.listing import Lister, R, Source
from scim_ldap.lock import TenantLock
from scim_ldap.mapping import LdapMapping, load_mapping
from scim_ldap.paging import Reader, ReadStats
from scim_ldap.pool import ConnectionPool, LdapSettings
from scim_ldap.schema import OBJECT_CLASS
from scim_service import rules
from scim_service.backend import Backend
from scim_service.errors import (
    NotFound,
    Unavailable,
    UniquenessConflict,
    VersionMismatch,
)
from scim_service.model import (
    Capabilities,
    GroupChanges,
    GroupRecord,
    Member,
    Page,
    SeatPolicy,
    Tenant,
    UserRecord,
)
from scim_service.query.ast import Compare, Filter, ListQuery, Present, ValuePath
from scim_service.query.evaluator import matches_element
from scim_service.schemas.render import render_group, render_user

log = logging.getLogger(__name__)
MAX_MEMBERSHIP_TERMS = 1000  # member DNs a filter on a user's groups may push to the directory
NAMED_BY_DISPLAY = "the ldap backend names groups by displayName"  # why a group name is taken


class LdapBackend(Backend):
    """Users and groups in an LDAP directory (see the module docstring for the layout and atomicity)."""

    name = "ldap"
    capabilities = Capabilities(
        filter=True,
        sort=True,
        etag=True,
        cursor=True,
        nested_groups=False,
        max_results=1000,
    )

    def __init__(self, settings: LdapSettings, mapping: LdapMapping | None = None, *, max_results: int = 1000) -> None:
        self.settings = settings
        self.mapping = mapping or LdapMapping()
        self.pool = ConnectionPool(settings)
        self.layout = Layout(settings.base_dn, self.mapping)
        self.codec = EntryCodec(self.mapping)
        self.lock = TenantLock(self.pool, self.layout)
        self.stats = ReadStats()  # entries and searches read from the directory (see scim_ldap.paging)
        self.capabilities = dataclasses.replace(type(self).capabilities, max_results=max_results)

    # -- life of the backend -------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LdapBackend:
        """Build from ``SCIM_LDAP_*`` (see docs/ldap.md); page size from ``SCIM_MAX_PAGE_SIZE``."""
        return cls(
            LdapSettings.from_config(config),
            load_mapping(config),
            max_results=int(config.get("SCIM_MAX_PAGE_SIZE") or 1000),
        )

    def migrate(self) -> None:
        """Check that the base DN is readable and the mapping's object classes (``scimResource`` among
        them) are in the server's schema; the schema itself is loaded by the operator
        (``scim-service ldap schema``). ``Unavailable`` says what is missing."""
        with self.pool.connection() as conn:
            if not conn.search(self.settings.base_dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"]):
                raise Unavailable(f"The base DN {self.settings.base_dn!r} is not readable: {why(conn)}")
            known = self._known_object_classes(conn)
            classes = dict.fromkeys((*self.mapping.user_classes, *self.mapping.group_classes))
            missing = [c for c in classes if c.lower() not in known]
            if known and missing:
                raise Unavailable(
                    f"The directory does not know the object class(es) {', '.join(missing)} of the mapping"
                    + (
                        ": load the schema with `scim-service ldap schema > scim.ldif && "
                        "ldapadd -Y EXTERNAL -H ldapi:/// -f scim.ldif` (see docs/ldap.md)"
                        if OBJECT_CLASS in missing
                        else ""
                    )
                )

    def _known_object_classes(self, conn: Conn) -> set[str]:
        """The lower-cased names of the object classes in the server's subschema (RFC 4512 §4.2)."""
        root = self._search(conn, "", "(objectClass=*)", ["subschemaSubentry"], scope=ldap3.BASE)
        subschema = first(root[0], "subschemaSubentry") if root else None
        if not subschema:
            return set()
        found = self._search(conn, subschema, "(objectClass=subschema)", ["objectClasses"], scope=ldap3.BASE)
        names: set[str] = set()
        for definition in values(found[0], "objectClasses") if found else []:
            # ( 2.5.6.6 NAME 'person' ... ) or NAME ( 'a' 'b' )
            after = definition.split(" NAME ", 1)[1] if " NAME " in definition else ""
            quoted = after.split(" DESC ", 1)[0].split(" SUP ", 1)[0]
            names.update(part.lower() for part in quoted.split("'")[1::2])
        return names

    def close(self) -> None:
        """Unbind the pooled connections."""
        self.pool.close()

    # -- naming --------------------------------------------------------------------------------

    def tenant_dn(self, tenant: Tenant) -> str:
        """``ou=<tenant id>,<base DN>``."""
        return self.layout.tenant_dn(tenant)

    def people_dn(self, tenant: Tenant) -> str:
        """The container of the tenant's users."""
        return self.layout.people_dn(tenant)

    def groups_dn(self, tenant: Tenant) -> str:
        """The container of the tenant's groups."""
        return self.layout.groups_dn(tenant)

    # -- low-level helpers ---------------------------------------------------------------------

    def _search(
        self, conn: Conn, base: str, flt: str, attrs: Sequence[str], *, scope: str = ldap3.SUBTREE, what: str = ""
    ) -> list[Entry]:
        found = search(conn, base, flt, attrs, scope=scope, what=what)
        self.stats.add(len(found))
        return found

    def _modify(self, conn: Conn, entry: Entry, changes: Mapping[str, Any], what: str) -> None:
        if conn.modify(entry["dn"], dict(changes)):
            return
        code = conn.result.get("result")
        if code == NO_SUCH_ATTRIBUTE or (code == CONSTRAINT and self.mapping.version in why(conn)):
            raise VersionMismatch(f"The resource changed while it was being written ({what}); retry.")
        if code == NO_SUCH_OBJECT:
            raise NotFound(f"The resource was removed while it was being written ({what})")
        raise error(conn, what, where=entry["dn"])

    def _check_version(self, entry: Entry, expected: str | None, what: str) -> None:
        rules.check_version(expected, self.codec.version(entry), what)

    # -- reading users -------------------------------------------------------------------------

    def _find_user(self, conn: Conn, tenant: Tenant, user_id: str) -> Entry | None:
        canonical = canonical_id(user_id)
        if canonical is None:
            return None
        flt = f"(&{self.mapping.user_filter}{self.codec.id_filter([canonical])})"
        found = self._search(conn, self.people_dn(tenant), flt, self.codec.user_attrs(), what="read a user")
        return found[0] if found else None

    def _groups_of(self, conn: Conn, tenant: Tenant, user_dn: str) -> list[Member]:
        flt = f"(&{self.mapping.group_filter}({self.mapping.member_attribute}={escape(user_dn)}))"
        attrs = [self.mapping.id_attribute, "cn", self.mapping.document]
        found = self._search(conn, self.groups_dn(tenant), flt, attrs, what="read a user's groups")
        members = [Member(value=self.codec.id(e), type="Group", display=self.codec.group_display(e)) for e in found]
        return sorted(members, key=lambda m: m.value)

    # -- writing users -------------------------------------------------------------------------

    def _conflict(
        self, conn: Conn, tenant: Tenant, keys: rules.UserKeys, exclude_dn: str | None
    ) -> UniquenessConflict | None:
        """The other records holding ``keys`` (a search under the lock), judged by the rules."""
        m = self.mapping
        name_attr = m.user_attribute("userName")
        name_ldap = name_attr.ldap if name_attr else m.user_rdn
        # Candidates: the directory's equality on the name as sent, or the key's characters in order
        # (key_pattern: every look-alike holds them, zero-width characters or not); the primary email
        # attribute holds the key itself. The rules then compare comparison keys in Python.
        pattern = key_pattern(keys.user_name_lower) or "*"
        atoms = [f"({name_ldap}={escape(keys.user_name)})", f"({name_ldap}={pattern})"]
        if keys.email:
            atoms.append(f"({m.primary_email}={escape(keys.email)})")
        flt = f"(&{m.user_filter}(|{''.join(atoms)}))"
        holders = []
        for e in self._search(conn, self.people_dn(tenant), flt, [m.id_attribute, name_ldap, m.primary_email]):
            if exclude_dn is not None and e["dn"].lower() == exclude_dn.lower():
                continue
            email = first(e, m.primary_email)
            names = values(e, name_ldap)
            # A multi-valued name attribute (uid): the value whose key matches, else the first.
            name = next(
                (n for n in names if rules.comparison_key(n) == keys.user_name_lower), first(e, name_ldap) or ""
            )
            holders.append(rules.Holder(self.codec.id(e), name, email))
        return rules.uniqueness_conflict(keys, holders)

    def _seat_filter(self, tenant: Tenant) -> str:
        m = self.mapping
        if tenant.seat_policy is SeatPolicy.ACTIVE:
            return f"(&{m.user_filter}{self.codec.active_filter(True)}(!({m.deleted}=TRUE)))"
        return m.user_filter

    def _check_seat(self, conn: Conn, tenant: Tenant) -> None:
        rules.admit_seat(tenant, count(conn, self.people_dn(tenant), self._seat_filter(tenant)))

    def _read_back(self, conn: Conn, dn: str) -> Entry:
        found = self._search(conn, dn, "(objectClass=*)", self.codec.user_attrs(), scope=ldap3.BASE, what="read back")
        if not found:
            raise Unavailable("The entry vanished right after it was written; retry.")
        return found[0]

    def create_user(self, tenant: Tenant, data: Mapping[str, Any]) -> UserRecord:
        """Add ``uid=<userName>`` under the tenant's People after the uniqueness and seat checks, under the lock."""
        with self.lock.held(tenant) as conn:
            keys = rules.user_keys(tenant, data)
            attrs, user_name = self.codec.user_attributes(data, self._resolver(conn, tenant), deleted=False)
            conflict = self._conflict(conn, tenant, keys, None)
            if conflict is not None:
                raise conflict
            if rules.needs_seat_check(tenant, active=rules.document_active(data)):
                self._check_seat(conn, tenant)
            attrs.update(self.codec.new_entry_attributes())
            if self.mapping.sam_account_name:
                attrs["sAMAccountName"] = [sam_account_name(user_name)]
            rdn_attr = self.mapping.user_rdn
            attrs[rdn_attr] = [user_name, *[v for v in attrs.get(rdn_attr, []) if v.lower() != user_name.lower()]]
            dn = f"{rdn_attr}={escape_rdn(user_name)},{self.people_dn(tenant)}"
            if not conn.add(dn, list(self.mapping.user_classes), {k: v for k, v in attrs.items() if v}):
                if conn.result.get("result") == ALREADY_EXISTS:
                    taken = rules.UserKeys(user_name)
                    raise self._conflict(conn, tenant, taken, None) or rules.duplicate_user_name(user_name)
                raise error(conn, f"add the user {shown(user_name)}", where=dn)
            return self.codec.user_record(self._read_back(conn, dn))

    def get_user(
        self, tenant: Tenant, user_id: str, *, include_groups: bool = True, include_deleted: bool = False
    ) -> UserRecord:
        """Read a user by entryUUID; soft-deleted ones only with ``include_deleted``."""
        with self.pool.connection() as conn:
            entry = self._find_user(conn, tenant, user_id)
            if entry is None or (self.codec.is_deleted(entry) and not include_deleted):
                raise NotFound(f"User {user_id!r} not found")
            groups = (
                self._groups_of(conn, tenant, entry["dn"])
                if include_groups and not self.codec.is_deleted(entry)
                else []
            )
            return self.codec.user_record(entry, groups)

    def replace_user(
        self,
        tenant: Tenant,
        user_id: str,
        data: Mapping[str, Any],
        *,
        expected_version: str | None = None,
        undelete: bool = False,
    ) -> UserRecord:
        """Rewrite the mapped attributes in one modify (with the version swap), then rename if userName changed."""
        with self.lock.held(tenant) as conn:
            entry = self._find_user(conn, tenant, user_id)
            if entry is None or (self.codec.is_deleted(entry) and not undelete):
                raise NotFound(f"User {user_id!r} not found")
            self._check_version(entry, expected_version, "user")
            was_deleted = self.codec.is_deleted(entry)
            attrs, user_name = self.codec.user_attributes(
                data, self._resolver(conn, tenant), deleted=False if undelete else was_deleted, entry=entry
            )
            conflict = self._conflict(conn, tenant, rules.user_keys(tenant, data), entry["dn"])
            if conflict is not None:
                raise conflict
            if rules.needs_seat_check(
                tenant,
                active=rules.document_active(data),
                deleted=False if undelete else was_deleted,
                was_active=self.codec.stored_active(entry) is not False,
                was_deleted=was_deleted,
            ):
                self._check_seat(conn, tenant)
            rdn_attr = self.mapping.user_rdn
            old_rdn_value = rdn_value(entry, rdn_attr)
            rename = old_rdn_value != user_name
            rdn_values = [user_name]
            if rename and old_rdn_value.lower() != user_name.lower():
                # The RDN value stays until the rename below swaps it (AD's cn holds one value only).
                rdn_values = [old_rdn_value]
            attrs[rdn_attr] = rdn_values + [
                v for v in attrs.get(rdn_attr, []) if v.lower() not in {x.lower() for x in rdn_values}
            ]
            changes: dict[str, Any] = {k: [(MODIFY_REPLACE, v)] for k, v in attrs.items()}
            changes.update(self.codec.cas(entry))
            self._modify(conn, entry, changes, f"replace the user {user_id}")
            dn = entry["dn"]
            if rename:
                dn = self._rename(conn, dn, rdn_attr, user_name, what="user")
                self._follow_rename(conn, tenant, entry["dn"], dn)
            return self.codec.user_record(self._read_back(conn, dn))

    def _follow_rename(self, conn: Conn, tenant: Tenant, old_dn: str, new_dn: str) -> None:
        """Point the groups that hold a renamed user's old DN at its new one, one delta modify per group.

        The directory keeps member DNs as written (unless an overlay such as refint follows renames), so
        without this a renamed user would drop out of its groups. Member displays are keyed by id and stay.
        """
        m = self.mapping
        flt = f"(&{m.group_filter}({m.member_attribute}={escape(old_dn)}))"
        for group in self._search(conn, self.groups_dn(tenant), flt, self.codec.group_attrs(members=False)):
            if conn.compare(group["dn"], m.member_attribute, new_dn):
                continue  # only the case changed (the DNs match), or the server followed the rename itself
            self._member_delta(conn, group, add=[new_dn], remove=[old_dn], what="follow a renamed user in its groups")

    def _rename(self, conn: Conn, dn: str, rdn_attr: str, value: str, *, what: str) -> str:
        new_rdn = f"{rdn_attr}={escape_rdn(value)}"
        if not conn.modify_dn(dn, new_rdn, delete_old_dn=True):
            if conn.result.get("result") == ALREADY_EXISTS:
                if what == "user":
                    raise rules.duplicate_user_name(value)
                raise rules.group_name_conflict(value, NAMED_BY_DISPLAY)
            raise error(conn, f"rename the {what} to {shown(value)}", where=dn)
        return f"{new_rdn},{dn.split(',', 1)[1]}" if "," in dn else new_rdn

    def _drop_memberships(self, conn: Conn, tenant: Tenant, user_dn: str, user_id: str) -> None:
        """Remove the user from every group of the tenant, with the display it was given there."""
        m = self.mapping
        flt = f"(&{m.group_filter}({m.member_attribute}={escape(user_dn)}))"
        for group in self._search(conn, self.groups_dn(tenant), flt, self.codec.group_attrs(members=False)):
            self._member_delta(
                conn,
                group,
                add=[],
                remove=[user_dn],
                what="remove a deleted user from its groups",
                document=lambda added, removed, group=group: self._without_display(group, user_id),
            )

    def _without_display(self, group: Entry, user_id: str) -> str | None:
        """The group's document without the member display given to ``user_id`` (None: it has none)."""
        displays = self.codec.given_displays(group)
        if displays.pop(user_id, None) is None:
            return None
        return self.codec.group_document(self.codec.document(group) or {}, displays)

    def delete_user(self, tenant: Tenant, user_id: str, *, hard: bool, expected_version: str | None = None) -> None:
        """Soft delete (scimDeleted TRUE, scimActive FALSE) or remove the entry; memberships go either way."""
        with self.lock.held(tenant) as conn:
            entry = self._find_user(conn, tenant, user_id)
            if entry is None or self.codec.is_deleted(entry):
                raise NotFound(f"User {user_id!r} not found")
            self._check_version(entry, expected_version, "user")
            if hard:
                self._drop_memberships(conn, tenant, entry["dn"], user_id)
                if not conn.delete(entry["dn"]):
                    raise error(conn, f"delete the user {user_id}", where=entry["dn"])
                return
            doc = self.codec.document(entry) or {}
            doc["active"] = False
            changes: dict[str, Any] = {
                self.mapping.deleted: [(MODIFY_REPLACE, ["TRUE"])],
                self.mapping.active: [(MODIFY_REPLACE, [self.codec.active_value(False, entry)])],
                self.mapping.document: [(MODIFY_REPLACE, [json.dumps(doc, ensure_ascii=False, sort_keys=True)])],
            }
            changes.update(self.codec.cas(entry))
            # Marked first, so member lists (which skip deleted users) never show it again.
            self._modify(conn, entry, changes, f"soft-delete the user {user_id}")
            self._drop_memberships(conn, tenant, entry["dn"], user_id)

    def list_users(self, tenant: Tenant, query: ListQuery) -> Page[UserRecord]:
        """Filter, sort and page in the directory where it can, else over the candidates it narrows to
        (see :mod:`scim_ldap.listing`); totalResults is exact either way."""
        m = self.mapping

        def record(entry: Entry, groups: bool) -> UserRecord:
            return self.codec.user_record(entry, self._groups_of(conn, tenant, entry["dn"]) if groups else ())

        with self.pool.connection(discard=True) as conn:  # its VLV context dies with it
            source = Source(
                resource="User",
                base=self.people_dn(tenant),
                object_filter=f"(&{m.user_filter}(!({m.deleted}=TRUE)))",
                relation="groups",
                attrs=lambda _groups: self.codec.user_attrs(),
                record=record,
                render=lambda r: render_user(r, ""),
                membership=lambda f: self._membership(conn, tenant, f),
            )
            return self._lister(conn, tenant, source).page(query)

    def _membership(self, conn: Conn, tenant: Tenant, f: Filter) -> str:
        """A necessary condition for a comparison or value path on a user's ``groups``: membership of the
        groups whose element (``value``, ``display``, ``type`` as a user's document shows them) satisfies
        it, as ``(|(entryDN=...)...)`` over their member DNs.

        The tenant's groups are read without members, then the members of the chosen ones. ``ne`` and
        ``eq null`` hold for users in no group, so they narrow nothing; nor does a choice of more than
        :data:`MAX_MEMBERSHIP_TERMS` members (a filter that long costs the directory more than it saves).
        """
        inner: Filter = f.filter if isinstance(f, ValuePath) else f
        if isinstance(inner, Compare) and (inner.op == "ne" or inner.value is None):
            return TRUE
        if isinstance(inner, Compare | Present) and inner.path.sub_attr is None:
            # At the top level ``groups eq x`` compares each element's value.
            value_path = dataclasses.replace(inner.path, sub_attr="value")
            inner = dataclasses.replace(inner, path=value_path)
        m = self.mapping
        attrs = [m.id_attribute, "cn", m.document]
        chosen = []
        for group in self._search(conn, self.groups_dn(tenant), m.group_filter, attrs, what="read the groups"):
            group_id = self.codec.id(group)
            element = {"value": group_id, "$ref": f"/Groups/{group_id}", "type": "direct"}
            display = self.codec.group_display(group)
            if display is not None:
                element["display"] = display
            if matches_element(inner, element):
                chosen.append(group_id)
        dns: list[str] = []
        for chunk in chunks(chosen):
            flt = f"(&{m.group_filter}{self.codec.id_filter(chunk)})"
            for group in self._search(conn, self.groups_dn(tenant), flt, [m.member_attribute], what="read members"):
                dns += self.codec.member_dns(group)
                if len(dns) > MAX_MEMBERSHIP_TERMS:
                    return TRUE
        dns = list(dict.fromkeys(dns))
        return any_of(m.dn_attribute, dns) if dns else FALSE

    def _lister(self, conn: Conn, tenant: Tenant, source: Source[R]) -> Lister[R]:
        compiler = FilterCompiler(self.mapping, source.resource, self._resolver(conn, tenant))
        return Lister(
            Reader(conn, self.stats),
            compiler,
            source,
            tenant,
            max_scan=self.settings.max_scan,
            directory_cursors=self.mapping.id_format == "uuid",
        )

    def count_seats(self, tenant: Tenant) -> int:
        """Counted by the server over the tenant's People."""
        with self.pool.connection() as conn:
            return count(conn, self.people_dn(tenant), self._seat_filter(tenant))

    def remove_inactive_users(self, tenant: Tenant, *, inactive_since: datetime | None = None) -> list[str]:
        """Delete every inactive or soft-deleted user (last modified before ``inactive_since``) and its memberships."""
        m = self.mapping
        flt = f"(&{m.user_filter}(|{self.codec.active_filter(False)}({m.deleted}=TRUE))"
        if inactive_since is not None:
            stamp = generalized_time(inactive_since)
            flt += f"({m.last_modified}<={stamp})(!({m.last_modified}={stamp}))"
        flt += ")"
        removed: list[str] = []
        with self.lock.held(tenant) as conn:
            for entry in self._search(conn, self.people_dn(tenant), flt, [m.id_attribute]):
                self._drop_memberships(conn, tenant, entry["dn"], self.codec.id(entry))
                if not conn.delete(entry["dn"]) and conn.result.get("result") != NO_SUCH_OBJECT:
                    raise error(conn, f"delete the inactive user {self.codec.id(entry)}", where=entry["dn"])
                removed.append(self.codec.id(entry))
        return removed

    # -- groups --------------------------------------------------------------------------------

    def _find_group(self, conn: Conn, tenant: Tenant, group_id: str, *, members: bool) -> Entry | None:
        canonical = canonical_id(group_id)
        if canonical is None:
            return None
        flt = f"(&{self.mapping.group_filter}{self.codec.id_filter([canonical])})"
        found = self._search(
            conn, self.groups_dn(tenant), flt, self.codec.group_attrs(members=members), what="read a group"
        )
        return found[0] if found else None

    def _members_of(self, conn: Conn, tenant: Tenant, entry: Entry) -> list[Member]:
        """The visible users among the group's member DNs (one search per 100 members)."""
        m = self.mapping
        dns = self.codec.member_dns(entry)
        given = self.codec.given_displays(entry)
        out: list[Member] = []
        for chunk in chunks(dns):
            flt = f"(&{m.user_filter}(!({m.deleted}=TRUE)){any_of(m.dn_attribute, chunk)})"
            for user in self._search(
                conn, self.people_dn(tenant), flt, self.codec.user_attrs(), what="read group members"
            ):
                record = self.codec.user_record(user)
                shown_name = record.data.get("displayName")
                display = rules.member_display(
                    given.get(record.id), shown_name if isinstance(shown_name, str) else None, record.user_name
                )
                out.append(Member(value=record.id, type="User", display=display))
        return sorted(out, key=lambda member: member.value)

    def _group_record(self, conn: Conn, tenant: Tenant, entry: Entry, *, members: bool) -> GroupRecord:
        return self.codec.group_record(entry, self._members_of(conn, tenant, entry) if members else None)

    def _resolver(self, conn: Conn, tenant: Tenant) -> Callable[[str], str | None]:
        """id -> DN of a visible user of the tenant (None when there is none), for references."""
        return lambda ref: self._resolve_user_dn(conn, tenant, ref)

    def _resolve_user_dn(self, conn: Conn, tenant: Tenant, user_id: str) -> str | None:
        found = self._resolve_members(conn, tenant, [user_id])
        return found.get(user_id)

    def _resolve_members(self, conn: Conn, tenant: Tenant, ids: Sequence[str]) -> dict[str, str]:
        """id -> DN of the visible users of the tenant among ``ids``."""
        m = self.mapping
        wanted = [i for i in dict.fromkeys(ids) if canonical_id(i)]
        out: dict[str, str] = {}
        for chunk in chunks(wanted):
            flt = f"(&{m.user_filter}(!({m.deleted}=TRUE)){self.codec.id_filter(chunk)})"
            for e in self._search(conn, self.people_dn(tenant), flt, [m.id_attribute], what="resolve members"):
                out[self.codec.id(e)] = e["dn"]
        return out

    def _member_targets(self, conn: Conn, tenant: Tenant, members: Sequence[Member]) -> dict[str, str]:
        """id -> DN of each member (in the given order), after checking each is a visible user of the tenant."""
        checked = rules.check_members(members, nested_groups=self.capabilities.nested_groups, backend=self.name)
        ids = [member.value for member in checked]
        found = self._resolve_members(conn, tenant, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise rules.unknown_members(missing)
        return {i: found[i] for i in ids}

    def create_group(self, tenant: Tenant, data: Mapping[str, Any], members: Sequence[Member]) -> GroupRecord:
        """Add ``cn=<displayName>`` under the tenant's Groups; an empty group holds the placeholder member.

        Member displays the client gave are kept in the group's document; the others are computed on read.
        """
        attrs, display = self.codec.group_attributes(data, self.codec.displays_of(members))
        with self.lock.held(tenant) as conn:
            self._check_group_name(conn, tenant, display, None)
            dns = list(self._member_targets(conn, tenant, members).values())
            placeholder = self.mapping.group_placeholder
            attrs.update(self.codec.new_entry_attributes())
            attrs.update(
                {
                    self.mapping.group_rdn: [display],
                    self.mapping.member_attribute: dns or ([placeholder] if placeholder else []),
                }
            )
            dn = f"{self.mapping.group_rdn}={escape_rdn(display)},{self.groups_dn(tenant)}"
            if not conn.add(dn, list(self.mapping.group_classes), {k: v for k, v in attrs.items() if v}):
                if conn.result.get("result") == ALREADY_EXISTS:
                    raise rules.group_name_conflict(display, NAMED_BY_DISPLAY)
                raise error(conn, f"add the group {shown(display)}", where=dn)
            entry = self._search(conn, dn, "(objectClass=*)", self.codec.group_attrs(members=True), scope=ldap3.BASE)[0]
            return self._group_record(conn, tenant, entry, members=True)

    def get_group(self, tenant: Tenant, group_id: str, *, include_members: bool = True) -> GroupRecord:
        """Read a group by entryUUID, with its (visible) members when asked."""
        with self.pool.connection() as conn:
            entry = self._find_group(conn, tenant, group_id, members=include_members)
            if entry is None:
                raise NotFound(f"Group {group_id!r} not found")
            return self._group_record(conn, tenant, entry, members=include_members)

    def _check_group_name(self, conn: Conn, tenant: Tenant, display: str, exclude_dn: str | None) -> None:
        """``UniquenessConflict`` when another group of the tenant has this displayName (its RDN)."""
        rdn = self.mapping.group_rdn
        key = rules.group_name_key(display)
        # Candidates as for a userName (see _conflict); the rule is the key's, decided here.
        atoms = f"({rdn}={escape(display)})({rdn}={key_pattern(key or '') or '*'})"
        flt = f"(&{self.mapping.group_filter}(|{atoms}))"
        for other in self._search(conn, self.groups_dn(tenant), flt, [rdn], scope=ldap3.LEVEL):
            if exclude_dn is not None and other["dn"].lower() == exclude_dn.lower():
                continue
            if any(rules.group_name_key(v) == key for v in values(other, rdn)):
                raise rules.group_name_conflict(display, NAMED_BY_DISPLAY)

    def _group_changes(
        self, conn: Conn, tenant: Tenant, entry: Entry, data: Mapping[str, Any], displays: Mapping[str, str]
    ) -> tuple[dict[str, Any], str | None]:
        """Attribute changes for new group data (with the given member ``displays`` in the document), and the
        new displayName when the entry must be renamed.

        A name another group has is refused here, before anything is written.
        """
        attrs, display = self.codec.group_attributes(data, displays)
        self._check_group_name(conn, tenant, display, entry["dn"])
        changes: dict[str, Any] = {k: [(MODIFY_REPLACE, v)] for k, v in attrs.items()}
        current = rdn_value(entry, self.mapping.group_rdn)
        if current == display:
            return changes, None
        if current.lower() == display.lower():
            changes[self.mapping.group_rdn] = [(MODIFY_REPLACE, [display])]
        else:
            changes[self.mapping.group_rdn] = [(MODIFY_REPLACE, [current])]  # the rename swaps it
        return changes, display

    def replace_group(
        self,
        tenant: Tenant,
        group_id: str,
        data: Mapping[str, Any],
        members: Sequence[Member],
        *,
        expected_version: str | None = None,
    ) -> GroupRecord:
        """PUT: attributes and the whole member list in one modify (the only write that rewrites it).

        The given member displays replace the stored ones in the same modify.
        """
        displays = self.codec.displays_of(members)
        with self.lock.held(tenant) as conn:
            entry = self._find_group(conn, tenant, group_id, members=False)
            if entry is None:
                raise NotFound(f"Group {group_id!r} not found")
            self._check_version(entry, expected_version, "group")
            dns = list(self._member_targets(conn, tenant, members).values())
            changes, rename = self._group_changes(conn, tenant, entry, data, displays)
            placeholder = self.mapping.group_placeholder
            changes[self.mapping.member_attribute] = [(MODIFY_REPLACE, dns or ([placeholder] if placeholder else []))]
            changes.update(self.codec.cas(entry))
            self._modify(conn, entry, changes, f"replace the group {group_id}")
            dn = (
                self._rename(conn, entry["dn"], self.mapping.group_rdn, rename, what="group") if rename else entry["dn"]
            )
            fresh = self._search(conn, dn, "(objectClass=*)", self.codec.group_attrs(members=True), scope=ldap3.BASE)[0]
            return self._group_record(conn, tenant, fresh, members=True)

    def _member_delta(
        self,
        conn: Conn,
        entry: Entry,
        *,
        add: Sequence[str],
        remove: Sequence[str],
        what: str,
        extra: Mapping[str, Any] | None = None,
        document: Callable[[Sequence[str], Sequence[str]], str | None] | None = None,
    ) -> None:
        """One modify: the version swap, ``extra`` changes and single-value member adds/deletes.

        Compare operations (one per changed value) find which adds are present and which removals
        absent, so the cost follows the change. Deleting the last member makes the server refuse
        (objectClassViolation): then the placeholder goes in with the same modify. ``document``, given
        the DNs really added and removed, returns the group's new document (or None to keep it); it is
        written in the same modify, so the member displays it holds change with the members.
        """
        m = self.mapping
        dn = entry["dn"]
        to_add = [v for v in dict.fromkeys(add) if not conn.compare(dn, m.member_attribute, v)]
        to_remove = [v for v in dict.fromkeys(remove) if conn.compare(dn, m.member_attribute, v)]
        placeholder = m.group_placeholder
        ops: list[tuple[str, list[str]]] = []
        removing = list(to_remove)
        if to_add and placeholder and conn.compare(dn, m.member_attribute, placeholder):
            removing.append(placeholder)
        if removing:
            ops.append((MODIFY_DELETE, removing))
        if to_add:
            ops.append((MODIFY_ADD, to_add))
        changes: dict[str, Any] = dict(extra or {})
        changes.update(self.codec.cas(entry))
        new_document = document(to_add, to_remove) if document is not None else None
        if new_document is not None:
            changes[m.document] = [(MODIFY_REPLACE, [new_document])]
        if ops:
            changes[m.member_attribute] = ops
        if conn.modify(dn, changes):
            return
        if conn.result.get("result") == OC_VIOLATION and placeholder and to_remove and not to_add:
            changes[m.member_attribute] = [(MODIFY_DELETE, to_remove), (MODIFY_ADD, [placeholder])]
            if conn.modify(dn, changes):
                return
        if conn.result.get("result") in (NO_SUCH_ATTRIBUTE, CONSTRAINT):
            raise VersionMismatch(f"The group changed while it was being written ({what}); retry.")
        raise error(conn, what, where=dn)

    def patch_group(
        self,
        tenant: Tenant,
        group_id: str,
        changes: GroupChanges,
        *,
        expected_version: str | None = None,
        include_members: bool = True,
    ) -> GroupRecord:
        """Apply a PATCH as one modify: attribute changes, then member deltas as single-value adds/deletes.

        With ``include_members`` False (and no ``clear_members``) the member list is never read: the
        group is returned with ``members`` None.

        Member displays (kept in the document, see :meth:`_patched_document`) change in the same modify
        as the members. The whole patch runs under the tenant lock, so concurrent patches of one group
        are applied one after the other, each on what the previous one wrote.
        """
        given = self.codec.displays_of(changes.add)
        with self.lock.held(tenant) as conn:
            entry = self._find_group(conn, tenant, group_id, members=changes.clear_members)
            if entry is None:
                raise NotFound(f"Group {group_id!r} not found")
            self._check_version(entry, expected_version, "group")
            targets = self._member_targets(conn, tenant, changes.add) if changes.add else {}
            add = list(targets.values())
            remove_ids = [i for i in changes.remove if canonical_id(i)]
            remove = list(self._resolve_all(conn, tenant, remove_ids).values())
            if changes.clear_members:
                remove = [*self.codec.member_dns(entry), *remove]
                remove = [dn for dn in remove if dn not in set(add)]
            extra: dict[str, Any] = {}
            rename = None
            if changes.data is not None:
                extra, rename = self._group_changes(conn, tenant, entry, changes.data, {})
            by_dn = {dn: i for i, dn in targets.items()}

            def document(added: Sequence[str], removed: Sequence[str]) -> str | None:
                return self._patched_document(entry, changes, given, [by_dn[dn] for dn in added])

            self._member_delta(
                conn,
                entry,
                add=add,
                remove=remove,
                what=f"patch the group {group_id}",
                extra=extra,
                document=document,
            )
            dn = (
                self._rename(conn, entry["dn"], self.mapping.group_rdn, rename, what="group") if rename else entry["dn"]
            )
            attrs = self.codec.group_attrs(members=include_members)
            fresh = self._search(conn, dn, "(objectClass=*)", attrs, scope=ldap3.BASE)[0]
            return self._group_record(conn, tenant, fresh, members=include_members)

    def _patched_document(
        self, entry: Entry, changes: GroupChanges, given: Mapping[str, str], added_ids: Sequence[str]
    ) -> str | None:
        """The group's document after a PATCH, or None when neither its data nor its member displays change.

        As the sql backend: ``replace members`` keeps exactly the displays given with the new list;
        otherwise removed members lose theirs, a member the patch really adds gets the one given (or none,
        so it is computed), and re-adding a present member keeps what it had.
        """
        old = self.codec.given_displays(entry)
        if changes.clear_members:
            displays = dict(given)
        else:
            removed = set(changes.remove)
            displays = {i: d for i, d in old.items() if i not in removed}
            for i in added_ids:
                if i in given:
                    displays[i] = given[i]
                else:
                    displays.pop(i, None)
        if changes.data is None and displays == old:
            return None
        base = changes.data if changes.data is not None else (self.codec.document(entry) or {})
        return self.codec.group_document(base, displays)

    def _resolve_all(self, conn: Conn, tenant: Tenant, ids: Sequence[str]) -> dict[str, str]:
        """id -> DN of users of the tenant among ``ids``, soft-deleted ones included (for removals)."""
        m = self.mapping
        out: dict[str, str] = {}
        for chunk in chunks(list(dict.fromkeys(ids))):
            flt = f"(&{m.user_filter}{self.codec.id_filter(chunk)})"
            for e in self._search(conn, self.people_dn(tenant), flt, [m.id_attribute]):
                out[self.codec.id(e)] = e["dn"]
        return out

    def delete_group(self, tenant: Tenant, group_id: str, *, expected_version: str | None = None) -> None:
        """Remove the group entry (the member users are untouched)."""
        with self.lock.held(tenant) as conn:
            entry = self._find_group(conn, tenant, group_id, members=False)
            if entry is None:
                raise NotFound(f"Group {group_id!r} not found")
            self._check_version(entry, expected_version, "group")
            if not conn.delete(entry["dn"]):
                raise error(conn, f"delete the group {group_id}", where=entry["dn"])

    def list_groups(self, tenant: Tenant, query: ListQuery) -> Page[GroupRecord]:
        """As :meth:`list_users`, over the tenant's Groups."""

        def record(entry: Entry, members: bool) -> GroupRecord:
            return self._group_record(conn, tenant, entry, members=members)

        with self.pool.connection(discard=True) as conn:  # its VLV context dies with it
            source = Source(
                resource="Group",
                base=self.groups_dn(tenant),
                object_filter=self.mapping.group_filter,
                relation="members",
                attrs=lambda members: self.codec.group_attrs(members=members),
                record=record,
                render=lambda r: render_group(r, ""),
            )
            return self._lister(conn, tenant, source).page(query)
