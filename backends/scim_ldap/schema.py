"""The auxiliary object class ``scimResource``: the SCIM attributes a directory has no standard home for.

``scim-service ldap schema`` prints :data:`SCHEMA_LDIF`, the cn=config form ready for
``ldapadd -Y EXTERNAL -H ldapi:/// -f scim.ldif``. The OIDs sit under ``2.25.<uuid>`` (ITU-T X.667),
an arc that needs no registration and cannot collide with anyone else's.
"""

from __future__ import annotations

OID_ARC = "2.25.59647016393622633160023931639527053271"
OBJECT_CLASS = "scimResource"

# (name, definition without OID and NAME). The single-valued ones make a modify that deletes the old
# value and adds the new one an atomic compare-and-swap (scimVersion).
_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    (
        "scimExternalId",
        "DESC 'SCIM externalId' EQUALITY caseExactMatch ORDERING caseExactOrderingMatch "
        "SUBSTR caseExactSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE",
    ),
    ("scimActive", "DESC 'SCIM active' EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE"),
    (
        "scimDeleted",
        "DESC 'soft-deleted: invisible to SCIM, still holding its userName' EQUALITY booleanMatch "
        "SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE",
    ),
    (
        "scimCreated",
        "DESC 'SCIM meta.created' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch "
        "SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE",
    ),
    (
        "scimLastModified",
        "DESC 'SCIM meta.lastModified' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch "
        "SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE",
    ),
    (
        "scimVersion",
        "DESC 'SCIM meta.version, swapped atomically on every write' EQUALITY integerMatch "
        "ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE",
    ),
    (
        "scimPrimaryEmail",
        "DESC 'the primary email, lower-cased: the matching key of the email policy and the sort key of emails' "
        "EQUALITY caseIgnoreMatch ORDERING caseIgnoreOrderingMatch SUBSTR caseIgnoreSubstringsMatch "
        "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE",
    ),
    (
        "scimDocument",
        "DESC 'the SCIM document as JSON (attributes without a directory home)' EQUALITY octetStringMatch "
        "SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE",
    ),
    (
        "scimFiller",
        "DESC 'names the required attributes (cn, sn) that hold a filler value, not a SCIM value' "
        "EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15",
    ),
)

ATTRIBUTE_NAMES: tuple[str, ...] = tuple(name for name, _ in _ATTRIBUTES)


def attribute_types() -> list[str]:
    """The RFC 4512 attribute type descriptions of the schema."""
    return [f"( {OID_ARC}.1.{i} NAME '{name}' {body} )" for i, (name, body) in enumerate(_ATTRIBUTES, start=1)]


def object_classes() -> list[str]:
    """The RFC 4512 object class description of ``scimResource``."""
    may = " $ ".join(ATTRIBUTE_NAMES)
    return [
        f"( {OID_ARC}.2.1 NAME '{OBJECT_CLASS}' DESC 'SCIM attributes of a user or group' AUXILIARY MAY ( {may} ) )"
    ]


def schema_ldif() -> str:
    """The schema in cn=config form (``olcSchemaConfig``), for ``ldapadd`` or ``slapadd -n0``."""
    lines = [
        "# scim-service auxiliary schema for OpenLDAP (cn=config).",
        "# Load it with: ldapadd -Y EXTERNAL -H ldapi:/// -f scim.ldif",
        "dn: cn=scim,cn=schema,cn=config",
        "objectClass: olcSchemaConfig",
        "cn: scim",
    ]
    lines += [f"olcAttributeTypes: {definition}" for definition in attribute_types()]
    lines += [f"olcObjectClasses: {definition}" for definition in object_classes()]
    return "\n".join(lines) + "\n"


SCHEMA_LDIF = schema_ldif()
