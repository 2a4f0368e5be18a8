"""The ``ldap`` storage backend: users and groups of every tenant in an LDAP directory.

Layout: each tenant is the subtree ``ou=<tenant id>,<SCIM_LDAP_BASE_DN>`` with ``ou=People`` (users,
named ``uid=<userName>``), ``ou=Groups`` (groupOfNames named ``cn=<displayName>``) and the lock entry
``cn=scim-lock``. The SCIM id is the server's ``entryUUID``, stable across renames.

Atomicity without transactions:

* **Tenant lock.** Every write of a tenant runs while holding the tenant's lock: the ``description``
  of ``cn=scim-lock`` is ``free`` or ``<expiry> <token>``; taking it is one modify that deletes ``free``
  and adds the token (an atomic compare-and-swap: it fails when the value is not there). A holder that
  died is replaced once its lease expired, with the same swap. Under the lock the uniqueness and seat
  checks are plain searches over what is stored, so they hold across processes and hosts.
* **userName** is also the entry's RDN, so the directory itself refuses a second entry with the same
  userName (case-insensitively: uid's equality rule), lock or no lock.
* **Versions.** Every modify of an entry deletes the old ``scimVersion`` value and adds the next one
  in the same operation, so a write based on a stale version fails and writes nothing.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import ldap3
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE
from ldap3.utils.dn import escape_rdn

from scim_ldap.ad import guid_filter_value, guid_to_string, sam_account_name, uac_filter, uac_is_active, uac_with
from scim_ldap.controls import VLV_RESPONSE_OID, SortKey, decode_vlv_response, sort_control, vlv_control
from scim_ldap.filters import FilterCompiler, declared_limits, escape, generalized_time
from scim_ldap.mapping import DN, AttributeMap, LdapMapping, load_mapping
from scim_ldap.pool import ConnectionPool, LdapSettings
from scim_ldap.schema import OBJECT_CLASS
from scim_service.backend import Backend
from scim_service.errors import (
    InvalidValue,
    NotFound,
    ScimError,
    SeatLimitReached,
    Unavailable,
    UniquenessConflict,
    VersionMismatch,
)
from scim_service.model import (
    ENTERPRISE_SCHEMA,
    Capabilities,
    GroupChanges,
    GroupRecord,
    MatchPolicy,
    Member,
    Page,
    SeatPolicy,
    Tenant,
    UserRecord,
    holds_seat,
    primary_email,
)
from scim_service.query.ast import ListQuery
from scim_service.query.evaluator import get_ci

log = logging.getLogger(__name__)

# LDAP result codes the backend reacts to
SUCCESS, NO_SUCH_ATTRIBUTE, CONSTRAINT, VALUE_EXISTS, SYNTAX = 0, 16, 19, 20, 21
NO_SUCH_OBJECT, OC_VIOLATION, ALREADY_EXISTS, VLV_ERROR = 32, 65, 68, 76
FREE = "free"
LOCK_RDN = "cn=scim-lock"
_CHUNK = 100  # values per (|...) filter
# Key of a group's stored document that holds the member displays the client gave (member id -> display):
# the directory keeps members as DNs only. "$" cannot start a SCIM attribute name (RFC 7643 §2.1), so the
# key never meets group data.
MEMBER_DISPLAYS = "$memberDisplays"
MAX_DISPLAY = 512  # characters of a given member display, as the sql backend allows


Conn = ldap3.Connection
Entry = dict[str, Any]


def _now() -> datetime:
    # Milliseconds, the precision the API renders (as the SQL backend does): a client that filters on a
    # meta.lastModified it was shown (``eq``, or ``gt`` for incremental sync) must compare the stored instant.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S.%fZ")


def _parse_stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    for fmt in ("%Y%m%d%H%M%S.%fZ", "%Y%m%d%H%M%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _values(entry: Entry, attr: str) -> list[str]:
    value = entry["attributes"].get(attr)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [v if isinstance(v, str) else str(v) for v in value]
    return [value if isinstance(value, str) else str(value)]


def _first(entry: Entry, attr: str) -> str | None:
    values = _values(entry, attr)
    return values[0] if values else None


def _canonical_id(value: str) -> str | None:
    """The id if it is a canonical (lower-case) UUID string, else None: nothing else can be an entryUUID."""
    try:
        canonical = str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None
    return canonical if canonical == value else None


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _any_of(attr: str, values: Sequence[str]) -> str:
    atoms = "".join(f"({attr}={escape(v)})" for v in values)
    return atoms if len(values) == 1 else f"(|{atoms})"


def _scim_get(data: Mapping[str, Any], path: str) -> Any:
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


def _scim_set(data: dict[str, Any], path: str, value: Any) -> None:
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


class LdapBackend(Backend):
    """Users and groups in an LDAP directory (see the module docstring for the layout and atomicity)."""

    name = "ldap"
    capabilities = Capabilities(
        filter=True,
        sort=True,
        etag=True,
        cursor=False,
        nested_groups=False,
        max_results=1000,
        unique_group_display_name=True,
        extra={
            "value_path_filters": "one comparison on the value sub-attribute",
            "paging": "vlv",
        },
        # filter_operators and sort_attributes: per instance, from the mapping (see __init__)
    )

    def __init__(self, settings: LdapSettings, mapping: LdapMapping | None = None, *, max_results: int = 1000) -> None:
        self.settings = settings
        self.mapping = mapping or LdapMapping()
        self.pool = ConnectionPool(settings)
        self._ready: set[str] = set()
        # What the filter compiler refuses under this mapping, declared for the conformance kit.
        self.capabilities = Capabilities(
            **{**type(self).capabilities.__dict__, "max_results": max_results, **declared_limits(self.mapping)}
        )

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
                raise Unavailable(f"The base DN {self.settings.base_dn!r} is not readable: {self._why(conn)}")
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
        subschema = _first(root[0], "subschemaSubentry") if root else None
        if not subschema:
            return set()
        found = self._search(conn, subschema, "(objectClass=subschema)", ["objectClasses"], scope=ldap3.BASE)
        names: set[str] = set()
        for definition in _values(found[0], "objectClasses") if found else []:
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
        return f"ou={escape_rdn(tenant.id)},{self.settings.base_dn}"

    def people_dn(self, tenant: Tenant) -> str:
        """The container of the tenant's users."""
        return f"ou={escape_rdn(self.mapping.people_ou)},{self.tenant_dn(tenant)}"

    def groups_dn(self, tenant: Tenant) -> str:
        """The container of the tenant's groups."""
        return f"ou={escape_rdn(self.mapping.groups_ou)},{self.tenant_dn(tenant)}"

    # -- low-level helpers ---------------------------------------------------------------------

    @staticmethod
    def _why(conn: Conn) -> str:
        result = conn.result or {}
        message = (result.get("message") or "").strip()
        return f"{result.get('description')}{': ' + message if message else ''}"

    def _error(self, conn: Conn, what: str) -> ScimError:
        code = (conn.result or {}).get("result")
        if code in (SYNTAX, CONSTRAINT, OC_VIOLATION, 17, 18, 34, 64):
            return InvalidValue(f"The directory refused to {what}: {self._why(conn)}")
        return Unavailable(f"The directory failed to {what}: {self._why(conn)}")

    def _search(
        self, conn: Conn, base: str, flt: str, attrs: Sequence[str], *, scope: str = ldap3.SUBTREE, what: str = ""
    ) -> list[Entry]:
        ok = conn.search(base, flt, scope, attributes=list(attrs))
        if not ok and conn.result.get("result") not in (SUCCESS, NO_SUCH_OBJECT):
            raise self._error(conn, what or f"search {base}")
        return [e for e in conn.response or [] if e.get("type") == "searchResEntry"]

    def _ensure_tenant(self, conn: Conn, tenant: Tenant) -> None:
        if tenant.id in self._ready:
            return
        t = self.tenant_dn(tenant)
        entries = [
            (t, [self.mapping.tenant_class], {"ou": tenant.id}),
            (self.people_dn(tenant), ["organizationalUnit"], {"ou": self.mapping.people_ou}),
            (self.groups_dn(tenant), ["organizationalUnit"], {"ou": self.mapping.groups_ou}),
            (f"{LOCK_RDN},{t}", ["applicationProcess"], {"cn": "scim-lock", "description": FREE}),
        ]
        for dn, classes, attrs in entries:
            if not conn.add(dn, classes, attrs) and conn.result.get("result") != ALREADY_EXISTS:
                raise self._error(conn, f"create the tenant entry {dn}")
        self._ready.add(tenant.id)

    @contextmanager
    def _locked(self, tenant: Tenant) -> Iterator[Conn]:
        """Hold the tenant's write lock (see the module docstring) and yield a connection."""
        with self.pool.connection() as conn:
            self._ensure_tenant(conn, tenant)
            lock_dn = f"{LOCK_RDN},{self.tenant_dn(tenant)}"
            token = self._acquire(conn, tenant, lock_dn)
            try:
                yield conn
            finally:
                released = conn.modify(lock_dn, {"description": [(MODIFY_DELETE, [token]), (MODIFY_ADD, [FREE])]})
                if not released:
                    log.warning(
                        "ldap backend: the lock of tenant %s was taken over while held (lease %s s too short?): %s",
                        tenant.id,
                        self.settings.lock_lease,
                        self._why(conn),
                    )

    def _acquire(self, conn: Conn, tenant: Tenant, lock_dn: str) -> str:
        deadline = time.monotonic() + self.settings.lock_timeout
        delay = 0.002
        while True:
            token = f"{time.time() + self.settings.lock_lease:.3f} {uuid.uuid4().hex}"
            if conn.modify(lock_dn, {"description": [(MODIFY_DELETE, [FREE]), (MODIFY_ADD, [token])]}):
                return token
            code = conn.result.get("result")
            if code == NO_SUCH_OBJECT:
                self._ready.discard(tenant.id)
                self._ensure_tenant(conn, tenant)
                continue
            if code != NO_SUCH_ATTRIBUTE:
                raise self._error(conn, f"take the lock of tenant {tenant.id!r}")
            for entry in self._search(conn, lock_dn, "(objectClass=*)", ["description"], scope=ldap3.BASE):
                for held in _values(entry, "description"):
                    try:
                        expiry = float(held.split()[0])
                    except (ValueError, IndexError):
                        expiry = 0.0
                    if held != FREE and expiry < time.time():
                        # The holder died: take over with the same compare-and-swap.
                        swap = {"description": [(MODIFY_DELETE, [held]), (MODIFY_ADD, [token])]}
                        if conn.modify(lock_dn, swap):
                            log.warning("ldap backend: took over the expired lock of tenant %s", tenant.id)
                            return token
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"The directory lock of this organization stayed busy for {self.settings.lock_timeout} s; retry."
                )
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 0.05)

    def _new_entry_attributes(self) -> dict[str, list[str]]:
        """Version 1 and, unless the server keeps them (AD), the created and lastModified times."""
        attrs = {self.mapping.version: ["1"]}
        if not self.mapping.server_timestamps:
            now = _stamp(_now())
            attrs.update({self.mapping.created: [now], self.mapping.last_modified: [now]})
        return attrs

    def _cas(self, entry: Entry) -> dict[str, list[tuple[str, list[str]]]]:
        """The version compare-and-swap plus lastModified, to put in every modify of ``entry``."""
        version = _first(entry, self.mapping.version)
        changes: dict[str, list[tuple[str, list[str]]]] = {}
        if not self.mapping.server_timestamps:
            changes[self.mapping.last_modified] = [(MODIFY_REPLACE, [_stamp(_now())])]
        if version is None:
            changes[self.mapping.version] = [(MODIFY_ADD, ["1"])]
        else:
            changes[self.mapping.version] = [(MODIFY_DELETE, [version]), (MODIFY_ADD, [str(int(version) + 1)])]
        classes = {c.lower() for c in _values(entry, "objectClass")}
        if classes and OBJECT_CLASS.lower() not in classes and OBJECT_CLASS in self.mapping.user_classes:
            changes["objectClass"] = [(MODIFY_ADD, [OBJECT_CLASS])]
        return changes

    def _modify(self, conn: Conn, entry: Entry, changes: Mapping[str, Any], what: str) -> None:
        if conn.modify(entry["dn"], dict(changes)):
            return
        code = conn.result.get("result")
        if code == NO_SUCH_ATTRIBUTE or (code == CONSTRAINT and self.mapping.version in self._why(conn)):
            raise VersionMismatch(f"The resource changed while it was being written ({what}); retry.")
        if code == NO_SUCH_OBJECT:
            raise NotFound(f"The resource was removed while it was being written ({what})")
        raise self._error(conn, what)

    def _check_version(self, entry: Entry, expected: str | None, what: str) -> None:
        current = _first(entry, self.mapping.version) or "0"
        if expected is not None and expected != current:
            raise VersionMismatch(f"The {what} is at version {current}, not {expected!r} as the precondition requires.")

    # -- ids and active, in the mapping's formats ------------------------------------------------

    def _id(self, entry: Entry) -> str:
        """The SCIM id of an entry: its entryUUID, or its binary objectGUID as a GUID string."""
        if self.mapping.id_format == "guid":
            raw = entry.get("raw_attributes", {}).get(self.mapping.id_attribute) or [b""]
            return guid_to_string(raw[0])
        return str(_first(entry, self.mapping.id_attribute))

    def _id_filter(self, ids: Sequence[str]) -> str:
        """``(id=a)`` or ``(|(id=a)(id=b)...)`` for canonical ids, a GUID as escaped bytes."""
        attr = self.mapping.id_attribute
        if self.mapping.id_format == "guid":
            atoms = "".join(f"({attr}={guid_filter_value(i)})" for i in ids)
        else:
            atoms = "".join(f"({attr}={escape(i)})" for i in ids)
        return atoms if len(ids) == 1 else f"(|{atoms})"

    def _active_filter(self, active: bool) -> str:
        """Entries whose ``active`` is stored as ``active`` (absent counts as active)."""
        m = self.mapping
        if m.active_format == "uac":
            return uac_filter(active, m.active)
        return f"(!({m.active}=FALSE))" if active else f"({m.active}=FALSE)"

    def _active_value(self, active: bool, entry: Entry | None) -> str:
        """The stored form of ``active`` (AD: userAccountControl with only the ACCOUNTDISABLE bit changed)."""
        if self.mapping.active_format == "uac":
            return uac_with(_first(entry, self.mapping.active) if entry else None, active)
        return "TRUE" if active else "FALSE"

    def _stored_active(self, entry: Entry) -> bool | None:
        raw = _first(entry, self.mapping.active)
        if raw is None:
            return None
        return uac_is_active(raw) if self.mapping.active_format == "uac" else raw.upper() == "TRUE"

    # -- reading users -------------------------------------------------------------------------

    def _user_attrs(self) -> list[str]:
        return [*self.mapping.user_read_attributes(), "objectClass", self.mapping.primary_email]

    def _find_user(self, conn: Conn, tenant: Tenant, user_id: str) -> Entry | None:
        canonical = _canonical_id(user_id)
        if canonical is None:
            return None
        flt = f"(&{self.mapping.user_filter}{self._id_filter([canonical])})"
        found = self._search(conn, self.people_dn(tenant), flt, self._user_attrs(), what="read a user")
        return found[0] if found else None

    def _is_deleted(self, entry: Entry) -> bool:
        return (_first(entry, self.mapping.deleted) or "").upper() == "TRUE"

    def _document(self, entry: Entry) -> dict[str, Any] | None:
        raw = entry.get("raw_attributes", {}).get(self.mapping.document)
        if not raw:
            return None
        try:
            doc = json.loads(raw[0].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        return doc if isinstance(doc, dict) else None

    def _fillers(self, entry: Entry) -> set[str]:
        return {v.lower() for v in _values(entry, self.mapping.filler)}

    def _overlay(self, entry: Entry, doc: dict[str, Any] | None, table: Sequence[AttributeMap]) -> dict[str, Any]:
        """The SCIM data of an entry: the stored document with the directory's own values laid over it.

        A value an administrator changed in the directory wins; an entry without a document (created by
        another tool) is read from its attributes alone.
        """
        has_doc = doc is not None
        data: dict[str, Any] = doc if doc is not None else {}
        fillers = self._fillers(entry)
        for m in table:
            if m.kind == DN:
                continue
            ldap_values = [] if m.ldap.lower() in fillers else _values(entry, m.ldap)
            current = _scim_get(data, m.scim)
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
                _scim_set(data, m.scim, merged or None)
            else:
                if isinstance(current, str) and any(v == current for v in ldap_values):
                    continue
                if isinstance(current, str) and any(v.lower() == current.lower() for v in ldap_values):
                    continue  # the same value under the attribute's case-insensitive equality
                _scim_set(data, m.scim, ldap_values[0] if ldap_values else None)
        external = _first(entry, self.mapping.external_id)
        if external is not None or has_doc:
            _scim_set(data, "externalId", external)
        active = self._stored_active(entry)
        if active is not None:
            data["active"] = active
        return data

    def _user_record(self, entry: Entry, groups: Sequence[Member] = ()) -> UserRecord:
        created = _parse_stamp(_first(entry, self.mapping.created) or _first(entry, "createTimestamp")) or _now()
        modified = _parse_stamp(_first(entry, self.mapping.last_modified) or _first(entry, "modifyTimestamp"))
        return UserRecord(
            id=self._id(entry),
            data=self._overlay(entry, self._document(entry), self.mapping.user_attributes),
            created=created,
            last_modified=modified or created,
            version=_first(entry, self.mapping.version) or "0",
            deleted=self._is_deleted(entry),
            groups=tuple(groups),
        )

    def _groups_of(self, conn: Conn, tenant: Tenant, user_dn: str) -> list[Member]:
        flt = f"(&{self.mapping.group_filter}({self.mapping.member_attribute}={escape(user_dn)}))"
        attrs = [self.mapping.id_attribute, "cn", self.mapping.document]
        found = self._search(conn, self.groups_dn(tenant), flt, attrs, what="read a user's groups")
        members = [Member(value=self._id(e), type="Group", display=self._group_display(e)) for e in found]
        return sorted(members, key=lambda m: m.value)

    # -- writing users -------------------------------------------------------------------------

    def _scim_values(self, conn: Conn, tenant: Tenant, data: Mapping[str, Any], m: AttributeMap) -> list[str]:
        value = _scim_get(data, m.scim)
        if m.kind == DN:
            ref = get_ci(value, "value") if isinstance(value, Mapping) else value
            dn = self._resolve_user_dn(conn, tenant, ref) if isinstance(ref, str) else None
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

    def _user_attributes(
        self, conn: Conn, tenant: Tenant, data: Mapping[str, Any], *, deleted: bool, entry: Entry | None = None
    ) -> tuple[dict[str, list[str]], str]:
        """The LDAP attributes (every mapped one, empty lists for absent ones) and the userName."""
        user_name = data.get("userName")
        if not isinstance(user_name, str) or not user_name.strip():
            raise InvalidValue("userName is required and must be a non-empty string")
        active = data.get("active", True)
        if not isinstance(active, bool):
            raise InvalidValue(f"active must be a boolean, got {active!r}")
        attrs: dict[str, list[str]] = {
            m.ldap: self._scim_values(conn, tenant, data, m) for m in self.mapping.user_attributes
        }
        fillers: list[str] = []
        for ldap_attr, sources in self.mapping.fillers.items():
            if attrs.get(ldap_attr):
                continue
            for source in sources:
                candidate = _scim_get(data, source)
                if isinstance(candidate, str) and candidate:
                    attrs[ldap_attr] = [candidate]
                    fillers.append(ldap_attr)
                    break
        stored = dict(data)
        m = self.mapping
        external = data.get("externalId")
        attrs.update(
            {
                m.external_id: [external] if isinstance(external, str) and external else [],
                m.active: [self._active_value(active and not deleted, entry)]
                if "active" in data or deleted or m.active_format == "uac"
                else [],
                m.deleted: ["TRUE" if deleted else "FALSE"],
                m.primary_email: [e] if (e := primary_email(data)) else [],
                m.document: [json.dumps(stored, ensure_ascii=False, sort_keys=True)],
            }
        )
        if m.fillers:
            attrs[m.filler] = fillers
        return attrs, user_name

    def _conflict(
        self, conn: Conn, tenant: Tenant, user_name: str, email: str | None, exclude_dn: str | None
    ) -> UniquenessConflict | None:
        m = self.mapping
        name_attr = m.user_attribute("userName")
        name_ldap = name_attr.ldap if name_attr else m.user_rdn
        atoms = [f"({name_ldap}={escape(user_name)})"]
        use_email = tenant.match_policy is MatchPolicy.EMAIL and email
        if use_email:
            atoms.append(f"({m.primary_email}={escape(str(email))})")
        flt = f"(&{m.user_filter}(|{''.join(atoms)}))"
        found = [
            e
            for e in self._search(conn, self.people_dn(tenant), flt, [m.id_attribute, name_ldap, m.primary_email])
            if exclude_dn is None or e["dn"].lower() != exclude_dn.lower()
        ]
        if not found:
            return None
        by_name = [e for e in found if any(v.lower() == user_name.lower() for v in _values(e, name_ldap))]
        if by_name:
            return UniquenessConflict(
                f"userName {user_name!r} is already taken in this organization (compared case-insensitively)",
                existing_id=self._id(by_name[0]),
            )
        return UniquenessConflict(
            f"The primary email {email!r} already belongs to another user of this organization",
            existing_id=self._id(found[0]),
        )

    def _count(self, conn: Conn, base: str, flt: str) -> int:
        """The number of entries matching ``flt`` (DNs only, in pages of 500 so size limits do not cut it)."""
        total = 0
        cookie: bytes | str | None = None
        while True:
            ok = conn.search(base, flt, ldap3.SUBTREE, attributes=["1.1"], paged_size=500, paged_cookie=cookie)
            if not ok and conn.result.get("result") not in (SUCCESS, NO_SUCH_OBJECT):
                raise self._error(conn, f"count the entries of {base}")
            total += sum(1 for e in conn.response or [] if e.get("type") == "searchResEntry")
            control = (conn.result.get("controls") or {}).get("1.2.840.113556.1.4.319")
            cookie = control["value"]["cookie"] if control else None
            if not cookie:
                return total

    def _seat_filter(self, tenant: Tenant) -> str:
        m = self.mapping
        if tenant.seat_policy is SeatPolicy.ACTIVE:
            return f"(&{m.user_filter}{self._active_filter(True)}(!({m.deleted}=TRUE)))"
        return m.user_filter

    def _check_seat(self, conn: Conn, tenant: Tenant) -> None:
        if tenant.max_seats is None:
            return
        if self._count(conn, self.people_dn(tenant), self._seat_filter(tenant)) >= tenant.max_seats:
            raise SeatLimitReached(tenant.max_seats)

    def _read_back(self, conn: Conn, dn: str) -> Entry:
        found = self._search(conn, dn, "(objectClass=*)", self._user_attrs(), scope=ldap3.BASE, what="read back")
        if not found:
            raise Unavailable(f"The entry {dn} vanished right after it was written")
        return found[0]

    def create_user(self, tenant: Tenant, data: Mapping[str, Any]) -> UserRecord:
        """Add ``uid=<userName>`` under the tenant's People after the uniqueness and seat checks, under the lock."""
        with self._locked(tenant) as conn:
            attrs, user_name = self._user_attributes(conn, tenant, data, deleted=False)
            conflict = self._conflict(conn, tenant, user_name, primary_email(data), None)
            if conflict is not None:
                raise conflict
            active = data.get("active", True) is True
            if holds_seat(tenant.seat_policy, active=active, deleted=False):
                self._check_seat(conn, tenant)
            attrs.update(self._new_entry_attributes())
            if self.mapping.sam_account_name:
                attrs["sAMAccountName"] = [sam_account_name(user_name)]
            rdn_attr = self.mapping.user_rdn
            attrs[rdn_attr] = [user_name, *[v for v in attrs.get(rdn_attr, []) if v.lower() != user_name.lower()]]
            dn = f"{rdn_attr}={escape_rdn(user_name)},{self.people_dn(tenant)}"
            if not conn.add(dn, list(self.mapping.user_classes), {k: v for k, v in attrs.items() if v}):
                if conn.result.get("result") == ALREADY_EXISTS:
                    raise self._conflict(conn, tenant, user_name, None, None) or UniquenessConflict(
                        f"userName {user_name!r} is already taken in this organization"
                    )
                raise self._error(conn, f"add the user {user_name!r}")
            return self._user_record(self._read_back(conn, dn))

    def get_user(
        self, tenant: Tenant, user_id: str, *, include_groups: bool = True, include_deleted: bool = False
    ) -> UserRecord:
        """Read a user by entryUUID; soft-deleted ones only with ``include_deleted``."""
        with self.pool.connection() as conn:
            entry = self._find_user(conn, tenant, user_id)
            if entry is None or (self._is_deleted(entry) and not include_deleted):
                raise NotFound(f"User {user_id!r} not found")
            groups = (
                self._groups_of(conn, tenant, entry["dn"]) if include_groups and not self._is_deleted(entry) else []
            )
            return self._user_record(entry, groups)

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
        with self._locked(tenant) as conn:
            entry = self._find_user(conn, tenant, user_id)
            if entry is None or (self._is_deleted(entry) and not undelete):
                raise NotFound(f"User {user_id!r} not found")
            self._check_version(entry, expected_version, "user")
            was_deleted = self._is_deleted(entry)
            attrs, user_name = self._user_attributes(
                conn, tenant, data, deleted=False if undelete else was_deleted, entry=entry
            )
            conflict = self._conflict(conn, tenant, user_name, primary_email(data), entry["dn"])
            if conflict is not None:
                raise conflict
            was_active = self._stored_active(entry) is not False
            held = holds_seat(tenant.seat_policy, active=was_active, deleted=was_deleted)
            deleted_now = False if undelete else was_deleted
            if not held and holds_seat(
                tenant.seat_policy, active=data.get("active", True) is True, deleted=deleted_now
            ):
                self._check_seat(conn, tenant)
            rdn_attr = self.mapping.user_rdn
            old_rdn_value = self._rdn_value(entry, rdn_attr)
            rename = old_rdn_value != user_name
            rdn_values = [user_name]
            if rename and old_rdn_value.lower() != user_name.lower():
                # The RDN value stays until the rename below swaps it (AD's cn holds one value only).
                rdn_values = [old_rdn_value]
            attrs[rdn_attr] = rdn_values + [
                v for v in attrs.get(rdn_attr, []) if v.lower() not in {x.lower() for x in rdn_values}
            ]
            changes: dict[str, Any] = {k: [(MODIFY_REPLACE, v)] for k, v in attrs.items()}
            changes.update(self._cas(entry))
            self._modify(conn, entry, changes, f"replace the user {user_id}")
            dn = entry["dn"]
            if rename:
                dn = self._rename(conn, dn, rdn_attr, user_name, what="user")
                self._follow_rename(conn, tenant, entry["dn"], dn)
            return self._user_record(self._read_back(conn, dn))

    def _follow_rename(self, conn: Conn, tenant: Tenant, old_dn: str, new_dn: str) -> None:
        """Point the groups that hold a renamed user's old DN at its new one, one delta modify per group.

        The directory keeps member DNs as written (unless an overlay such as refint follows renames), so
        without this a renamed user would drop out of its groups. Member displays are keyed by id and stay.
        """
        m = self.mapping
        flt = f"(&{m.group_filter}({m.member_attribute}={escape(old_dn)}))"
        for group in self._search(conn, self.groups_dn(tenant), flt, self._group_attrs(members=False)):
            if conn.compare(group["dn"], m.member_attribute, new_dn):
                continue  # only the case changed (the DNs match), or the server followed the rename itself
            self._member_delta(conn, group, add=[new_dn], remove=[old_dn], what="follow a renamed user in its groups")

    @staticmethod
    def _rdn_value(entry: Entry, rdn_attr: str) -> str:
        rdn = ldap3.utils.dn.parse_dn(entry["dn"])[0]
        values = _values(entry, rdn_attr)
        raw = rdn[1]
        # parse_dn keeps escapes; pick the attribute value that the RDN names.
        for v in values:
            if escape_rdn(v).lower() == raw.lower() or v.lower() == raw.lower():
                return v
        return values[0] if values else raw

    def _rename(self, conn: Conn, dn: str, rdn_attr: str, value: str, *, what: str) -> str:
        new_rdn = f"{rdn_attr}={escape_rdn(value)}"
        if not conn.modify_dn(dn, new_rdn, delete_old_dn=True):
            if conn.result.get("result") == ALREADY_EXISTS:
                label = "userName" if what == "user" else "displayName"
                raise UniquenessConflict(f"The {label} {value!r} is already taken in this organization")
            raise self._error(conn, f"rename the {what} {dn}")
        return f"{new_rdn},{dn.split(',', 1)[1]}" if "," in dn else new_rdn

    def _drop_memberships(self, conn: Conn, tenant: Tenant, user_dn: str, user_id: str) -> None:
        """Remove the user from every group of the tenant, with the display it was given there."""
        m = self.mapping
        flt = f"(&{m.group_filter}({m.member_attribute}={escape(user_dn)}))"
        for group in self._search(conn, self.groups_dn(tenant), flt, self._group_attrs(members=False)):
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
        displays = self._given_displays(group)
        if displays.pop(user_id, None) is None:
            return None
        return self._group_document(self._document(group) or {}, displays)

    def delete_user(self, tenant: Tenant, user_id: str, *, hard: bool, expected_version: str | None = None) -> None:
        """Soft delete (scimDeleted TRUE, scimActive FALSE) or remove the entry; memberships go either way."""
        with self._locked(tenant) as conn:
            entry = self._find_user(conn, tenant, user_id)
            if entry is None or self._is_deleted(entry):
                raise NotFound(f"User {user_id!r} not found")
            self._check_version(entry, expected_version, "user")
            if hard:
                self._drop_memberships(conn, tenant, entry["dn"], user_id)
                if not conn.delete(entry["dn"]):
                    raise self._error(conn, f"delete the user {user_id}")
                return
            doc = self._document(entry) or {}
            doc["active"] = False
            changes: dict[str, Any] = {
                self.mapping.deleted: [(MODIFY_REPLACE, ["TRUE"])],
                self.mapping.active: [(MODIFY_REPLACE, [self._active_value(False, entry)])],
                self.mapping.document: [(MODIFY_REPLACE, [json.dumps(doc, ensure_ascii=False, sort_keys=True)])],
            }
            changes.update(self._cas(entry))
            # Marked first, so member lists (which skip deleted users) never show it again.
            self._modify(conn, entry, changes, f"soft-delete the user {user_id}")
            self._drop_memberships(conn, tenant, entry["dn"], user_id)

    def list_users(self, tenant: Tenant, query: ListQuery) -> Page[UserRecord]:
        """Filter, sort and page in the directory (sort + VLV controls); totalResults is the server's count."""
        with self.pool.connection(discard=True) as conn:  # its VLV context dies with it
            compiler = FilterCompiler(self.mapping, "User", lambda ref: self._resolve_user_dn(conn, tenant, ref))
            m = self.mapping
            flt = f"(&{m.user_filter}(!({m.deleted}=TRUE))"
            flt += (compiler.compile(query.filter) if query.filter is not None else "") + ")"
            keys = compiler.sort_keys(query.sort_by, query.descending)
            entries, total = self._vlv_keys(conn, self.people_dn(tenant), flt, self._user_attrs(), keys, query)
            records = [
                self._user_record(e, self._groups_of(conn, tenant, e["dn"]) if query.include_groups else ())
                for e in entries
            ]
        return Page(resources=records, total_results=total, start_index=query.start_index)

    def count_seats(self, tenant: Tenant) -> int:
        """Counted by the server over the tenant's People."""
        with self.pool.connection() as conn:
            return self._count(conn, self.people_dn(tenant), self._seat_filter(tenant))

    def remove_inactive_users(self, tenant: Tenant, *, inactive_since: datetime | None = None) -> list[str]:
        """Delete every inactive or soft-deleted user (last modified before ``inactive_since``) and its memberships."""
        m = self.mapping
        flt = f"(&{m.user_filter}(|{self._active_filter(False)}({m.deleted}=TRUE))"
        if inactive_since is not None:
            stamp = generalized_time(inactive_since)
            flt += f"({m.last_modified}<={stamp})(!({m.last_modified}={stamp}))"
        flt += ")"
        removed: list[str] = []
        with self._locked(tenant) as conn:
            for entry in self._search(conn, self.people_dn(tenant), flt, [m.id_attribute]):
                self._drop_memberships(conn, tenant, entry["dn"], self._id(entry))
                if not conn.delete(entry["dn"]) and conn.result.get("result") != NO_SUCH_OBJECT:
                    raise self._error(conn, f"delete the inactive user {entry['dn']}")
                removed.append(self._id(entry))
        return removed

    # -- paging --------------------------------------------------------------------------------

    def _vlv_keys(
        self, conn: Conn, base: str, flt: str, attrs: Sequence[str], keys: list[SortKey], query: ListQuery
    ) -> tuple[list[Entry], int]:
        return self._vlv_raw(conn, base, flt, attrs, keys, max(query.start_index, 1), max(query.count, 0))

    def _vlv_raw(
        self, conn: Conn, base: str, flt: str, attrs: Sequence[str], keys: list[SortKey], start: int, count: int
    ) -> tuple[list[Entry], int]:
        """One sorted VLV search: the page at ``start`` (1-based) of ``count`` entries and the server's total."""
        controls = [sort_control(keys), vlv_control(start, 0, max(count - 1, 0))]
        conn.search(base, flt, ldap3.SUBTREE, attributes=list(attrs), controls=controls)
        code = conn.result.get("result")
        if code == NO_SUCH_OBJECT:
            return [], 0
        if code not in (SUCCESS, VLV_ERROR):
            if code == 18:  # inappropriateMatching: no ordering rule for the sort key
                raise InvalidValue(f"The directory cannot sort this way: {self._why(conn)}")
            raise self._error(conn, f"list {base}")
        control = (conn.result.get("controls") or {}).get(VLV_RESPONSE_OID)
        if control is None:
            raise Unavailable(
                "The directory ignored the VLV control: load the sssvlv overlay (OpenLDAP) or use a server with "
                "server-side sorting and virtual list views"
            )
        total = decode_vlv_response(control["value"]).content_count
        entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if code == VLV_ERROR or count == 0 or start > total:
            return [], total
        return entries[:count], total

    # -- groups --------------------------------------------------------------------------------

    def _group_attrs(self, *, members: bool) -> list[str]:
        return [*self.mapping.group_read_attributes(members=members), "objectClass"]

    def _find_group(self, conn: Conn, tenant: Tenant, group_id: str, *, members: bool) -> Entry | None:
        canonical = _canonical_id(group_id)
        if canonical is None:
            return None
        flt = f"(&{self.mapping.group_filter}{self._id_filter([canonical])})"
        found = self._search(conn, self.groups_dn(tenant), flt, self._group_attrs(members=members), what="read a group")
        return found[0] if found else None

    def _group_display(self, entry: Entry) -> str | None:
        doc = self._document(entry) or {}
        names = _values(entry, "cn")
        wanted = doc.get("displayName")
        if isinstance(wanted, str) and any(n.lower() == wanted.lower() for n in names):
            return next(n for n in names if n == wanted) if wanted in names else wanted
        return names[0] if names else None

    def _member_dns(self, entry: Entry) -> list[str]:
        placeholder = (self.mapping.group_placeholder or "").lower()
        return [v for v in _values(entry, self.mapping.member_attribute) if v.lower() != placeholder]

    def _members_of(self, conn: Conn, tenant: Tenant, entry: Entry) -> list[Member]:
        """The visible users among the group's member DNs (one search per 100 members)."""
        m = self.mapping
        dns = self._member_dns(entry)
        given = self._given_displays(entry)
        out: list[Member] = []
        for chunk in _chunks(dns):
            flt = f"(&{m.user_filter}(!({m.deleted}=TRUE)){_any_of(m.dn_attribute, chunk)})"
            for user in self._search(conn, self.people_dn(tenant), flt, self._user_attrs(), what="read group members"):
                record = self._user_record(user)
                if record.id in given:  # the display the client gave wins over the computed one
                    out.append(Member(value=record.id, type="User", display=given[record.id]))
                    continue
                display = record.data.get("displayName") or record.user_name
                out.append(Member(value=record.id, type="User", display=str(display) if display else None))
        return sorted(out, key=lambda member: member.value)

    def _group_record(self, conn: Conn, tenant: Tenant, entry: Entry, *, members: bool) -> GroupRecord:
        created = _parse_stamp(_first(entry, self.mapping.created) or _first(entry, "createTimestamp")) or _now()
        modified = _parse_stamp(_first(entry, self.mapping.last_modified) or _first(entry, "modifyTimestamp"))
        data = self._overlay(entry, self._document(entry), ())
        data.pop(MEMBER_DISPLAYS, None)  # storage detail, shown through the members
        display = self._group_display(entry)
        if display is not None:
            data["displayName"] = display
        return GroupRecord(
            id=self._id(entry),
            data=data,
            created=created,
            last_modified=modified or created,
            version=_first(entry, self.mapping.version) or "0",
            members=tuple(self._members_of(conn, tenant, entry)) if members else None,
        )

    def _resolve_user_dn(self, conn: Conn, tenant: Tenant, user_id: str) -> str | None:
        found = self._resolve_members(conn, tenant, [user_id])
        return found.get(user_id)

    def _resolve_members(self, conn: Conn, tenant: Tenant, ids: Sequence[str]) -> dict[str, str]:
        """id -> DN of the visible users of the tenant among ``ids``."""
        m = self.mapping
        wanted = [i for i in dict.fromkeys(ids) if _canonical_id(i)]
        out: dict[str, str] = {}
        for chunk in _chunks(wanted):
            flt = f"(&{m.user_filter}(!({m.deleted}=TRUE)){self._id_filter(chunk)})"
            for e in self._search(conn, self.people_dn(tenant), flt, [m.id_attribute], what="resolve members"):
                out[self._id(e)] = e["dn"]
        return out

    def _member_targets(self, conn: Conn, tenant: Tenant, members: Sequence[Member]) -> dict[str, str]:
        """id -> DN of each member (in the given order), after checking each is a visible user of the tenant."""
        for member in members:
            if member.type and member.type.lower() != "user":
                raise InvalidValue(
                    f"Member {member.value!r} has type {member.type!r}: the ldap backend takes only users as "
                    "group members (no nested groups)"
                )
        ids = list(dict.fromkeys(member.value for member in members))
        found = self._resolve_members(conn, tenant, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise InvalidValue(
                "These group members are not users of this organization: " + ", ".join(repr(i) for i in missing)
            )
        return {i: found[i] for i in ids}

    def _given_displays(self, entry: Entry) -> dict[str, str]:
        """The member displays the client gave, kept in the group's document (member id -> display)."""
        raw = (self._document(entry) or {}).get(MEMBER_DISPLAYS)
        if not isinstance(raw, Mapping):
            return {}
        return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}

    @staticmethod
    def _displays_of(members: Sequence[Member]) -> dict[str, str]:
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

    @staticmethod
    def _group_document(data: Mapping[str, Any], displays: Mapping[str, str]) -> str:
        """The stored JSON of a group: its SCIM data plus the given member displays (when there are any)."""
        doc = {k: v for k, v in data.items() if k != MEMBER_DISPLAYS}
        if displays:
            doc[MEMBER_DISPLAYS] = dict(sorted(displays.items()))
        return json.dumps(doc, ensure_ascii=False, sort_keys=True)

    def _group_attributes(
        self, data: Mapping[str, Any], displays: Mapping[str, str] | None = None
    ) -> tuple[dict[str, list[str]], str]:
        display = data.get("displayName")
        if not isinstance(display, str) or not display.strip():
            raise InvalidValue("displayName is required and must be a non-empty string")
        external = data.get("externalId")
        attrs = {
            self.mapping.external_id: [external] if isinstance(external, str) and external else [],
            self.mapping.document: [self._group_document(data, displays or {})],
        }
        for m in self.mapping.group_attributes:
            if m.ldap != self.mapping.group_rdn:
                value = _scim_get(data, m.scim)
                attrs[m.ldap] = [str(value)] if isinstance(value, str) and value else []
        return attrs, display

    def create_group(self, tenant: Tenant, data: Mapping[str, Any], members: Sequence[Member]) -> GroupRecord:
        """Add ``cn=<displayName>`` under the tenant's Groups; an empty group holds the placeholder member.

        Member displays the client gave are kept in the group's document; the others are computed on read.
        """
        attrs, display = self._group_attributes(data, self._displays_of(members))
        with self._locked(tenant) as conn:
            dns = list(self._member_targets(conn, tenant, members).values())
            placeholder = self.mapping.group_placeholder
            attrs.update(self._new_entry_attributes())
            attrs.update(
                {
                    self.mapping.group_rdn: [display],
                    self.mapping.member_attribute: dns or ([placeholder] if placeholder else []),
                }
            )
            dn = f"{self.mapping.group_rdn}={escape_rdn(display)},{self.groups_dn(tenant)}"
            if not conn.add(dn, list(self.mapping.group_classes), {k: v for k, v in attrs.items() if v}):
                if conn.result.get("result") == ALREADY_EXISTS:
                    raise UniquenessConflict(
                        f"A group named {display!r} already exists in this organization (the ldap backend names "
                        "groups by displayName)"
                    )
                raise self._error(conn, f"add the group {display!r}")
            entry = self._search(conn, dn, "(objectClass=*)", self._group_attrs(members=True), scope=ldap3.BASE)[0]
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
        flt = f"(&{self.mapping.group_filter}({rdn}={escape(display)}))"
        for other in self._search(conn, self.groups_dn(tenant), flt, [rdn], scope=ldap3.LEVEL):
            if exclude_dn is None or other["dn"].lower() != exclude_dn.lower():
                raise UniquenessConflict(
                    f"A group named {display!r} already exists in this organization (the ldap backend names "
                    "groups by displayName)"
                )

    def _group_changes(
        self, conn: Conn, tenant: Tenant, entry: Entry, data: Mapping[str, Any], displays: Mapping[str, str]
    ) -> tuple[dict[str, Any], str | None]:
        """Attribute changes for new group data (with the given member ``displays`` in the document), and the
        new displayName when the entry must be renamed.

        A name another group has is refused here, before anything is written.
        """
        attrs, display = self._group_attributes(data, displays)
        self._check_group_name(conn, tenant, display, entry["dn"])
        changes: dict[str, Any] = {k: [(MODIFY_REPLACE, v)] for k, v in attrs.items()}
        current = self._rdn_value(entry, self.mapping.group_rdn)
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
        displays = self._displays_of(members)
        with self._locked(tenant) as conn:
            entry = self._find_group(conn, tenant, group_id, members=False)
            if entry is None:
                raise NotFound(f"Group {group_id!r} not found")
            self._check_version(entry, expected_version, "group")
            dns = list(self._member_targets(conn, tenant, members).values())
            changes, rename = self._group_changes(conn, tenant, entry, data, displays)
            placeholder = self.mapping.group_placeholder
            changes[self.mapping.member_attribute] = [(MODIFY_REPLACE, dns or ([placeholder] if placeholder else []))]
            changes.update(self._cas(entry))
            self._modify(conn, entry, changes, f"replace the group {group_id}")
            dn = (
                self._rename(conn, entry["dn"], self.mapping.group_rdn, rename, what="group") if rename else entry["dn"]
            )
            fresh = self._search(conn, dn, "(objectClass=*)", self._group_attrs(members=True), scope=ldap3.BASE)[0]
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
        changes.update(self._cas(entry))
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
        raise self._error(conn, what)

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
        given = self._displays_of(changes.add)
        with self._locked(tenant) as conn:
            entry = self._find_group(conn, tenant, group_id, members=changes.clear_members)
            if entry is None:
                raise NotFound(f"Group {group_id!r} not found")
            self._check_version(entry, expected_version, "group")
            targets = self._member_targets(conn, tenant, changes.add) if changes.add else {}
            add = list(targets.values())
            remove_ids = [i for i in changes.remove if _canonical_id(i)]
            remove = list(self._resolve_all(conn, tenant, remove_ids).values())
            if changes.clear_members:
                remove = [*self._member_dns(entry), *remove]
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
            attrs = self._group_attrs(members=include_members)
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
        old = self._given_displays(entry)
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
        base = changes.data if changes.data is not None else (self._document(entry) or {})
        return self._group_document(base, displays)

    def _resolve_all(self, conn: Conn, tenant: Tenant, ids: Sequence[str]) -> dict[str, str]:
        """id -> DN of users of the tenant among ``ids``, soft-deleted ones included (for removals)."""
        m = self.mapping
        out: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(ids))):
            flt = f"(&{m.user_filter}{self._id_filter(chunk)})"
            for e in self._search(conn, self.people_dn(tenant), flt, [m.id_attribute]):
                out[self._id(e)] = e["dn"]
        return out

    def delete_group(self, tenant: Tenant, group_id: str, *, expected_version: str | None = None) -> None:
        """Remove the group entry (the member users are untouched)."""
        with self._locked(tenant) as conn:
            entry = self._find_group(conn, tenant, group_id, members=False)
            if entry is None:
                raise NotFound(f"Group {group_id!r} not found")
            self._check_version(entry, expected_version, "group")
            if not conn.delete(entry["dn"]):
                raise self._error(conn, f"delete the group {group_id}")

    def list_groups(self, tenant: Tenant, query: ListQuery) -> Page[GroupRecord]:
        """As :meth:`list_users`, over the tenant's Groups."""
        with self.pool.connection(discard=True) as conn:  # its VLV context dies with it
            compiler = FilterCompiler(self.mapping, "Group", lambda ref: self._resolve_user_dn(conn, tenant, ref))
            flt = f"(&{self.mapping.group_filter}"
            flt += (compiler.compile(query.filter) if query.filter is not None else "") + ")"
            keys = compiler.sort_keys(query.sort_by, query.descending)
            attrs = self._group_attrs(members=query.include_members)
            entries, total = self._vlv_keys(conn, self.groups_dn(tenant), flt, attrs, keys, query)
            records = [self._group_record(conn, tenant, e, members=query.include_members) for e in entries]
        return Page(resources=records, total_results=total, start_index=query.start_index)
