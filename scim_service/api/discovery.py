"""Discovery endpoints (RFC 7644 §4): what this server and this tenant's backend really support.

The schemas and resource types are the app's own (``ScimState.resource_types``): the base definitions
plus the extensions an operator declared in ``SCIM_SCHEMA_EXTENSIONS_FILE``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from scim_service.api.http import LIST_SCHEMA, METHODS, base_url, dispatch, scim_response, state
from scim_service.errors import NotFound
from scim_service.schemas.discovery import resource_type_documents, schema_documents, service_provider_config


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


def service_provider_config_endpoint() -> Response:
    """GET /ServiceProviderConfig: what this server and its backend support."""

    def get() -> Response:
        st = state()
        capabilities = st.backend.capabilities
        max_results = st.max_results
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


def schemas_endpoint() -> Response:
    """GET /Schemas: every schema of the app's resource types."""
    return dispatch({"GET": lambda: _list(schema_documents(base_url(), state().resource_types))})


def schema_endpoint(schema_id: str) -> Response:
    """GET /Schemas/{id}."""
    return dispatch({"GET": lambda: _find(schema_documents(base_url(), state().resource_types), schema_id, "Schema")})


def resource_types_endpoint() -> Response:
    """GET /ResourceTypes: User and Group with their schema extensions."""
    return dispatch({"GET": lambda: _list(resource_type_documents(base_url(), state().resource_types))})


def resource_type_endpoint(type_id: str) -> Response:
    """GET /ResourceTypes/{id} (or its name)."""
    return dispatch(
        {"GET": lambda: _find(resource_type_documents(base_url(), state().resource_types), type_id, "ResourceType")}
    )


def add_routes(bp: Blueprint) -> None:
    """Add the discovery endpoints to ``bp`` (every method is routed; only GET is served)."""
    bp.add_url_rule("/ServiceProviderConfig", view_func=service_provider_config_endpoint, methods=METHODS)
    bp.add_url_rule("/Schemas", view_func=schemas_endpoint, methods=METHODS)
    bp.add_url_rule("/Schemas/<schema_id>", view_func=schema_endpoint, methods=METHODS)
    bp.add_url_rule("/ResourceTypes", view_func=resource_types_endpoint, methods=METHODS)
    bp.add_url_rule("/ResourceTypes/<type_id>", view_func=resource_type_endpoint, methods=METHODS)
