"""SQLite writers queue on a lock file beside the database and are woken when the holder commits.

Without the lock file a waiting writer polls in SQLite's busy handler, which sleeps 1, 2, 5 ... 100 ms
between tries: after a third of a second it polls only every 100 ms, so a writer that waited that long
starts up to 100 ms after the lock became free. The tests hold the lock for 0.38 s (halfway between two
of those polls) from another process or thread and measure how late the waiter starts: about 50 ms with
polling (30 to 60 ms seen on a busy 2-core machine), a millisecond or so with the lock file. They also
check what must not change: no update lost across processes, a dead writer's lock freed, a nested write
ending in the busy timeout rather than waiting for itself, and engines without a file (in-memory, a
host app's own) working as before.
"""

from __future__ import annotations

import fcntl
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from scim_service import sqlengine
from scim_service.errors import Unavailable
from scim_service.sqlengine import make_engine, read_transaction, write_lock_of, write_transaction

HOLD = 0.378  # seconds: SQLite's busy handler polls at 328 and 428 ms into a wait
TRIALS = 5
MAX_LAG = 0.02  # median: a woken waiter starts within this of the commit; a polling one is ~50 ms late

pytestmark = pytest.mark.timeout(120)


def _table(url: str) -> None:
    engine = make_engine(url)
    with write_transaction(engine) as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT, n INTEGER)"))
        conn.execute(sa.text("INSERT INTO t (id, who, n) VALUES (0, 'counter', 0)"))
    engine.dispose()


# One process holding the write lock for HOLD seconds each time the parent says "go".
HOLDER = textwrap.dedent(
    """
    import sys, time
    import sqlalchemy as sa
    from scim_service.sqlengine import make_engine, write_transaction
    engine = make_engine(sys.argv[1])
    for line in sys.stdin:
        with write_transaction(engine) as conn:
            conn.execute(sa.text("INSERT INTO t (who, n) VALUES ('holder', 1)"))
            print("held", flush=True)
            time.sleep(float(sys.argv[2]))
        print("released", time.monotonic(), flush=True)
    """
)


