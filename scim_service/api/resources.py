"""/Users, /Groups and /Me: parse at the edge, hand to the lifecycle, render and project the answer.

Every handler parses all of its input before the first call that reaches the store: the query-string
parameters (a list's :func:`~scim_service.query.params.parse_list_params`, a single resource's
:func:`~scim_service.query.params.parse_projection`, which reads only ``attributes`` and
``excludedAttributes``), and the body (a resource through :mod:`scim_service.schemas.resources`, a
PatchOp or SearchRequest through :mod:`scim_service.schemas.messages`). A malformed request is answered
without a backend call.

Each write resolves the request's IdP profile once (:func:`active_profile`: the organization's setting,
or detection from the User-Agent when it is ``auto``) and passes it down to the loading and PATCH code;
the tolerances that fire are stored with the request's provisioning log entry. The resource types are
the app's own (``ScimState.resource_types``), so configured schema extensions are validated, filtered,
patched and projected like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flask import Blueprint, Response, g, request

from scim_service.api.http import (
    LIST_SCHEMA,
    METHODS,
    dispatch,
    if_match,
    if_none_match,
    json_body,
    principal,
    scim_response,
    state,
)
from scim_service.api.http import base_url as scim_base_url
from scim_service.errors import InvalidCursor, InvalidFilter, InvalidValue, NotImplementedByServer, ScimError
from scim_service.model import GroupRecord, Page, UserRecord
from scim_service.profiles import ActiveProfile, resolve
from scim_service.query.params import ListRequest, Projection, list_request, parse_list_params, parse_projection
from scim_service.schemas.definitions import ResourceTypeDef
from scim_service.schemas.messages import load_patch_op, load_search_request
from scim_service.schemas.projection import project
from scim_service.schemas.render import etag, render_group, render_user
from scim_service.schemas.resources import load_group, load_user

Record = UserRecord | GroupRecord


@dataclass(frozen=True)
class Kind:
    """What differs between /Users and /Groups for the shared handlers below."""

    name: str
    render: Callable[[Any, str], dict[str, Any]]

    @property
    def resource(self) -> ResourceTypeDef:
        """This app's resource type (with its configured schema extensions)."""
        st = state()
        return st.user_resource if self.name == "User" else st.group_resource


USERS = Kind("User", render_user)
GROUPS = Kind("Group", render_group)


def active_profile() -> ActiveProfile:
    """The IdP profile of this request, resolved once: the organization's setting, or (``auto``) the
    profile its User-Agent or Entra's ``aadOptscim062020`` flag names reliably, else ``generic``.

    Kept in ``g.scim_profile`` so the blueprint stores the tolerances that fired in the provisioning log.
    """
    found: ActiveProfile | None = g.get("scim_profile")
    if found is None:
        # Authentication by the service's tokens read the setting with the organization; a host app's
        # own authentication may not have: then it is looked up.
        setting = principal().profile or state().store.profile_of(principal().tenant.id)
        profile = resolve(setting, request.headers.get("User-Agent"), tuple(request.args.keys()))
        found = ActiveProfile(profile, label=f"{request.method} {request.path}")
        g.scim_profile = found
    return found


def patch_no_content(profile: ActiveProfile, kind: Kind) -> bool:
    """Whether a PATCH answers 204 No Content rather than 200 with the resource: the one place this is
    decided (RFC 7644 §3.5.2 allows both).

    Groups: ``auto``, ``okta`` and ``entra`` (whose clients accept 204) get 204 without reading the
    members, so a membership change costs what the change costs; ``generic`` and the other profiles get
    200 with the group, members included (a read of the member list). Users: 204 under ``entra`` (what
    Microsoft's validator expects), 200 with the user elsewhere. ``attributes``/``excludedAttributes``
    always give 200, and ``excludedAttributes=members`` (or ``attributes`` without members) never reads
    the members.
    """
    asked = {name.lower() for name in request.args} & {"attributes", "excludedattributes"}
    if asked:
        return False
    if kind is GROUPS:
        return profile.profile.group_patch_no_content
    return profile.profile.user_patch_no_content


