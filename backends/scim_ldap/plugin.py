"""The pluggy plugin of the ``ldap`` backend: registers the backend and the ``scim-service ldap`` commands."""

from __future__ import annotations

import click

from scim_ldap.backend import LdapBackend
from scim_ldap.schema import SCHEMA_LDIF
from scim_service.backend import Backend
from scim_service.hookspecs import hookimpl


@hookimpl
def scim_register_backends() -> list[type[Backend]]:
    """Declare :class:`~scim_ldap.backend.LdapBackend` (``SCIM_BACKEND=ldap``)."""
    return [LdapBackend]


@click.group("ldap")
def ldap_group() -> None:
    """The LDAP backend: its schema and set-up."""


@ldap_group.command("schema")
def schema_command() -> None:
    """Print the scimResource auxiliary schema in cn=config LDIF form.

    Load it into OpenLDAP with: scim-service ldap schema > scim.ldif && ldapadd -Y EXTERNAL -H ldapi:/// -f scim.ldif
    """
    click.echo(SCHEMA_LDIF, nl=False)


@hookimpl
def scim_register_commands(cli: click.Group) -> None:
    """Add ``scim-service ldap`` (with ``ldap schema``)."""
    cli.add_command(ldap_group)
