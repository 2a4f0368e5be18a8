"""POST /Bulk (RFC 7644 §3.7): limits and the BulkRequest envelope at the edge, then the core runs each operation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from scim_service.api.http import METHODS, base_url, dispatch, error_body, json_body, principal, scim_response, state
from scim_service.api.resources import active_profile
from scim_service.bulk import BULK_RESPONSE_SCHEMA, run_bulk
from scim_service.errors import PayloadTooLarge
from scim_service.schemas.messages import load_bulk_request
from scim_service.schemas.render import etag


def _bulk() -> Response:
    config = state().config
    limit = config["SCIM_BULK_MAX_PAYLOAD_BYTES"]
    if (request.content_length is not None and request.content_length > limit) or len(request.get_data()) > limit:
        raise PayloadTooLarge(f"The BulkRequest is larger than maxPayloadSize ({limit} bytes).")
    parsed = load_bulk_request(json_body(), max_operations=config["SCIM_BULK_MAX_OPERATIONS"])
    results = run_bulk(state().lifecycle, principal().tenant, parsed, profile=active_profile())
    base = base_url()
    answers: list[dict[str, Any]] = []
    for result in results:
        answer: dict[str, Any] = {"method": result.method, "status": str(result.status)}
        if result.bulk_id:
            answer["bulkId"] = result.bulk_id
        if result.resource_id and result.resource_type:
            answer["location"] = f"{base}/{result.resource_type}/{result.resource_id}"
        if result.version:
            answer["version"] = etag(result.version)
        if result.error is not None:
            answer["response"] = error_body(result.error)
        answers.append(answer)
    return scim_response({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": answers})


def bulk() -> Response:
    """/Bulk: POST only."""
    return dispatch({"POST": _bulk})


def add_routes(bp: Blueprint) -> None:
    """Add /Bulk to ``bp`` (endpoint ``bulk``: the blueprint gives it the larger body limit)."""
    bp.add_url_rule("/Bulk", view_func=bulk, methods=METHODS)
