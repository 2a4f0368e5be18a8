"""The service's own data: organizations, bearer tokens and the provisioning log, in SQL."""

from scim_service.servicedb.hostdb import include_object
from scim_service.servicedb.migrate import upgrade_service_db
from scim_service.servicedb.store import AdminError, LogEntry, ServiceStore, TokenInfo

__all__ = ["AdminError", "LogEntry", "ServiceStore", "TokenInfo", "include_object", "upgrade_service_db"]
