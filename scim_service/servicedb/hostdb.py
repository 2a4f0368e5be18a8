"""Sharing a host application's database: what the host's own migrations must leave alone.

Every table scim-service creates starts with ``scim_``: the service's tables (``scim_organizations``,
``scim_tokens``, ``scim_provisioning_log``, ``scim_auth_failures``), the ``sql`` backend's
(``scim_users``, ``scim_groups``, ...) and the two alembic version tables
(``scim_service_alembic_version``, ``scim_sql_alembic_version``). A host whose Alembic or Flask-Migrate
autogenerate runs on the same database passes :func:`include_object` to ``context.configure`` so it
neither proposes to drop them nor sees their indexes.
"""

from __future__ import annotations

from typing import Any

TABLE_PREFIX = "scim_"


def is_scim_table(name: str | None) -> bool:
    """Whether a table of this name belongs to scim-service."""
    return bool(name) and str(name).startswith(TABLE_PREFIX)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """An Alembic ``include_object`` filter that hides scim-service's tables (and what is on them).

    Chain it with a host's own filter: ``return include_object(...) and host_rule(...)``.
    """
    if type_ == "table":
        return not is_scim_table(name)
    table = getattr(obj, "table", None)  # an index, constraint or column: judged by its table
    return not is_scim_table(getattr(table, "name", None))