def _projection(kind: Kind) -> Projection:
    """The single resource's ``attributes``/``excludedAttributes`` (other list parameters are ignored)."""
    return parse_projection(request.args, kind.resource)


def _list_request(kind: Kind) -> ListRequest:
    return parse_list_params(
        request.args,
        kind.resource,
        default_count=state().config["SCIM_DEFAULT_PAGE_SIZE"],
        max_count=state().max_results,
        profile=active_profile(),
    )


def _one(kind: Kind, record: Record, projection: Projection, status: int = 200) -> Response:
    """A single resource with its ETag, projected as the request asked."""
    document = kind.render(record, scim_base_url())
    headers = {"ETag": etag(record.version)}
    if status == 201:
        headers["Location"] = document["meta"]["location"]
    projected = project(document, kind.resource, projection.attributes, projection.excluded_attributes)
    return scim_response(projected, status, headers)


def _rendered(kind: Kind, records: list[Any], req: ListRequest, base: str) -> list[dict[str, Any]]:
    return [project(kind.render(r, base), kind.resource, req.attributes, req.excluded_attributes) for r in records]


def _page(kind: Kind, page: Page[Any], req: ListRequest) -> Response:
    resources = _rendered(kind, page.resources, req, scim_base_url())
    return _list_response(resources, page.total_results, page.start_index, req, page.next_cursor)


def _list_response(
    resources: list[dict[str, Any]], total: int, start_index: int, req: ListRequest, next_cursor: str | None = None
) -> Response:
    """A ListResponse. Index paging carries startIndex; cursor paging (RFC 9865) carries nextCursor
    instead, absent on the last page."""
    body: dict[str, Any] = {"schemas": [LIST_SCHEMA], "totalResults": total, "itemsPerPage": len(resources)}
    if req.query.cursor is None:
        body["startIndex"] = start_index
    elif next_cursor:
        body["nextCursor"] = next_cursor
    body["Resources"] = resources
    return scim_response(body)


# -- users ----------------------------------------------------------------------------------------------


def _list_users(req: ListRequest | None = None) -> Response:
    req = req or _list_request(USERS)
    return _page(USERS, state().lifecycle.list_users(principal().tenant, req.query), req)


def _create_user() -> Response:
    projection = _projection(USERS)
    loaded = load_user(json_body(), profile=active_profile(), resource=USERS.resource)
    user, created = state().lifecycle.create_user(principal().tenant, loaded.data)
    if not created:
        user = state().lifecycle.get_user(principal().tenant, user.id)
    return _one(USERS, user, projection, 201 if created else 200)


def _get_user(user_id: str) -> Response:
    active_profile()  # resolved for the provisioning log, which names each request's profile
    projection = _projection(USERS)
    user = state().lifecycle.get_user(principal().tenant, user_id, include_groups=projection.include_groups)
    if if_none_match() == user.version:
        return scim_response(None, 304, {"ETag": etag(user.version)})
    return _one(USERS, user, projection)


def _replace_user(user_id: str) -> Response:
    projection = _projection(USERS)
    loaded = load_user(json_body(), profile=active_profile(), resource=USERS.resource)
    user = state().lifecycle.replace_user(principal().tenant, user_id, loaded.data, if_match=if_match())
    return _one(USERS, user, projection)


def _patch_user(user_id: str) -> Response:
    projection = _projection(USERS)
    body = json_body()
    profile = active_profile()
    operations = load_patch_op(body, profile)
    user = state().lifecycle.patch_user(principal().tenant, user_id, operations, if_match=if_match(), profile=profile)
    if patch_no_content(profile, USERS):
        return scim_response(None, 204, {"ETag": etag(user.version)})
    return _one(USERS, user, projection)


