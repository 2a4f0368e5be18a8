"""TLS to the directory: StartTLS and ldaps:// verified against SCIM_LDAP_CA_FILE, on the private slapd.

The fixture's slapd serves a certificate for 127.0.0.1 signed by a throwaway CA made with the openssl CLI
for this session. A certificate signed by another CA, or no CA file at all, must be refused at once with
a clear ``Unavailable``, never accepted and never a hang; StartTLS that does not happen must never fall
back to a clear-text bind.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import slapd_server
from scim_ldap.backend import LdapBackend
from scim_ldap.pool import LdapSettings

from scim_service.errors import Unavailable
from scim_service.model import Tenant
from scim_service.query.ast import ListQuery


def settings_for(server: Any, **extra: str) -> dict[str, str]:
    """The bind settings of ``server`` plus ``extra``."""
    return {
        "SCIM_LDAP_BASE_DN": server.base_dn,
        "SCIM_LDAP_BIND_DN": server.bind_dn,
        "SCIM_LDAP_BIND_PASSWORD": server.password,
        "SCIM_LDAP_CONNECT_TIMEOUT": "2",
        "SCIM_LDAP_TIMEOUT": "2",
        **extra,
    }


def round_trip(config: dict[str, str], tenant: Tenant) -> tuple[bool, bool]:
    """Create and list a user through a backend built from ``config``; (tls_started, ssl) of its connection."""
    backend = LdapBackend.from_config(config)
    try:
        backend.migrate()
        created = backend.create_user(tenant, {"userName": "tls-user", "active": True})
        assert [u.id for u in backend.list_users(tenant, ListQuery()).resources] == [created.id]
        with backend.pool.connection() as conn:
            return bool(conn.tls_started), bool(conn.server.ssl)
    finally:
        backend.close()


def refused(config: dict[str, str]) -> Unavailable:
    """The Unavailable a backend built from ``config`` raises on first use, within a few seconds."""
    backend = LdapBackend.from_config(config)
    started = time.monotonic()
    try:
        with pytest.raises(Unavailable) as caught:
            backend.migrate()
    finally:
        backend.close()
    assert time.monotonic() - started < 5, "a TLS failure must be reported at once, not after a hang"
    return caught.value


def test_start_tls_with_the_ca_file(private_slapd: Any, tenant: Tenant) -> None:
    config = settings_for(
        private_slapd,
        SCIM_LDAP_URL=private_slapd.url,
        SCIM_LDAP_START_TLS="true",
        SCIM_LDAP_CA_FILE=private_slapd.ca_file,
    )
    assert round_trip(config, tenant) == (True, False), "StartTLS must run on the ldap:// connection"


def test_ldaps_url_with_the_ca_file(private_slapd: Any, tenant: Tenant) -> None:
    config = settings_for(private_slapd, SCIM_LDAP_URL=private_slapd.ldaps_url, SCIM_LDAP_CA_FILE=private_slapd.ca_file)
    assert round_trip(config, tenant) == (False, True), "an ldaps:// URL must connect with TLS from the start"


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_a_certificate_of_another_ca_is_refused(
    private_slapd: Any, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    other_ca, _key = slapd_server.make_ca(tmp_path, "other-ca")
    extra = {"SCIM_LDAP_CA_FILE": str(other_ca)}
    if how == "ldaps":
        extra["SCIM_LDAP_URL"] = private_slapd.ldaps_url
    else:
        extra.update(SCIM_LDAP_URL=private_slapd.url, SCIM_LDAP_START_TLS="true")
    error = refused(settings_for(private_slapd, **extra))
    assert "certificate is not trusted (SCIM_LDAP_CA_FILE)" in error.detail, error.detail
    assert error.status == 503
    # The file and the directory's address are for the operator: in the service log, not the detail.
    assert str(other_ca) not in error.detail and private_slapd.url.split("//")[1] not in error.detail
    assert "not signed by a CA in" in caplog.text and str(other_ca) in caplog.text, caplog.text


def test_no_ca_file_means_the_system_store_which_does_not_know_the_test_ca(
    private_slapd: Any, caplog: pytest.LogCaptureFixture
) -> None:
    error = refused(settings_for(private_slapd, SCIM_LDAP_URL=private_slapd.ldaps_url))
    assert "certificate is not trusted" in error.detail, error.detail
    assert "the system's trusted CAs" in caplog.text, caplog.text


def test_start_tls_refused_by_the_server_never_falls_back_to_clear_text(bare_slapd: Any) -> None:
    # bare_slapd has no certificate: it answers StartTLS with an error.
    error = refused(settings_for(bare_slapd, SCIM_LDAP_URL=bare_slapd.url, SCIM_LDAP_START_TLS="true"))
    assert "StartTLS" in error.detail, error.detail


def test_a_missing_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SCIM_LDAP_CA_FILE"):
        LdapSettings.from_config(
            {"SCIM_LDAP_URL": "ldaps://x", "SCIM_LDAP_BASE_DN": "dc=x", "SCIM_LDAP_CA_FILE": str(tmp_path / "nope.pem")}
        )
