"""The service's own log on stderr: readable text lines or JSON lines (``SCIM_LOG_FORMAT``).

Events that carry data for machines (the one line per request, token expiry warnings) pass it as
``extra={"scim": {...}}``; the JSON formatter puts those fields at the top level of the line, the text
formatter relies on the message, which already says everything in words.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the
    event's fields, and ``exception`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "scim", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``SCIM_LOG_FORMAT``: ``json`` or ``text``."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send the root logger to stderr at ``level`` in ``log_format`` (the standalone app and CLI).

    Like ``logging.basicConfig``, it does nothing when the root logger already has a handler: then
    someone else (a host app, a ``--log-config``) decides where and how the service's log goes, and
    can use :class:`JsonFormatter` for JSON lines.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(make_formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level.upper())
