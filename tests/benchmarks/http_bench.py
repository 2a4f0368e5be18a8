"""The HTTP benchmark (``make bench``): the service as a user feels it, as fractions of a bare row read.

The service runs under gunicorn (sync workers) on a seeded database, SQLite and, when a server is
there, PostgreSQL. Beside it, with the same gunicorn settings and on the same database, runs a bare
Flask + SQLAlchemy route that reads one row by primary key (``bare_app.py``). Both are loaded with wrk
(or, without wrk, a Python client that is itself the bottleneck) in the same rounds, interleaved, so
whatever else the machine does hits both; the table gives each operation's throughput and latency and
its ratio to the bare route's. Growth ratios compare a group of 100 members with a big group (10,000), and (with
``--large``) a database of 10,000 users with one of 1,000,000.

    python tests/benchmarks/http_bench.py [--large] [--databases sqlite,postgresql] [--count-only]
    python tests/benchmarks/http_bench.py --profile patch,post [--profile-seconds 10]

``--count-only`` (also printed after every run) counts SQL statements and transactions per request by
serving the same requests in-process with SQLAlchemy event listeners; ``--profile`` records the
gunicorn workers with py-spy under load and prints where the time goes, by function.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import profiling  # noqa: E402  (the folder above is on the path only from here on)
import seeding  # noqa: E402

BASE = "/scim/v2"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PG_PROBE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WRK_HINT = "install wrk for figures that are not client-bound: apt-get install wrk (Debian/Ubuntu), brew install wrk"


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- what is measured ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One row of the table: an operation, the issue's target for it, how it is checked."""

    key: str
    label: str
    target: str
    min_ratio: float | None = None  # of the bare row read's req/s
    max_p99_ms: float | None = None


OPS: tuple[Op, ...] = (
    Op("get", "GET /Users/{id}", ">= 0.8", 0.8),
    Op("filter", "filter userName eq", ">= 0.7", 0.7),
    Op("page", "page of 100", ">= 0.15", 0.15),
    Op("patch", "PATCH active", ">= 0.35, p99 < 50 ms", 0.35, 50.0),
    Op("post", "POST /Users", ">= 0.35", 0.35),
    Op("group", "Group PATCH add 1 member (100; 200 + members asked)", "flat, see growth"),
    Op("group204", "Group PATCH add 1 member (100; Entra: 204)", "flat, see growth"),
)
BARE = "bare"
SMALL_GROUP = 100  # members of the small group; the big one has --big-group
BIG = "_big"  # suffix: the same group operation on the big group
# The group operations, each measured on the small group and on the big group.
GROUP_OPS = ("group", "group204")


class Histogram(Counter[int]):
    """Latencies in microseconds, value -> count; merged across rounds for exact percentiles."""

    def percentile(self, p: float) -> float:
        """The latency (µs) at or below which ``p`` percent of the requests finished."""
        total = sum(self.values())
        if total == 0:
            return float("nan")
        rank = max(1, round(total * p / 100))
        seen = 0
        for value in sorted(self):
            seen += self[value]
            if seen >= rank:
                return float(value)
        return float(max(self))


@dataclass
class Load:
    """The outcome of one or more load windows of one operation."""

    requests: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)

    def add(self, other: Load) -> None:
        """Fold another window into this one."""
        self.requests += other.requests
        self.seconds += other.seconds
        self.errors.update(other.errors)
        self.latency.update(other.latency)

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def ms(self, p: float) -> float:
        """The ``p``-th percentile latency in milliseconds."""
        return self.latency.percentile(p) / 1000


# -- load generators ---------------------------------------------------------------------------------------


