"""The service's own data: organizations, bearer tokens and the provisioning log, in SQL."""

from scim_service.servicedb.hostdb import TABLE_PREFIX, include_object, include_object_for
from scim_service.servicedb.migrate import upgrade_service_db
from scim_service.servicedb.store import AdminError, LogEntry, ServiceStore, TokenInfo

__all__ = [
    "TABLE_PREFIX",
    "AdminError",
    "LogEntry",
    "ServiceStore",
    "TokenInfo",
    "include_object",
    "include_object_for",
    "upgrade_service_db",
]
