"""A live server for the third-party conformance suites: gunicorn on 127.0.0.1, once per shipped backend.

``live_server`` is parametrised over the backends, so every suite runs three times: on a SQLite file
(``[sqlite]``), on a fresh database of the session's PostgreSQL server (``[postgres]``, see
``tests/pg_support.py``) and on the LDAP backend (``[ldap]``: a fresh subtree of the session's slapd,
organizations and tokens in a SQLite file; see ``tests/ldap_support.py``). A missing PostgreSQL or slapd
skips that variant with the reason, and fails it under ``CI=true``. Where a suite's check fails on one
backend because of a limit the backend declares (``capabilities``), the suite names that check as an
exception for that backend only, with the reason; ``LiveServer.backend`` says which one is serving.

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
from collections.abc import Callable, Iterator
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
    """A running gunicorn serving the standalone app; ``base_url`` ends with the SCIM base path.

    ``backend`` is the variant: ``sqlite``, ``postgres`` or ``ldap``.
    """

    base_url: str
    env: dict[str, str]
    backend: str = "sqlite"
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


BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("ldap", marks=pytest.mark.ldap),
]


def _server_env(request: pytest.FixtureRequest, folder: Path, kind: str) -> tuple[dict[str, str], Callable[[], None]]:
    """The environment of a server on backend ``kind``, and what removes its store afterwards."""
    # No stray SCIM_* setting of the caller's shell (a base path, another backend) reaches the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_") or k.startswith("SCIM_TEST_")}
    env.update({"SCIM_DATABASE_URL": f"sqlite:///{folder}/scim.db", "SCIM_LOG_LEVEL": "WARNING"})
    if kind == "postgres":
        databases = request.getfixturevalue("pg_databases")
        name = databases.create(tag="conformance")
        env["SCIM_DATABASE_URL"] = databases.url(name)
        return env, lambda: databases.drop(name)
    if kind == "ldap":
        subtrees = request.getfixturevalue("ldap_subtrees")
        env.update(subtrees.settings)
        base = subtrees.new_base("conformance")
        env.update({"SCIM_BACKEND": "ldap", "SCIM_LDAP_BASE_DN": base})
        return env, lambda: subtrees.remove(base)
    return env, lambda: None


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """gunicorn (2 workers) on a free port of 127.0.0.1 over a fresh store of the backend, schema made by the CLI."""
    kind = request.param
    folder = tmp_path_factory.mktemp(f"conformance-{kind}")
    env, remove_store = _server_env(request, folder, kind)
    _cli(env, "db", "upgrade")
    port = _free_port()
    log = (folder / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "scim_service.wsgi:app"],
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
        live = LiveServer(base_url=url, env=env, backend=kind)
        # Warm every worker (imports, first connection) so the suites' response-time assertions measure requests.
        warm = live.new_org("warmup")
        for _ in range(8):
            call(url + "/Users", warm)
        yield live
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        remove_store()


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