class Wrk:
    """wrk with ``replay.lua``: C, event-driven, two threads; the server is the bottleneck."""

    name = "wrk"
    client_bound = False

    def __init__(self, path: str) -> None:
        self.path = path
        self.version = subprocess.run([path, "-v"], capture_output=True, text=True).stdout.splitlines()[0:1]

    def run(self, url: str, requests_file: Path, token: str, seconds: float, connections: int) -> Load:
        threads = min(2, connections)
        command = [
            self.path,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",  # wrk counts whole seconds
            "--timeout",
            "60s",
            "-s",
            str(HERE / "replay.lua"),
            url,
            "--",
            str(requests_file),
            token or "-",
            uuid.uuid4().hex[:10],
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-JSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        found = json.loads(line[len("BENCH-JSON ") :])
        hist = Histogram()
        for pair in filter(None, found["histogram"].split(",")):
            value, count = pair.split(":")
            hist[int(value)] += int(count)
        errors = Counter({k: v for k, v in found["errors"].items() if v})
        return Load(found["requests"], found["duration_us"] / 1e6, errors, hist)


def _client_worker(task: tuple[str, str, str, float, int, str, int]) -> tuple[int, dict[str, int], dict[int, int]]:
    """One process of the Python load generator: ``threads`` closed loops of blocking HTTP calls."""
    import http.client

    url, requests_file, token, seconds, threads, run, proc = task
    parsed = urllib.parse.urlsplit(url)
    lines = [line.rstrip("\n").split("\t") for line in Path(requests_file).read_text().splitlines() if line]
    hist: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    count = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop(thread_no: int) -> None:
        nonlocal count
        n = thread_no * 7919 + proc * 104729
        local_hist: Counter[int] = Counter()
        local_errors: Counter[str] = Counter()
        local_count = 0
        while time.perf_counter() < deadline:
            n += 1
            method, path, *rest = lines[n % len(lines)]
            body = rest[0].replace("{uniq}", f"{run}-{proc}-{thread_no}-{n}") if rest and rest[0] else None
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            if body is not None:
                headers["Content-Type"] = "application/scim+json"
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                conn.close()
            except OSError:
                local_errors["connect"] += 1
                continue
            local_hist[int((time.perf_counter() - started) * 1e6)] += 1
            local_count += 1
            if response.status > 399:
                local_errors["status"] += 1
        with lock:
            hist.update(local_hist)
            errors.update(local_errors)
            count += local_count

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return count, dict(errors), dict(hist)


class PythonClient:
    """The fallback load generator: processes of threads with http.client. It needs about as much CPU
    as the server, so on a small machine its figures say more about the client than the service."""

    name = "python http.client (client-bound: install wrk)"
    client_bound = True
    version: list[str] = []

    def run(self, url: str, requests_file: Path, token: str, seconds: float, connections: int) -> Load:
        procs = min(2, connections)
        per_proc = max(1, connections // procs)
        run = uuid.uuid4().hex[:10]
        tasks = [(url, str(requests_file), token, seconds, per_proc, run, p) for p in range(procs)]
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(procs) as pool:
            results = pool.map(_client_worker, tasks)
        elapsed = max(seconds, time.perf_counter() - started - 0.3)  # less the pool's start-up, roughly
        load = Load(seconds=min(elapsed, seconds * 1.05))
        for count, errors, hist in results:
            load.requests += count
            load.errors.update(errors)
            load.latency.update({int(k): v for k, v in hist.items()})
        return load


def load_generator(choice: str) -> Wrk | PythonClient:
    """wrk when it is installed (or asked for), else the Python client, saying how to get wrk."""
    path = shutil.which("wrk")
    if choice == "wrk" and path is None:
        sys.exit(f"wrk is not installed; {WRK_HINT}")
    if choice != "python" and path is not None:
        return Wrk(path)
    if choice == "auto":
        print(f"NOTE: wrk not found; the Python client is used and the figures are client-bound. {WRK_HINT}")
    return PythonClient()


# -- databases, data and servers ----------------------------------------------------------------------------


@dataclass
class Database:
    """A database the benchmark seeds, with its kind ("sqlite" or "postgresql") and its SQLAlchemy URL."""

    kind: str
    url: str
    version: str


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def postgres_server_url() -> str | None:
    """The server to use: ``SCIM_TEST_POSTGRES_URL``, or the machine's 127.0.0.1:5432 if it answers."""
    url = os.environ.get("SCIM_TEST_POSTGRES_URL")
    if url:
        return url
    return PG_PROBE_URL if _port_open("127.0.0.1", 5432) else None


@contextmanager
def sqlite_database(folder: Path, tag: str) -> Iterator[Database]:
    """A new SQLite file in ``folder``."""
    yield Database("sqlite", f"sqlite:///{folder / f'{tag}.db'}", f"SQLite {sqlite3.sqlite_version}")


@contextmanager
def postgres_database(server_url: str, tag: str) -> Iterator[Database]:
    """A new database on the server, dropped afterwards."""
    import sqlalchemy as sa

    name = f"scim_bench_{tag}_{int(time.time())}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        version = conn.exec_driver_sql("SHOW server_version").scalar_one()
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield Database("postgresql", str(sa.engine.make_url(server_url).set(database=name)), f"PostgreSQL {version}")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class Dataset:
    """What was seeded: the token, sample ids, the two groups and users in neither group."""

    users: int
    token: str
    sample_ids: list[str]
    small_group: str
    big_group: str
    big_size: int
    outsiders: list[str]


def prepare(url: str, users: int, big_group: int) -> Dataset:
    """Create the tables, an organization with a token, ``users`` users, a group of SMALL_GROUP and one of
    ``big_group`` members; every table analysed."""
    from scim_sql.backend import SqlBackend

    from scim_service.servicedb.migrate import upgrade_service_db
    from scim_service.servicedb.store import ServiceStore
    from scim_service.sqlengine import make_engine

    if big_group + 1000 > users:
        raise SystemExit(f"--big-group {big_group} needs at least {big_group + 1000} users")
    upgrade_service_db(url)
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": url})
    backend.migrate()
    engine = make_engine(url)
    try:
        store = ServiceStore(engine)
        org = store.create_org(f"bench-{uuid.uuid4().hex[:8]}")
        _token_id, token = store.create_token(org.name, "benchmark")
        started = time.perf_counter()
        ids = seeding.seed_users(backend.engine, org.id, users)
        small = seeding.seed_group(backend.engine, org.id, "small", ids[:SMALL_GROUP])
        big = seeding.seed_group(backend.engine, org.id, "big", ids[:big_group])
        seeding.analyze(backend.engine)
        progress(
            f"seeded {users:,} users, groups of {SMALL_GROUP} and {big_group:,} "
            f"in {time.perf_counter() - started:.1f} s"
        )
    finally:
        engine.dispose()
        backend.close()
    return Dataset(
        users=users,
        token=token,
        sample_ids=seeding.sample(ids, 5000),
        small_group=small,
        big_group=big,
        big_size=big_group,
        outsiders=seeding.sample(ids[big_group:], 4000, seed=13),
    )


def request_lines(key: str, ds: Dataset) -> list[str]:
    """The requests of one operation, as replay.lua reads them: METHOD<tab>PATH[<tab>BODY]."""
    rng = random.Random(key)

    def line(method: str, path: str, body: Any = None) -> str:
        return "\t".join([method, path] + ([json.dumps(body, separators=(",", ":"))] if body is not None else []))

    if key == BARE:
        return [line("GET", f"/bare/users/{i}") for i in ds.sample_ids]
    if key == "get":
        return [line("GET", f"{BASE}/Users/{i}") for i in ds.sample_ids]
    if key == "filter":
        return [
            line("GET", f"{BASE}/Users?filter=" + urllib.parse.quote(f'userName eq "{seeding.user_name(n)}"'))
            for n in (rng.randrange(ds.users) for _ in range(5000))
        ]
    if key == "page":
        return [line("GET", f"{BASE}/Users?startIndex=1&count=100")]
    if key == "patch":
        return [
            line(
                "PATCH",
                f"{BASE}/Users/{i}",
                {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "active", "value": rng.random() < 0.5}],
                },
            )
            for i in ds.sample_ids
        ]
    if key == "post":
        return [
            line(
                "POST",
                f"{BASE}/Users",
                {
                    "schemas": [USER_SCHEMA],
                    "userName": "bench-{uniq}",
                    "name": {"givenName": "Bench", "familyName": "{uniq}"},
                    "emails": [{"value": "bench-{uniq}@example.com", "type": "work", "primary": True}],
                    "active": True,
                },
            )
        ]
    if key.removesuffix(BIG) in GROUP_OPS:
        group = ds.big_group if key.endswith(BIG) else ds.small_group
        # The organization's profile is auto, whose group PATCH answers 204 (the member list never
        # read); asking for the members (``attributes``) gets 200 with the group, members included, as
        # the generic profile answers. Entra's flag names the entra profile: 204.
        query = "?aadOptscim062020" if key.startswith("group204") else "?attributes=displayName,members"
        path = f"{BASE}/Groups/{group}{query}"
        out = []
        # Add a user, then (a few requests later, on whichever connection) remove it: the group keeps its size.
        for member in ds.outsiders[:2000]:
            out.append(line("PATCH", path, _members_op("add", member)))
            out.append(line("PATCH", path, _members_op("remove", member)))
        return out
    raise ValueError(key)