def _delete_user(user_id: str) -> Response:
    active_profile()  # resolved for the provisioning log, which names each request's profile
    state().lifecycle.delete_user(principal().tenant, user_id, if_match=if_match())
    return scim_response(None, 204)


# -- groups ---------------------------------------------------------------------------------------------


def _list_groups(req: ListRequest | None = None) -> Response:
    req = req or _list_request(GROUPS)
    return _page(GROUPS, state().lifecycle.list_groups(principal().tenant, req.query), req)


def _create_group() -> Response:
    projection = _projection(GROUPS)
    loaded = load_group(json_body(), profile=active_profile(), resource=GROUPS.resource)
    group = state().lifecycle.create_group(principal().tenant, loaded.data, loaded.members)
    return _one(GROUPS, group, projection, 201)


def _get_group(group_id: str) -> Response:
    active_profile()  # resolved for the provisioning log, which names each request's profile
    projection = _projection(GROUPS)
    group = state().lifecycle.get_group(principal().tenant, group_id, include_members=projection.include_members)
    if if_none_match() == group.version:
        return scim_response(None, 304, {"ETag": etag(group.version)})
    return _one(GROUPS, group, projection)


def _replace_group(group_id: str) -> Response:
    projection = _projection(GROUPS)
    loaded = load_group(json_body(), profile=active_profile(), resource=GROUPS.resource)
    group = state().lifecycle.replace_group(
        principal().tenant, group_id, loaded.data, loaded.members, if_match=if_match()
    )
    return _one(GROUPS, group, projection)


def _patch_group(group_id: str) -> Response:
    """RFC 7644 §3.5.2 PATCH; :func:`patch_no_content` picks the answer."""
    projection = _projection(GROUPS)
    body = json_body()
    profile = active_profile()
    operations = load_patch_op(body, profile)
    no_content = patch_no_content(profile, GROUPS)
    group = state().lifecycle.patch_group(
        principal().tenant,
        group_id,
        operations,
        if_match=if_match(),
        include_members=False if no_content else projection.include_members,
        profile=profile,
    )
    if no_content:
        return scim_response(None, 204, {"ETag": etag(group.version)})
    return _one(GROUPS, group, projection)


def _delete_group(group_id: str) -> Response:
    active_profile()  # resolved for the provisioning log, which names each request's profile
    state().lifecycle.delete_group(principal().tenant, group_id, if_match=if_match())
    return scim_response(None, 204)


# -- search ---------------------------------------------------------------------------------------------


def _search(kind: Kind) -> Response:
    req = list_request(
        load_search_request(json_body()),
        kind.resource,
        default_count=state().config["SCIM_DEFAULT_PAGE_SIZE"],
        max_count=state().max_results,
        profile=active_profile(),
    )
    return _list_users(req) if kind is USERS else _list_groups(req)


