"""PostgreSQL for the tests: throwaway clusters, fresh databases, gunicorn servers and an HTTP client.

Tests use the server named by ``SCIM_TEST_POSTGRES_URL`` (CI exports the machine's server); without it,
``tests/conftest.py`` starts a throwaway cluster with :class:`PgCluster` when the PostgreSQL binaries
are installed. Every database a test creates is named ``scimtest_<unix time>_<random>`` and dropped
when the test (or the session) ends; :meth:`PgDatabases.drop_stale` removes those left by a run that was
killed, so repeated runs on one server do not accumulate databases.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
URL_ENV = "SCIM_TEST_POSTGRES_URL"
PG_BIN_ENV = "SCIM_TEST_PG_BIN"  # a folder holding initdb and pg_ctl, if not the usual places
DB_PREFIX = "scimtest_"
CLUSTER_PREFIX = "scim-pg-"  # temp folders of throwaway clusters
STALE_AFTER_SECONDS = 6 * 3600  # a test database older than this belongs to a run that died
IN_CI = os.environ.get("CI") == "true"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_pg_bin() -> Path | None:
    """The folder of ``initdb``/``pg_ctl``: ``$SCIM_TEST_PG_BIN``, ``PATH``, ``pg_config --bindir``, Debian's layout."""
    candidates: list[Path] = []
    if os.environ.get(PG_BIN_ENV):
        candidates.append(Path(os.environ[PG_BIN_ENV]))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def why_no_cluster() -> str | None:
    """Why :class:`PgCluster` cannot run here (None when it can)."""
    if find_pg_bin() is None:
        return f"no initdb/pg_ctl found (install PostgreSQL, or set {PG_BIN_ENV} or {URL_ENV})"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing (initdb refuses to run as root)"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run initdb as"
    return None


