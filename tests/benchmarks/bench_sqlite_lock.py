"""How long SQLite writers of several processes wait for the write lock, with and without the lock file.

Each of ``--processes`` processes opens the database with :func:`scim_service.sqlengine.make_engine`
and runs write transactions shaped like the service's (``BEGIN IMMEDIATE``, a read, an update, an
insert, commit), with some work outside the transaction between them, as a request has. The wait is
the time from asking for the write transaction to holding it. Two modes run in alternating rounds on
the same file: ``flock`` (the engine's :class:`~scim_service.sqlengine.SqliteWriteLock`, waiters woken
by the kernel when the holder commits) and ``busy handler`` (the lock file switched off: waiters poll
in SQLite's busy handler, which sleeps up to 100 ms between tries).

    python tests/benchmarks/bench_sqlite_lock.py [--processes 5] [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from scim_service import sqlengine


def _spin(seconds: float) -> None:
    """Busy CPU work (a request's parsing and rendering), not a sleep."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def writer(task: tuple[str, bool, float, float, float, int]) -> tuple[list[float], int]:
    """One process: write transactions until ``seconds`` pass; returns the waits (s) and the count."""
    url, use_lock, seconds, inside, outside, worker = task
    engine = sqlengine.make_engine(url)
    if not use_lock:
        sqlengine._write_locks.pop(engine, None)  # the lock file off: SQLite's busy handler alone
    waits: list[float] = []
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        asked = time.perf_counter()
        with sqlengine.write_transaction(engine) as conn:
            waits.append(time.perf_counter() - asked)
            value = conn.execute(sa.text("SELECT value FROM counter WHERE id = 1")).scalar_one()
            conn.execute(sa.text("UPDATE counter SET value = :v WHERE id = 1"), {"v": value + 1})
            conn.execute(sa.text("INSERT INTO log (worker, n) VALUES (:w, :n)"), {"w": worker, "n": n})
            _spin(inside)
        n += 1
        _spin(outside)
    engine.dispose()
    return waits, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="per mode and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--inside", type=float, default=0.001, help="seconds of work inside each transaction")
    parser.add_argument("--outside", type=float, default=0.003, help="seconds of work between transactions")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="scim-lock-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'lock.db'}"
        engine = sqlengine.make_engine(url)
        with sqlengine.write_transaction(engine) as conn:
            conn.execute(sa.text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"))
            conn.execute(sa.text("CREATE TABLE log (id INTEGER PRIMARY KEY, worker INTEGER, n INTEGER)"))
            conn.execute(sa.text("INSERT INTO counter VALUES (1, 0)"))
        results: dict[str, tuple[list[float], int, float]] = {"flock": ([], 0, 0.0), "busy handler": ([], 0, 0.0)}
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.processes) as pool:
            pool.map(_spin, [0.01] * args.processes)  # start the processes before timing
            for round_no in range(args.rounds):
                modes = ["flock", "busy handler"] if round_no % 2 == 0 else ["busy handler", "flock"]
                for mode in modes:
                    print(f"  .. round {round_no + 1}: {mode}", file=sys.stderr, flush=True)
                    tasks = [
                        (url, mode == "flock", args.seconds, args.inside, args.outside, w)
                        for w in range(args.processes)
                    ]
                    done = pool.map(writer, tasks)
                    waits, count, seconds = results[mode]
                    results[mode] = (
                        waits + [w for ws, _n in done for w in ws],
                        count + sum(n for _ws, n in done),
                        seconds + args.seconds,
                    )
        with sqlengine.read_transaction(engine) as conn:
            total = conn.execute(sa.text("SELECT value FROM counter")).scalar_one()
            logged = conn.execute(sa.text("SELECT count(*) FROM log")).scalar_one()
        engine.dispose()

    written = sum(count for _w, count, _s in results.values())
    assert total == logged == written, f"lost updates: counter {total}, log rows {logged}, transactions {written}"
    print(
        f"\nSQLite write lock: {args.processes} processes, {args.inside * 1000:g} ms inside and "
        f"{args.outside * 1000:g} ms outside each transaction, {args.rounds} x {args.seconds:g} s per mode"
    )
    header = f"{'mode':<14} {'commits/s':>9} {'wait p50':>9} {'p90':>8} {'p99':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    for mode, (waits, count, seconds) in results.items():
        waits.sort()
        q = statistics.quantiles(waits, n=100, method="inclusive") if len(waits) > 1 else [0.0] * 99
        print(
            f"{mode:<14} {count / seconds:>9,.0f} {q[49] * 1000:>7.2f}ms {q[89] * 1000:>6.2f}ms "
            f"{q[98] * 1000:>6.2f}ms {waits[-1] * 1000:>6.1f}ms"
        )
    print(f"(every transaction counted once: counter = log rows = {written})")


if __name__ == "__main__":
    main()