def test_a_waiting_writer_of_another_process_starts_when_the_holder_commits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scim.db'}"
    _table(url)
    engine = make_engine(url)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(HOLD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lags = []
    try:
        assert holder.stdin is not None and holder.stdout is not None
        for _ in range(TRIALS):
            holder.stdin.write("go\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "held"
            asked = time.monotonic()
            with write_transaction(engine) as conn:
                started = time.monotonic()
                conn.execute(sa.text("INSERT INTO t (who, n) VALUES ('waiter', 1)"))
            released = float(holder.stdout.readline().split()[1])
            assert started - asked > HOLD / 2, "the waiter did not wait for the holder"
            lags.append(started - released)
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(timeout=30)
    assert statistics.median(lags) < MAX_LAG, f"the waiter started late after the commit (lags in s: {lags})"
    with read_transaction(engine) as conn:
        counts = dict(conn.execute(sa.text("SELECT who, count(*) FROM t GROUP BY who")).all())
    assert counts == {"counter": 1, "holder": TRIALS, "waiter": TRIALS}
    engine.dispose()


def test_threads_of_one_process_queue_on_the_lock_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scim.db'}"
    _table(url)
    engine = make_engine(url)
    lags = []
    for _ in range(TRIALS):
        held = threading.Event()
        released: list[float] = []

        def hold(held: threading.Event = held, released: list[float] = released) -> None:
            with write_transaction(engine) as conn:
                conn.execute(sa.text("INSERT INTO t (who, n) VALUES ('holder', 1)"))
                held.set()
                time.sleep(HOLD)
            released.append(time.monotonic())

        thread = threading.Thread(target=hold)
        thread.start()
        assert held.wait(10)
        with write_transaction(engine) as conn:
            started = time.monotonic()
            conn.execute(sa.text("INSERT INTO t (who, n) VALUES ('waiter', 1)"))
        thread.join(10)
        lags.append(started - released[0])
    assert statistics.median(lags) < MAX_LAG, f"the waiter started late after the commit (lags in s: {lags})"
    engine.dispose()


# Read-then-write increments: any interleaving of two writers would lose one.
INCREMENTER = textwrap.dedent(
    """
    import sys
    import sqlalchemy as sa
    from scim_service.sqlengine import make_engine, write_transaction
    engine = make_engine(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        with write_transaction(engine) as conn:
            n = conn.execute(sa.text("SELECT n FROM t WHERE id = 0")).scalar_one()
            conn.execute(sa.text("UPDATE t SET n = :n WHERE id = 0"), {"n": n + 1})
    """
)


def test_writers_of_several_processes_lose_no_update(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scim.db'}"
    _table(url)
    processes, each = 4, 60
    children = [subprocess.Popen([sys.executable, "-c", INCREMENTER, url, str(each)]) for _ in range(processes)]
    assert [child.wait(timeout=90) for child in children] == [0] * processes
    engine = make_engine(url)
    with read_transaction(engine) as conn:
        assert conn.execute(sa.text("SELECT n FROM t WHERE id = 0")).scalar_one() == processes * each
    engine.dispose()


DIES_HOLDING = textwrap.dedent(
    """
    import os, signal, sys
    import sqlalchemy as sa
    from scim_service.sqlengine import make_engine, write_transaction
    engine = make_engine(sys.argv[1])
    with write_transaction(engine) as conn:
        conn.execute(sa.text("INSERT INTO t (who, n) VALUES ('dead', 1)"))
        print("held", flush=True)
        sys.stdin.readline()
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_the_lock_of_a_writer_that_dies_is_freed_and_its_write_undone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scim.db'}"
    _table(url)
    engine = make_engine(url)
    child = subprocess.Popen(
        [sys.executable, "-c", DIES_HOLDING, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "held"
    lock = write_lock_of(engine)
    assert lock is not None
    with open(lock.path) as probe, pytest.raises(BlockingIOError):  # the child holds the lock file now
        fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    child.stdin.write("die\n")
    child.stdin.flush()
    started = time.monotonic()
    with write_transaction(engine) as conn:
        conn.execute(sa.text("INSERT INTO t (who, n) VALUES ('after', 1)"))
    assert time.monotonic() - started < 5
    assert child.wait(timeout=10) == -9
    with read_transaction(engine) as conn:
        whos = sorted(conn.execute(sa.text("SELECT who FROM t")).scalars())
    assert whos == ["after", "counter"]
    engine.dispose()


def test_a_write_opened_inside_another_on_the_same_file_does_not_wait_for_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inner transaction cannot get SQLite's lock while the outer one holds it: it must end with
    # the busy timeout's 503, as it did before the lock file, not hang on a lock its own thread holds.
    monkeypatch.setattr(sqlengine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    url = f"sqlite:///{tmp_path / 'scim.db'}"
    _table(url)
    outer_engine, inner_engine = make_engine(url), make_engine(url)
    assert write_lock_of(outer_engine) is write_lock_of(inner_engine)
    started = time.monotonic()
    with pytest.raises(Unavailable), write_transaction(outer_engine) as outer:
        outer.execute(sa.text("INSERT INTO t (who, n) VALUES ('outer', 1)"))
        with write_transaction(inner_engine) as inner:
            inner.execute(sa.text("INSERT INTO t (who, n) VALUES ('inner', 1)"))
    assert time.monotonic() - started < 10
    # Both rolled back, and the lock is free again for this thread and others.
    with write_transaction(inner_engine) as conn:
        conn.execute(sa.text("INSERT INTO t (who, n) VALUES ('after', 1)"))
    with read_transaction(outer_engine) as conn:
        assert sorted(conn.execute(sa.text("SELECT who FROM t")).scalars()) == ["after", "counter"]
    outer_engine.dispose()
    inner_engine.dispose()


def test_the_lock_file_lies_beside_the_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'scim.db'}")
    lock = write_lock_of(engine)
    assert lock is not None and lock.path == tmp_path / "data" / f"scim.db{sqlengine.LOCK_FILE_SUFFIX}"
    with write_transaction(engine) as conn:
        conn.execute(sa.text("CREATE TABLE x (id INTEGER)"))
    assert lock.path.exists()
    uri_engine = make_engine(f"sqlite:///file:{tmp_path / 'u.db'}?uri=true")
    uri_lock = write_lock_of(uri_engine)
    assert uri_lock is not None and uri_lock.path == tmp_path / f"u.db{sqlengine.LOCK_FILE_SUFFIX}"
    engine.dispose()
    uri_engine.dispose()


@pytest.mark.filterwarnings("ignore:Selection of the SingletonThreadPool")
@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:mem1?mode=memory&cache=shared&uri=true"]
)
def test_in_memory_databases_need_no_lock_file(url: str) -> None:
    engine = make_engine(url)
    assert write_lock_of(engine) is None
    with write_transaction(engine) as conn:
        conn.execute(sa.text("CREATE TABLE x (id INTEGER)"))
        conn.execute(sa.text("INSERT INTO x VALUES (1)"))
        assert conn.execute(sa.text("SELECT count(*) FROM x")).scalar_one() == 1
    engine.dispose()


def test_a_host_apps_own_engine_works_without_the_lock(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'host.db'}")  # not made by make_engine
    assert write_lock_of(engine) is None
    with write_transaction(engine) as conn:
        conn.execute(sa.text("CREATE TABLE x (id INTEGER)"))
        conn.execute(sa.text("INSERT INTO x VALUES (1)"))
    with read_transaction(engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM x")).scalar_one() == 1
    assert not (tmp_path / f"host.db{sqlengine.LOCK_FILE_SUFFIX}").exists()
    engine.dispose()


def test_server_databases_have_no_file_lock() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    assert write_lock_of(engine) is None
    engine.dispose()


def test_a_lock_file_that_cannot_be_opened_leaves_writers_to_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'scim.db'}")
    lock = write_lock_of(engine)
    assert lock is not None
    lock.path = tmp_path / "missing-folder" / "scim.db-writelock"  # cannot be created
    with write_transaction(engine) as conn:
        conn.execute(sa.text("CREATE TABLE x (id INTEGER)"))
    with read_transaction(engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM x")).scalar_one() == 0
    assert not os.path.exists(lock.path)
    engine.dispose()


def test_first_connections_to_a_new_file_at_once_never_find_it_locked(tmp_path: Path) -> None:
    """Two engines opening a brand-new file at the same moment (a readiness probe's two checks on a
    fresh install) both switch it to WAL; that switch once failed "database is locked" about 1 in 70."""
    failures: list[str] = []
    for i in range(300):
        url = f"sqlite:///{tmp_path}/fresh{i}.db"
        engines = [make_engine(url), make_engine(url)]

        def connect(engine: sa.Engine) -> None:
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            except Exception as error:
                failures.append(str(error)[:120])

        threads = [threading.Thread(target=connect, args=(engine,)) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for engine in engines:
            engine.dispose()
    assert failures == []
