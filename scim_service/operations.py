"""Administrative operations that need both the service store and the backend.

The command line and the admin page call these, so an organization is deleted, a user found and
the provisioning log searched the same way from both. No Flask and no click here.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from scim_service.backend import Backend, Progress
from scim_service.errors import NotFound, ScimError
from scim_service.model import USER_SCHEMA, Tenant, UserRecord
from scim_service.query.ast import AttrPath, Compare, ListQuery
from scim_service.servicedb.outbox import OutboxStore
from scim_service.servicedb.store import AdminError, LogEntry, LogQuery, ServiceStore


def delete_org(store: ServiceStore, backend: Backend, name: str, progress: Progress | None = None) -> dict[str, int]:
    """Delete the organization ``name`` with everything it has; return what was removed (tokens,
    groups, users, log entries).

    The order keeps it safe to run again after a failure: its tokens are revoked first (so no IdP
    adds users while it runs), then the backend removes its groups and users
    (:meth:`Backend.remove_tenant_data`), then the store deletes its log entries, tokens and row.
    """
    tenant = store.get_org(name)
    store.revoke_org_tokens(name)
    removed = backend.remove_tenant_data(tenant, progress=progress)
    counts = store.delete_org(name, progress=progress)
    # Its change events too: a retry must not hand hooks events of an organization that is gone.
    events = OutboxStore(store.engine, tables=store.tables).delete_org(tenant.id)
    return {"tokens": counts["tokens"], **removed, "log_entries": counts["log_entries"], "events": events}


def _user_name_filter(user_name: str) -> Compare:
    return Compare(AttrPath("userName", schema=USER_SCHEMA, type="string"), "eq", user_name)


def find_user(backend: Backend, tenant: Tenant, ref: str) -> UserRecord | None:
    """The user named by ``ref``: its id (soft-deleted users included), else its userName (any case)."""
    ref = ref.strip()
    if not ref:
        return None
    try:
        return backend.get_user(tenant, ref, include_deleted=True)
    except NotFound:
        pass
    except ScimError:
        pass  # not an id this backend can read (an LDAP id must be a UUID, say): try it as a userName
    page = backend.list_users(tenant, ListQuery(filter=_user_name_filter(ref), count=2))
    return page.resources[0] if page.resources else None


def user_ids_named(store: ServiceStore, backend: Backend, ref: str, org_name: str | None = None) -> tuple[str, ...]:
    """The ids of the users ``ref`` names (an id or a userName) in ``org_name``, or in every
    organization when it is None; users that no longer exist are found in the log by name only."""
    tenants = [store.get_org(org_name)] if org_name is not None else store.list_orgs()
    ids: list[str] = []
    for tenant in tenants:
        try:
            found = find_user(backend, tenant, ref)
        except ScimError:  # one unreachable store must not hide what the log itself knows
            continue
        if found is not None:
            ids.append(found.id)
    return tuple(ids)


def search_log(store: ServiceStore, backend: Backend, query: LogQuery) -> list[LogEntry]:
    """:meth:`ServiceStore.query_log` with ``query.user`` also matched by the user's current id(s),
    looked up through the backend: requests that named the user only by id (a PATCH answered 204)
    are found by its userName too. What ``scim-service log`` and the admin page show."""
    if query.user:
        query = dataclasses.replace(
            query, user_ids=(*query.user_ids, *user_ids_named(store, backend, query.user, query.org_name))
        )
    return store.query_log(query)


def user_document(user: UserRecord) -> dict[str, object]:
    """A user as the operator sees it: id, state, times and the stored SCIM attributes."""
    return {
        "id": user.id,
        "userName": user.user_name,
        "active": user.active,
        "deleted": user.deleted,
        "created": _iso(user.created),
        "lastModified": _iso(user.last_modified),
        "version": user.version,
        "groups": [{"value": g.value, "display": g.display} for g in user.groups],
        "attributes": json.loads(json.dumps(dict(user.data), default=str)),
    }


def list_users(backend: Backend, tenant: Tenant, *, inactive: bool = False) -> list[UserRecord]:
    """Every user of the tenant that SCIM sees (by id), or with ``inactive`` those that ``users
    remove-inactive`` would remove (inactive and, where the backend keeps them, soft-deleted)."""
    if inactive:
        return backend.list_inactive_users(tenant)
    found: list[UserRecord] = []
    page_size = max(1, backend.capabilities.max_results)
    start = 1
    while True:
        page = backend.list_users(tenant, ListQuery(start_index=start, count=page_size, include_groups=False))
        found.extend(page.resources)
        start += len(page.resources)
        if not page.resources or start > page.total_results:
            return found


def require_user(backend: Backend, tenant: Tenant, ref: str) -> UserRecord:
    """:func:`find_user` or an ``AdminError`` saying no user of the organization has that id or userName."""
    found = find_user(backend, tenant, ref)
    if found is None:
        raise AdminError(f"no user of {tenant.name} has the id or userName {ref!r}")
    return found


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
