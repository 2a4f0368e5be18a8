"""Lists of users and groups: the directory answers what it can, the reference evaluator the rest.

Two ways to answer a list, chosen per request from the filter's split (:mod:`scim_ldap.plan`) and sortBy:

* **In the directory** when the whole filter compiles exactly and the directory can order by sortBy:
  the server filters, sorts (sort control), pages (VLV) and counts (contentCount); only the page is read.
  Cursor pages add "sorts after the cursor's key" to the filter (:mod:`scim_ldap.cursor`).
* **Over the candidates** otherwise: the directory evaluates the pushed part of the filter (its indexes
  narrow the search) and returns the candidates; the backend builds their SCIM documents (the stored
  document with the directory's values laid over it, as every read does), keeps those the reference
  evaluator matches, sorts them as :func:`~scim_service.query.evaluator.evaluate_list` does (sortBy with
  missing values last ascending, then id) and pages them. totalResults is exact, pages are stable. A
  request that would read more than ``SCIM_LDAP_MAX_SCAN`` candidates is refused with 400 ``tooMany``
  saying why and what would narrow it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from scim_ldap.controls import SortKey
from scim_ldap.cursor import DIRECTORY, PYTHON, Position, after_filter, after_key, decode, encode, fingerprint
from scim_ldap.directory import Entry, first
from scim_ldap.filters import FALSE, TRUE, FilterCompiler
from scim_ldap.mapping import DN, LdapMapping
from scim_ldap.paging import Reader
from scim_ldap.plan import FilterPlan, FilterSplitter, check_listable, names_attribute, path_name
from scim_service.errors import InvalidCursor, InvalidValue, TooMany
from scim_service.model import GroupRecord, Page, Tenant, UserRecord
from scim_service.query.ast import Filter, ListQuery
from scim_service.query.evaluator import matches, sort_key

R = TypeVar("R", UserRecord, GroupRecord)


@dataclass(frozen=True)
class Source(Generic[R]):
    """What differs between listing users and listing groups.

    ``relation`` is the attribute whose reading costs extra searches (a user's ``groups``, a group's
    ``members``); ``record`` builds a record with it (True) or without; ``attrs`` are the LDAP attributes
    to read, with the relation's own attribute (True) or not. ``membership`` narrows filters on a
    user's ``groups`` (:class:`~scim_ldap.plan.FilterSplitter`).
    """

    resource: str
    base: str
    object_filter: str
    relation: str
    attrs: Callable[[bool], list[str]]
    record: Callable[[Entry, bool], R]
    render: Callable[[R], dict[str, Any]]
    membership: Callable[[Filter], str] | None = None

    def without_relation(self, record: R) -> R:
        """The record as a list that did not ask for the relation returns it."""
        if isinstance(record, UserRecord):
            return dataclasses.replace(record, groups=())
        return dataclasses.replace(record, members=None)


def directory_paths(mapping: LdapMapping, resource: str) -> list[str]:
    """The SCIM paths the directory evaluates for ``resource`` (what narrows a search), for messages."""
    table = mapping.user_attributes if resource == "User" else mapping.group_attributes
    own = [path_name_of(m.scim) for m in table if m.kind != DN]
    extra = ["members.value"] if resource == "Group" else ["active"]
    return ["id", "externalId", *own, *extra, "meta.created", "meta.lastModified"]


def path_name_of(scim: str) -> str:
    """A mapping path as messages name it (``emails`` is filtered as ``emails.value``)."""
    return "emails.value" if scim == "emails" else scim


class Lister(Generic[R]):
    """Answers one list request of one tenant (see the module docstring)."""

    def __init__(
        self,
        reader: Reader,
        compiler: FilterCompiler,
        source: Source[R],
        tenant: Tenant,
        *,
        max_scan: int,
        directory_cursors: bool = True,
    ) -> None:
        self.reader = reader
        self.compiler = compiler
        self.source = source
        self.tenant = tenant
        self.max_scan = max_scan
        self.directory_cursors = directory_cursors

    def page(self, query: ListQuery) -> Page[R]:
        """The page ``query`` asks for, with the exact total and (cursor paging) the next cursor."""
        plan = FilterSplitter(self.compiler, self.source.membership).plan(query.filter)
        if query.sort_by is not None:
            check_listable(query.sort_by, InvalidValue)
        keys = self.compiler.sort_keys(query.sort_by, query.descending)
        start = 1 if query.cursor is not None else max(query.start_index, 1)
        if plan.pushed == FALSE:
            if query.cursor:  # still a cursor of this query, or an error
                decode(
                    query.cursor, fingerprint(self.source.resource, self.tenant, query, self._mode(plan, keys, query))
                )
            return Page(resources=[], total_results=0, start_index=start)
        flt = self.source.object_filter if plan.pushed == TRUE else f"(&{self.source.object_filter}{plan.pushed})"
        if self._mode(plan, keys, query) == DIRECTORY:
            assert keys is not None
            if query.cursor is None:
                return self._directory_index(query, flt, keys)
            return self._directory_cursor(query, flt, keys)
        return self._evaluated(query, flt, plan, keys)

    def _mode(self, plan: FilterPlan, keys: list[SortKey] | None, query: ListQuery) -> str:
        if query.cursor is not None and not self.directory_cursors:
            return PYTHON  # ids the directory does not order like their strings (AD's objectGUID)
        return DIRECTORY if plan.exact and keys is not None else PYTHON

    # -- in the directory --------------------------------------------------------------------------

    def _directory_index(self, query: ListQuery, flt: str, keys: list[SortKey]) -> Page[R]:
        wants = self._wants_relation(query)
        entries, total = self.reader.vlv(
            self.source.base, flt, self.source.attrs(wants), keys, max(query.start_index, 1), max(query.count, 0)
        )
        records = [self.source.record(e, wants) for e in entries]
        return Page(resources=records, total_results=total, start_index=max(query.start_index, 1))

    def _directory_cursor(self, query: ListQuery, flt: str, keys: list[SortKey]) -> Page[R]:
        source = self.source
        print_ = fingerprint(source.resource, self.tenant, query, DIRECTORY)
        id_key = keys[-1]
        seek = flt
        if query.cursor:
            position = decode(query.cursor, print_)
            if position.key is not None and not isinstance(position.key, str):
                raise InvalidCursor("The cursor is malformed: it holds a key this server did not write.")
            seek = f"(&{flt}{after_filter(keys, position.key, position.id, id_key)})"
        count = max(query.count, 0)
        if count == 0:
            _none, total = self.reader.vlv(source.base, flt, ["1.1"], keys, 1, 0)
            return Page(resources=[], total_results=total, start_index=1)
        wants = self._wants_relation(query)
        attrs = list(dict.fromkeys([*source.attrs(wants), *(k.attribute for k in keys)]))
        entries, remaining = self.reader.vlv(source.base, seek, attrs, keys, 1, count + 1)
        total = remaining if seek == flt else self.reader.vlv(source.base, flt, ["1.1"], keys, 1, 0)[1]
        records = [source.record(e, wants) for e in entries[:count]]
        next_cursor = None
        if len(entries) > count:
            key = first(entries[count - 1], keys[0].attribute) if len(keys) > 1 else None
            next_cursor = encode(print_, Position(key, records[-1].id))
        return Page(resources=records, total_results=total, start_index=1, next_cursor=next_cursor)

    # -- over the candidates -----------------------------------------------------------------------

    def _evaluated(self, query: ListQuery, flt: str, plan: FilterPlan, keys: list[SortKey] | None) -> Page[R]:
        source = self.source
        sort_by = query.sort_by
        needs = names_attribute(query.filter, source.relation) or (
            sort_by is not None and sort_by.attr.lower() == source.relation
        )
        wants = self._wants_relation(query)
        entries = self.reader.candidates(source.base, flt, source.attrs(needs or wants), self.max_scan)
        if entries is None:
            raise self._too_many(query, plan, keys)
        rows = []
        for entry in entries:
            record = source.record(entry, needs)
            document = source.render(record)
            if query.filter is None or matches(query.filter, document):
                rows.append((entry, record, document))
        rows.sort(key=lambda row: row[1].id)
        if sort_by is not None:
            # Stable: ties keep id ascending in both directions, as evaluate_list orders them.
            rows.sort(key=lambda row: sort_key(sort_by, row[2]), reverse=query.descending)
        total = len(rows)
        count = max(query.count, 0)
        next_cursor = None
        if query.cursor is None:
            begin = max(query.start_index, 1) - 1
        else:
            print_ = fingerprint(source.resource, self.tenant, query, PYTHON)
            begin = 0
            if query.cursor:
                position = decode(query.cursor, print_)
                begin = next(
                    (
                        i
                        for i, row in enumerate(rows)
                        if after_key(self._key(query, row[2]), row[1].id, position, query.descending)
                    ),
                    total,
                )
            if count and begin + count < total:
                last = rows[begin + count - 1]
                next_cursor = encode(print_, Position(list(self._key(query, last[2])), last[1].id))
        chosen = rows[begin : begin + count] if count else []
        records = [self._finish(entry, record, needs, wants) for entry, record, _document in chosen]
        start = 1 if query.cursor is not None else max(query.start_index, 1)
        return Page(resources=records, total_results=total, start_index=start, next_cursor=next_cursor)

    @staticmethod
    def _key(query: ListQuery, document: dict[str, Any]) -> tuple[Any, ...]:
        return sort_key(query.sort_by, document) if query.sort_by is not None else ()

    def _finish(self, entry: Entry, record: R, loaded: bool, wanted: bool) -> R:
        if loaded == wanted:
            return record
        return self.source.record(entry, True) if wanted else self.source.without_relation(record)

    def _wants_relation(self, query: ListQuery) -> bool:
        return query.include_groups if self.source.resource == "User" else query.include_members

    def _too_many(self, query: ListQuery, plan: FilterPlan, keys: Sequence[SortKey] | None) -> TooMany:
        """The refusal of a request that would read more than ``max_scan`` entries: why, and what narrows it."""
        reasons = []
        if not plan.exact:
            checked = ", ".join(plan.evaluated) or "part of the filter"
            reasons.append(f"the directory cannot evaluate {checked}, so each candidate is checked here")
        if keys is None and query.sort_by is not None:
            reasons.append(f"the directory cannot order by {path_name(query.sort_by)}, so every match is sorted here")
        narrowed = (
            "the rest of the filter did not narrow the candidates enough"
            if plan.pushed != TRUE
            else "no part of the filter narrows the candidates"
        )
        paths = ", ".join(directory_paths(self.compiler.mapping, self.source.resource))
        return TooMany(
            f"This {self.source.resource} list would read more than {self.max_scan} entries of the directory "
            f"(the ldap backend's SCIM_LDAP_MAX_SCAN): {'; '.join(reasons)}, and {narrowed}. Add a condition "
            f'the directory evaluates with an index, on one of {paths} (for example userName eq "..." or '
            'emails.value eq "..."), joined with "and"; or ask the operator to raise SCIM_LDAP_MAX_SCAN.'
        )
