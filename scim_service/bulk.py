"""Bulk operations (RFC 7644 §3.7), executed through the same lifecycle as single requests.

Every operation obeys the product rules a single request would (seats, uniqueness, reactivation,
tenant isolation), because each one is one lifecycle call. ``bulkId:<id>`` references anywhere in an
operation's data or path are replaced by the id of the resource the earlier operation created; an
operation that refers to a bulkId created later in the request waits until it exists (RFC 7644
§3.7.1 lets the client order operations freely), and one that can never be resolved fails with
``invalidValue``. Operations run in order, one transaction each: a failure does not undo earlier
successes, and ``failOnErrors`` stops processing after that many errors (§3.7.3).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scim_service.errors import InvalidSyntax, InvalidValue, PayloadTooLarge, ScimError
from scim_service.lifecycle import Lifecycle
from scim_service.model import GroupRecord, Tenant, UserRecord
from scim_service.profiles import ActiveProfile
from scim_service.schemas.resources import load_group, load_user

BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_PATH = re.compile(r"^/(Users|Groups)(?:/([^/]+))?$")
_BULK_REF = re.compile(r"^bulkId:(.+)$")


@dataclass
class BulkResult:
    """The outcome of one operation, as the BulkResponse reports it."""

    method: str
    bulk_id: str | None
    status: int
    resource_type: str | None = None
    resource_id: str | None = None
    version: str | None = None
    error: ScimError | None = None


@dataclass
class _Pending:
    index: int
    operation: Mapping[str, Any]


class _Unresolved(Exception):
    def __init__(self, bulk_id: str) -> None:
        super().__init__(bulk_id)
        self.bulk_id = bulk_id


def parse_bulk_request(body: Any, *, max_operations: int) -> tuple[list[Mapping[str, Any]], int | None]:
    """Check the BulkRequest envelope; return its operations and failOnErrors (None: never stop)."""
    if not isinstance(body, Mapping):
        raise InvalidSyntax("A BulkRequest must be a JSON object.")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or BULK_REQUEST_SCHEMA not in schemas:
        raise InvalidValue(f"A BulkRequest must list '{BULK_REQUEST_SCHEMA}' in schemas.")
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax("A BulkRequest needs a non-empty 'Operations' list.")
    if len(operations) > max_operations:
        raise PayloadTooLarge(
            f"The BulkRequest has {len(operations)} operations; this server accepts at most {max_operations}."
        )
    fail_on_errors = body.get("failOnErrors")
    if fail_on_errors is not None and (
        isinstance(fail_on_errors, bool) or not isinstance(fail_on_errors, int) or fail_on_errors < 1
    ):
        raise InvalidValue("failOnErrors must be a positive integer.")
    return operations, fail_on_errors


def run_bulk(
    lifecycle: Lifecycle,
    tenant: Tenant,
    operations: list[Mapping[str, Any]],
    fail_on_errors: int | None,
    *,
    profile: ActiveProfile | None = None,
    on_result: Callable[[BulkResult], None] | None = None,
) -> list[BulkResult]:
    """Execute the operations and return one result per operation that ran, in request order.
    ``profile`` is the request's IdP profile; every operation is read with its tolerances."""
    created: dict[str, tuple[str, str]] = {}  # bulkId -> (resource type, id)
    results: dict[int, BulkResult] = {}
    pending = [_Pending(i, op) for i, op in enumerate(operations)]
    errors = 0

    def stopped() -> bool:
        return fail_on_errors is not None and errors >= fail_on_errors

    while pending and not stopped():
        waiting: list[_Pending] = []
        for item in pending:
            if stopped():
                break
            try:
                result = _run_one(lifecycle, tenant, item.operation, created, profile)
            except _Unresolved as missing:
                if _defined_later(missing.bulk_id, pending, item):
                    waiting.append(item)
                    continue
                error = InvalidValue(f"bulkId '{missing.bulk_id}' does not name another operation of this request.")
                result = _error_result(item.operation, error)
            results[item.index] = result
            if result.error is not None:
                errors += 1
            elif result.bulk_id and result.resource_id and result.resource_type:
                created[result.bulk_id] = (result.resource_type, result.resource_id)
            if on_result is not None:
                on_result(result)
        if len(waiting) == len(pending):  # nothing ran: the remaining operations wait on each other
            for item in waiting:
                results[item.index] = _error_result(
                    item.operation, InvalidValue("The operation's bulkId references form a cycle.")
                )
            break
        pending = waiting
    return [results[i] for i in sorted(results)]


def _defined_later(bulk_id: str, pending: list[_Pending], waiting: _Pending) -> bool:
    return any(p is not waiting and p.operation.get("bulkId") == bulk_id for p in pending)


