"""The built-in authentication: ``Authorization: Bearer <token>`` checked against the token store.

Its hook implementation is marked ``trylast``: pluggy asks every other ``scim_authenticate`` (a host
app's own, an installed plugin's) before it, whatever the order in which the plugins were registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scim_service.errors import Unauthorized
from scim_service.hookspecs import AuthRequest, Principal, hookimpl
from scim_service.servicedb.store import ServiceStore


class BearerTokenAuth:
    """The ``scim_authenticate`` plugin that maps a bearer token to its organization."""

    def __init__(self, store: ServiceStore) -> None:
        self.store = store

    @hookimpl(trylast=True)
    def scim_authenticate(self, request: AuthRequest, config: Mapping[str, Any]) -> Principal | None:
        """Return the token's organization as a Principal.

        No Authorization header, or another scheme: None, so another plugin may know it. A bearer
        token that is empty or unknown: ``Unauthorized``; a revoked one: ``Unauthorized`` saying so.
        """
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = credentials.strip(" \t")
        if not token:
            raise Unauthorized("The Authorization header uses the Bearer scheme but carries no token")
        # The token's last-used write rides on the request's provisioning log entry when there is one.
        defer = bool(config.get("SCIM_PROVISIONING_LOG"))
        found = self.store.authenticate_with_profile(token, defer_touch=defer)  # Unauthorized if revoked
        if found is None:
            raise Unauthorized("The bearer token is not valid")
        tenant, token_id, profile = found
        # The profile rides along, so the request does not read its organization a second time.
        return Principal(tenant=tenant, token_id=token_id, profile=profile)