def _root_search() -> Response:
    """POST /.search across resource types (RFC 7644 §3.4.3).

    The SearchRequest is checked once, then its parameters are resolved for each resource type. A
    filter (or sortBy) that names attributes only one type has selects from that type only; one that
    neither type knows is a 400. The result is the matching users (sorted as asked) followed by the
    matching groups (sorted as asked): totalResults is the exact sum of both counts, and
    startIndex/count page over that concatenation, so a page may hold the last users and the first
    groups. Cursor paging is offered on /Users and /Groups, not here.
    """
    params = load_search_request(json_body())
    parsed: list[tuple[Kind, ListRequest]] = []
    errors: list[ScimError] = []
    for kind in (USERS, GROUPS):
        try:
            req = list_request(
                params,
                kind.resource,
                default_count=state().config["SCIM_DEFAULT_PAGE_SIZE"],
                max_count=state().max_results,
                profile=active_profile(),
            )
        except (InvalidFilter, InvalidValue) as exc:
            errors.append(exc)
            continue
        parsed.append((kind, req))
    if not parsed:
        first = errors[0]
        raise type(first)(f"{first.detail} (it applies to neither Users nor Groups)")
    if parsed[0][1].query.cursor is not None:
        raise InvalidCursor("POST /.search pages by startIndex; cursor paging is available on /Users and /Groups.")
    tenant = principal().tenant
    lifecycle = state().lifecycle
    base = scim_base_url()
    start = parsed[0][1].query.start_index
    remaining = parsed[0][1].query.count
    offset = start - 1  # resources to skip over the concatenation
    total = 0
    resources: list[dict[str, Any]] = []
    for kind, req in parsed:
        lister = lifecycle.list_users if kind is USERS else lifecycle.list_groups
        # Count first (count=0 reads no rows), then read only the slice of this type the page needs.
        found = lister(tenant, replace(req.query, count=0)).total_results
        total += found
        if remaining > 0 and offset < found:
            page = lister(tenant, replace(req.query, start_index=offset + 1, count=remaining))
            resources += _rendered(kind, page.resources, req, base)
            remaining -= len(page.resources)
        offset = max(offset - found, 0)
    return _list_response(resources, total, start, parsed[0][1])


# -- routes ---------------------------------------------------------------------------------------------


def root_search() -> Response:
    """/.search: POST only."""
    return dispatch({"POST": _root_search})


def users() -> Response:
    """/Users: list (GET) and create (POST)."""
    return dispatch({"GET": _list_users, "POST": _create_user})


def users_search() -> Response:
    """/Users/.search: POST only."""
    return dispatch({"POST": lambda: _search(USERS)})


def user(user_id: str) -> Response:
    """/Users/{id}: GET, PUT, PATCH, DELETE."""
    return dispatch(
        {"GET": _get_user, "PUT": _replace_user, "PATCH": _patch_user, "DELETE": _delete_user}, user_id=user_id
    )


def groups() -> Response:
    """/Groups: list (GET) and create (POST)."""
    return dispatch({"GET": _list_groups, "POST": _create_group})


def groups_search() -> Response:
    """/Groups/.search: POST only."""
    return dispatch({"POST": lambda: _search(GROUPS)})


def group(group_id: str) -> Response:
    """/Groups/{id}: GET, PUT, PATCH, DELETE."""
    return dispatch(
        {"GET": _get_group, "PUT": _replace_group, "PATCH": _patch_group, "DELETE": _delete_group},
        group_id=group_id,
    )


def me() -> Response:
    """RFC 7644 §3.11: GET, served when the authentication names a user, otherwise 501."""
    return dispatch({"GET": _get_me})


def _get_me() -> Response:
    user_id = principal().user_id
    if user_id is None:
        raise NotImplementedByServer("/Me is not available: the bearer token names an organization, not a user.")
    return _get_user(user_id=user_id)


def add_routes(bp: Blueprint) -> None:
    """Add /Users, /Groups, /Me and the .search endpoints to ``bp``.

    Every method is routed so that an unsupported one gets a SCIM 405, not Flask's HTML page.
    ``strict_slashes=False`` serves /Users/ and /Groups/ too.
    """
    bp.add_url_rule("/.search", view_func=root_search, methods=METHODS)
    bp.add_url_rule("/Users", view_func=users, methods=METHODS, strict_slashes=False)
    bp.add_url_rule("/Users/.search", view_func=users_search, methods=METHODS)
    bp.add_url_rule("/Users/<user_id>", view_func=user, methods=METHODS)
    bp.add_url_rule("/Groups", view_func=groups, methods=METHODS, strict_slashes=False)
    bp.add_url_rule("/Groups/.search", view_func=groups_search, methods=METHODS)
    bp.add_url_rule("/Groups/<group_id>", view_func=group, methods=METHODS)
    bp.add_url_rule("/Me", view_func=me, methods=METHODS)
