"""The discovery documents: /Schemas (RFC 7643 §7), /ResourceTypes (§6), /ServiceProviderConfig (§5).

All of them are generated from :mod:`scim_service.schemas.definitions` and from the capabilities of the
configured backend, so they describe exactly what this server does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scim_service.model import Capabilities
from scim_service.schemas.definitions import RESOURCE_TYPES, Attribute, ResourceTypeDef, Schema

SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


def attribute_document(attribute: Attribute) -> dict[str, Any]:
    """One attribute definition in the JSON form of RFC 7643 §7."""
    document: dict[str, Any] = {
        "name": attribute.name,
        "type": attribute.type,
        "multiValued": attribute.multi_valued,
        "description": attribute.description,
        "required": attribute.required,
        "caseExact": attribute.case_exact,
        "mutability": attribute.mutability,
        "returned": attribute.returned,
        "uniqueness": attribute.uniqueness,
    }
    if attribute.canonical_values:
        document["canonicalValues"] = list(attribute.canonical_values)
    if attribute.type == "reference":
        document["referenceTypes"] = list(attribute.reference_types)
    if attribute.type == "complex":
        document["subAttributes"] = [attribute_document(sub) for sub in attribute.sub_attributes]
    return document


def schema_document(schema: Schema, base_url: str) -> dict[str, Any]:
    """One /Schemas resource (RFC 7643 §7, in the form of the §8.7.1 examples)."""
    return {
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": [attribute_document(attribute) for attribute in schema.attributes],
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{schema.id}"},
    }


def schemas_of(resources: Sequence[ResourceTypeDef] = RESOURCE_TYPES) -> list[Schema]:
    """Every schema of ``resources``, each once: each resource's core schema followed by its extensions."""
    found: dict[str, Schema] = {}
    for resource in resources:
        for schema in resource.schemas:
            found.setdefault(schema.id, schema)
    return list(found.values())


def schema_documents(base_url: str, resources: Sequence[ResourceTypeDef] = RESOURCE_TYPES) -> list[dict[str, Any]]:
    """Every schema this server knows: User, EnterpriseUser, Group and the configured extensions of
    ``resources`` (the app's resource types). ``base_url`` has no trailing slash."""
    return [schema_document(schema, base_url) for schema in schemas_of(resources)]


def resource_type_document(resource: ResourceTypeDef, base_url: str) -> dict[str, Any]:
    """One /ResourceTypes resource (RFC 7643 §6)."""
    document: dict[str, Any] = {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": resource.id,
        "name": resource.name,
        "endpoint": resource.endpoint,
        "description": resource.description,
        "schema": resource.schema.id,
    }
    if resource.extensions:
        document["schemaExtensions"] = [
            {"schema": extension.id, "required": required} for extension, required in resource.extensions
        ]
    document["meta"] = {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/{resource.id}"}
    return document


def resource_type_documents(
    base_url: str, resources: Sequence[ResourceTypeDef] = RESOURCE_TYPES
) -> list[dict[str, Any]]:
    """The User and Group resource types (the app's, with their extensions). ``base_url`` has no trailing slash."""
    return [resource_type_document(resource, base_url) for resource in resources]


def service_provider_config(
    base_url: str,
    capabilities: Capabilities,
    *,
    patch: bool = True,
    bulk: dict[str, Any] | None = None,
    change_password: bool = False,
    max_results: int,
    documentation_uri: str | None = None,
    default_page_size: int | None = None,
    cursor_timeout: int | None = None,
) -> dict[str, Any]:
    """The /ServiceProviderConfig document (RFC 7643 §5) for a server using a backend with ``capabilities``.

    ``max_results`` is the server's page-size limit; the advertised value never exceeds the backend's
    own ``capabilities.max_results``. ``bulk`` defaults to unsupported. When the backend can page with
    cursors, the ``pagination`` object of RFC 9865 §4 says so (index paging is always available);
    ``default_page_size`` and ``cursor_timeout`` (seconds) are added to it when given.
    """
    limit = min(max_results, capabilities.max_results)
    document: dict[str, Any] = {"schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA]}
    if documentation_uri:
        document["documentationUri"] = documentation_uri
    document.update(
        {
            "patch": {"supported": patch},
            "bulk": dict(bulk) if bulk is not None else {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": capabilities.filter, "maxResults": limit},
            "changePassword": {"supported": change_password},
            "sort": {"supported": capabilities.sort},
            "etag": {"supported": capabilities.etag},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": "Send the organization's API token in the header 'Authorization: Bearer <token>'.",
                    "specUri": "https://www.rfc-editor.org/info/rfc6750",
                    "primary": True,
                }
            ],
        }
    )
    if capabilities.cursor:
        pagination: dict[str, Any] = {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "maxPageSize": limit,
        }
        if default_page_size is not None:
            pagination["defaultPageSize"] = default_page_size
        if cursor_timeout is not None:
            pagination["cursorTimeout"] = cursor_timeout
        document["pagination"] = pagination
    document["meta"] = {"resourceType": "ServiceProviderConfig", "location": f"{base_url}/ServiceProviderConfig"}
    return document