def _members_op(op: str, member: str) -> dict[str, Any]:
    if op == "add":
        operation: dict[str, Any] = {"op": "add", "path": "members", "value": [{"value": member}]}
    else:
        operation = {"op": "remove", "path": f'members[value eq "{member}"]'}
    return {"schemas": [PATCH_OP], "Operations": [operation]}


def all_keys(args: argparse.Namespace) -> list[str]:
    """The operations asked for (``--ops``), the big group's PATCH with the group's."""
    keys = [op.key for op in OPS if op.key in args.ops]
    return keys + [key + BIG for key in keys if key in GROUP_OPS]


def write_request_files(folder: Path, tag: str, ds: Dataset, keys: Sequence[str]) -> dict[str, Path]:
    """One requests file per operation, for wrk's replay.lua and the other clients."""
    files: dict[str, Path] = {}
    for key in keys:
        files[key] = folder / f"{tag}-{key}.txt"
        files[key].write_text("\n".join(request_lines(key, ds)) + "\n")
    return files


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """A gunicorn server this benchmark started (and stops, by its own process id)."""

    def __init__(
        self, name: str, app: str, env: dict[str, str], workers: int, log: Path, extra: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [
            str(BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{self.port}",
            *extra,
            app,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, **env},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, token: str | None, timeout: float = 60) -> None:
        """Until ``path`` answers 200 (the workers may still be importing)."""
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout} s: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM to the master (it stops its workers), SIGKILL to its group if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def service_server(db: Database, args: argparse.Namespace, log: Path) -> Gunicorn:
    """The service's gunicorn on ``db``: this checkout's code, or ``--service-tree``'s."""
    env = {"SCIM_DATABASE_URL": db.url, "SCIM_BASE_PATH": BASE}
    extra: list[str] = []
    if args.service_tree:
        tree = Path(args.service_tree).resolve()
        # Its folder first on the path (gunicorn's --chdir puts it there), its backends next.
        env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "backends")])
        extra = ["--chdir", str(tree)]
    return Gunicorn("service", "wsgi:app", env, args.workers, log, extra=extra)


