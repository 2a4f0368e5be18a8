"""Small helpers over an ldap3 connection: result codes, entry values, searches, the tenant layout.

Everything here is stateless; the tenant lock, the codec and the backend build on it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.utils.dn import escape_rdn

from scim_ldap.filters import escape
from scim_ldap.mapping import LdapMapping
from scim_service.errors import InvalidValue, ScimError, Unavailable
from scim_service.model import Tenant

log = logging.getLogger("scim_ldap.backend")

# LDAP result codes the backend reacts to
SUCCESS, NO_SUCH_ATTRIBUTE, CONSTRAINT, VALUE_EXISTS, SYNTAX = 0, 16, 19, 20, 21
NO_SUCH_OBJECT, OC_VIOLATION, ALREADY_EXISTS, VLV_ERROR = 32, 65, 68, 76
# Codes that mean the request (the client's data) was at fault, not the directory.
CLIENT_FAULTS = frozenset({SYNTAX, CONSTRAINT, OC_VIOLATION, 17, 18, 34, 64})
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
CHUNK = 100  # values per (|...) filter

Conn = ldap3.Connection
Entry = dict[str, Any]


def values(entry: Entry, attr: str) -> list[str]:
    """The string values of ``attr`` in a search result entry (none when absent)."""
    value = entry["attributes"].get(attr)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [v if isinstance(v, str) else str(v) for v in value]
    return [value if isinstance(value, str) else str(value)]


def first(entry: Entry, attr: str) -> str | None:
    """The first value of ``attr``, or None."""
    found = values(entry, attr)
    return found[0] if found else None


def canonical_id(value: str) -> str | None:
    """The id if it is a canonical (lower-case) UUID string, else None: nothing else can be an entryUUID."""
    try:
        canonical = str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None
    return canonical if canonical == value else None


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """``items`` in slices of :data:`CHUNK`, so no filter grows without bound."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def any_of(attr: str, wanted: Sequence[str]) -> str:
    """``(attr=a)`` or ``(|(attr=a)(attr=b)...)`` with every value escaped."""
    atoms = "".join(f"({attr}={escape(v)})" for v in wanted)
    return atoms if len(wanted) == 1 else f"(|{atoms})"


def why(conn: Conn) -> str:
    """The directory's description and message of the last result."""
    result = conn.result or {}
    message = (result.get("message") or "").strip()
    return f"{result.get('description')}{': ' + message if message else ''}"


# What each client-fault result means, in words that name no entry (raw messages may hold DNs).
CLIENT_FAULT_TEXT = {
    17: "an attribute of the mapping is not in the directory's schema",
    18: "the directory cannot compare these values that way",
    19: "a value breaks a constraint of the directory (too long, or several where one is allowed)",
    21: "a value does not fit the syntax of its directory attribute",
    34: "the value does not make a valid entry name",
    64: "the value breaks the directory's naming rules",
    65: "the entry would break its object class (a required value missing, or one not allowed)",
}


def shown(value: object, limit: int = 60) -> str:
    """A client value for a message: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def error(conn: Conn, what: str, *, where: str | None = None) -> ScimError:
    """The SCIM error for a failed operation: the client's fault (400) or the directory's (503).

    ``what`` is shown to the client and must name no DN; the directory's own message, which can hold
    DNs with tenant ids, and ``where`` (the DN concerned) go to the service log only.
    """
    result = conn.result or {}
    code = result.get("result")
    log.warning(
        "ldap backend: the directory refused to %s%s: result %s, %s",
        what,
        f" at {where}" if where else "",
        code,
        why(conn),
    )
    if code in CLIENT_FAULTS:
        return InvalidValue(f"The directory refused to {what}: {CLIENT_FAULT_TEXT[code]}.")
    description = result.get("description") or "no answer"
    return Unavailable(f"The directory failed to {what} (LDAP result {code}, {description}); retry later.")


def search(
    conn: Conn, base: str, flt: str, attrs: Sequence[str], *, scope: str = ldap3.SUBTREE, what: str = ""
) -> list[Entry]:
    """The entries of one search (none when ``base`` does not exist); other failures raise."""
    ok = conn.search(base, flt, scope, attributes=list(attrs))
    if not ok and conn.result.get("result") not in (SUCCESS, NO_SUCH_OBJECT):
        raise error(conn, what or "search the directory", where=base)
    return [e for e in conn.response or [] if e.get("type") == "searchResEntry"]


def count(conn: Conn, base: str, flt: str) -> int:
    """The number of entries matching ``flt`` (DNs only, in pages of 500 so size limits do not cut it)."""
    total = 0
    cookie: bytes | str | None = None
    while True:
        ok = conn.search(base, flt, ldap3.SUBTREE, attributes=["1.1"], paged_size=500, paged_cookie=cookie)
        if not ok and conn.result.get("result") not in (SUCCESS, NO_SUCH_OBJECT):
            raise error(conn, "count entries", where=base)
        total += sum(1 for e in conn.response or [] if e.get("type") == "searchResEntry")
        control = (conn.result.get("controls") or {}).get(PAGED_RESULTS_OID)
        cookie = control["value"]["cookie"] if control else None
        if not cookie:
            return total


@dataclass(frozen=True)
class Layout:
    """Where a tenant's entries live: ``ou=<tenant id>,<base DN>`` with its People and Groups."""

    base_dn: str
    mapping: LdapMapping

    def tenant_dn(self, tenant: Tenant) -> str:
        """``ou=<tenant id>,<base DN>``."""
        return f"ou={escape_rdn(tenant.id)},{self.base_dn}"

    def people_dn(self, tenant: Tenant) -> str:
        """The container of the tenant's users."""
        return f"ou={escape_rdn(self.mapping.people_ou)},{self.tenant_dn(tenant)}"

    def groups_dn(self, tenant: Tenant) -> str:
        """The container of the tenant's groups."""
        return f"ou={escape_rdn(self.mapping.groups_ou)},{self.tenant_dn(tenant)}"
