"""The admin page in a real browser: Debian's headless Chromium, driven by Playwright, against gunicorn.

An operator's walk: log in, see the organizations with their seats, create a token with a lifetime,
rotate it and revoke the new one, filter the provisioning log by user and status for the request
that failed, narrow it to that request's id and follow it to its troubleshooting entry. Every
page is kept as a screenshot in ``test-artifacts/admin-browser/`` (ignored by git) to look at after a
run. Playwright drives the system Chromium (``/usr/bin/chromium``, or ``SCIM_TEST_CHROMIUM``); it never
downloads a browser of its own. Without Chromium or Playwright the test skips, except under
``CI=true``, where it fails (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ops_support import os_environ_without_scim, prepare_database, production_server
from pg_support import IN_CI, REPO

pytestmark = pytest.mark.slow

SCREENSHOTS = REPO / "test-artifacts" / "admin-browser"
PASSWORD = "browser test password, long enough"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
# As root Chromium needs --no-sandbox; the rest keep it off a network it cannot reach here.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true requires the browser test to run: {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    path = os.environ.get("SCIM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        _unavailable("no Chromium found (Debian: apt-get install chromium; or set SCIM_TEST_CHROMIUM)")
    return path


def _scim(base: str, token: str, method: str, path: str, body: bytes | None = None, request_id: str = "") -> int:
    request = urllib.request.Request(base + "/scim/v2" + path, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if request_id:
        request.add_header("X-Request-Id", request_id)
    if body is not None:
        request.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("admin-browser")
    env = {
        **os_environ_without_scim(),
        "SCIM_DATABASE_URL": f"sqlite:///{folder}/scim.db",
        "SCIM_LOG_LEVEL": "WARNING",
        "SCIM_ADMIN_PASSWORD": PASSWORD,
    }
    token = prepare_database(env["SCIM_DATABASE_URL"], org="acme", max_seats=2)
    prepare_database(env["SCIM_DATABASE_URL"], org="globex")
    with production_server(env, folder, "--workers", "1") as server:
        # Okta's requests, each with its own request id; cyd is one over the two seats: 403.
        for name in ("ann@example.com", "bob@example.com", "cyd@example.com"):
            body = f'{{"schemas":["{USER_SCHEMA}"],"userName":"{name}"}}'.encode()
            status = _scim(server.url, token, "POST", "/Users", body, request_id=f"okta-{name.split('@')[0]}")
            assert status == (403 if name.startswith("cyd") else 201)
        assert _scim(server.url, token, "GET", "/Users?filter=userName%20eq%20%22open") == 400
        yield {"url": server.url, "folder": folder}


@pytest.fixture(scope="module")
def page(site: dict[str, Any]) -> Iterator[Any]:
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (make install)")
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(site["folder"] / "chromium-profile"),  # a fresh, empty --user-data-dir
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(15_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _shot(page: Any, name: str) -> None:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def test_an_operator_walks_the_admin_page(site, page):
    base = site["url"]

    # Any admin URL leads to the login form first.
    page.goto(base + "/admin/")
    assert page.url.startswith(base + "/admin/login")
    _shot(page, "01-login")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert "not right" in page.inner_text("[role=alert]")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.url == base + "/admin/"

    # Organizations with seats used of maxSeats; acme is full.
    acme = page.locator('tr[data-org="acme"]')
    assert re.sub(r"\s+", " ", acme.locator("td.seats").inner_text()).strip() == "2 of 2"
    assert acme.locator(".badge").inner_text() == "full"
    assert "0 of unlimited" in page.locator('tr[data-org="globex"] td.seats').inner_text()
    _shot(page, "02-organizations")

    # A new token with a lifetime, shown once, that works; rotated with a grace (both work); the new
    # one revoked (refused at once).
    acme.get_by_role("link", name="Tokens").click()
    assert page.url == base + "/admin/orgs/acme/tokens"
    page.fill("#description", "Okta production")
    page.fill("#expires_in", "90d")
    page.get_by_role("button", name="Create token").click()
    token = page.inner_text("#new-token").strip()
    token_id = page.inner_text("#created-token h2").split()[-1]
    assert token.startswith("scim_")
    row = page.locator(f'tr[data-token="{token_id}"]')
    assert row.locator("td").nth(2).inner_text() == "Okta production"
    assert row.locator("td").nth(5).inner_text() != "never"  # the expiry
    assert token.startswith(row.locator("td").nth(1).inner_text().rstrip("…"))  # the visible prefix
    assert _scim(base, token, "GET", "/Users") == 200
    _shot(page, "03-token-created")
    row.get_by_label(f"grace period of {token_id}").fill("2h")
    row.get_by_role("button", name="Rotate").click()
    new_token = page.inner_text("#new-token").strip()
    new_id = page.inner_text("#created-token h2").split()[-1]
    assert f"Token {token_id} replaced by {new_id}" in page.inner_text("[role=status]")
    assert page.locator(f'tr[data-token="{token_id}"] td.state').inner_text().startswith("rotating")
    assert _scim(base, token, "GET", "/Users") == 200 and _scim(base, new_token, "GET", "/Users") == 200
    _shot(page, "04-token-rotated")
    page.locator(f'tr[data-token="{new_id}"]').get_by_role("button", name="Revoke").click()
    assert f"Token {new_id} revoked." in page.inner_text("[role=status]")
    assert page.locator(f'tr[data-token="{new_id}"] td.state').inner_text().startswith("revoked")
    assert _scim(base, new_token, "GET", "/Users") == 401
    _shot(page, "05-token-revoked")

    # "Why did Okta show an error for cyd@example.com?": the log, filtered by user and failed status.
    page.get_by_role("link", name="Provisioning log").click()
    page.select_option("select[name=org]", "acme")
    page.fill("input[name=user]", "CYD@example.com")
    page.fill("input[name=status]", "4xx")
    page.fill("input[name=since]", "1d")
    page.get_by_role("button", name="Filter").click()
    assert "user=CYD%40example.com" in page.url and "status=4xx" in page.url
    rows = page.locator("#log tbody tr")
    assert rows.evaluate_all("rows => rows.map(r => [r.dataset.status, r.dataset.requestId])") == [["403", "okta-cyd"]]
    _shot(page, "06-log-filtered")
    # Its request id narrows the log to that one request (as `scim-service log --request-id` does).
    page.get_by_role("link", name="okta-cyd").click()
    assert "request_id=okta-cyd" in page.url
    failed = page.locator('#log tr[data-status="403"]')
    assert page.locator("#log tbody tr").count() == 1
    assert "seat" in failed.locator("td.detail").inner_text().lower()
    failed.get_by_role("link", name=re.compile("Troubleshoot")).click()
    assert page.url == base + "/admin/troubleshooting#403-seat-limit-reached"
    entry = page.locator('tr[id="403-seat-limit-reached"]')
    assert entry.is_visible()
    assert "maxSeats" in entry.inner_text()
    # The :target style marks the row the link pointed at.
    assert entry.evaluate("row => getComputedStyle(row).outlineStyle") == "solid"
    _shot(page, "07-troubleshooting-entry")

    assert sorted(p.name for p in SCREENSHOTS.iterdir()) == [
        "01-login.png",
        "02-organizations.png",
        "03-token-created.png",
        "04-token-rotated.png",
        "05-token-revoked.png",
        "06-log-filtered.png",
        "07-troubleshooting-entry.png",
    ]
