"""Every ``SCIM_*`` setting in one table: name, type, default and meaning.

The extension reads these keys from ``app.config`` only; :func:`from_environ` is what the standalone
app (``create_app``) and the CLI use to take them from environment variables. A test checks that
each setting here is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scim_service.durations import parse_duration, parse_retention


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return value

    return parse


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"expected 0 or a positive integer, got {text!r}")
    return value


def _positive_duration(text: str) -> Any:
    value = parse_duration(text)
    if value.total_seconds() <= 0:
        raise ValueError(f"expected a duration of more than 0, got {text!r}")
    return value


def _base_path(text: str) -> str:
    path = "/" + text.strip().strip("/")
    return "" if path == "/" else path


def _url_path(text: str) -> str:
    # A path of its own for an operations page: never the site root, which a host app owns.
    path = _base_path(text)
    if not path:
        raise ValueError(f"expected a URL path such as /admin, not the site root ({text!r})")
    return path


def _public_url(text: str) -> str:
    # The origin (and any prefix a proxy adds) clients reach the service at; the base path is appended.
    value = text.strip().rstrip("/")
    if not value.lower().startswith(("http://", "https://")) or "?" in value or "#" in value:
        raise ValueError(f"expected an absolute http(s) URL such as https://scim.example.com, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


def _table_prefix(text: str) -> str:
    from scim_service.servicedb.hostdb import check_table_prefix  # the one rule; imported late (no cycle)

    return check_table_prefix(text.strip())


def _db_schema(text: str) -> str | None:
    from scim_service.sqlengine import check_schema_name  # the one rule; imported late (no cycle)

    value = text.strip()
    return check_schema_name(value) if value else None


def _optional_duration(text: str) -> Any:
    # A duration, or off/none/0 for "never".
    if text.strip().lower() in {"off", "none", "no", "false", "0", ""}:
        return None
    return _positive_duration(text)


@dataclass(frozen=True)
class Setting:
    """One configuration key: its parser from an environment string, its default and its meaning."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SCIM_DATABASE_URL",
        str,
        None,
        "SQLAlchemy URL of the service database (organizations, tokens, provisioning log, and users and "
        "groups with the sql backend). Unset: a SQLite file scim.db in the instance folder.",
    ),
    Setting(
        "SCIM_INSTANCE_PATH",
        str,
        None,
        "Folder of the default SQLite database (standalone app only). Unset: Flask's instance folder.",
    ),
    Setting("SCIM_BASE_PATH", _base_path, "/scim/v2", "URL prefix under which every SCIM endpoint is served."),
    Setting("SCIM_BACKEND", str, "sql", "Name of the storage backend plugin that stores users and groups."),
    Setting(
        "SCIM_PLUGINS",
        str,
        "",
        "Comma-separated entry-point names of the plugins to load besides the built-in ones and the "
        "selected backend; * loads every installed plugin.",
    ),
    Setting(
        "SCIM_USER_DELETE",
        _choice("soft", "deactivate", "hard"),
        "soft",
        "What DELETE /Users/{id} does: soft (kept inactive, gone to SCIM), deactivate (stays visible, "
        "inactive) or hard (removed).",
    ),
    Setting("SCIM_DEFAULT_PAGE_SIZE", _positive_int, 100, "Page size of a list request that gives no count."),
    Setting("SCIM_MAX_PAGE_SIZE", _positive_int, 1000, "Largest page a list request may ask for (advertised)."),
    Setting("SCIM_MAX_BODY_BYTES", _positive_int, 1_048_576, "Largest request body accepted; larger gets 413."),
    Setting("SCIM_BULK_MAX_OPERATIONS", _positive_int, 1000, "Most operations in one /Bulk request (advertised)."),
    Setting(
        "SCIM_BULK_MAX_PAYLOAD_BYTES",
        _positive_int,
        1_048_576,
        "Largest /Bulk request body accepted (advertised as maxPayloadSize); larger gets 413.",
    ),
    Setting(
        "SCIM_PUBLIC_URL",
        _public_url,
        None,
        "Public URL of the service (scheme, host, port, proxy prefix) used in meta.location and Location "
        "instead of the request's Host header; the base path is appended.",
    ),
    Setting(
        "SCIM_TRUSTED_PROXIES",
        _non_negative_int,
        0,
        "Number of reverse proxies in front of the standalone app whose X-Forwarded-* headers are trusted "
        "(werkzeug's ProxyFix); 0 trusts none.",
    ),
    Setting(
        "SCIM_PROVISIONING_LOG",
        _bool,
        True,
        "Record every SCIM request (tenant, token, method, path, resource, status, error) in the service database.",
    ),
    Setting(
        "SCIM_TOKEN_TOUCH_SECONDS",
        int,
        60,
        "A token's 'last used' time is written at most this often, to keep writes off the hot path.",
    ),
    Setting(
        "SCIM_TABLE_PREFIX",
        _table_prefix,
        "scim_",
        "Prefix of every table scim-service creates (its own, the sql backend's and both alembic version "
        "tables), so they can live beside a host application's tables: 1 to 16 lower-case letters, digits "
        "and _ (such as idp_). Choose it before the first db upgrade; renaming existing tables is not automatic.",
    ),
    Setting(
        "SCIM_DB_SCHEMA",
        _db_schema,
        None,
        "PostgreSQL: the schema that holds every scim-service table and both alembic version tables; db "
        "upgrade creates it if missing. Unset: the connection's search path (usually public).",
    ),
    Setting("SCIM_DB_POOL_SIZE", _positive_int, 5, "Connections kept per process for a server database."),
    Setting("SCIM_DB_POOL_TIMEOUT", _positive_int, 10, "Seconds a request waits for a free database connection."),
    Setting(
        "SCIM_DB_CONNECT_TIMEOUT",
        _positive_float,
        5.0,
        "PostgreSQL: seconds to open a connection (and to wait for TCP acknowledgements) before a 503.",
    ),
    Setting(
        "SCIM_DB_LOCK_TIMEOUT",
        _positive_float,
        5.0,
        "PostgreSQL: seconds a statement waits for a row or table lock (another transaction's) before a 503.",
    ),
    Setting(
        "SCIM_DB_STATEMENT_TIMEOUT",
        _positive_float,
        15.0,
        "PostgreSQL: seconds one statement may run before the server cancels it and the request gets 503.",
    ),
    Setting("SCIM_LOG_LEVEL", str, "INFO", "Level of the service's own log on stderr (DEBUG, INFO, WARNING, ERROR)."),
    Setting(
        "SCIM_LOG_FORMAT",
        _choice("text", "json"),
        "text",
        "Format of the service's own log on stderr: text (one readable line per event) or json (JSON lines).",
    ),
    Setting(
        "SCIM_PROVISIONING_LOG_RETENTION",
        parse_retention,
        parse_retention("90d"),
        "How much of the provisioning log to keep: an age (30d), a number of rows (1000000 rows), both "
        "(30d, 1000000 rows) or none. Applied in batches every SCIM_PROVISIONING_LOG_PRUNE_EVERY writes.",
    ),
    Setting(
        "SCIM_EVENTS_RETRY_INTERVAL",
        _optional_duration,
        parse_duration("30s"),
        "How often each process retries undelivered change events in a background thread, started by "
        "the next event (a doubling backoff per event applies); off: only `scim-service events deliver` "
        "and the next event of the same resource retry. Delivered events are pruned with the log retention's age.",
    ),
    Setting(
        "SCIM_PROVISIONING_LOG_PRUNE_EVERY",
        _positive_int,
        1000,
        "Each process applies the log retention, in the background, after this many log writes.",
    ),
    Setting(
        "SCIM_AUTH_FAILURE_LIMIT",
        _non_negative_int,
        30,
        "Failed authentications one client address may make per SCIM_AUTH_FAILURE_WINDOW before further "
        "failures get 429 with Retry-After (0: no limit). Valid tokens are never refused by it.",
    ),
    Setting(
        "SCIM_AUTH_FAILURE_WINDOW",
        _positive_duration,
        parse_duration("10m"),
        "The window of SCIM_AUTH_FAILURE_LIMIT; a client's failed authentications in one window also "
        "share one provisioning log entry with a count.",
    ),
    Setting(
        "SCIM_TOKEN_EXPIRY_WARNING",
        _positive_duration,
        parse_duration("7d"),
        "A token used within this time of its expiry (or of the end of a rotation's grace) is warned "
        "about in the service log, once per token per day and process.",
    ),
    Setting(
        "SCIM_SCHEMA_EXTENSIONS_FILE",
        str,
        None,
        "JSON file declaring custom schema extensions of User and Group (RFC 7643 §7 schemas with their "
        "resourceType); they appear in /Schemas and /ResourceTypes and are validated, filterable and "
        "patchable. Needs a backend with the custom_schemas capability. Unset: none.",
    ),
    # -- operations: health, metrics, the admin page (scim_service/ops/, scim_service/admin/) ----------
    Setting(
        "SCIM_HEALTH_ENDPOINTS",
        _bool,
        False,
        "Serve /healthz and /readyz (no authentication, JSON). Off for an embedding host, on for the "
        "standalone app (create_app).",
    ),
    Setting(
        "SCIM_HEALTH_PREFIX",
        _base_path,
        "",
        "URL prefix of /healthz and /readyz, for a host that has its own at the root (e.g. /scim-ops).",
    ),
    Setting(
        "SCIM_READY_TIMEOUT",
        _positive_float,
        2.0,
        "Seconds /readyz waits for the service database and for the backend to answer before it reports 503.",
    ),
    Setting("SCIM_METRICS", _bool, False, "Serve Prometheus metrics (PROMETHEUS_MULTIPROC_DIR under gunicorn)."),
    Setting("SCIM_METRICS_PATH", _url_path, "/metrics", "URL path of the Prometheus metrics."),
    Setting(
        "SCIM_ADMIN_PASSWORD",
        str,
        None,
        "Password of the admin web page; the page is off unless it is set or a host plugin implements "
        "scim_admin_authenticate.",
    ),
    Setting("SCIM_ADMIN_PATH", _url_path, "/admin", "URL prefix of the admin web page."),
    Setting(
        "SCIM_ADMIN_SECRET_KEY",
        str,
        None,
        "Key that signs the admin session cookie; the same in every worker and host. Unset: the host "
        "app's SECRET_KEY, else a key derived from SCIM_ADMIN_PASSWORD.",
    ),
    Setting("SCIM_ADMIN_SESSION_HOURS", _positive_int, 8, "Hours an admin login lasts."),
)

# What the standalone app (create_app) turns on that an embedding host gets only if it asks.
STANDALONE_DEFAULTS: dict[str, Any] = {"SCIM_HEALTH_ENDPOINTS": True}

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


def defaults() -> dict[str, Any]:
    """The default of every setting (``SCIM_DATABASE_URL`` stays None until the app knows its folder)."""
    return {s.name: s.default for s in SETTINGS}


def from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """Parse the ``SCIM_*`` variables present in ``environ``; other ``SCIM_*`` keys pass through as
    strings (plugins such as the LDAP backend define their own)."""
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith("SCIM_") or key.startswith("SCIM_TEST_"):
            continue
        setting = SETTINGS_BY_NAME.get(key)
        if setting is None:
            out[key] = raw
            continue
        try:
            out[key] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from exc
    return out


def validate(config: Mapping[str, Any]) -> None:
    """Check the values an embedding host put in ``app.config`` (they may be typed or strings)."""
    for setting in SETTINGS:
        value = config.get(setting.name)
        if value is None or not isinstance(value, str) or setting.parse is str:
            continue
        try:
            setting.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{setting.name}: {exc}") from exc
