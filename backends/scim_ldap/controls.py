"""BER encoding of the LDAP controls ldap3 does not ship: server-side sort (RFC 2891) and VLV.

ldap3 passes a control as ``(oid, criticality, value_bytes)`` and hands back the raw value of a
response control it does not know, so a few lines of BER suffice here.
"""

from __future__ import annotations

from dataclasses import dataclass

SORT_REQUEST_OID = "1.2.840.113556.1.4.473"
SORT_RESPONSE_OID = "1.2.840.113556.1.4.474"
VLV_REQUEST_OID = "2.16.840.1.113730.3.4.9"
VLV_RESPONSE_OID = "2.16.840.1.113730.3.4.10"

Control = tuple[str, bool, bytes]


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _integer(value: int, tag: int = 0x02) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)
    return _tlv(tag, value.to_bytes(size, "big", signed=True))


@dataclass(frozen=True)
class SortKey:
    """One key of a server-side sort: the attribute, an explicit ordering rule, the direction."""

    attribute: str
    ordering_rule: str | None = None
    reverse: bool = False


def sort_control(keys: list[SortKey], *, critical: bool = True) -> Control:
    """The RFC 2891 sort request control (a SortKeyList)."""
    encoded = b""
    for key in keys:
        body = _tlv(0x04, key.attribute.encode())
        if key.ordering_rule:
            body += _tlv(0x80, key.ordering_rule.encode())  # [0] IMPLICIT MatchingRuleId
        if key.reverse:
            body += _tlv(0x81, b"\xff")  # [1] IMPLICIT BOOLEAN
        encoded += _tlv(0x30, body)
    return (SORT_REQUEST_OID, critical, _tlv(0x30, encoded))


def vlv_control(offset: int, before: int, after: int, content_count: int = 0) -> Control:
    """The VLV request control positioned by offset (1-based): ``before`` entries before it, ``after`` after."""
    by_offset = _tlv(0xA0, _integer(offset) + _integer(content_count))  # [0] byOffset SEQUENCE
    return (VLV_REQUEST_OID, True, _tlv(0x30, _integer(before) + _integer(after) + by_offset))


def _read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    return tag, data[pos : pos + length], pos + length


def _elements(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        tag, body, pos = _read_tlv(data, pos)
        out.append((tag, body))
    return out


@dataclass(frozen=True)
class VlvResult:
    """The VLV response: where the target landed, the server's count of the whole list, the result code."""

    target_position: int
    content_count: int
    result: int


def decode_vlv_response(value: bytes) -> VlvResult:
    """Decode the VirtualListViewResponse control value."""
    _tag, body, _ = _read_tlv(value, 0)
    items = _elements(body)
    numbers = [int.from_bytes(b, "big", signed=True) for _t, b in items[:3]]
    return VlvResult(numbers[0], numbers[1], numbers[2])


def decode_sort_response(value: bytes) -> int:
    """The sortResult code of the SortResult control value (0 means sorted)."""
    _tag, body, _ = _read_tlv(value, 0)
    items = _elements(body)
    return int.from_bytes(items[0][1], "big", signed=True)
