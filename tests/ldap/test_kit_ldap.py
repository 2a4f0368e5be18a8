"""The whole conformance kit against LdapBackend on the session's private slapd."""

from __future__ import annotations

from scim_service.testing import BackendSuite


class TestLdapBackendConformance(BackendSuite):
    """LdapBackend on OpenLDAP honours the backend contract (what it declares it cannot do skips)."""
