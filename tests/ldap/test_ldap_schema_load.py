"""``scim-service ldap schema`` loads into a fresh slapd exactly as docs/ldap.md says.

The fresh server (``bare_slapd``) has the stock schemas only and listens on an ``ldapi://`` socket in its
folder, where the test user manages cn=config through SASL EXTERNAL (as root does on a packaged slapd).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import ldap3
import pytest
from click.testing import CliRunner
from scim_ldap.backend import LdapBackend
from scim_ldap.plugin import ldap_group

from scim_service.errors import Unavailable
from scim_service.model import Tenant


def schema_output() -> str:
    """What ``scim-service ldap schema`` prints (the installed command when there is one)."""
    command = Path(sys.executable).with_name("scim-service")
    if command.exists():
        return subprocess.run([str(command), "ldap", "schema"], capture_output=True, text=True, check=True).stdout
    return CliRunner().invoke(ldap_group, ["schema"], catch_exceptions=False).output


def test_the_printed_schema_loads_with_ldapadd_external(bare_slapd: Any, tmp_path: Path, tenant: Tenant) -> None:
    ldapadd = shutil.which("ldapadd")
    if ldapadd is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true requires ldapadd (apt-get install ldap-utils)")
        pytest.skip("ldapadd is not installed (apt-get install ldap-utils)")
    config = {
        "SCIM_LDAP_URL": bare_slapd.url,
        "SCIM_LDAP_BASE_DN": bare_slapd.base_dn,
        "SCIM_LDAP_BIND_DN": bare_slapd.bind_dn,
        "SCIM_LDAP_BIND_PASSWORD": bare_slapd.password,
    }
    before = LdapBackend.from_config(config)
    try:
        with pytest.raises(Unavailable, match=r"scimResource.*scim-service ldap schema"):
            before.migrate()  # `scim-service db upgrade` says what is missing and how to load it
    finally:
        before.close()

    ldif = tmp_path / "scim.ldif"
    ldif.write_text(schema_output())
    loaded = subprocess.run(
        [ldapadd, "-Y", "EXTERNAL", "-H", bare_slapd.ldapi_url, "-f", str(ldif)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert loaded.returncode == 0, f"ldapadd failed: {loaded.stderr}"
    assert 'adding new entry "cn=scim,cn=schema,cn=config"' in loaded.stdout

    conn = ldap3.Connection(bare_slapd.url, bare_slapd.bind_dn, bare_slapd.password, auto_bind=True)
    try:
        conn.search("cn=schema,cn=config", "(cn=*scim)", ldap3.LEVEL, attributes=["olcObjectClasses"])
        assert any("scimResource" in str(e["attributes"]) for e in conn.response), "the class must be in cn=config"
    finally:
        conn.unbind()

    after = LdapBackend.from_config(config)
    try:
        after.migrate()
        created = after.create_user(tenant, {"userName": "schema-check", "externalId": "E-1", "active": False})
        fetched = after.get_user(tenant, created.id)
        assert fetched.data["externalId"] == "E-1" and fetched.active is False
    finally:
        after.close()
