"""Bulk operations (RFC 7644 §3.7), executed through the same lifecycle as single requests.

Every operation obeys the product rules a single request would (seats, uniqueness, reactivation,
tenant isolation), because each one is one lifecycle call. ``bulkId:<id>`` references anywhere in an
operation's data or path are replaced by the id of the resource the earlier operation created; an
operation that refers to a bulkId created later in the request waits until it exists (RFC 7644
§3.7.1 lets the client order operations freely); one caught in a cycle of references fails with
``invalidValue``. A reference to a bulkId that no operation defines, a bulkId that is not a string or
is given twice, and an operation that is not an object are a 400 for the whole request before any
operation runs. Operations run in order, one transaction each: a failure does not undo earlier
successes, and ``failOnErrors`` stops processing after that many errors (§3.7.3).

The envelope and each operation's own keys were parsed at the edge
(:func:`scim_service.schemas.messages.load_bulk_request`); this module runs the operations.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scim_service.errors import InvalidValue, ScimError
from scim_service.lifecycle import Lifecycle
from scim_service.model import GroupRecord, Tenant, UserRecord
from scim_service.profiles import ActiveProfile
from scim_service.schemas.messages import (
    BULK_RESPONSE_SCHEMA,
    BulkOperation,
    BulkRequest,
    bulk_reference,
    load_patch_op,
)
from scim_service.schemas.resources import load_group, load_user

_PATH = re.compile(r"^/(Users|Groups)(?:/([^/]+))?$")


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


def run_bulk(
    lifecycle: Lifecycle,
    tenant: Tenant,
    request: BulkRequest,
    *,
    profile: ActiveProfile | None = None,
    on_result: Callable[[BulkResult], None] | None = None,
) -> list[BulkResult]:
    """Execute the parsed request's operations and return one result per operation that ran, in
    request order. ``profile`` is the request's IdP profile; every operation is read with its
    tolerances. An operation's data is parsed when it runs (after its bulkId references are resolved),
    by the same loaders as a single request, before the lifecycle is called.

    Operations run in request order, except that one referring to a bulkId whose operation has not
    run yet waits for it: it is parked on that bulkId and run as soon as the operation defining it
    has run. Each operation is looked at a bounded number of times, so a chain of 1,000 references
    costs 1,000 runs, not a million attempts. What is still parked at the end waits on a cycle.
    """
    fail_on_errors = request.fail_on_errors
    created: dict[str, tuple[str, str]] = {}  # bulkId -> (resource type, id)
    ran: set[str] = set()  # bulkIds whose operation has run, with or without success
    parked: dict[str, list[BulkOperation]] = {}  # bulkId -> the operations waiting for it
    results: dict[int, BulkResult] = {}
    errors = 0

    def run(item: BulkOperation) -> None:
        nonlocal errors
        waiting_on = next((ref for ref in sorted(item.references) if ref not in ran), None)
        if waiting_on is not None:
            parked.setdefault(waiting_on, []).append(item)
            return
        missing = next((ref for ref in sorted(item.references) if ref not in created), None)
        if missing is not None:
            result = _error_result(
                item, InvalidValue(f"bulkId '{missing}' names an operation of this request that failed.")
            )
        else:
            result = _run_one(lifecycle, tenant, item, created, profile)
        results[item.index] = result
        if result.error is not None:
            errors += 1
        elif result.bulk_id and result.resource_id and result.resource_type:
            created[result.bulk_id] = (result.resource_type, result.resource_id)
        if on_result is not None:
            on_result(result)
        if item.bulk_id is not None:
            ran.add(item.bulk_id)
            ready.extend(parked.pop(item.bulk_id, ()))

    ready: deque[BulkOperation] = deque()
    for operation in request.operations:
        ready.append(operation)
        while ready and not _stopped(errors, fail_on_errors):
            run(ready.popleft())  # FIFO: woken operations keep their request order
    if not _stopped(errors, fail_on_errors):
        for item in sorted((op for ops in parked.values() for op in ops), key=lambda op: op.index):
            results[item.index] = _error_result(item, InvalidValue("The operation's bulkId references form a cycle."))
    return [results[i] for i in sorted(results)]


def _error_result(operation: BulkOperation, error: ScimError) -> BulkResult:
    return BulkResult(method=operation.method, bulk_id=operation.bulk_id, status=error.status, error=error)


def _stopped(errors: int, fail_on_errors: int | None) -> bool:
    return fail_on_errors is not None and errors >= fail_on_errors


def _run_one(
    lifecycle: Lifecycle,
    tenant: Tenant,
    operation: BulkOperation,
    created: dict[str, tuple[str, str]],
    profile: ActiveProfile | None,
) -> BulkResult:
    if operation.error is not None:
        return _error_result(operation, operation.error)
    method, bulk_id = operation.method, operation.bulk_id
    try:
        path = _resolve(operation.path, created)
        match = _PATH.match(path) if isinstance(path, str) else None
        if match is None:
            raise InvalidValue(f"Operation path {operation.path!r} is not /Users, /Groups or one of their ids.")
        kind, resource_id = match.group(1), match.group(2)
        data = _resolve(operation.data, created)
        version = operation.version
        if method == "POST":
            if resource_id is not None or not bulk_id:
                raise InvalidValue("A bulk POST needs a bulkId and a path of /Users or /Groups.")
            record, status = _create(lifecycle, tenant, kind, data, profile)
        elif resource_id is None:
            raise InvalidValue(f"A bulk {method} needs a path naming one resource.")
        elif method == "PUT":
            record, status = _replace(lifecycle, tenant, kind, resource_id, data, version, profile), 200
        elif method == "PATCH":
            operations = load_patch_op(data, profile)  # parsed before the store is read
            if kind == "Users":
                record = lifecycle.patch_user(tenant, resource_id, operations, if_match=version, profile=profile)
            else:  # the BulkResponse carries no body: never read the member list
                record = lifecycle.patch_group(
                    tenant, resource_id, operations, if_match=version, profile=profile, include_members=False
                )
            status = 200
        else:  # DELETE: the methods were checked when the request was parsed
            deleter = lifecycle.delete_user if kind == "Users" else lifecycle.delete_group
            deleter(tenant, resource_id, if_match=version)
            return BulkResult(method, bulk_id, 204, kind, resource_id)
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
    """Replace ``bulkId:x`` strings (whole values, or the id segment of a path) by created ids; every
    reference was created before the operation runs (see :func:`run_bulk`)."""
    if isinstance(value, str):
        ref = bulk_reference(value)
        if ref is None:
            return value
        if value.startswith("/"):
            return f"{value.rpartition('/')[0]}/{created[ref][1]}"
        return created[ref][1]
    if isinstance(value, list):
        return [_resolve(v, created) for v in value]
    if isinstance(value, Mapping):
        return {k: _resolve(v, created) for k, v in value.items()}
    return value


__all__ = ["BULK_RESPONSE_SCHEMA", "BulkResult", "run_bulk"]
