"""Durations, points in time and retention rules as operators write them (``30d``, ``2h``, an ISO time).

One parser for the command line, the settings and the admin page, so ``--since 2h``,
``tokens create --expires-in 90d`` and ``SCIM_PROVISIONING_LOG_RETENTION=30d`` mean the same thing
everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ROWS_RE = re.compile(r"^\s*(\d[\d_,]*)\s*rows?\s*$", re.IGNORECASE)
# Words that switch a retention rule off (keep everything).
_KEEP_ALL = frozenset({"", "none", "forever", "off", "unlimited"})


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``30d``, ``12h``, ``90m``, ``45s`` or ``2w``."""
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write a number and a unit, like 30d, 12h, 90m, 45s or 2w")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def parse_when(text: str, now: datetime) -> datetime:
    """A point in time: a duration before ``now`` (``2h``, ``1d``) or an ISO 8601 date or time.

    A date alone is midnight UTC; a time without an offset is taken as UTC.
    """
    value = text.strip()
    if _DURATION_RE.match(value):
        return now - parse_duration(value)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give an ISO time (2025-03-01T09:30:00Z, 2025-03-01) or a duration ago (2h, 1d)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class Retention:
    """How much of the provisioning log to keep: entries younger than ``max_age`` and at most the
    newest ``max_rows`` (either may be None: no bound of that kind)."""

    max_age: timedelta | None = None
    max_rows: int | None = None

    @property
    def keeps_everything(self) -> bool:
        """Whether neither bound is set."""
        return self.max_age is None and self.max_rows is None

    def describe(self) -> str:
        """The rule in words, for messages."""
        parts = []
        if self.max_age is not None:
            parts.append(f"entries younger than {format_duration(self.max_age)}")
        if self.max_rows is not None:
            parts.append(f"the newest {self.max_rows} entries")
        return " and ".join(parts) if parts else "every entry"


def parse_retention(text: str) -> Retention:
    """Parse ``30d``, ``1000000 rows``, both (``30d, 1000000 rows``) or ``none`` (keep everything)."""
    value = text.strip().lower()
    if value in _KEEP_ALL:
        return Retention()
    max_age: timedelta | None = None
    max_rows: int | None = None
    for part in re.split(r"\s*(?:,|;|\band\b)\s*", value):
        if not part:
            continue
        rows = _ROWS_RE.match(part)
        if rows is not None:
            if max_rows is not None:
                raise ValueError(f"{text!r} gives the number of rows twice")
            max_rows = int(rows.group(1).replace("_", "").replace(",", ""))
            if max_rows < 1:
                raise ValueError(f"{text!r}: keep at least 1 row (or write 'none' to keep everything)")
            continue
        if max_age is not None:
            raise ValueError(f"{text!r} gives the age twice")
        try:
            max_age = parse_duration(part)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a retention rule: write an age (30d), a number of rows (1000000 rows), "
                "both separated by a comma, or none"
            ) from None
        if max_age <= timedelta(0):
            raise ValueError(f"{text!r}: the age must be more than 0 (or write 'none' to keep everything)")
    return Retention(max_age=max_age, max_rows=max_rows)


def format_duration(value: timedelta) -> str:
    """The shortest exact way to write ``value`` in one unit (``90d``, ``36h``, ``45s``)."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
