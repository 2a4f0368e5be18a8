"""Active Directory conversions of the ``ad`` preset: objectGUID ids, userAccountControl and sAMAccountName.

Pure functions, tested without a domain controller (see docs/ldap.md: the preset has not run against a
real AD).
"""

from __future__ import annotations

import re
import uuid

UAC_ATTRIBUTE = "userAccountControl"
ACCOUNTDISABLE = 0x2  # userAccountControl bit: the account is disabled
NORMAL_ACCOUNT = 0x200  # userAccountControl bit: a default account of a typical user
BITWISE_AND = "1.2.840.113556.1.4.803"  # LDAP_MATCHING_RULE_BIT_AND, AD's bitwise extensible match
SAM_MAX = 20  # sAMAccountName of a user: at most 20 characters
_SAM_INVALID = re.compile(r'["/\\\[\]:;|=,+*?<>@\s]')


def guid_to_string(raw: bytes) -> str:
    """The canonical (lower-case, dashed) string of a binary objectGUID.

    AD stores a GUID as 16 bytes with its first three fields little-endian (``bytes_le``), so the bytes
    ``33 22 11 00 55 44 77 66 88 99 ...`` are ``00112233-4455-6677-8899-...``.
    """
    if len(raw) != 16:
        raise ValueError(f"an objectGUID has 16 bytes, not {len(raw)}")
    return str(uuid.UUID(bytes_le=bytes(raw)))


def guid_to_bytes(text: str) -> bytes:
    """The binary objectGUID of a GUID string (``ValueError`` when it is none)."""
    return uuid.UUID(text).bytes_le


def guid_filter_value(text: str) -> str:
    """The RFC 4515 assertion value of a GUID string: every byte escaped (``\\33\\22...``)."""
    return "".join(f"\\{byte:02x}" for byte in guid_to_bytes(text))


def uac_is_active(value: int | str | None) -> bool:
    """True unless the ACCOUNTDISABLE bit is set (an absent value is an active account)."""
    if value is None or value == "":
        return True
    return not int(value) & ACCOUNTDISABLE


def uac_with(current: int | str | None, active: bool) -> str:
    """``userAccountControl`` with only the ACCOUNTDISABLE bit changed (a new account: NORMAL_ACCOUNT)."""
    flags = NORMAL_ACCOUNT if current is None or current == "" else int(current)
    flags = flags & ~ACCOUNTDISABLE if active else flags | ACCOUNTDISABLE
    return str(flags)


def uac_filter(active: bool, attribute: str = UAC_ATTRIBUTE) -> str:
    """The LDAP filter of active (bit clear) or disabled (bit set) accounts, by AD's bitwise match."""
    disabled = f"({attribute}:{BITWISE_AND}:={ACCOUNTDISABLE})"
    return f"(!{disabled})" if active else disabled


def sam_account_name(user_name: str) -> str:
    """A sAMAccountName for a userName: the part before ``@``, characters AD forbids as ``_``, 20 at most."""
    local = user_name.split("@", 1)[0].strip() or user_name.strip()
    cleaned = _SAM_INVALID.sub("_", local).rstrip(".")
    return cleaned[:SAM_MAX] or "_"
