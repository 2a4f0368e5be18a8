"""Discovery endpoints (RFC 7644 §4): what this server and this tenant's backend really support.

The schemas and resource types are the app's own (``ScimState.resource_types``): the base definitions
plus the extensions an operator declared in ``SCIM_SCHEMA_EXTENSIONS_FILE``.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from scim_service.api.blueprint import LIST_SCHEMA, base_url, bp, dispatch, scim_response, state
from scim_service.errors import NotFound
from scim_service.schemas.discovery import resource_type_documents, schema_documents, service_provider_config

READ_ONLY = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _list(resources: list[dict[str, Any]]) -> Response:
    return scim_response(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": len(resources),
            "itemsPerPage": len(resources),
            "startIndex": 1,
            "Resources": resources,
        }
    )


def _find(resources: list[dict[str, Any]], ident: str, what: str) -> Response:
    for resource in resources:
        if resource["id"] == ident or (what == "ResourceType" and resource["name"] == ident):
            return scim_response(resource)
    raise NotFound(f"No {what} with id '{ident}'.")


@bp.route("/ServiceProviderConfig", methods=READ_ONLY)
def service_provider_config_endpoint() -> Response:
    def get() -> Response:
        st = state()
        capabilities = st.backend.capabilities
        max_results = min(st.config["SCIM_MAX_PAGE_SIZE"], capabilities.max_results)
        bulk = {
            "supported": True,
            "maxOperations": st.config["SCIM_BULK_MAX_OPERATIONS"],
            "maxPayloadSize": st.config["SCIM_BULK_MAX_PAYLOAD_BYTES"],
        }
        # Cursors hold no server state and never expire, so no cursorTimeout is advertised.
        document = service_provider_config(
            base_url(),
            capabilities,
            max_results=max_results,
            bulk=bulk,
            default_page_size=st.config["SCIM_DEFAULT_PAGE_SIZE"],
        )
        return scim_response(document)

    return dispatch({"GET": get})


@bp.route("/Schemas", methods=READ_ONLY)
def schemas_endpoint() -> Response:
    return dispatch({"GET": lambda: _list(schema_documents(base_url(), state().resource_types))})


@bp.route("/Schemas/<schema_id>", methods=READ_ONLY)
def schema_endpoint(schema_id: str) -> Response:
    return dispatch({"GET": lambda: _find(schema_documents(base_url(), state().resource_types), schema_id, "Schema")})


@bp.route("/ResourceTypes", methods=READ_ONLY)
def resource_types_endpoint() -> Response:
    return dispatch({"GET": lambda: _list(resource_type_documents(base_url(), state().resource_types))})


@bp.route("/ResourceTypes/<type_id>", methods=READ_ONLY)
def resource_type_endpoint(type_id: str) -> Response:
    return dispatch(
        {"GET": lambda: _find(resource_type_documents(base_url(), state().resource_types), type_id, "ResourceType")}
    )
