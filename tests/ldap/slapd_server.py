"""The private slapd of the tests, under the name the LDAP tests import; it lives in ``tests/ldap_support.py``
so that the HTTP tests and the conformance servers share it."""

from __future__ import annotations

from ldap_support import BASE_DN, ROOT_DN, ROOT_PASSWORD, Slapd, config_ldif, find_binaries, make_ca, start

__all__ = ["BASE_DN", "ROOT_DN", "ROOT_PASSWORD", "Slapd", "config_ldif", "find_binaries", "make_ca", "start"]