class PgCluster:
    """A PostgreSQL cluster of its own in a temp folder, on 127.0.0.1 and a free port, trust auth.

    Made for tests: no fsync, stopped and removed by :meth:`destroy`. As root, initdb and pg_ctl run as
    the ``postgres`` OS user (initdb refuses root). :meth:`stop` and :meth:`start` let a test take the
    server away and bring it back.
    """

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir = bindir
        self.root = root
        self.port = port
        self.data = root / "data"
        self.logfile = root / "server.log"

    @classmethod
    def create(cls, bindir: Path | None = None) -> PgCluster:
        """initdb a new cluster in a fresh temp folder and start it."""
        bindir = bindir or find_pg_bin()
        if bindir is None:
            raise RuntimeError(why_no_cluster() or "no PostgreSQL binaries")
        cls.sweep_orphans(bindir)
        root = Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX))
        (root / "owner.pid").write_text(str(os.getpid()))
        cluster = cls(bindir, root, free_port())
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        cluster._run(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        for attempt in range(3):
            try:
                cluster.start()
                return cluster
            except RuntimeError:
                # Another process may have taken the free port between our probe and the bind.
                if attempt == 2:
                    shutil.rmtree(root, ignore_errors=True)
                    raise
                cluster.port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def sweep_orphans(cls, bindir: Path) -> list[Path]:
        """Stop and remove the clusters of test runs that died without cleaning up (killed by a timeout, say).

        A cluster folder records the pid of the process that made it; when that process is gone, so is
        every user of the cluster.
        """
        removed = []
        for root in Path(tempfile.gettempdir()).glob(CLUSTER_PREFIX + "*"):
            owner = root / "owner.pid"
            try:
                pid = int(owner.read_text())
            except (OSError, ValueError):
                continue
            if _alive(pid):
                continue
            orphan = cls(bindir, root, 0)
            try:
                if orphan.running():
                    orphan.stop("immediate")
            except RuntimeError:
                continue
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
        return removed

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root)
        if done.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}\n{log}")
        return done

    def start(self, timeout: float = 30) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", str(int(timeout)),
                  "-o", options, "start", timeout=timeout + 10)  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` ends open sessions at once, as an operator's restart would)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        """Whether the server is up."""
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL of ``database`` on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        """Stop the server (if running) and delete its folder; does nothing the second time."""
        if not self.root.exists():
            return
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def server_reachable(url: str) -> str | None:
    """None if ``url``'s server takes connections, else the reason it does not."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None
    except sa.exc.SQLAlchemyError as exc:
        return str(getattr(exc, "orig", None) or exc).splitlines()[0]
    finally:
        engine.dispose()


class PgDatabases:
    """Creates and drops test databases on one server (``scimtest_<time>_<random>``).

    ``create(template=...)`` clones a database, which is the fast way to a migrated schema (tens of
    milliseconds, against a migration run per test). Everything created here is dropped by
    :meth:`drop_all`.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = sa.engine.make_url(server_url)
        self.admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self, *, template: str | None = None, tag: str = "", c_locale: bool = False) -> str:
        """Create a new, empty (or cloned from ``template``) database and return its name.

        ``c_locale`` creates it with LC_COLLATE and LC_CTYPE C, the harshest locale for case folding."""
        name = f"{DB_PREFIX}{int(time.time())}_{uuid.uuid4().hex[:8]}{('_' + tag) if tag else ''}"[:63]
        clause = f' TEMPLATE "{template}"' if template else ""
        if c_locale:
            clause = f"{clause or ' TEMPLATE template0'} LC_COLLATE 'C' LC_CTYPE 'C'"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
        self.created.append(name)
        return name

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of database ``name`` on this server."""
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        """Drop ``name``, ending any session still connected to it."""
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        """Drop every database this object created (newest first: clones before their template)."""
        for name in reversed(list(self.created)):
            self.drop(name)

    def drop_stale(self, max_age: float = STALE_AFTER_SECONDS) -> list[str]:
        """Drop test databases older than ``max_age`` seconds, left behind by runs that were killed."""
        with self.admin.connect() as conn:
            names = conn.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": DB_PREFIX + "%"}
            ).scalars()
            stale = []
            for name in names:
                stamp = name.removeprefix(DB_PREFIX).split("_", 1)[0]
                if stamp.isdigit() and time.time() - int(stamp) > max_age:
                    stale.append(name)
        for name in stale:
            self.drop(name)
        return stale

    def existing(self) -> list[str]:
        """Names of the test databases on the server right now."""
        with self.admin.connect() as conn:
            return list(
                conn.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": DB_PREFIX + "%"}
                ).scalars()
            )

    def close(self) -> None:
        """Drop what was created and release the admin connection."""
        try:
            self.drop_all()
        finally:
            self.admin.dispose()


# -- real servers over real HTTP -------------------------------------------------------------------


@dataclass
class Reply:
    """One HTTP response: status, headers and the decoded JSON body ({} when empty)."""

    status: int
    headers: Mapping[str, str]
    body: Any
    seconds: float = 0.0


def call(
    url: str,
    token: str,
    method: str = "GET",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """One SCIM request with ``token``; HTTP errors are replies, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/scim+json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status, got = response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        status, got = error.code, dict(error.headers)
    elapsed = time.monotonic() - started
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"raw": raw.decode(errors="replace")}
    return Reply(status, got, parsed, elapsed)


@dataclass
class Gunicorn:
    """A gunicorn server process serving ``scim_service.wsgi:app``; its log goes to ``log``."""

    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def log_text(self) -> str:
        """What the server wrote to stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Servers:
    """Several gunicorn servers on one database (see :func:`gunicorn_servers`)."""

    servers: list[Gunicorn] = field(default_factory=list)

    @property
    def bases(self) -> list[str]:
        """The SCIM base URL of each server."""
        return [s.base for s in self.servers]

    def logs(self) -> str:
        """All servers' logs."""
        return "\n".join(s.log_text() for s in self.servers)


@contextmanager
def gunicorn_servers(
    env: Mapping[str, str], folder: Path, *, count: int = 2, workers: int = 2, threads: int = 4
) -> Iterator[Servers]:
    """Start ``count`` gunicorn servers (separate processes, ``workers`` each) and stop them after."""
    servers = Servers()
    try:
        for index in range(count):
            port = free_port()
            log = folder / f"gunicorn-{index}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "--workers", str(workers),
                     "--threads", str(threads), "--graceful-timeout", "5", "scim_service.wsgi:app"],
                    env=dict(env), cwd=REPO, stdout=subprocess.DEVNULL, stderr=sink,
                )  # fmt: skip
            servers.servers.append(Gunicorn(process, f"http://127.0.0.1:{port}/scim/v2", log))
        for server in servers.servers:
            _wait_ready(server)
        yield servers
    finally:
        for server in servers.servers:
            server.process.terminate()
        for server in servers.servers:
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)


def _wait_ready(server: Gunicorn, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(server.base + "/ServiceProviderConfig", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer (401) means a worker is serving
        except OSError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {server.log_text()[-3000:]}") from None
            time.sleep(0.1)


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a gunicorn server or CLI run on ``database_url`` (no stray SCIM_* settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_") or k == URL_ENV}
    env.update({"SCIM_DATABASE_URL": database_url, "SCIM_LOG_LEVEL": "WARNING", **extra})
    return env


def cli(env: Mapping[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``scim-service ARGS`` with ``env``; fail with its stderr if it fails."""
    done = subprocess.run(
        [str(BIN / "scim-service"), *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"scim-service {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def statuses(replies: Sequence[Reply]) -> dict[int, int]:
    """How many replies had each status, e.g. ``{201: 1, 409: 23}``."""
    out: dict[int, int] = {}
    for reply in replies:
        out[reply.status] = out.get(reply.status, 0) + 1
    return dict(sorted(out.items()))


class FolderSchemas:
    """A fresh PostgreSQL schema per folder, in one database (an ``api_helpers.DatabaseChooser``).

    The URL selects the schema with ``options=-csearch_path=...``, so the app creates and finds its
    tables there. A schema costs a few milliseconds to create and drop, where a database clone costs a
    second on a busy server (CREATE/DROP DATABASE write and sync files).
    """

    def __init__(self, databases: PgDatabases, database: str) -> None:
        self.database_url = sa.engine.make_url(databases.url(database))
        self.engine = sa.create_engine(self.database_url, isolation_level="AUTOCOMMIT")
        self.by_folder: dict[Path, str] = {}

    def url_for(self, folder: Path) -> str:
        """The URL of the schema of ``folder``, created on first use."""
        key = Path(folder).resolve()
        if key not in self.by_folder:
            schema = f"s_{uuid.uuid4().hex[:12]}"
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            self.by_folder[key] = schema
        return schema_url(self.database_url, self.by_folder[key])

    def drop_all(self) -> None:
        """Drop every schema made here, with its tables."""
        with self.engine.connect() as conn:
            for schema in self.by_folder.values():
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.by_folder.clear()
        self.engine.dispose()


def schema_url(database_url: str | sa.engine.URL, schema: str) -> str:
    """``database_url`` with its sessions' ``search_path`` set to ``schema`` only."""
    url = sa.engine.make_url(database_url)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


class Admin:
    """The operator's side of a test on one database: organizations, tokens and row counts, in process."""

    def __init__(self, database_url: str) -> None:
        from scim_service.app import create_app
        from scim_service.extension import get_state

        self.app = create_app({"SCIM_DATABASE_URL": database_url, "SCIM_LOG_LEVEL": "WARNING"}, environ={})
        self.state = get_state(self.app)

    def org(self, name: str, **kw: Any) -> tuple[Any, str]:
        """Create organization ``name`` (``max_seats=``, ``seat_policy=``, ...) and return (tenant, token)."""
        tenant = self.state.store.create_org(name, **kw)
        _id, token = self.state.store.create_token(name)
        return tenant, token

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value of a SQL query on the database."""
        with self.state.service_engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()

    def column(self, sql: str, **params: Any) -> list[Any]:
        """The first column of every row of a SQL query on the database."""
        with self.state.service_engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).scalars())

    def close(self) -> None:
        """Release the app's connections."""
        self.state.close()
