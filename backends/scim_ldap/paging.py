"""Reading lists from the directory: sorted VLV pages, bounded candidate reads, and a count of what was read.

* :meth:`Reader.vlv` is one search with the server-side sort (RFC 2891) and VLV controls: the page at an
  offset and the server's count of the whole list (contentCount).
* :meth:`Reader.candidates` reads every entry of a filter with the simple paged results control (RFC
  2696), so server size limits do not cut it, and stops once more than a limit came back.
* :class:`ReadStats` counts the entries and searches the backend received, for operators and for the
  tests that show a filter with an indexed part reads only its candidates.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import ldap3

from scim_ldap.controls import VLV_RESPONSE_OID, SortKey, decode_vlv_response, sort_control, vlv_control
from scim_ldap.directory import NO_SUCH_OBJECT, PAGED_RESULTS_OID, SUCCESS, VLV_ERROR, Conn, Entry, error
from scim_service.errors import Unavailable

MAX_VLV_OFFSET = 2**31 - 1  # the VLV offset is an INTEGER (0..maxInt)


@dataclass
class Snapshot:
    """What :class:`ReadStats` counted up to one moment."""

    entries: int
    searches: int


class ReadStats:
    """Entries and searches the backend received from the directory (thread-safe running totals)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries = 0
        self._searches = 0

    def add(self, entries: int, searches: int = 1) -> None:
        """Count ``entries`` received in ``searches`` searches."""
        with self._lock:
            self._entries += entries
            self._searches += searches

    def snapshot(self) -> Snapshot:
        """The totals so far (subtract two snapshots to measure one call)."""
        with self._lock:
            return Snapshot(self._entries, self._searches)


def _entries(conn: Conn) -> list[Entry]:
    return [e for e in conn.response or [] if e.get("type") == "searchResEntry"]


class Reader:
    """The list reads of one connection, counted in ``stats``."""

    def __init__(self, conn: Conn, stats: ReadStats) -> None:
        self.conn = conn
        self.stats = stats

    def vlv(
        self, base: str, flt: str, attrs: Sequence[str], keys: list[SortKey], start: int, count: int
    ) -> tuple[list[Entry], int]:
        """One sorted VLV search: the page at ``start`` (1-based) of ``count`` entries and the server's total.

        ``count`` 0 asks for the total only; a ``start`` past the VLV offset range gives no entries.
        """
        conn = self.conn
        offset = min(max(start, 1), MAX_VLV_OFFSET)
        controls = [sort_control(keys), vlv_control(offset, 0, max(count - 1, 0))]
        conn.search(base, flt, ldap3.SUBTREE, attributes=list(attrs), controls=controls)
        code = conn.result.get("result")
        entries = _entries(conn)
        self.stats.add(len(entries))
        if code == NO_SUCH_OBJECT:
            return [], 0
        if code not in (SUCCESS, VLV_ERROR):  # 18: the mapping names an ordering rule the attribute lacks
            raise error(conn, "list the entries")
        control = (conn.result.get("controls") or {}).get(VLV_RESPONSE_OID)
        if control is None:
            raise Unavailable(
                "The directory ignored the VLV control: load the sssvlv overlay (OpenLDAP) or use a server with "
                "server-side sorting and virtual list views"
            )
        total = decode_vlv_response(control["value"]).content_count
        if code == VLV_ERROR or count == 0 or start > total or start > MAX_VLV_OFFSET:
            return [], total
        return entries[:count], total

    def candidates(self, base: str, flt: str, attrs: Sequence[str], limit: int) -> list[Entry] | None:
        """Every entry under ``base`` matching ``flt``, or None as soon as more than ``limit`` came back."""
        conn = self.conn
        found: list[Entry] = []
        cookie: bytes | str | None = None
        size = max(1, min(500, limit + 1))
        while True:
            ok = conn.search(base, flt, ldap3.SUBTREE, attributes=list(attrs), paged_size=size, paged_cookie=cookie)
            if not ok and conn.result.get("result") not in (SUCCESS, NO_SUCH_OBJECT):
                raise error(conn, "read the candidates of a list")
            page = _entries(conn)
            self.stats.add(len(page))
            found += page
            control = (conn.result.get("controls") or {}).get(PAGED_RESULTS_OID)
            cookie = control["value"]["cookie"] if control else None
            if len(found) > limit:
                if cookie:  # tell the server to drop the rest of the paged search (RFC 2696 §3)
                    conn.search(base, flt, ldap3.SUBTREE, attributes=["1.1"], paged_size=0, paged_cookie=cookie)
                return None
            if not cookie:
                return found
