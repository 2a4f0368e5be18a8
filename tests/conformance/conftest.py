"""A live server for the third-party conformance suites: gunicorn on 127.0.0.1 serving a SQLite file.

The suites' data (Okta's Runscope exports, Microsoft's Postman collections) lives outside the repository, in
``../shared/conformance`` next to the repository root. Outside CI a missing folder skips these tests with the
reason; in CI (``CI=true``) it fails them, so a broken checkout cannot pass silently.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = REPO_ROOT.parent / "shared" / "conformance"
BIN = Path(sys.executable).parent
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

pytestmark = pytest.mark.slow


def in_ci() -> bool:
    """True when running in CI, where a missing prerequisite is a failure rather than a skip."""
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip the test with ``reason`` locally; fail it in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails instead of skipping)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "scim-service"), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"scim-service {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def call(url: str, token: str, method: str = "GET", body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    """One SCIM request with a bearer token; returns (status, parsed JSON body or {})."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else {}


@dataclass
class LiveServer:
    """A running gunicorn serving the standalone app; ``base_url`` ends with the SCIM base path."""

    base_url: str
    env: dict[str, str]
    _orgs: int = field(default=0)

    def new_org(self, prefix: str, *options: str) -> str:
        """Create a fresh organization (CLI ``orgs create`` with ``options``) and return a bearer token for it."""
        self._orgs += 1
        name = f"{prefix}-{self._orgs}"
        _cli(self.env, "orgs", "create", name, *options)
        created = json.loads(_cli(self.env, "tokens", "create", name, "--json", "--description", prefix))
        return created["token"]


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The folder of third-party suite data; skips (or fails in CI) when it is absent."""
    if not CONFORMANCE_DIR.is_dir():
        skip_or_fail(f"third-party conformance data not found at {CONFORMANCE_DIR}")
    return CONFORMANCE_DIR


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """gunicorn (2 workers) on a free port of 127.0.0.1 over a fresh SQLite file, schema created by the CLI."""
    folder = tmp_path_factory.mktemp("conformance")
    env = {**os.environ, "SCIM_DATABASE_URL": f"sqlite:///{folder}/scim.db", "SCIM_LOG_LEVEL": "WARNING"}
    env.pop("SCIM_BASE_PATH", None)
    _cli(env, "db", "upgrade")
    port = _free_port()
    log = (folder / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "wsgi:app"],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/scim/v2"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/ServiceProviderConfig", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (401 without a token)
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (folder / "gunicorn.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"gunicorn did not start: {tail}") from None
                time.sleep(0.1)
        live = LiveServer(base_url=url, env=env)
        # Warm every worker (imports, first connection) so the suites' response-time assertions measure requests.
        warm = live.new_org("warmup")
        for _ in range(8):
            call(url + "/Users", warm)
        yield live
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def seed_user(live: LiveServer, token: str, user_name: str, given: str, family: str) -> dict:
    """Create an active user with a name and a primary work email (suites expect one to exist before they start)."""
    status, body = call(
        live.base_url + "/Users",
        token,
        "POST",
        {
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "name": {"givenName": given, "familyName": family},
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "displayName": f"{given} {family}",
            "active": True,
        },
    )
    assert status == 201, body
    return body


def seed_group(live: LiveServer, token: str, display_name: str, member_ids: list[str]) -> dict:
    """Create a group with the given members."""
    status, body = call(
        live.base_url + "/Groups",
        token,
        "POST",
        {"schemas": [GROUP_SCHEMA], "displayName": display_name, "members": [{"value": m} for m in member_ids]},
    )
    assert status == 201, body
    return body