def start_servers(
    stack: ExitStack, db: Database, ds: Dataset, args: argparse.Namespace, folder: Path
) -> tuple[Gunicorn, Gunicorn]:
    """The service and the bare route on ``db``, both ready."""
    workers = args.workers
    service = service_server(db, args, folder / f"service-{db.kind}.log")
    stack.callback(service.stop)
    bare = Gunicorn(
        "bare route",
        "bare_app:app",
        {"BENCH_DATABASE_URL": db.url},
        workers,
        folder / f"bare-{db.kind}.log",
        extra=["--chdir", str(HERE)],
    )
    stack.callback(bare.stop)
    service.wait_ready(f"{BASE}/Users/{ds.sample_ids[0]}", ds.token)
    bare.wait_ready(f"/bare/users/{ds.sample_ids[0]}", None)
    return service, bare


def one_by_one(server: Gunicorn, requests_file: Path, token: str, count: int, budget: float) -> Load:
    """``count`` requests of the file, one after the other (within ``budget`` seconds), timed here."""
    load = Load()
    started = time.perf_counter()
    for n, text in enumerate(requests_file.read_text().splitlines()[:count]):
        if n and time.perf_counter() - started > budget:
            break
        method, path, *rest = text.split("\t")
        body = rest[0].replace("{uniq}", f"slow-{uuid.uuid4().hex[:12]}").encode() if rest else None
        request = urllib.request.Request(server.url + path, data=body, method=method)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if body is not None:
            request.add_header("Content-Type", "application/scim+json")
        begun = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                response.read()
        except urllib.error.HTTPError as error:
            error.read()
            load.errors["status"] += 1
        load.latency[int((time.perf_counter() - begun) * 1e6)] += 1
        load.requests += 1
    load.seconds = time.perf_counter() - started
    return load


