"""On a directory of 20,000 users: a filter with a part the directory indexes reads only its candidates.

A private slapd is bulk-loaded (``slapadd -q``) with 20,000 users of one organization, written by the
backend's own codec (so each holds the SCIM document the backend stores). The backend counts every entry
it receives (``LdapBackend.stats``); each test measures one list call by that count, never by time:

* a filter the directory cannot evaluate whole (``emails.type``, ``locale``) but with an indexed part
  (``emails.value``, ``userName sw``, a group's members) reads exactly the entries that part selects;
* a directory-answered list reads only its page, cursor pages only theirs (plus one count);
* the same non-indexed filter without a narrowing part is refused with 400 ``tooMany`` after reading
  at most SCIM_LDAP_MAX_SCAN entries (plus one page of the paged search), and answered exactly when the
  limit allows the full scan.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap_support
import pytest
from scim_ldap.backend import LdapBackend
from scim_ldap.codec import EntryCodec
from scim_ldap.directory import Layout
from scim_ldap.lock import FREE
from scim_ldap.mapping import LdapMapping

from scim_service.errors import TooMany
from scim_service.model import Member, Tenant
from scim_service.query.ast import ListQuery
from scim_service.query.parser import parse_attr_path, parse_filter
from scim_service.query.resolve import resolve_filter, resolve_path
from scim_service.schemas.definitions import USER_RESOURCE

N = 20_000
TENANT = Tenant(id="big-org", name="big-org")


def user_data(i: int) -> dict[str, Any]:
    """User ``i``: two emails (work primary, home); every 100th has locale fr-FR, every 7th a title."""
    data: dict[str, Any] = {
        "userName": f"u{i:05d}",
        "active": i % 10 != 0,
        "emails": [
            {"value": f"u{i:05d}@work.example", "type": "work", "primary": True},
            {"value": f"u{i:05d}@home.example", "type": "home"},
        ],
        "name": {"givenName": f"Given{i % 50}", "familyName": f"Family{i % 1000:03d}"},
    }
    if i % 100 == 0:
        data["locale"] = "fr-FR"
    if i % 7 == 0:
        data["title"] = "Engineer"
    return data


def write_ldif(path: Path, base_dn: str) -> None:
    """The organization's subtree with N users, as the backend would have written them."""
    mapping = LdapMapping()
    codec = EntryCodec(mapping)
    layout = Layout(base_dn, mapping)
    people = layout.people_dn(TENANT)
    with path.open("w") as out:
        out.write(
            ldap_support.ldif_entry(
                layout.tenant_dn(TENANT), {"objectClass": ["organizationalUnit"], "ou": [TENANT.id]}
            )
        )
        for dn, ou in ((people, mapping.people_ou), (layout.groups_dn(TENANT), mapping.groups_ou)):
            out.write(ldap_support.ldif_entry(dn, {"objectClass": ["organizationalUnit"], "ou": [ou]}))
        lock = {"objectClass": ["applicationProcess"], "cn": ["scim-lock"], "description": [FREE]}
        out.write(ldap_support.ldif_entry(f"cn=scim-lock,{layout.tenant_dn(TENANT)}", lock))
        for i in range(N):
            attrs, name = codec.user_attributes(user_data(i), lambda _ref: None, deleted=False)
            attrs.update(codec.new_entry_attributes())
            attrs["uid"] = [name]
            entry = {"objectClass": list(mapping.user_classes), **{k: v for k, v in attrs.items() if v}}
            out.write(ldap_support.ldif_entry(f"uid={name},{people}", entry))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapBackend]:
    """A backend on a private slapd holding N users of TENANT (the scan limit allows a full scan)."""
    if ldap_support.find_binaries() is None:
        reason = "OpenLDAP slapd is not installed (apt-get install slapd ldap-utils)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires the LDAP tests to run")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("big-slapd")
    began = time.monotonic()
    write_ldif(folder / "users.ldif", ldap_support.BASE_DN)
    server = ldap_support.start(folder, tls=False, preload=folder / "users.ldif")
    print(f"\n{N} users written and bulk-loaded in {time.monotonic() - began:.1f} s")
    settings = ldap_support.directory_settings(server)
    backend = LdapBackend.from_config({**settings, "SCIM_LDAP_MAX_SCAN": str(N)})
    try:
        yield backend
    finally:
        backend.close()
        server.stop()


def users(text: str) -> Any:
    return resolve_filter(parse_filter(text), USER_RESOURCE)


def measured(backend: LdapBackend, query: ListQuery) -> tuple[Any, int]:
    """The page of one list call and the number of entries it read from the directory."""
    before = backend.stats.snapshot().entries
    page = backend.list_users(TENANT, query)
    return page, backend.stats.snapshot().entries - before


def test_the_directory_holds_every_user(big: LdapBackend) -> None:
    page, read = measured(big, ListQuery(count=0))
    assert page.total_results == N
    assert read <= 1  # the count comes from the server (a VLV target entry at most)


def test_an_indexed_value_inside_a_value_path_reads_one_entry(big: LdapBackend) -> None:
    page, read = measured(big, ListQuery(filter=users('emails[type eq "work" and value eq "u12345@work.example"]')))
    assert [u.user_name for u in page.resources] == ["u12345"] and page.total_results == 1
    assert read == 1, f"read {read} entries for one candidate"
    # The same value as a home email: the directory finds the one candidate, the evaluator rejects it.
    page, read = measured(big, ListQuery(filter=users('emails[type eq "home" and value eq "u12345@work.example"]')))
    assert page.resources == [] and page.total_results == 0 and read == 1


