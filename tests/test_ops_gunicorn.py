"""Metrics and the gunicorn configuration over real HTTP: two workers of ``gunicorn -c gunicorn.conf.py``.

Each worker is its own process with its own counters; a scrape answered by either worker must report
what both served (prometheus-client's multiprocess mode, set up by gunicorn.conf.py). The worker that
served a request is not chosen by the test, so requests are sent until the metric files show that both
workers served some, then every scrape must report exactly the number sent.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ops_support import (
    dockerfile_instruction,
    exec_form,
    get,
    os_environ_without_scim,
    prepare_database,
    production_server,
    wait_for,
)
from pg_support import free_port

pytestmark = pytest.mark.slow

BATCH = 16


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _pids(folder: Path, kind: str) -> set[int]:
    return {int(m.group(1)) for p in folder.glob(f"{kind}_*.db") if (m := re.search(r"_(\d+)\.db$", p.name))}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("ops-gunicorn")
    metrics_dir = folder / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left over from an earlier run")
    env = {
        **os_environ_without_scim(),
        "SCIM_DATABASE_URL": f"sqlite:///{folder}/scim.db",
        "SCIM_LOG_LEVEL": "WARNING",
        "SCIM_METRICS": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    token = prepare_database(env["SCIM_DATABASE_URL"], org="acme", max_seats=5)
    with production_server(env, folder, "--workers", "2", "--threads", "2") as server:
        yield {"server": server, "token": token, "metrics": metrics_dir}


def test_the_stale_metric_files_of_an_earlier_run_are_cleared(served):
    assert not (served["metrics"] / "counter_1.db").exists()


def test_two_workers_add_up_in_every_scrape(served):
    server, token = served["server"], served["token"]
    users = server.url + "/scim/v2/Users"
    sent = 0
    with ThreadPoolExecutor(max_workers=BATCH) as pool:
        while len(_pids(served["metrics"], "counter")) < 2:
            assert sent < 40 * BATCH, (
                "the metrics folder never held the files of two workers (each worker writes its own)"
            )
            replies = list(pool.map(lambda _: get(users, {"Authorization": f"Bearer {token}"}), range(BATCH)))
            assert [r[0] for r in replies] == [200] * BATCH
            sent += BATCH
    assert len(server.workers()) == 2
    assert _pids(served["metrics"], "counter") <= server.workers()
    for _ in range(6):  # each scrape may be answered by either worker
        status, headers, body = get(server.url + "/metrics")
        text = body.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        labels = {"endpoint": "scim.users", "method": "GET", "status": "200", "organization": "acme"}
        assert _sample(text, "scim_http_requests_total", **labels) == sent
        assert _sample(text, "scim_http_request_duration_seconds_count", endpoint="scim.users", method="GET") == sent
        assert _sample(text, "scim_backend_call_duration_seconds_count", operation="list_users", outcome="ok") == sent
        assert _sample(text, "scim_seats_max", organization="acme") == 5
        assert _sample(text, "scim_seats_used", organization="acme") == 0


def test_failures_tolerances_and_seats_are_counted(served):
    server, token = served["server"], served["token"]
    users = server.url + "/scim/v2/Users"
    before = get(server.url + "/metrics")[2].decode()

    def post(body: bytes, agent: str) -> int:
        request = urllib.request.Request(users, data=body, method="POST")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/scim+json")
        request.add_header("User-Agent", agent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    # Entra sends booleans as strings: its profile tolerates that, and the tolerance is counted.
    entra = b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"eve","active":"True"}'
    assert post(entra, "Azure AD SCIM Client") == 201
    assert get(users, {"Authorization": "Bearer not-a-token"})[0] == 401
    after = get(server.url + "/metrics")[2].decode()
    assert _sample(after, "scim_tolerances_total", profile="entra", tolerance="string_booleans") == 1 + _sample(
        before, "scim_tolerances_total", profile="entra", tolerance="string_booleans"
    )
    unauth = {"endpoint": "scim.users", "method": "GET", "status": "401", "organization": ""}
    assert (
        _sample(after, "scim_http_requests_total", **unauth)
        == _sample(before, "scim_http_requests_total", **unauth) + 1
    )
    assert _sample(after, "scim_seats_used", organization="acme") == 1


def test_access_log_lines_carry_the_request_id(served):
    server, token = served["server"], served["token"]
    users = server.url + "/scim/v2/Users"
    status, headers, _body = get(users, {"Authorization": f"Bearer {token}", "X-Request-Id": "okta-trace-7"})
    assert status == 200 and headers["X-Request-Id"] == "okta-trace-7"
    status, headers, _body = get(users, {"Authorization": f"Bearer {token}"})
    made = headers["X-Request-Id"]  # none given: the service made one
    assert status == 200 and made
    for rid in ("okta-trace-7", made):
        assert wait_for(lambda rid=rid: f"request_id={rid} " in server.log_text(), timeout=10), rid
        line = next(line for line in server.log_text().splitlines() if f"request_id={rid} " in line)
        assert '"GET /scim/v2/Users HTTP/1.1" 200' in line and re.search(r" \d+ms ", line), line


def test_a_dead_worker_keeps_its_counts_and_child_exit_drops_its_live_gauge(served):
    server, folder = served["server"], served["metrics"]
    before = _sample(get(server.url + "/metrics")[2].decode(), "scim_http_requests_total", endpoint="scim.users",
                     method="GET", status="200", organization="acme")  # fmt: skip
    victim = sorted(_pids(folder, "counter") & server.workers())[0]
    assert (folder / f"gauge_livesum_{victim}.db").exists()
    os.kill(victim, signal.SIGTERM)
    assert wait_for(lambda: victim not in server.workers() and len(server.workers()) == 2)
    assert wait_for(lambda: not (folder / f"gauge_livesum_{victim}.db").exists()), "child_exit did not run"
    assert (folder / f"counter_{victim}.db").exists()  # what it served still counts
    for _ in range(4):
        after = _sample(get(server.url + "/metrics")[2].decode(), "scim_http_requests_total", endpoint="scim.users",
                        method="GET", status="200", organization="acme")  # fmt: skip
        assert after == before


def test_the_images_healthcheck_command_passes_here_and_fails_without_a_server(served):
    # The container's HEALTHCHECK, run on this machine against gunicorn started as its CMD starts it.
    command = exec_form(dockerfile_instruction("HEALTHCHECK"))
    assert command[0] == "python"
    port = served["server"].url.rsplit(":", 1)[1]
    for target, expected_ok in ((port, True), (str(free_port()), False)):
        done = subprocess.run([sys.executable, *command[1:]], env={"PORT": target}, capture_output=True, timeout=30)
        assert (done.returncode == 0) is expected_ok, done.stderr