def drain(server: Gunicorn, path: str, token: str | None, workers: int) -> None:
    """Return once every worker has answered a request sent now: the accept queue is served in order,
    so whatever a load window left queued has been served by then."""
    request = urllib.request.Request(server.url + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")

    def probe() -> None:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()

    threads = [threading.Thread(target=probe) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# -- one scenario: a database of some size, every operation under load --------------------------------------


@dataclass
class ScenarioResult:
    """The merged figures of one database and size."""

    db: Database
    users: int
    big_size: int
    loaded: dict[str, Load]
    unloaded: dict[str, Load]
    group_sizes: dict[str, int] = field(default_factory=dict)


def run_scenario(
    db: Database, users: int, big_group: int, args: argparse.Namespace, gen: Wrk | PythonClient, folder: Path
) -> tuple[ScenarioResult, Dataset, dict[str, Path]]:
    """Seed ``db``, serve it, and load every operation (and the bare route) in interleaved rounds."""
    progress(f"{db.version}: seeding {users:,} users")
    ds = prepare(db.url, users, big_group)
    keys = [BARE, *all_keys(args)]
    files = write_request_files(folder, f"{db.kind}-{users}", ds, keys)
    loaded = {key: Load() for key in keys}
    unloaded = {key: Load() for key in keys}
    with ExitStack() as stack:
        service, bare = start_servers(stack, db, ds, args, folder)

        probes = {
            BARE: (bare, f"/bare/users/{ds.sample_ids[0]}", None),
            "service": (service, f"{BASE}/Users/{ds.sample_ids[0]}", ds.token),
        }

        def window(key: str, seconds: float, connections: int) -> Load:
            server = bare if key == BARE else service
            token = "" if key == BARE else ds.token
            load = gen.run(server.url, files.get(key, folder / key), token, seconds, connections)
            # Requests still queued when the window closed must not be served during the next one.
            drain(*probes[BARE if key == BARE else "service"], args.workers)
            return load

        progress(f"warming up {len(keys)} operations on {args.workers} workers")
        mixed = [line for key in keys[1:] for line in files[key].read_text().splitlines()[:200]]
        random.Random(1).shuffle(mixed)
        (folder / "warm-up").write_text("\n".join(mixed) + "\n")
        window("warm-up", args.warmup, args.connections)
        window(BARE, 1, args.connections)
        progress("unloaded latency (one connection)")
        for key in keys:
            found = window(key, args.unloaded, 1)
            if found.requests < 5:  # slower than the window: time a few requests one after the other
                server, _path, token = probes[BARE if key == BARE else "service"]
                found = one_by_one(server, files[key], token or "", count=5, budget=120)
            unloaded[key].add(found)
        others = keys[1:]
        for round_no in range(args.rounds):
            # The bare route, then the operations in a rotating order: noise lands on all alike.
            turn = round_no % len(others)
            order = others[turn:] + others[:turn]
            sequence = [BARE, *order]
            progress(f"round {round_no + 1} of {args.rounds}: {args.seconds:g} s per window, {len(sequence)} windows")
            for key in sequence:
                loaded[key].add(window(key, args.seconds, args.connections))
        group_sizes = _group_sizes(db.url, ds)
    return ScenarioResult(db, users, big_group, loaded, unloaded, group_sizes), ds, files


def _group_sizes(url: str, ds: Dataset) -> dict[str, int]:
    import sqlalchemy as sa
    from scim_sql import tables

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                key: conn.execute(
                    sa.select(sa.func.count())
                    .select_from(tables.group_members)
                    .where(tables.group_members.c.group_id == gid)
                ).scalar_one()
                for key, gid in ((f"group of {SMALL_GROUP}", ds.small_group), ("big group", ds.big_group))
            }
    finally:
        engine.dispose()


# -- statements and transactions per request ---------------------------------------------------------------------

_VERB = re.compile(r"\s*(\w+)", re.S)
_TABLE_AFTER = {"SELECT": r"\bFROM\s+\"?(\w+)", "INSERT": r"\bINTO\s+\"?(\w+)", "UPDATE": r"^\s*UPDATE\s+\"?(\w+)"}


def statement_kind(sql: str) -> str:
    """``SELECT scim_users``, ``INSERT scim_provisioning_log``, ...: the verb and the first table it names."""
    verb_match = _VERB.match(sql)
    verb = verb_match.group(1).upper() if verb_match else "?"
    pattern = _TABLE_AFTER.get(verb, r"\bFROM\s+\"?(\w+)")
    table = re.search(pattern, sql, re.I | re.S)
    return f"{verb} {table.group(1) if table else ''}".strip()


@dataclass
class Counts:
    """SQL work of one operation, summed over ``requests`` requests."""

    requests: int = 0
    statements: int = 0
    transactions: int = 0
    write_transactions: int = 0
    checkouts: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)


