"""The README's path end to end: the CLI sets up a SQLite database, gunicorn serves it over real HTTP.

Two gunicorn servers (separate processes, two workers each) share one SQLite file, so the races here
cross processes: exactly one POST of a userName wins, the last seat goes to exactly one request, and a
token revoked through the CLI fails at once in every worker.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "scim-service"), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _call(url: str, token: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else {}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("live")
    env = {**os.environ, "SCIM_DATABASE_URL": f"sqlite:///{folder}/scim.db", "SCIM_LOG_LEVEL": "WARNING"}
    env.pop("SCIM_BASE_PATH", None)
    _cli(env, "db", "upgrade")
    servers, urls = [], []
    for _ in range(2):
        port = _free_port()
        servers.append(
            subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "-b",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "scim_service.wsgi:app",
                ],
                env=env,
                cwd=Path(__file__).resolve().parents[1],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        urls.append(f"http://127.0.0.1:{port}/scim/v2")
    try:
        for url, server in zip(urls, servers, strict=True):
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/Users", timeout=2)
                except urllib.error.HTTPError:
                    break  # 401: it answers
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"gunicorn did not start: {server.stderr.read().decode()[-2000:]}") from None
                    time.sleep(0.1)
        yield {"env": env, "urls": urls}
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


def _org(live: dict, name: str, *args: str) -> str:
    _cli(live["env"], "orgs", "create", name, *args)
    created = json.loads(_cli(live["env"], "tokens", "create", name, "--json"))
    assert set(created) == {"id", "token"}
    return created["token"]


def test_readme_path_over_real_http(live):
    token = _org(live, "acme", "--max-seats", "100")
    url = live["urls"][0]
    status, body = _call(url + "/Users", token)
    assert status == 200 and body["totalResults"] == 0
    status, created = _call(url + "/Users", token, "POST", {"schemas": [USER_SCHEMA], "userName": "alice"})
    assert status == 201
    # The other server sees it at once: no state is kept in the processes.
    status, got = _call(live["urls"][1] + f"/Users/{created['id']}", token)
    assert status == 200 and got["userName"] == "alice"
    listed = json.loads(_cli(live["env"], "orgs", "list", "--json"))
    assert any(o["name"] == "acme" and o["seats_used"] == 1 for o in listed)


def test_cross_process_race_on_one_username(live):
    token = _org(live, "race", "--max-seats", "100")
    body = {"schemas": [USER_SCHEMA], "userName": "same"}
    targets = [live["urls"][i % 2] + "/Users" for i in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = [s for s, _ in pool.map(lambda u: _call(u, token, "POST", body), targets)]
    assert statuses.count(201) == 1 and statuses.count(409) == 15, statuses
    _status, listed = _call(live["urls"][0] + "/Users", token)
    assert listed["totalResults"] == 1


@pytest.mark.parametrize("policy", ["all", "active"])
def test_cross_process_race_on_the_last_seat(live, policy):
    token = _org(live, f"seat-{policy}", "--max-seats", "1", "--seats", policy)
    targets = [(live["urls"][i % 2] + "/Users", f"u{i}") for i in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(lambda t: _call(t[0], token, "POST", {"schemas": [USER_SCHEMA], "userName": t[1]})[0], targets)
        )
    assert statuses.count(201) == 1 and statuses.count(403) == 15, statuses


def test_revoked_token_fails_in_every_worker_at_once(live):
    token = _org(live, "revoke")
    for url in live["urls"] * 3:
        assert _call(url + "/Users", token)[0] == 200
    [info] = json.loads(_cli(live["env"], "tokens", "list", "revoke", "--json"))
    _cli(live["env"], "tokens", "revoke", info["id"])
    for url in live["urls"] * 3:  # each request may land on any of the four workers
        status, body = _call(url + "/Users", token)
        assert status == 401 and body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
