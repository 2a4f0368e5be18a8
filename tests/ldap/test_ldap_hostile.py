"""Client mistakes on the LDAP backend, over HTTP: each is a 400 SCIM error that names no entry, never a 503.

An app on a fresh subtree of the session's directory. The cases: names too long to name an entry
(userName, a group's displayName), values the directory's syntax refuses, startIndex far past the VLV
offset range, and a filter that would read more entries than ``SCIM_LDAP_MAX_SCAN``. After each refusal
nothing is written and the lists still read. The directory's own message (which holds DNs with the
organization's id) goes to the service log, not to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Scim, assert_scim_error, make_app, new_org
from flask import Flask

from scim_service.extension import get_state

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def ldap_app(ldap_subtrees: Any, tmp_path: Path) -> Iterator[Flask]:
    """An app on the ldap backend (its own subtree) that reads at most 4 candidates per list."""
    app = make_app(tmp_path, **ldap_subtrees.config_for(tmp_path), SCIM_LDAP_MAX_SCAN="4")
    yield app
    get_state(app).close()


@pytest.fixture
def scim(ldap_app: Flask) -> Scim:
    return Scim(ldap_app.test_client(), new_org(get_state(ldap_app), "hostile"))


def total(scim: Scim, path: str = "/Users", **params: Any) -> int:
    response = scim.get(path, query_string=params)
    assert response.status_code == 200, response.get_json()
    return int(response.get_json()["totalResults"])


def assert_no_entry_named(body: dict[str, Any], scim: Scim, app: Flask) -> None:
    """The error detail names no DN: not the base DN, not an ``ou=``/``uid=``, not the organization's id."""
    detail = body["detail"]
    base = get_state(app).backend.settings.base_dn
    assert base not in detail and "ou=" not in detail and "uid=" not in detail, detail


def test_names_too_long_for_an_entry_are_400_and_write_nothing(scim: Scim, ldap_app: Flask) -> None:
    fits = scim.post("/Users", {"schemas": [USER], "userName": "é" * 100})  # 200 bytes in UTF-8: the limit
    assert fits.status_code == 201, fits.get_json()
    for name in ("x" * 201, "é" * 101, "y" * 100_000):
        body = assert_scim_error(scim.post("/Users", {"schemas": [USER], "userName": name}), 400, "invalidValue")
        assert "too long" in body["detail"] and "200 bytes" in body["detail"]
    user = fits.get_json()
    renamed = scim.put(f"/Users/{user['id']}", {"schemas": [USER], "userName": "z" * 300})
    assert_scim_error(renamed, 400, "invalidValue")
    assert scim.get(f"/Users/{user['id']}").get_json()["userName"] == "é" * 100
    group = scim.post("/Groups", {"schemas": [GROUP], "displayName": "ok"}).get_json()
    assert_scim_error(scim.post("/Groups", {"schemas": [GROUP], "displayName": "g" * 201}), 400, "invalidValue")
    patch = [{"op": "replace", "path": "displayName", "value": "g" * 300}]
    assert_scim_error(scim.patch(f"/Groups/{group['id']}", patch), 400, "invalidValue")
    assert total(scim) == 1 and total(scim, "/Groups") == 1
    assert scim.get(f"/Groups/{group['id']}").get_json()["displayName"] == "ok"


def test_directory_refusals_are_clean_400s_and_the_log_has_the_details(
    scim: Scim, ldap_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scim_ldap.backend")
    cases = [
        {"userName": "a\x00b"},  # no valid RDN
        {"userName": "phone", "phoneNumbers": [{"value": "☎ 123"}]},  # telephoneNumber syntax
    ]
    for attrs in cases:
        body = assert_scim_error(scim.post("/Users", {"schemas": [USER], **attrs}), 400, "invalidValue")
        assert body["detail"].startswith("The directory refused to add the user"), body
        assert_no_entry_named(body, scim, ldap_app)
    logged = [r.getMessage() for r in caplog.records if "the directory refused" in r.getMessage()]
    assert len(logged) == 2 and all("ou=" in line for line in logged), logged  # the DN is in the log
    assert total(scim) == 0


@pytest.mark.parametrize("start", [2**31 - 1, 2**31, 10**12, 10**30])
def test_a_huge_start_index_is_an_empty_page_with_the_total(scim: Scim, start: int) -> None:
    for name in ("a", "b"):
        assert scim.post("/Users", {"schemas": [USER], "userName": name}).status_code == 201
    directory = scim.get("/Users", query_string={"startIndex": start, "sortBy": "userName"}).get_json()
    evaluated = scim.get("/Users", query_string={"startIndex": start, "filter": "nickName eq null"}).get_json()
    for body in (directory, evaluated):
        assert body["Resources"] == [] and body["totalResults"] == 2 and body["startIndex"] == start, body


def test_a_filter_reading_more_than_the_scan_limit_is_too_many(scim: Scim, ldap_app: Flask) -> None:
    for i in range(5):
        attrs = {"nickName": "nick"} if i == 3 else {}
        assert scim.post("/Users", {"schemas": [USER], "userName": f"u{i}", **attrs}).status_code == 201
    refused = scim.get("/Users", query_string={"filter": 'nickName eq "nick"'})
    body = assert_scim_error(refused, 400, "tooMany")
    assert "SCIM_LDAP_MAX_SCAN" in body["detail"] and "nickName" in body["detail"] and "userName" in body["detail"]
    assert_no_entry_named(body, scim, ldap_app)
    sorted_here = scim.get("/Users", query_string={"sortBy": "name.familyName"})
    assert "cannot order by name.familyName" in assert_scim_error(sorted_here, 400, "tooMany")["detail"]
    # Narrowed by a part the directory evaluates, the same filter is answered; so is a directory list.
    narrowed = scim.get("/Users", query_string={"filter": 'nickName eq "nick" and userName sw "u"', "count": 0})
    assert narrowed.status_code == 400  # u0..u4: five candidates, still more than four
    exact = scim.get("/Users", query_string={"filter": 'nickName eq "nick" and userName eq "u3"'}).get_json()
    assert [r["userName"] for r in exact["Resources"]] == ["u3"] and exact["totalResults"] == 1
    assert total(scim, sortBy="userName") == 5
