"""The tenant lock: every write of an organization holds it, so checks and writes cannot interleave.

The lock is the ``description`` of ``cn=scim-lock,ou=<tenant>``: ``free`` or ``<expiry> <token>``.
Taking it is one modify that deletes ``free`` and adds the token, which the server applies atomically
or not at all (a compare-and-swap: it fails when ``free`` is not there). A holder that died is replaced
once its lease expired, with the same swap. The first write of a tenant also creates its subtree.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import ldap3
from ldap3 import MODIFY_ADD, MODIFY_DELETE

from scim_ldap.directory import (
    ALREADY_EXISTS,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    Conn,
    Layout,
    error,
    search,
    values,
    why,
)
from scim_ldap.pool import ConnectionPool
from scim_service.errors import Unavailable
from scim_service.model import Tenant

log = logging.getLogger("scim_ldap.backend")

FREE = "free"
LOCK_RDN = "cn=scim-lock"


class TenantLock:
    """Takes and releases the write lock of a tenant; creates the tenant's subtree on first use."""

    def __init__(self, pool: ConnectionPool, layout: Layout) -> None:
        self.pool = pool
        self.layout = layout
        self.settings = pool.settings
        self._ready: set[str] = set()

    def lock_dn(self, tenant: Tenant) -> str:
        """The DN of the tenant's lock entry."""
        return f"{LOCK_RDN},{self.layout.tenant_dn(tenant)}"

    def ensure_tenant(self, conn: Conn, tenant: Tenant) -> None:
        """Create ``ou=<tenant>`` with its People, Groups and lock entries (once per process)."""
        if tenant.id in self._ready:
            return
        t = self.layout.tenant_dn(tenant)
        mapping = self.layout.mapping
        entries = [
            (t, [mapping.tenant_class], {"ou": tenant.id}),
            (self.layout.people_dn(tenant), ["organizationalUnit"], {"ou": mapping.people_ou}),
            (self.layout.groups_dn(tenant), ["organizationalUnit"], {"ou": mapping.groups_ou}),
            (self.lock_dn(tenant), ["applicationProcess"], {"cn": "scim-lock", "description": FREE}),
        ]
        for dn, classes, attrs in entries:
            if not conn.add(dn, classes, attrs) and conn.result.get("result") != ALREADY_EXISTS:
                raise error(conn, "create the organization's entries", where=dn)
        self._ready.add(tenant.id)

    @contextmanager
    def held(self, tenant: Tenant) -> Iterator[Conn]:
        """Hold the tenant's write lock and yield a connection."""
        with self.pool.connection() as conn:
            self.ensure_tenant(conn, tenant)
            lock_dn = self.lock_dn(tenant)
            token = self._acquire(conn, tenant, lock_dn)
            try:
                yield conn
            finally:
                released = conn.modify(lock_dn, {"description": [(MODIFY_DELETE, [token]), (MODIFY_ADD, [FREE])]})
                if not released:
                    log.warning(
                        "ldap backend: the lock of tenant %s was taken over while held (lease %s s too short?): %s",
                        tenant.id,
                        self.settings.lock_lease,
                        why(conn),
                    )

    def _acquire(self, conn: Conn, tenant: Tenant, lock_dn: str) -> str:
        deadline = time.monotonic() + self.settings.lock_timeout
        delay = 0.002
        while True:
            token = f"{time.time() + self.settings.lock_lease:.3f} {uuid.uuid4().hex}"
            if conn.modify(lock_dn, {"description": [(MODIFY_DELETE, [FREE]), (MODIFY_ADD, [token])]}):
                return token
            code = conn.result.get("result")
            if code == NO_SUCH_OBJECT:
                self._ready.discard(tenant.id)
                self.ensure_tenant(conn, tenant)
                continue
            if code != NO_SUCH_ATTRIBUTE:
                raise error(conn, "take the organization's write lock", where=lock_dn)
            for entry in search(conn, lock_dn, "(objectClass=*)", ["description"], scope=ldap3.BASE):
                for held in values(entry, "description"):
                    try:
                        expiry = float(held.split()[0])
                    except (ValueError, IndexError):
                        expiry = 0.0
                    if held != FREE and expiry < time.time():
                        # The holder died: take over with the same compare-and-swap.
                        swap = {"description": [(MODIFY_DELETE, [held]), (MODIFY_ADD, [token])]}
                        if conn.modify(lock_dn, swap):
                            log.warning("ldap backend: took over the expired lock of tenant %s", tenant.id)
                            return token
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"The directory lock of this organization stayed busy for {self.settings.lock_timeout} s; retry."
                )
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 0.05)
