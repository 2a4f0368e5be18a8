"""Compile the SCIM filter AST to an RFC 4515 LDAP filter string, and sortBy to server-side sort keys.

The semantics are those of :mod:`scim_service.query.evaluator`. What LDAP can say natively is
compiled natively; where a faithful translation is impossible the compiler raises ``InvalidFilter``
(a sortBy: :meth:`FilterCompiler.sort_keys` returns None), and :mod:`scim_ldap.plan` leaves that part to
the reference evaluator over the candidates the rest narrows to. So a refusal here is never an answer
to the client:

* every assertion value is escaped (``* ( ) \\`` and NUL become ``\\2a \\28 \\29 \\5c \\00``), so a
  value matches literally and never as a wildcard or an injected term;
* ``ne`` is ``(!(a=v))`` (true when the attribute is absent, as the evaluator has it); ``gt``/``lt`` are
  ``(&(a>=v)(!(a=v)))``/``(&(a<=v)(!(a=v)))`` on attributes with an ORDERING rule (id, externalId,
  meta.created, meta.lastModified); stock attributes such as ``uid`` or ``sn`` have none, so there they
  use an extensible match with the mapping's ordering rule (``(uid:caseIgnoreOrderingMatch:=v)``, true
  when the value sorts before ``v``); multi-valued attributes are not compiled for them;
* references (``manager``) are not compiled: the directory holds them as DNs only when they named a
  user of the organization at write time;
* values that cannot match (a number against a string attribute, an id that is no UUID, an unparsable
  date, ``eq ""``) compile to a filter that is never true, never to an LDAP *Undefined* that ``!`` would
  keep undefined;
* a value path compiles when it holds one comparison on the mapped sub-attribute (``emails[value eq
  "x"]``); the directory keeps values only, so ``emails.type`` and friends are not compiled;
* attributes with a filler value (``sn``/``cn`` required by ``person``) exclude entries whose value is a
  filler (``scimFiller``).
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from ldap3.utils.conv import escape_filter_chars

from scim_ldap.ad import guid_filter_value, uac_filter
from scim_ldap.controls import SortKey
from scim_ldap.mapping import DN, AttributeMap, LdapMapping
from scim_service.errors import InvalidFilter
from scim_service.model import ENTERPRISE_SCHEMA
from scim_service.query.ast import And, AttrPath, Compare, Filter, Not, Or, Present, Value, ValuePath
from scim_service.query.evaluator import matches, parse_datetime

TRUE = "(objectClass=*)"
FALSE = "(!(objectClass=*))"

UUID_KIND, BOOL_KIND, TIME_KIND, CONST_KIND = "uuid", "boolean", "time", "const"


def escape(value: str) -> str:
    """RFC 4515 escaping of an assertion value (``* ( ) \\`` and NUL)."""
    return str(escape_filter_chars(value))


# Characters of a comparison key that the directory's own normalisation of the stored name (caseIgnore:
# NFKC and lower case) certainly shows too: ASCII letters and digits, and letters without case (CJK ...).
# Not "s" (the key's "ss" may be a stored "ß") nor "i" (the key's "i" + dot may be a stored "İ").
_UNSURE = frozenset("si")


def key_pattern(key: str) -> str | None:
    """A substring assertion (``*b*o*b*``) that every stored name with the comparison key ``key`` meets
    under the directory's substring rule, whatever zero-width characters, Unicode forms or spaces it
    holds; None when the key has no character to test (then only a scan is complete).

    The name's own key is decided in Python; this only narrows what the directory returns.
    """
    chars = [
        c
        for c in key
        if c not in _UNSURE and ((c.isascii() and c.isalnum()) or (not c.isascii() and unicodedata.category(c) == "Lo"))
    ]
    return "*" + "*".join(escape(c) for c in chars) + "*" if chars else None


def generalized_time(value: object) -> str | None:
    """An ISO 8601 value as GeneralizedTime with microseconds (UTC), or None when it does not parse."""
    parsed = parse_datetime(value)
    if parsed is None:
        return None
    return parsed.astimezone(UTC).strftime("%Y%m%d%H%M%S.%fZ")


@dataclass(frozen=True)
class Target:
    """Where a SCIM path lives in the directory and what the directory can do with it."""

    ldap: str
    kind: str = "string"
    substrings: bool = True
    filter_ordering: bool = False
    ordering_rule: str | None = None
    multi: bool = False
    filler: bool = False
    constant: str | None = None
    sort_attribute: str | None = None


class FilterCompiler:
    """Compiles filters and sort keys of one resource type (``User`` or ``Group``) under a mapping.

    ``resolve`` turns a SCIM id into the DN of a visible entry of the tenant (for ``members.value`` and
    ``manager.value``), or None.
    """

    def __init__(self, mapping: LdapMapping, resource: str, resolve: Callable[[str], str | None]) -> None:
        self.mapping = mapping
        self.resource = resource
        self.resolve = resolve

    # -- targets -------------------------------------------------------------------------------

    def target(self, path: AttrPath) -> Target:
        """The directory home of ``path``; ``InvalidFilter`` when it has none."""
        m = self.mapping
        attr, sub = path.attr, path.sub_attr
        lowered = attr.lower()
        if path.schema == ENTERPRISE_SCHEMA:
            key = f"{ENTERPRISE_SCHEMA}:{attr}"
            if lowered == "manager" and sub not in (None, "value"):
                self._refuse(path)
            return self._mapped(path, key if lowered == "manager" or sub is None else f"{key}.{sub}")
        if lowered == "id" and sub is None:
            return Target(m.id_attribute, UUID_KIND, substrings=False, filter_ordering=True, ordering_rule=None)
        if lowered == "externalid" and sub is None:
            return Target(m.external_id, filter_ordering=True, ordering_rule="caseExactOrderingMatch")
        if lowered == "active" and sub is None and self.resource == "User":
            return Target(m.active, BOOL_KIND, substrings=False)
        if lowered == "meta":
            if sub == "created":
                return Target(m.created, TIME_KIND, substrings=False, filter_ordering=True, ordering_rule="")
            if sub == "lastModified":
                return Target(m.last_modified, TIME_KIND, substrings=False, filter_ordering=True, ordering_rule="")
            if sub == "resourceType":
                return Target("", CONST_KIND, constant=self.resource)
            self._refuse(path)
        if lowered == "members" and self.resource == "Group" and sub in (None, "value"):
            return Target(m.member_attribute, DN, substrings=False, multi=True)
        if self.resource == "Group":
            return self._mapped(path, path.dotted())
        if sub is not None and path.multi_valued:
            if sub != "value":
                self._refuse(path)
            return self._mapped(path, attr)
        return self._mapped(path, path.dotted())

    def _mapped(self, path: AttrPath, key: str) -> Target:
        table = self.mapping.group_attribute if self.resource == "Group" else self.mapping.user_attribute
        found: AttributeMap | None = table(key)
        if found is None:
            self._refuse(path)
        assert found is not None
        if found.kind == DN and self.resource == "User":
            # The directory holds a reference only as the DN of a user of the organization that existed
            # when it was written; SCIM takes any id, kept in the document alone: no faithful filter.
            self._refuse(path, f"{found.ldap} holds only the DNs of references that were users when written")
        sort_attribute = None
        if found.multi and key.lower() == "emails":
            sort_attribute = self.mapping.primary_email  # RFC 7644 §3.4.2.3: sort by the primary value
        return Target(
            found.ldap,
            found.kind,
            substrings=found.substrings,
            filter_ordering=found.filter_ordering,
            ordering_rule=found.ordering_rule,
            multi=found.multi,
            filler=self.resource == "User" and found.ldap in self.mapping.fillers,
            sort_attribute=sort_attribute,
        )

    def _refuse(self, path: AttrPath, why: str = "it has no attribute in the directory mapping") -> None:
        name = f"{path.schema}:{path.dotted()}" if path.schema == ENTERPRISE_SCHEMA else path.dotted()
        raise InvalidFilter(f"The ldap backend cannot filter on {name!r}: {why}")

    # -- filters -------------------------------------------------------------------------------

    def compile(self, f: Filter) -> str:
        """The LDAP filter string equivalent to ``f``."""
        if isinstance(f, And):
            return f"(&{self.compile(f.left)}{self.compile(f.right)})"
        if isinstance(f, Or):
            return f"(|{self.compile(f.left)}{self.compile(f.right)})"
        if isinstance(f, Not):
            return f"(!{self.compile(f.expr)})"
        if isinstance(f, Present):
            return self._present(f.path)
        if isinstance(f, Compare):
            return self._compare(f.path, f.op, f.value)
        if isinstance(f, ValuePath):
            return self._value_path(f)
        raise InvalidFilter(f"not a filter node: {f!r}")

    def _value_path(self, f: ValuePath) -> str:
        inner = f.filter
        if isinstance(inner, Compare) and inner.op != "ne" and inner.value is not None:
            return self._compare(inner.path, inner.op, inner.value)
        if isinstance(inner, Present):
            return self._present(inner.path)
        raise InvalidFilter(
            f"The ldap backend takes one comparison inside {f.attr.attr}[...] (the directory keeps the values "
            "of a multi-valued attribute, not the elements)"
        )

    def _positive(self, target: Target, atom: str) -> str:
        if target.filler:
            # A filler value (sn = userName because person requires sn) is no SCIM value.
            return f"(&{atom}(!({self.mapping.filler}={escape(target.ldap)})))"
        return atom

    def _present(self, path: AttrPath) -> str:
        if path.sub_attr is None and path.type == "complex" and path.attr.lower() not in ("members", "emails"):
            return self._complex_present(path)
        target = self.target(path)
        if target.kind == CONST_KIND or target.kind == UUID_KIND:
            return TRUE
        atom = f"({target.ldap}=*)"
        if target.ldap == self.mapping.member_attribute and self.mapping.group_placeholder:
            return f"(&{atom}(!({target.ldap}={escape(self.mapping.group_placeholder)})))"
        return self._positive(target, atom)

    def _complex_present(self, path: AttrPath) -> str:
        table = self.mapping.group_attributes if self.resource == "Group" else self.mapping.user_attributes
        prefix = (f"{ENTERPRISE_SCHEMA}:{path.attr}." if path.schema == ENTERPRISE_SCHEMA else f"{path.attr}.").lower()
        subs = [m for m in table if m.scim.lower().startswith(prefix)]
        if path.schema == ENTERPRISE_SCHEMA and path.attr.lower() == "manager":
            subs = [m for m in table if m.scim.lower() == prefix[:-1]]
            if subs and subs[0].kind == DN:
                self._refuse(path, f"{subs[0].ldap} holds only the DNs of references that were users when written")
        if not subs:
            self._refuse(path)
        atoms = [self._positive(Target(m.ldap, filler=m.ldap in self.mapping.fillers), f"({m.ldap}=*)") for m in subs]
        return atoms[0] if len(atoms) == 1 else "(|" + "".join(atoms) + ")"

    def _compare(self, path: AttrPath, op: str, value: Value) -> str:
        if op == "ne":
            return f"(!{self._compare(path, 'eq', value)})"
        target = self.target(path)
        if target.kind == CONST_KIND:
            # The oracle decides a constant (meta.resourceType) once, here.
            return TRUE if matches(Compare(path, op, value), {"meta": {"resourceType": target.constant}}) else FALSE
        if value is None:
            return f"(!{self._present(path)})" if op == "eq" else FALSE
        if target.kind == BOOL_KIND:
            if op != "eq" or not isinstance(value, bool):
                return FALSE
            if self.mapping.active_format == "uac":
                return uac_filter(value, target.ldap)
            return f"({target.ldap}={'TRUE' if value else 'FALSE'})"
        if target.kind == TIME_KIND:
            if op in ("co", "sw", "ew"):
                return FALSE
            stamp = generalized_time(value)
            return FALSE if stamp is None else self._ordered(target, op, stamp)
        if isinstance(value, bool) or not isinstance(value, str):
            return FALSE  # a number or boolean never equals a string value
        if target.kind == UUID_KIND:
            return self._uuid(path, target, op, value)
        if target.kind == DN:
            if op != "eq":
                self._refuse(path, f"only eq works on a reference, not {op}")
            dn = self.resolve(value)
            return FALSE if dn is None else f"({target.ldap}={escape(dn)})"
        if op in ("co", "sw", "ew"):
            if not target.substrings:
                self._refuse(path, f"{target.ldap} has no substring matching rule")
            if value == "":
                return self._positive(target, f"({target.ldap}=*)")
            pattern = {"co": f"*{escape(value)}*", "sw": f"{escape(value)}*", "ew": f"*{escape(value)}"}[op]
            return self._positive(target, f"({target.ldap}={pattern})")
        if value == "":
            return FALSE  # the directory stores no empty strings
        if op == "eq":
            return self._positive(target, f"({target.ldap}={escape(value)})")
        if target.filter_ordering:
            return self._ordered(target, op, escape(value))
        if target.multi or not target.ordering_rule:
            why = "it is multi-valued" if target.multi else "it has no ordering rule in the mapping"
            self._refuse(path, f"{op} needs an ordering of {target.ldap}, and {why}")
        return self._positive(target, self._extensible(target, op, escape(value), path.case_exact))

    @staticmethod
    def _extensible(target: Target, op: str, value: str, case_exact: bool) -> str:
        """An ordering comparison on an attribute without an ORDERING rule of its own, by extensible match.

        RFC 4517 defines an ordering rule used in an extensible match (``(uid:caseIgnoreOrderingMatch:=v)``)
        as true when the attribute value sorts before ``v``; its equality twin (``caseIgnoreMatch``) gives
        the ties. ``(a=*)`` first, so an entry without the attribute is false, never Undefined under ``!``.
        Only single-valued attributes get here (the negations would mean *every* value, not *some*).
        """
        a, rule = target.ldap, str(target.ordering_rule)
        if case_exact and rule == "caseIgnoreOrderingMatch":
            rule = "caseExactOrderingMatch"
        equal = rule.replace("OrderingMatch", "Match")
        before, same = f"({a}:{rule}:={value})", f"({a}:{equal}:={value})"
        body = {
            "lt": before,
            "le": f"(|{before}{same})",
            "gt": f"(!{before})(!{same})",
            "ge": f"(!{before})",
        }[op]
        return f"(&({a}=*){body})"

    def _uuid(self, path: AttrPath, target: Target, op: str, value: str) -> str:
        try:
            canonical = str(uuid.UUID(value))
        except ValueError:
            if op == "eq":
                return FALSE  # no id equals a value that is not a UUID
            canonical = ""
        if op in ("co", "sw", "ew"):
            self._refuse(path, f"{op} is not supported on id")
        if not canonical:
            self._refuse(path, "ordering comparisons on id need a UUID value")
        if op == "eq":
            # ids are lower-case; a value in another case equals none of them (id is caseExact).
            if canonical != value:
                return FALSE
            if self.mapping.id_format == "guid":
                return f"({target.ldap}={guid_filter_value(canonical)})"
            return f"({target.ldap}={canonical})"
        if self.mapping.id_format == "guid":
            self._refuse(path, "a binary objectGUID does not order like its string")
        return self._ordered(target, op, canonical)

    @staticmethod
    def _ordered(target: Target, op: str, value: str) -> str:
        a = target.ldap
        if op == "eq":
            return f"({a}={value})"
        if op == "ge":
            return f"({a}>={value})"
        if op == "le":
            return f"({a}<={value})"
        if op == "gt":
            return f"(&({a}>={value})(!({a}={value})))"
        if op == "lt":
            return f"(&({a}<={value})(!({a}={value})))"
        return FALSE

    # -- sorting -------------------------------------------------------------------------------

    def sort_keys(self, path: AttrPath | None, descending: bool) -> list[SortKey] | None:
        """Server-side sort keys for ``sortBy`` (then the id, so ties keep id ascending), or None when the
        directory cannot order by it the way SCIM does (the backend then sorts in Python)."""
        tie = SortKey(self.mapping.id_attribute)
        if path is None:
            return [tie]
        try:
            target = self.target(path)
        except InvalidFilter:
            return None  # no directory attribute
        if target.kind == UUID_KIND:
            if self.mapping.id_format == "guid":
                return None  # a binary objectGUID does not order like its string
            return [SortKey(target.ldap, reverse=descending), tie] if descending else [tie]
        if target.kind == TIME_KIND:
            return [SortKey(target.ldap, reverse=descending), tie]
        if target.sort_attribute:
            return [SortKey(target.sort_attribute, "caseIgnoreOrderingMatch", descending), tie]
        if target.filler:
            return None  # users without one hold a filler value, which would sort among the real values
        if target.kind in (BOOL_KIND, CONST_KIND, DN) or target.ordering_rule is None or target.multi:
            return None  # no ordering rule for it in the directory
        if path.case_exact and target.ordering_rule == "caseIgnoreOrderingMatch":
            rule = "caseExactOrderingMatch"
        else:
            rule = target.ordering_rule or None
        return [SortKey(target.ldap, rule, descending), tie]