def test_an_indexed_prefix_reads_only_its_candidates(big: LdapBackend) -> None:
    # userName sw "u0010" selects u00100..u00109 in the directory; locale and emails.type are checked here.
    by_name = resolve_path(parse_attr_path("userName"), USER_RESOURCE)
    query = ListQuery(
        filter=users('userName sw "u0010" and emails.type eq "home" and not (locale pr)'), sort_by=by_name, count=3
    )
    page, read = measured(big, query)
    assert page.total_results == 9 and [u.user_name for u in page.resources] == ["u00101", "u00102", "u00103"]
    assert read == 10, f"read {read} entries for 10 candidates"
    by_family = resolve_path(parse_attr_path("name.familyName"), USER_RESOURCE)
    page, read = measured(big, ListQuery(filter=users('userName sw "u0012"'), sort_by=by_family, descending=True))
    assert [u.data["name"]["familyName"] for u in page.resources] == [f"Family{n:03d}" for n in range(129, 119, -1)]
    assert read == 10


def test_a_filter_on_groups_reads_only_the_members(big: LdapBackend) -> None:
    members = big.list_users(TENANT, ListQuery(filter=users('userName sw "u1999"'))).resources  # u19990..u19999
    big.create_group(TENANT, {"displayName": "team"}, [Member(u.id) for u in members])
    page, read = measured(big, ListQuery(filter=users('groups.display eq "team" and emails.type eq "work"')))
    assert {u.user_name for u in page.resources} == {f"u1999{n}" for n in range(10)} and page.total_results == 10
    # The group list (one group), its member list, the ten members, and each member's groups.
    assert read == 1 + 1 + 10 + 10


def test_directory_answered_lists_read_only_their_page(big: LdapBackend) -> None:
    by_name = resolve_path(parse_attr_path("userName"), USER_RESOURCE)
    page, read = measured(big, ListQuery(sort_by=by_name, start_index=15_001, count=10))
    assert [u.user_name for u in page.resources] == [f"u{i:05d}" for i in range(15_000, 15_010)]
    assert page.total_results == N and read == 10
    page, read = measured(big, ListQuery(filter=users('title eq "engineer"'), count=5))
    assert page.total_results == len(range(0, N, 7)) and read == 5
    first, read = measured(big, ListQuery(sort_by=by_name, cursor="", count=50))
    assert first.total_results == N and read == 51  # the page and one more, to know a next page exists
    second, read = measured(big, ListQuery(sort_by=by_name, cursor=first.next_cursor, count=50))
    assert [u.user_name for u in second.resources] == [f"u{i:05d}" for i in range(50, 100)]
    assert read == 52  # the page, one more, and the count's target entry


def test_a_filter_without_an_indexed_part_is_refused_beyond_the_scan_limit(big: LdapBackend) -> None:
    limited = LdapBackend(dataclasses.replace(big.settings, max_scan=1000), big.mapping)
    try:
        before = limited.stats.snapshot().entries
        with pytest.raises(TooMany) as refused:
            limited.list_users(TENANT, ListQuery(filter=users('locale eq "fr-FR"')))
        read = limited.stats.snapshot().entries - before
        assert 1000 < read <= 1000 + 500, read  # stopped one page of the paged search after the limit
        message = refused.value.detail
        assert "SCIM_LDAP_MAX_SCAN" in message and "locale" in message and "userName" in message
        assert refused.value.status == 400 and refused.value.scim_type == "tooMany"
        # Narrowed by an indexed part, the same filter is answered under the same limit.
        page = limited.list_users(TENANT, ListQuery(filter=users('locale eq "fr-FR" and userName sw "u012"')))
        assert [u.user_name for u in page.resources] == ["u01200"] and page.total_results == 1
    finally:
        limited.close()


def test_candidates_over_several_pages_of_the_paged_search_are_exact(big: LdapBackend) -> None:
    # 1,000 candidates (u01000..u01999) come in pages of 500; 10 have a locale, checked here.
    by_name = resolve_path(parse_attr_path("userName"), USER_RESOURCE)
    began = time.monotonic()
    page, read = measured(big, ListQuery(filter=users('userName sw "u01" and locale eq "fr-FR"'), sort_by=by_name))
    elapsed = time.monotonic() - began
    print(f"\n1,000 candidates checked in {elapsed:.2f} s ({elapsed / 1000 * 1e6:.0f} µs per candidate)")
    assert [u.user_name for u in page.resources] == [f"u01{n}00" for n in range(10)] and page.total_results == 10
    assert read == 1000
    # Cursor pages over the same candidates (no sortBy: by id) follow the order of one big page.
    f = users('userName sw "u01" and locale eq "fr-FR"')
    whole = [u.id for u in big.list_users(TENANT, ListQuery(filter=f, count=100)).resources]
    walked: list[str] = []
    cursor: str | None = ""
    while cursor is not None:
        step = big.list_users(TENANT, ListQuery(filter=f, cursor=cursor, count=5))
        assert step.total_results == 10 and len(step.resources) <= 5
        walked += [u.id for u in step.resources]
        cursor = step.next_cursor
    assert walked == whole and len(whole) == 10
