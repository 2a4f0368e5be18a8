"""Sharing a host application's database: the table prefix, and what the host's own migrations must leave alone.

Every table scim-service creates starts with one prefix, ``SCIM_TABLE_PREFIX`` (``scim_`` by default):
the service's tables (``scim_organizations``, ``scim_tokens``, ``scim_provisioning_log``,
``scim_auth_failures``, ``scim_events``), the ``sql`` backend's (``scim_users``, ``scim_groups``, ...) and
the two alembic version tables (``scim_service_alembic_version``, ``scim_sql_alembic_version``). A host whose Alembic or
Flask-Migrate autogenerate runs on the same database passes :func:`include_object` (or
``include_object_for(prefix)`` when it chose another prefix) to ``context.configure`` so it neither
proposes to drop them nor sees their indexes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

TABLE_PREFIX = "scim_"
"""The default ``SCIM_TABLE_PREFIX``."""

# Lower case (PostgreSQL folds unquoted names) and short: the longest derived name (a foreign key's,
# which holds the prefix twice) must stay within PostgreSQL's 63 characters.
TABLE_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")

IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]


def check_table_prefix(prefix: str) -> str:
    """``prefix`` if it is a valid table prefix, else ``ValueError`` saying what one looks like."""
    if not isinstance(prefix, str) or not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(
            f"invalid table prefix {prefix!r}: 1 to 16 characters, lower-case letters, digits and '_', "
            "starting with a letter (such as 'scim_' or 'idp_')"
        )
    return prefix


def is_scim_table(name: str | None, prefix: str = TABLE_PREFIX) -> bool:
    """Whether a table of this name belongs to scim-service (whose tables carry ``prefix``)."""
    return bool(name) and str(name).startswith(prefix)


def include_object_for(prefix: str = TABLE_PREFIX) -> IncludeObject:
    """An Alembic ``include_object`` filter that hides the tables named with ``prefix`` (and what is on
    them): pass the app's ``SCIM_TABLE_PREFIX``."""
    check_table_prefix(prefix)

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return not is_scim_table(name, prefix)
        table = getattr(obj, "table", None)  # an index, constraint or column: judged by its table
        return not is_scim_table(getattr(table, "name", None), prefix)

    return include_object


include_object: IncludeObject = include_object_for(TABLE_PREFIX)
"""The filter for the default prefix ``scim_``. Chain it with a host's own filter:
``return include_object(...) and host_rule(...)``."""
