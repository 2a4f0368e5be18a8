"""The ldap plugin through pluggy, and the product rules of the lifecycle on top of the ldap backend."""

from __future__ import annotations

import click
import pytest
import scim_ldap.plugin
from scim_ldap.backend import LdapBackend
from scim_ldap.mapping import load_mapping

from scim_service.errors import NotFound, UniquenessConflict
from scim_service.lifecycle import Lifecycle
from scim_service.model import DeletePolicy, Tenant
from scim_service.plugins import build_backend, installed_backends, make_plugin_manager


def test_the_plugin_declares_the_backend_and_the_ldap_command(ldap_settings: dict[str, str]) -> None:
    pm = make_plugin_manager([scim_ldap.plugin], load_entry_points=False)
    assert installed_backends(pm)["ldap"] is LdapBackend
    backend = build_backend(pm, {**ldap_settings, "SCIM_BACKEND": "ldap", "SCIM_MAX_PAGE_SIZE": 200})
    try:
        assert isinstance(backend, LdapBackend) and backend.capabilities.max_results == 200
    finally:
        backend.close()
    cli = click.Group()
    pm.hook.scim_register_commands(cli=cli)
    assert "schema" in cli.commands["ldap"].commands  # type: ignore[attr-defined]


def test_mapping_presets_and_overrides() -> None:
    assert load_mapping({}).user_attribute("userName").ldap == "uid"  # type: ignore[union-attr]
    ad = load_mapping({"SCIM_LDAP_PRESET": "ad"})
    assert ad.id_attribute == "objectGUID" and ad.group_placeholder is None
    custom = load_mapping({"SCIM_LDAP_MAPPING": '{"external_id": "employeeType", "user_attributes": {"title": null}}'})
    assert custom.external_id == "employeeType" and custom.user_attribute("title") is None
    with pytest.raises(ValueError, match="unknown key"):
        load_mapping({"SCIM_LDAP_MAPPING": '{"nope": 1}'})
    with pytest.raises(ValueError, match="SCIM_LDAP_PRESET"):
        load_mapping({"SCIM_LDAP_PRESET": "novell"})


def test_lifecycle_reactivates_a_soft_deleted_user_in_place(backend: LdapBackend, tenant: Tenant) -> None:
    lifecycle = Lifecycle(backend, make_plugin_manager(load_entry_points=False), DeletePolicy.SOFT)
    user, created = lifecycle.create_user(tenant, {"userName": "pat", "active": True, "title": "a"})
    assert created
    with pytest.raises(UniquenessConflict):
        lifecycle.create_user(tenant, {"userName": "PAT", "active": True})
    lifecycle.delete_user(tenant, user.id)
    with pytest.raises(NotFound):
        lifecycle.get_user(tenant, user.id)
    again, created = lifecycle.create_user(tenant, {"userName": "Pat", "active": True, "title": "b"})
    assert not created and again.id == user.id and again.active and again.data["title"] == "b"