def _error_result(operation: Mapping[str, Any], error: ScimError) -> BulkResult:
    method = str(operation.get("method", "")).upper() if isinstance(operation, Mapping) else ""
    bulk_id = operation.get("bulkId") if isinstance(operation, Mapping) else None
    return BulkResult(method=method, bulk_id=bulk_id, status=error.status, error=error)


def _run_one(
    lifecycle: Lifecycle,
    tenant: Tenant,
    operation: Mapping[str, Any],
    created: dict[str, tuple[str, str]],
    profile: ActiveProfile | None,
) -> BulkResult:
    if not isinstance(operation, Mapping):
        return BulkResult(method="", bulk_id=None, status=400, error=InvalidSyntax("An operation must be an object."))
    method = str(operation.get("method", "")).upper()
    bulk_id = operation.get("bulkId")
    try:
        path = _resolve(operation.get("path"), created)
        match = _PATH.match(path) if isinstance(path, str) else None
        if match is None:
            raise InvalidValue(f"Operation path {operation.get('path')!r} is not /Users, /Groups or one of their ids.")
        kind, resource_id = match.group(1), match.group(2)
        data = _resolve(operation.get("data"), created)
        version = _etag_version(operation.get("version"))
        if method == "POST":
            if resource_id is not None or not bulk_id:
                raise InvalidValue("A bulk POST needs a bulkId and a path of /Users or /Groups.")
            record, status = _create(lifecycle, tenant, kind, data, profile)
        elif resource_id is None:
            raise InvalidValue(f"A bulk {method} needs a path naming one resource.")
        elif method == "PUT":
            record, status = _replace(lifecycle, tenant, kind, resource_id, data, version, profile), 200
        elif method == "PATCH":
            if not isinstance(data, Mapping):
                raise InvalidSyntax("A bulk PATCH needs a PatchOp object as data.")
            if kind == "Users":
                record = lifecycle.patch_user(tenant, resource_id, data, if_match=version, profile=profile)
            else:  # the BulkResponse carries no body: never read the member list
                record = lifecycle.patch_group(
                    tenant, resource_id, data, if_match=version, profile=profile, include_members=False
                )
            status = 200
        elif method == "DELETE":
            deleter = lifecycle.delete_user if kind == "Users" else lifecycle.delete_group
            deleter(tenant, resource_id, if_match=version)
            return BulkResult(method, bulk_id, 204, kind, resource_id)
        else:
            raise InvalidValue(f"Unknown bulk method {method!r}: use POST, PUT, PATCH or DELETE.")
    except _Unresolved:
        raise
    except ScimError as error:
        return BulkResult(method, bulk_id, error.status, error=error)
    return BulkResult(method, bulk_id, status, kind, record.id, record.version)


def _create(
    lifecycle: Lifecycle, tenant: Tenant, kind: str, data: Any, profile: ActiveProfile | None
) -> tuple[UserRecord | GroupRecord, int]:
    if kind == "Users":
        loaded_user = load_user(data, profile=profile, resource=lifecycle.user_resource)
        user, was_created = lifecycle.create_user(tenant, loaded_user.data)
        return user, 201 if was_created else 200
    loaded = load_group(data, profile=profile, resource=lifecycle.group_resource)
    return lifecycle.create_group(tenant, loaded.data, loaded.members), 201


def _replace(
    lifecycle: Lifecycle,
    tenant: Tenant,
    kind: str,
    resource_id: str,
    data: Any,
    version: str | None,
    profile: ActiveProfile | None,
) -> UserRecord | GroupRecord:
    if kind == "Users":
        loaded_user = load_user(data, profile=profile, resource=lifecycle.user_resource)
        return lifecycle.replace_user(tenant, resource_id, loaded_user.data, if_match=version)
    loaded = load_group(data, profile=profile, resource=lifecycle.group_resource)
    return lifecycle.replace_group(tenant, resource_id, loaded.data, loaded.members, if_match=version)


def _resolve(value: Any, created: dict[str, tuple[str, str]]) -> Any:
    """Replace ``bulkId:x`` strings (whole values, or the id segment of a path) by created ids."""
    if isinstance(value, str):
        if "bulkId:" not in value:
            return value
        if value.startswith("/"):
            head, _, tail = value.rpartition("/")
            return f"{head}/{_resolve(tail, created)}"
        match = _BULK_REF.match(value)
        if match is None:
            return value
        found = created.get(match.group(1))
        if found is None:
            raise _Unresolved(match.group(1))
        return found[1]
    if isinstance(value, list):
        return [_resolve(v, created) for v in value]
    if isinstance(value, Mapping):
        return {k: _resolve(v, created) for k, v in value.items()}
    return value


def _etag_version(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    return text.strip('"')


__all__ = [
    "BULK_REQUEST_SCHEMA",
    "BULK_RESPONSE_SCHEMA",
    "BulkResult",
    "parse_bulk_request",
    "run_bulk",
]
