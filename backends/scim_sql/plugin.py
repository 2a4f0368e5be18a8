"""The pluggy plugin of the ``sql`` backend, registered under the ``scim_service`` entry-point group."""

from __future__ import annotations

from scim_service.backend import Backend
from scim_service.hookspecs import hookimpl
from scim_sql.backend import SqlBackend


@hookimpl
def scim_register_backends() -> list[type[Backend]]:
    """Declare :class:`~scim_sql.backend.SqlBackend` (``SCIM_BACKEND=sql``)."""
    return [SqlBackend]
