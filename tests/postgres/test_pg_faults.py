"""The database goes away: a cluster of this module's own is stopped under a running gunicorn server.

While PostgreSQL is down every request gets a 503 SCIM error quickly (no 500, no hang); when it is back
the service recovers by itself (the pool pings connections before use and replaces broken ones), with
the data written before the outage intact. The observed status codes and timings are printed: run with
``-s`` to see them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pg_support import (
    IN_CI,
    Admin,
    PgCluster,
    Reply,
    call,
    cli,
    gunicorn_servers,
    service_env,
    statuses,
    why_no_cluster,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
QUICK = 6.0  # seconds: a 503 must come well before a client's timeout (connect_timeout is 5 s)
RECOVERY = 15.0  # seconds the service may take to serve again once the server is back
UNEXPECTED = "unexpected error serving"  # what the blueprint logs for a 500


@dataclass
class Setup:
    """The module's cluster, its database URL, the server environment and an organization's token."""

    cluster: PgCluster
    url: str
    env: dict[str, str]
    token: str
    folder: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A throwaway cluster of this module (so it may be stopped), migrated with ``scim-service db upgrade``."""
    reason = why_no_cluster()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true requires the PostgreSQL fault tests, which need their own cluster: {reason}")
        pytest.skip(f"the fault tests start and stop a PostgreSQL cluster of their own: {reason}")
    cluster = PgCluster.create()
    try:
        url = cluster.url("postgres")
        env = service_env(url)
        cli(env, "db", "upgrade")
        admin = Admin(url)
        _tenant, token = admin.org("faults", max_seats=1000)
        admin.close()
        yield Setup(cluster, url, env, token, tmp_path_factory.mktemp("fault-logs"))
    finally:
        cluster.destroy()


def is_scim_503(reply: Reply) -> bool:
    """A SCIM error document with status 503."""
    return reply.status == 503 and reply.body.get("schemas") == [ERROR] and reply.body.get("status") == "503"


class Hammer:
    """Background clients sending GETs and POSTs in a loop; records every outcome (or exception)."""

    def __init__(self, base: str, token: str, threads: int = 4) -> None:
        self.base, self.token = base, token
        self.replies: list[Reply] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, index: int) -> None:
        """Send requests until stopped."""
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                if n % 2:
                    reply = call(self.base + "/Users?count=5", self.token, timeout=20)
                else:
                    body = {"schemas": [USER], "userName": f"hammer-{index}-{n}"}
                    reply = call(self.base + "/Users", self.token, "POST", body, timeout=20)
                self.replies.append(reply)
            except OSError as exc:  # a timeout or a dropped connection: what must not happen
                self.failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.01)

    def __enter__(self) -> Hammer:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_requests_get_quick_503s_while_the_database_is_down_and_recover_after(setup: Setup) -> None:
    with gunicorn_servers(setup.env, setup.folder, count=1, workers=2, threads=4) as servers:
        base = servers.bases[0]
        created = call(base + "/Users", setup.token, "POST", {"schemas": [USER], "userName": "before.outage"})
        assert created.status == 201, created.body
        uid = created.body["id"]

        with Hammer(base, setup.token) as hammer:
            time.sleep(0.5)
            stopped_at = time.monotonic()
            setup.cluster.stop("fast")  # ends every session at once, as a restart or failover does
            stop_seconds = time.monotonic() - stopped_at
            time.sleep(0.5)
            down = probe(base, setup.token, uid)
            time.sleep(0.5)
            started_at = time.monotonic()
            setup.cluster.start()
            recovered_after = wait_until_serving(base, setup.token)
            start_seconds = time.monotonic() - started_at
            time.sleep(0.5)

        print(
            f"\n[fault] pg_ctl stop -m fast took {stop_seconds:.2f}s; while down: "
            + ", ".join(f"{name} -> {r.status} in {r.seconds * 1000:.0f} ms" for name, r in down.items())
        )
        print(
            f"[fault] background clients: {len(hammer.replies)} replies {statuses(hammer.replies)}, "
            f"slowest {max(r.seconds for r in hammer.replies):.2f}s, transport failures {len(hammer.failures)}"
        )
        print(f"[fault] server started in {start_seconds:.2f}s; first 200 {recovered_after:.2f}s after pg_ctl start")
        for name, reply in down.items():
            assert is_scim_503(reply), (name, reply.status, reply.body)
            assert reply.seconds < QUICK, (name, reply.seconds)
            assert "database" in reply.body.get("detail", "").lower(), reply.body
        assert not hammer.failures, hammer.failures[:5]
        assert set(statuses(hammer.replies)) <= {200, 201, 503}, statuses(hammer.replies)
        assert 503 in statuses(hammer.replies)  # the clients did run through the outage
        assert max(r.seconds for r in hammer.replies) < QUICK
        assert recovered_after < RECOVERY

        # Back to normal: the data of before the outage is there and writes work again.
        got = call(f"{base}/Users/{uid}", setup.token)
        assert got.status == 200 and got.body["userName"] == "before.outage"
        assert call(base + "/Users", setup.token, "POST", {"schemas": [USER], "userName": "after.outage"}).status == 201
        logs = servers.logs()
        print(f"[fault] log entries that could not be written: {logs.count('could not write the provisioning log')}")
        assert UNEXPECTED not in logs, logs[-5000:]


def test_a_server_started_while_the_database_is_down_serves_once_it_is_up(setup: Setup) -> None:
    setup.cluster.stop("fast")
    try:
        with gunicorn_servers(setup.env, setup.folder, count=1, workers=2, threads=4) as servers:
            base = servers.bases[0]
            first = call(base + "/Users", setup.token)
            setup.cluster.start()
            recovered_after = wait_until_serving(base, setup.token)
            print(
                f"\n[fault] started with the database down: {first.status} in {first.seconds * 1000:.0f} ms; "
                f"first 200 {recovered_after:.2f}s after pg_ctl start"
            )
            assert is_scim_503(first) and first.seconds < QUICK, (first.status, first.body)
            assert recovered_after < RECOVERY
            listed = call(base + "/Users?filter=" + 'userName eq "before.outage"'.replace(" ", "%20"), setup.token)
            assert listed.status == 200 and listed.body["totalResults"] == 1
            assert UNEXPECTED not in servers.logs(), servers.logs()[-5000:]
    finally:
        if not setup.cluster.running():
            setup.cluster.start()


def probe(base: str, token: str, uid: str) -> dict[str, Reply]:
    """One request of each kind, in sequence."""
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}
    return {
        "GET /Users": call(base + "/Users", token, timeout=30),
        "GET /Users/{id}": call(f"{base}/Users/{uid}", token, timeout=30),
        "POST /Users": call(base + "/Users", token, "POST", {"schemas": [USER], "userName": "during"}, timeout=30),
        "PATCH /Users/{id}": call(f"{base}/Users/{uid}", token, "PATCH", patch, timeout=30),
        "GET /ServiceProviderConfig": call(base + "/ServiceProviderConfig", token, timeout=30),
    }


def wait_until_serving(base: str, token: str) -> float:
    """Seconds until GET /Users answers 200 (gives up after twice the allowed recovery time)."""
    started = time.monotonic()
    while time.monotonic() - started < 2 * RECOVERY:
        if call(base + "/Users", token, timeout=10).status == 200:
            return time.monotonic() - started
        time.sleep(0.05)
    return float("inf")
