"""Fixtures of the LDAP backend tests: the session's directory, a fresh tenant subtree per test.

Tests take their tenants from the conformance kit's ``tenant`` and ``make_tenant`` fixtures (enabled in
``tests/conftest.py``): a fresh tenant id is a fresh subtree.

The directory (``slapd`` and ``ldap_settings``, shared with the HTTP tests) comes from ``tests/conftest.py``:
a private OpenLDAP slapd started from a temporary folder (``tests/ldap_support.py``), or the directory
named by ``SCIM_TEST_LDAP_URL`` (with ``SCIM_TEST_LDAP_BASE_DN``, ``SCIM_TEST_LDAP_BIND_DN`` and
``SCIM_TEST_LDAP_BIND_PASSWORD``; it needs the scimResource schema and the sssvlv overlay). Without
either the tests skip with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import scim_ldap  # noqa: F401
except ImportError:  # not installed yet (setup.cfg): take it from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "backends"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ldap_support
from scim_ldap.backend import LdapBackend
from scim_ldap.pool import LdapSettings

IN_CI = os.environ.get("CI") == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires the LDAP tests to run (install slapd and ldap-utils)")
    pytest.skip(reason)


@pytest.fixture
def private_slapd(slapd: Any) -> Any:
    """The private slapd, for tests that need its TLS listeners or files (skip with SCIM_TEST_LDAP_URL)."""
    if slapd is None:
        pytest.skip("needs the private slapd (its CA, ldaps:// and ldapi:// listeners), not SCIM_TEST_LDAP_URL")
    if slapd.ldaps_url is None:
        _unavailable("the private slapd has no TLS: the openssl CLI is missing")
    return slapd


@pytest.fixture(scope="session")
def backend(ldap_settings: dict[str, str]) -> Iterator[LdapBackend]:
    """One backend for the session; tests isolate by tenant (each gets its own subtree)."""
    instance = LdapBackend.from_config(ldap_settings)
    instance.migrate()
    yield instance
    instance.close()


@pytest.fixture
def settings(ldap_settings: dict[str, str]) -> LdapSettings:
    """The parsed connection settings of the session's directory."""
    return LdapSettings.from_config(ldap_settings)


@pytest.fixture(scope="module")
def bare_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second private slapd without our schema and without TLS, as a fresh packaged server is."""
    if ldap_support.find_binaries() is None:
        _unavailable("OpenLDAP slapd is not installed (apt-get install slapd ldap-utils)")
    try:
        server = ldap_support.start(tmp_path_factory.mktemp("bare-slapd"), scim_schema=False, tls=False)
    except RuntimeError as exc:
        _unavailable(f"could not start a private slapd: {exc}")
        raise
    try:
        yield server
    finally:
        server.stop()
