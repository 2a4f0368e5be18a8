"""The SCIM core schemas of RFC 7643 as plain, immutable Python data.

Everything else in :mod:`scim_service.schemas` is generated from these definitions: the marshmallow
validation of incoming resources, the ``attributes``/``excludedAttributes`` projection, the ``/Schemas``
and ``/ResourceTypes`` discovery documents, and the attribute-path resolution used by filters and PATCH.
A custom extension schema therefore only needs a :class:`Schema` and a place in a :class:`ResourceTypeDef`.

The characteristics (type, multiValued, required, caseExact, mutability, returned, uniqueness,
canonicalValues, referenceTypes) follow the RFC's own representation in RFC 7643 §8.7.1; the
descriptions are the project's own words.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from scim_service.model import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

# The SCIM attribute data types of RFC 7643 §2.3.
ATTRIBUTE_TYPES = frozenset({"string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"})
MUTABILITIES = frozenset({"readOnly", "readWrite", "immutable", "writeOnly"})
RETURNED = frozenset({"always", "never", "default", "request"})
UNIQUENESS = frozenset({"none", "server", "global"})


def _cached_hash(obj: Any) -> int:
    """The hash of a frozen definition, computed once: definitions key caches on every request (the
    projection's selection, the marshmallow loader), and the generated hash walks every attribute of
    every schema each time (a fifth of a page of 100; docs/performance.md)."""
    found = obj.__dict__.get("_hash")
    if found is None:
        found = hash(tuple(getattr(obj, f.name) for f in fields(obj)))
        object.__setattr__(obj, "_hash", found)
    return found


@dataclass(frozen=True)
class Attribute:
    """One attribute definition with the characteristics of RFC 7643 §2.2 and §7.

    ``sub_attributes`` is non-empty only for ``complex`` attributes; ``reference_types`` only for
    ``reference`` attributes.
    """

    name: str
    type: str
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()

    def __hash__(self) -> int:  # kept by @dataclass: an explicit __hash__ is not replaced
        return _cached_hash(self)

    def __post_init__(self) -> None:
        # Catch typos in hand-written (or third-party extension) definitions at import time.
        if self.type not in ATTRIBUTE_TYPES:
            raise ValueError(f"attribute {self.name!r}: unknown SCIM type {self.type!r}")
        if self.mutability not in MUTABILITIES:
            raise ValueError(f"attribute {self.name!r}: unknown mutability {self.mutability!r}")
        if self.returned not in RETURNED:
            raise ValueError(f"attribute {self.name!r}: unknown returned {self.returned!r}")
        if self.uniqueness not in UNIQUENESS:
            raise ValueError(f"attribute {self.name!r}: unknown uniqueness {self.uniqueness!r}")
        if self.sub_attributes and self.type != "complex":
            raise ValueError(f"attribute {self.name!r}: only complex attributes have sub-attributes")

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitive), or None."""
        return _by_name(self, self.sub_attributes).get(name.lower())


@dataclass(frozen=True)
class Schema:
    """A schema (RFC 7643 §7): its URN ``id``, a short ``name`` and its attribute definitions."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    def __hash__(self) -> int:  # kept by @dataclass: an explicit __hash__ is not replaced
        return _cached_hash(self)

    def attribute(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name`` (case-insensitive), or None."""
        return _by_name(self, self.attributes).get(name.lower())


@dataclass(frozen=True)
class ResourceTypeDef:
    """A resource type (RFC 7643 §6): its endpoint, core schema and schema extensions.

    ``extensions`` pairs each extension schema with whether the extension is required.
    """

    id: str
    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()

    def __hash__(self) -> int:  # kept by @dataclass: an explicit __hash__ is not replaced
        return _cached_hash(self)

    @property
    def schemas(self) -> tuple[Schema, ...]:
        """The core schema followed by every extension schema."""
        return (self.schema, *(ext for ext, _required in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        """The extension schema whose id is ``urn`` (case-insensitive), or None."""
        if not self.extensions:
            return None
        by_id = self.__dict__.get("_by_id")
        if by_id is None:
            by_id = {}
            for ext, _required in self.extensions:
                by_id.setdefault(ext.id.lower(), ext)
            object.__setattr__(self, "_by_id", by_id)
        return by_id.get(urn.lower())


@dataclass(frozen=True)
class ResolvedAttribute:
    """An attribute path resolved against a resource type: canonical names and their definitions."""

    schema_urn: str
    attribute: Attribute
    sub_attribute: Attribute | None = None

    @property
    def leaf(self) -> Attribute:
        """The definition the path ends at: the sub-attribute when there is one."""
        return self.sub_attribute or self.attribute

    @property
    def dotted(self) -> str:
        """``attr`` or ``attr.sub`` in canonical case, without the schema URN."""
        if self.sub_attribute is None:
            return self.attribute.name
        return f"{self.attribute.name}.{self.sub_attribute.name}"


def _by_name(owner: Any, attributes: tuple[Attribute, ...]) -> dict[str, Attribute]:
    """``attributes`` by lower-cased name (the first of a name wins, as in :func:`_find`), built once per
    definition: name lookups run for every key of every resource rendered or projected."""
    found = owner.__dict__.get("_by_name")
    if found is None:
        found = {}
        for attribute in attributes:
            found.setdefault(attribute.name.lower(), attribute)
        object.__setattr__(owner, "_by_name", found)
    return found


def _find(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    lowered = name.lower()
    for attribute in attributes:
        if attribute.name.lower() == lowered:
            return attribute
    return None


def _s(name: str, description: str, **kwargs: object) -> Attribute:
    """A string attribute (the most common kind) with the given characteristics."""
    return Attribute(name, "string", description=description, **kwargs)  # type: ignore[arg-type]


def _multi_valued(
    name: str,
    description: str,
    *,
    value_type: str = "string",
    value_case_exact: bool = False,
    canonical_types: tuple[str, ...] = (),
    reference_types: tuple[str, ...] = (),
) -> Attribute:
    """A multi-valued complex attribute with the value/display/type/primary sub-attributes of RFC 7643 §2.4."""
    return Attribute(
        name,
        "complex",
        multi_valued=True,
        description=description,
        sub_attributes=(
            Attribute(
                "value",
                value_type,
                case_exact=value_case_exact,
                description=f"The value of one entry of {name}.",
                reference_types=reference_types,
            ),
            _s("display", "A human-readable label for the entry, for display only."),
            _s("type", "A label for the function of the entry.", canonical_values=canonical_types),
            Attribute(
                "primary", "boolean", description="True for the preferred entry; at most one entry may be primary."
            ),
        ),
    )


# --- Common attributes (RFC 7643 §3.1): on every resource, outside any schema ------------------------

COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "id",
        "string",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
        description="The identifier the service provider assigned to the resource; never reassigned.",
    ),
    Attribute(
        "externalId",
        "string",
        case_exact=True,
        description="The identifier the provisioning client uses for the resource in its own system.",
    ),
    Attribute(
        "meta",
        "complex",
        mutability="readOnly",
        description="Metadata the service provider keeps about the resource.",
        sub_attributes=(
            Attribute(
                "resourceType",
                "string",
                case_exact=True,
                mutability="readOnly",
                description="The name of the resource's type, such as User or Group.",
            ),
            Attribute("created", "dateTime", mutability="readOnly", description="When the resource was added."),
            Attribute("lastModified", "dateTime", mutability="readOnly", description="When the resource last changed."),
            Attribute(
                "location",
                "reference",
                case_exact=True,
                mutability="readOnly",
                reference_types=("uri",),
                description="The URI of the resource.",
            ),
            Attribute(
                "version",
                "string",
                case_exact=True,
                mutability="readOnly",
                description="The weak entity tag of the current state of the resource.",
            ),
        ),
    ),
)


# --- urn:ietf:params:scim:schemas:core:2.0:User (RFC 7643 §4.1) ---------------------------------------

USER_SCHEMA_DEF = Schema(
    id=USER_SCHEMA,
    name="User",
    # Starts with the RFC 7643 §8.7.1 description, "User Account", which clients such as Entra's tests look for.
    description="User Account: a person with an account at the service provider.",
    attributes=(
        _s(
            "userName",
            "The name the person signs in with; unique among the organization's users and never empty.",
            required=True,
            uniqueness="server",
        ),
        Attribute(
            "name",
            "complex",
            description="The parts of the person's real name, and the name as a whole.",
            sub_attributes=(
                _s("formatted", "The whole name, formatted for display."),
                _s("familyName", "The family name (last name in most Western languages)."),
                _s("givenName", "The given name (first name in most Western languages)."),
                _s("middleName", "The middle name or names."),
                _s("honorificPrefix", "A title placed before the name, such as Dr. or Ms."),
                _s("honorificSuffix", "A suffix placed after the name, such as Jr. or III."),
            ),
        ),
        _s("displayName", "The name to show for the person."),
        _s("nickName", "The casual name the person goes by."),
        Attribute(
            "profileUrl",
            "reference",
            case_exact=True,
            reference_types=("external",),
            description="A URL of the person's online profile.",
        ),
        _s("title", "The person's job title."),
        _s("userType", "How the organization classifies the person, such as Employee or Contractor."),
        _s("preferredLanguage", "The language the person prefers, as an HTTP Accept-Language value."),
        _s("locale", "The locale for formatting dates, numbers and currency, such as en-US."),
        _s("timezone", "The person's time zone as an IANA zone name, such as Europe/Paris."),
        Attribute("active", "boolean", description="Whether the account is enabled."),
        Attribute(
            "password",
            "string",
            case_exact=True,
            mutability="writeOnly",
            returned="never",
            description="A clear-text password for setting the account's password; never returned.",
        ),
        _multi_valued("emails", "E-mail addresses of the person.", canonical_types=("work", "home", "other")),
        _multi_valued(
            "phoneNumbers",
            "Telephone numbers of the person.",
            canonical_types=("work", "home", "mobile", "fax", "pager", "other"),
        ),
        _multi_valued(
            "ims",
            "Instant-messaging addresses of the person.",
            canonical_types=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _multi_valued(
            "photos",
            "URLs of pictures of the person.",
            value_type="reference",
            value_case_exact=True,
            canonical_types=("photo", "thumbnail"),
            reference_types=("external",),
        ),
        Attribute(
            "addresses",
            "complex",
            multi_valued=True,
            description="Postal addresses of the person.",
            sub_attributes=(
                _s("formatted", "The whole address, formatted for display or mailing labels."),
                _s("streetAddress", "Street, house number and the like."),
                _s("locality", "The city or locality."),
                _s("region", "The state or region."),
                _s("postalCode", "The postal or ZIP code."),
                _s("country", "The country, as an ISO 3166-1 alpha-2 code."),
                _s("type", "A label for the address.", canonical_values=("work", "home", "other")),
                Attribute("primary", "boolean", description="True for the preferred address."),
            ),
        ),
        Attribute(
            "groups",
            "complex",
            multi_valued=True,
            mutability="readOnly",
            description="The groups the person belongs to; changed through the Group resources only.",
            sub_attributes=(
                Attribute(
                    "value", "string", case_exact=True, mutability="readOnly", description="The id of the group."
                ),
                Attribute(
                    "$ref",
                    "reference",
                    case_exact=True,
                    mutability="readOnly",
                    reference_types=("Group",),
                    description="The URI of the group.",
                ),
                _s("display", "The group's display name.", mutability="readOnly"),
                _s(
                    "type",
                    "Whether the membership is direct or comes through a nested group.",
                    mutability="readOnly",
                    canonical_values=("direct", "indirect"),
                ),
            ),
        ),
        _multi_valued("entitlements", "Entitlements the person holds."),
        _multi_valued("roles", "Roles the person has."),
        _multi_valued(
            "x509Certificates",
            "X.509 certificates of the person, DER-encoded in base64.",
            value_type="binary",
            value_case_exact=True,
        ),
    ),
)


# --- urn:ietf:params:scim:schemas:extension:enterprise:2.0:User (RFC 7643 §4.3) -------------------------

ENTERPRISE_USER_SCHEMA_DEF = Schema(
    id=ENTERPRISE_SCHEMA,
    name="EnterpriseUser",
    description="Attributes of a person who works for or on behalf of an organization.",
    attributes=(
        _s("employeeNumber", "The number the organization gives the person."),
        _s("costCenter", "The cost center the person belongs to."),
        _s("organization", "The organization the person belongs to."),
        _s("division", "The division the person belongs to."),
        _s("department", "The department the person belongs to."),
        Attribute(
            "manager",
            "complex",
            description="The person's manager, as a reference to another user.",
            sub_attributes=(
                Attribute("value", "string", case_exact=True, description="The id of the manager's user."),
                Attribute(
                    "$ref",
                    "reference",
                    case_exact=True,
                    reference_types=("User",),
                    description="The URI of the manager's user.",
                ),
                _s("displayName", "The manager's display name.", mutability="readOnly"),
            ),
        ),
    ),
)


# --- urn:ietf:params:scim:schemas:core:2.0:Group (RFC 7643 §4.2) --------------------------------------

GROUP_SCHEMA_DEF = Schema(
    id=GROUP_SCHEMA,
    name="Group",
    description="A named collection of users and groups.",
    attributes=(
        _s("displayName", "The name of the group; never empty.", required=True),
        Attribute(
            "members",
            "complex",
            multi_valued=True,
            description="The users and groups that belong to the group.",
            sub_attributes=(
                Attribute(
                    "value", "string", case_exact=True, mutability="immutable", description="The id of the member."
                ),
                Attribute(
                    "$ref",
                    "reference",
                    case_exact=True,
                    mutability="immutable",
                    reference_types=("User", "Group"),
                    description="The URI of the member.",
                ),
                _s(
                    "type",
                    "Whether the member is a User or a Group.",
                    mutability="immutable",
                    canonical_values=("User", "Group"),
                ),
                _s("display", "The member's display name."),
            ),
        ),
    ),
)


USER_RESOURCE = ResourceTypeDef(
    id="User",
    name="User",
    endpoint="/Users",
    description="User accounts.",
    schema=USER_SCHEMA_DEF,
    extensions=((ENTERPRISE_USER_SCHEMA_DEF, False),),
)

GROUP_RESOURCE = ResourceTypeDef(
    id="Group",
    name="Group",
    endpoint="/Groups",
    description="Groups of users.",
    schema=GROUP_SCHEMA_DEF,
)

RESOURCE_TYPES: tuple[ResourceTypeDef, ...] = (USER_RESOURCE, GROUP_RESOURCE)

# Every schema this server defines, in the order /Schemas lists them.
SCHEMAS: tuple[Schema, ...] = (USER_SCHEMA_DEF, ENTERPRISE_USER_SCHEMA_DEF, GROUP_SCHEMA_DEF)


def split_urn_path(path: str, resource: ResourceTypeDef | None = None) -> tuple[str | None, str]:
    """Split a URN-qualified attribute path into ``(schema URN, rest)``.

    ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`` gives the enterprise URN
    and ``manager.value``. The longest known schema id that prefixes ``path`` (case-insensitively,
    followed by ``:``) wins, and is returned in its canonical case. The path equal to a schema id itself
    gives ``(URN, "")``. Known schemas are those of ``resource`` when given, else every schema defined
    here. A path that starts with no known schema id gives ``(None, path)``.
    """
    candidates = resource.schemas if resource is not None else SCHEMAS
    lowered = path.lower()
    best: str | None = None
    for schema in candidates:
        urn = schema.id.lower()
        if (lowered == urn or lowered.startswith(urn + ":")) and (best is None or len(schema.id) > len(best)):
            best = schema.id
    if best is None:
        return None, path
    return best, path[len(best) + 1 :]


def resolve_attribute(
    resource: ResourceTypeDef, name: str, sub: str | None = None, schema: str | None = None
) -> ResolvedAttribute:
    """Find the definition of ``name`` (and of its sub-attribute ``sub``) for ``resource``.

    Names and the schema URN compare case-insensitively. With ``schema`` only that schema is searched
    (the common attributes count as part of the core schema); without it the common attributes, the
    core schema and then each extension are searched in turn. ``name`` may be dotted (``name.givenName``)
    when ``sub`` is not given. Raises :class:`LookupError` naming the unknown part.
    """
    if sub is None and "." in name:
        name, sub = name.split(".", 1)
    if schema is not None:
        if schema.lower() == resource.schema.id.lower():
            searched: list[tuple[str, tuple[Attribute, ...]]] = [
                (resource.schema.id, COMMON_ATTRIBUTES + resource.schema.attributes)
            ]
        else:
            ext = resource.extension(schema)
            if ext is None:
                raise LookupError(f"The schema {schema!r} is not a schema of the {resource.name} resource.")
            searched = [(ext.id, ext.attributes)]
    else:
        searched = [(resource.schema.id, COMMON_ATTRIBUTES + resource.schema.attributes)]
        searched += [(ext.id, ext.attributes) for ext, _required in resource.extensions]

    for urn, attributes in searched:
        attribute = _find(attributes, name)
        if attribute is None:
            continue
        if sub is None:
            return ResolvedAttribute(urn, attribute)
        sub_attribute = attribute.sub(sub)
        if sub_attribute is None:
            if attribute.type != "complex":
                raise LookupError(f"The attribute {attribute.name!r} has no sub-attributes (asked for {sub!r}).")
            raise LookupError(f"The attribute {attribute.name!r} has no sub-attribute {sub!r}.")
        return ResolvedAttribute(urn, attribute, sub_attribute)
    where = f"schema {searched[0][0]}" if schema is not None else f"the {resource.name} resource"
    raise LookupError(f"Unknown attribute {name!r} in {where}.")