def count_statements(db: Database, ds: Dataset, files: dict[str, Path], per_op: int) -> dict[str, Counts]:
    """Serve ``per_op`` requests of each operation in-process (Flask's test client, same database) and
    count, with SQLAlchemy event listeners, the statements and transactions each one runs."""
    import sqlalchemy as sa

    from scim_service.app import create_app

    current: list[Counts] = []

    def on_execute(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if current and not statement.lstrip().upper().startswith("BEGIN"):
            current[0].statements += 1
            current[0].kinds[statement_kind(statement)] += 1

    def on_begin(conn: Any) -> None:
        if current:
            current[0].transactions += 1
            if conn.info.get("scim_write"):
                current[0].write_transactions += 1

    def on_checkout(*_args: Any) -> None:
        if current:
            current[0].checkouts += 1

    app = create_app({"SCIM_DATABASE_URL": db.url, "SCIM_BASE_PATH": BASE, "SCIM_LOG_LEVEL": "WARNING"}, environ={})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {ds.token}"}
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_execute)
    sa.event.listen(sa.engine.Engine, "begin", on_begin)
    sa.event.listen(sa.pool.Pool, "checkout", on_checkout)
    out: dict[str, Counts] = {}
    try:
        for key, path in files.items():
            if key == BARE or key.endswith(BIG):  # the big group runs the statements of the small one
                continue
            lines = path.read_text().splitlines()
            counts = Counts()
            for n in range(per_op):
                method, url, *rest = lines[n % len(lines)].split("\t")
                body = rest[0].replace("{uniq}", f"count-{uuid.uuid4().hex[:12]}") if rest else None
                current[:] = [counts]
                response = client.open(
                    url,
                    method=method,
                    data=body,
                    headers={**headers, **({"Content-Type": "application/scim+json"} if body else {})},
                )
                current[:] = []
                counts.requests += 1
                counts.statuses[response.status_code] += 1
            out[key] = counts
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_execute)
        sa.event.remove(sa.engine.Engine, "begin", on_begin)
        sa.event.remove(sa.pool.Pool, "checkout", on_checkout)
        app.extensions["scim"].close()
    return out


# -- reports --------------------------------------------------------------------------------------------------


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def print_table(result: ScenarioResult, gen: Wrk | PythonClient, args: argparse.Namespace) -> list[str]:
    """The issue's table for one scenario; returns the targets missed."""
    bare = result.loaded[BARE]
    bare_unloaded = result.unloaded[BARE]
    missed: list[str] = []
    print()
    print(
        f"{result.db.version}: {result.users:,} users; gunicorn {args.workers} sync workers; "
        f"{gen.name}, {args.connections} connections; {args.rounds} rounds of {args.seconds:g} s per operation"
    )
    print(
        f"bare Flask + SQLAlchemy row read: {_fmt_rate(bare.rate)} req/s, p50 {_fmt_ms(bare.ms(50))} ms, "
        f"p99 {_fmt_ms(bare.ms(99))} ms loaded; p50 {_fmt_ms(bare_unloaded.ms(50))} ms unloaded"
    )
    header = (
        f"{'operation':<44} {'req/s':>7} {'x bare':>7} {'p50 ms':>7} {'x bare':>7} {'p99 ms':>7} {'x bare':>7} "
        f"{'unloaded':>9}  {'target (x bare req/s)':<22} {'met':<4}"
    )
    print(header)
    print("-" * len(header))
    for op in OPS:
        if op.key not in result.loaded:
            continue
        load = result.loaded[op.key]
        ratio = load.rate / bare.rate if bare.rate else 0.0
        p50, p99 = load.ms(50), load.ms(99)
        met = ""
        if op.min_ratio is not None:
            ok = ratio >= op.min_ratio and (op.max_p99_ms is None or p99 < op.max_p99_ms)
            met = "yes" if ok else "NO"
            if not ok:
                missed.append(f"{result.db.kind}: {op.label}")
        errors = f"  errors: {dict(load.errors)}" if load.errors else ""
        print(
            f"{op.label:<44} {_fmt_rate(load.rate):>7} {ratio:>7.2f} {_fmt_ms(p50):>7} {p50 / bare.ms(50):>7.1f} "
            f"{_fmt_ms(p99):>7} {p99 / bare.ms(99):>7.1f} {_fmt_ms(result.unloaded[op.key].ms(50)):>6} ms  "
            f"{op.target:<22} {met:<4}{errors}"
        )
    return missed


@dataclass(frozen=True)
class Growth:
    """One operation on a small and a large store, each with the bare route of its own rounds."""

    label: str
    small: ScenarioResult
    small_key: str
    large: ScenarioResult
    large_key: str
    target: str = ""


