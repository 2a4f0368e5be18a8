"""The pluggy hooks of scim-service: how plugins add backends, authentication and reactions to changes.

Plugins are modules or objects with functions marked ``@hookimpl`` and named like the specs below.
They are found through the ``scim_service`` entry-point group (built-in and third-party alike) or
handed to :class:`~scim_service.extension.ScimService` by a host app. Every hook is prefixed ``scim_``;
a misspelled hook fails at start-up (``check_pending``).

The change events (``scim_user_created`` ... ``scim_members_changed``) go through the outbox
(:mod:`scim_service.outbox`): an implementation that raises is called again later with the same
arguments, at least once and in order per resource, so implementations must be idempotent.

Storage is not a hook: one :class:`~scim_service.backend.Backend` is chosen by name, so two installed
backends can never both answer. Plugins only *declare* backends through ``scim_register_backends``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from scim_service.model import GroupRecord, Member, Tenant, UserRecord

if TYPE_CHECKING:
    import click

    from scim_service.backend import Backend

PROJECT = "scim_service"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class AuthRequest:
    """What an authentication hook sees of a request: plain data, no Flask objects.

    ``headers`` keys are lower-case. A host app that needs more (its session) may read its own
    framework's request context inside its hook implementation.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    remote_addr: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant whose data the request sees, and how it authenticated.

    ``token_id`` names the bearer token (for the provisioning log); ``user_id`` names the SCIM user the
    caller is, when the host's authentication knows it (it enables ``/Me``). ``profile`` is the
    organization's IdP profile setting when the authentication read it with the organization (the
    service's tokens do), so a request reads its organization once; None: the service looks it up.
    """

    tenant: Tenant
    token_id: str | None = None
    user_id: str | None = None
    label: str | None = None
    profile: str | None = None


@hookspec
def scim_register_backends() -> list[type[Backend]]:  # type: ignore[empty-body]
    """Return the Backend classes this plugin provides. Each class's ``name`` must be unique among
    all installed plugins; ``SCIM_BACKEND`` selects one by that name."""


@hookspec(firstresult=True)
def scim_authenticate(request: AuthRequest, config: Mapping[str, Any]) -> Principal | None:  # type: ignore[empty-body]
    """Authenticate a request. Return a Principal, or None to let the next plugin try.

    The first non-None answer wins. The built-in bearer-token plugin is marked ``trylast``, so every
    other implementation (a host app's sessions or API keys) is asked before it; mark yours
    ``tryfirst`` to run before other plugins too. Raise ``Unauthorized`` to refuse outright
    (for example a revoked token). When every plugin returns None the request gets 401.
    """


@hookspec(firstresult=True)
def scim_admin_authenticate(request: AuthRequest, config: Mapping[str, Any]) -> str | None:  # type: ignore[empty-body]
    """Admit a request to the admin web page (``SCIM_ADMIN_PATH``): return the administrator's name, or
    None to leave the request to the password login (``SCIM_ADMIN_PASSWORD``) if there is one.

    Implementing this hook switches the admin page on even without a password: that is how a host app
    puts the page behind its own login (read its session inside the hook). The page never accepts a
    SCIM bearer token; an implementation must not admit a request because of one either. The first
    non-None answer wins.
    """


@hookspec
def scim_user_created(tenant: Tenant, user: UserRecord) -> None:
    """A user was created (POST that did not match an existing user)."""


@hookspec
def scim_user_updated(tenant: Tenant, user: UserRecord) -> None:
    """A user's attributes changed (PUT or PATCH), whatever else also happened."""


@hookspec
def scim_user_deactivated(tenant: Tenant, user: UserRecord) -> None:
    """A user went from active to inactive (PATCH/PUT active=false, or DELETE): end its sessions."""


@hookspec
def scim_user_reactivated(tenant: Tenant, user: UserRecord) -> None:
    """An inactive or soft-deleted user became active again (POST matching it, PUT or PATCH)."""


@hookspec
def scim_user_deleted(tenant: Tenant, user_id: str, hard: bool) -> None:
    """A user was deleted: ``hard`` False for a soft delete (record kept, invisible to SCIM)."""


@hookspec
def scim_group_changed(tenant: Tenant, group: GroupRecord | None, group_id: str, action: str) -> None:
    """A group was created, replaced, patched or deleted (``action``: created, updated, deleted);
    ``group`` is None after a delete."""


@hookspec
def scim_members_changed(tenant: Tenant, group_id: str, added: tuple[Member, ...], removed: tuple[str, ...]) -> None:
    """Group membership changed by these deltas (``removed`` holds member ids; a cleared group lists
    none, ``scim_group_changed`` tells of it)."""


@hookspec
def scim_register_commands(cli: click.Group) -> None:
    """Add commands to the ``scim-service`` command line."""