def print_growth(db: Database, rows: list[Growth], members: ScenarioResult, big: int) -> None:
    """Growth ratios: the cost without load (unloaded p50, large / small) and the throughput as a
    fraction of the bare route of the same rounds (small / large), so a change in the machine's load
    between two runs does not pass for growth."""
    for op in OPS:
        if op.key in GROUP_OPS and op.key + BIG in members.loaded:
            answer = "204" if op.key == "group204" else "200"
            label = f"Group PATCH add 1 member ({answer}): {SMALL_GROUP} -> {big:,} members"
            rows = [*rows, Growth(label, members, op.key, members, op.key + BIG, "<= 1.5x")]
    if not rows:
        return
    print()
    print(f"growth on {db.version}: unloaded p50 (cost), and req/s under load as a fraction of the bare route")
    header = (
        f"{'operation':<60} {'p50 small':>9} {'large':>9} {'ratio':>7}   {'x bare small':>12} {'large':>7} "
        f"{'ratio':>7}  target"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        small, large = row.small.unloaded[row.small_key], row.large.unloaded[row.large_key]
        small_share = row.small.loaded[row.small_key].rate / (row.small.loaded[BARE].rate or 1)
        large_share = row.large.loaded[row.large_key].rate / (row.large.loaded[BARE].rate or 1)
        print(
            f"{row.label:<60} {_fmt_ms(small.ms(50)):>7}ms {_fmt_ms(large.ms(50)):>7}ms "
            f"{large.ms(50) / small.ms(50):>6.2f}x   {small_share:>12.3f} {large_share:>7.3f} "
            f"{small_share / large_share if large_share else float('inf'):>6.2f}x  {row.target}"
        )
    if members.group_sizes:
        sizes = ", ".join(f"{k}: {v:,}" for k, v in members.group_sizes.items())
        print(f"(members at the end of the run, adds and removes alternating: {sizes})")


def print_counts(db: Database, counts: dict[str, Counts]) -> None:
    """Statements and transactions per request, and which statements."""
    print()
    print(f"SQL per request on {db.version} (in-process replay of the same requests, event listeners):")
    labels = {op.key: op.label for op in OPS} | {
        op.key + BIG: op.label.replace(f"({SMALL_GROUP};", "(big;") for op in OPS if op.key in GROUP_OPS
    }
    pg = db.kind == "postgresql"
    print("(statements leave out BEGIN and COMMIT; checkouts are connections taken from a pool", end="")
    print(
        "; round trips to the server = statements + BEGIN and COMMIT of each transaction + the ping of each checkout)"
        if pg
        else ")"
    )
    header = (
        f"{'operation':<44} {'statements':>10} {'transactions':>12} {'of which write':>14} {'checkouts':>9}"
        + (f" {'round trips':>11}" if pg else "")
        + "  statements by kind"
    )
    print(header)
    print("-" * len(header))
    for key, c in counts.items():
        n = c.requests or 1
        kinds = ", ".join(f"{v / n:.3g} {k}" for k, v in c.kinds.most_common())
        trips = f" {(c.statements + 2 * c.transactions + c.checkouts) / n:>11.1f}" if pg else ""
        print(
            f"{labels.get(key, key):<44} {c.statements / n:>10.2f} {c.transactions / n:>12.2f} "
            f"{c.write_transactions / n:>14.2f} {c.checkouts / n:>9.2f}{trips}  {kinds}"
        )
        bad = {code: k for code, k in c.statuses.items() if code >= 400}
        if bad:
            print(f"{'':<44} (error statuses while counting: {bad})")


def machine() -> str:
    """A line describing this machine and the software measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


# -- profiling ------------------------------------------------------------------------------------------------------


def profile(db: Database, args: argparse.Namespace, gen: Wrk | PythonClient, folder: Path) -> None:
    """Record the service's workers with py-spy while each asked operation runs, and say where the
    time goes (``profiling.py``). By default one worker and one connection: the cost of a request
    without contention; ``--profile-workers 5 --profile-connections 16`` shows it under load."""
    spy = shutil.which("py-spy", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if spy is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy (or make install)")
    ds = prepare(db.url, args.users, args.big_group)
    out = Path(args.profile_dir)
    out.mkdir(parents=True, exist_ok=True)
    rate = 250  # samples a second
    for key in args.profile.split(","):
        files = write_request_files(folder, f"profile-{db.kind}", ds, [key])
        raw = out / f"profile-{db.kind}-{key}-w{args.profile_workers}-c{args.profile_connections}.raw"
        with ExitStack() as stack:
            server_args = argparse.Namespace(**{**vars(args), "workers": args.profile_workers})
            service = service_server(db, server_args, folder / f"profile-{key}.log")  # started, then recorded
            stack.callback(service.stop)
            service.wait_ready(f"{BASE}/Users/{ds.sample_ids[0]}", ds.token)
            gen.run(service.url, files[key], ds.token, args.warmup, args.profile_connections)
            command = [spy, "record", "--pid", str(service.process.pid), "--subprocesses", "--format", "raw"]
            command += ["--rate", str(rate), "--duration", str(int(args.profile_seconds) + 2), "--output", str(raw)]
            if args.profile_idle:
                command.append("--idle")
            spy_process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)  # py-spy attaches to every worker
            load = gen.run(service.url, files[key], ds.token, args.profile_seconds, args.profile_connections)
            _out, err = spy_process.communicate(timeout=args.profile_seconds + 60)
            if spy_process.returncode != 0:
                sys.exit(f"py-spy failed: {err.decode(errors='replace')}")
        found = profiling.read(raw)
        print()
        print(
            f"profile of {key} on {db.version}: {args.profile_workers} worker(s), {args.profile_connections} "
            f"connection(s), {_fmt_rate(load.rate)} req/s under py-spy ({load.requests} requests, p50 "
            f"{_fmt_ms(load.ms(50))} ms); raw stacks: {raw}"
        )
        profiling.report(found, found.total * 1000 / rate / max(1, load.requests), args.profile_top)


# -- main -----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--users", type=int, default=11_000, help="users of the quick run (10,000 in the big group)")
    parser.add_argument("--big-group", type=int, default=10_000, help="members of the big group of the quick run")
    parser.add_argument("--large", action="store_true", help="also 1,000,000 users with a group of 100,000")
    parser.add_argument("--large-users", type=int, default=1_000_000)
    parser.add_argument("--large-big-group", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="default 2 x cores + 1")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=1, help="length of one load window (whole seconds)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up load (all operations mixed)")
    parser.add_argument("--unloaded", type=int, default=1, help="seconds of the one-connection window")
    parser.add_argument("--count-requests", type=int, default=20, help="requests per operation when counting SQL")
    parser.add_argument("--count-only", action="store_true", help="only count statements and transactions")
    parser.add_argument("--ops", default=",".join(op.key for op in OPS), help="comma-separated subset of operations")
    parser.add_argument(
        "--service-tree",
        help="serve another checkout's scim_service and backends (a before/after comparison); needs its wsgi.py",
    )
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--profile", help="comma-separated operations to profile with py-spy (get, patch, ...)")
    parser.add_argument("--profile-seconds", type=float, default=10)
    parser.add_argument("--profile-idle", action="store_true", help="also sample waiting (off-CPU) time")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--profile-workers", type=int, default=1)
    parser.add_argument("--profile-connections", type=int, default=1)
    parser.add_argument(
        "--profile-dir", default=str(Path(tempfile.gettempdir()) / "scim-bench-profiles"), help="where raw stacks go"
    )
    args = parser.parse_args()

    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    args.ops = [k.strip() for k in args.ops.split(",") if k.strip()]
    gen = load_generator(args.load_generator)
    pg_url = postgres_server_url() if "postgresql" in kinds else None
    if "postgresql" in kinds and pg_url is None:
        print("NOTE: no PostgreSQL server (SCIM_TEST_POSTGRES_URL unset, nothing on 127.0.0.1:5432): SQLite only")
    started = time.perf_counter()
    print(f"machine: {machine()}; load average before the run {os.getloadavg()[0]:.1f}")
    if args.service_tree:
        print(f"service code: {Path(args.service_tree).resolve()}")
    print(f"load generator: {gen.name} {' '.join(gen.version)}".rstrip())
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scim-bench-") as tmp:
        folder = Path(tmp)
        for kind in kinds:
            if kind == "postgresql" and pg_url is None:
                continue

            def database(tag: str, kind: str = kind) -> Any:
                return sqlite_database(folder, tag) if kind == "sqlite" else postgres_database(pg_url or "", tag)

            if args.profile:
                with database("profile") as db:
                    profile(db, args, gen, folder)
                continue
            with database("quick") as db:
                if args.count_only:
                    ds = prepare(db.url, args.users, args.big_group)
                    files = write_request_files(folder, f"count-{db.kind}", ds, all_keys(args))
                    print_counts(db, count_statements(db, ds, files, args.count_requests))
                    continue
                quick, ds, files = run_scenario(db, args.users, args.big_group, args, gen, folder)
                missed += print_table(quick, gen, args)
                print_growth(db, [], quick, args.big_group)
                print_counts(db, count_statements(db, ds, files, args.count_requests))
            if args.large:
                with database("large") as db:
                    large, _ds, _files = run_scenario(db, args.large_users, args.large_big_group, args, gen, folder)
                    missed += print_table(large, gen, args)
                    user_rows = [
                        Growth(
                            f"{op.label}: {args.users:,} -> {args.large_users:,} users", quick, op.key, large, op.key
                        )
                        for op in OPS
                        if op.key in large.loaded
                    ]
                    print_growth(db, user_rows, large, args.large_big_group)
    print()
    print(f"finished in {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f}")
    if gen.client_bound:
        print(f"NOTE: the figures above are client-bound; {WRK_HINT}")
    if missed:
        print("targets not met: " + "; ".join(missed))


if __name__ == "__main__":
    main()
