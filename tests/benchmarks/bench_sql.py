"""Benchmarks of the sql backend, reported as ratios measured in one run (``make bench``).

Each figure compares the same operation on a small and a large store, so the ratio says how the cost
grows with size whatever the machine: a ratio near 1 means the cost follows the change or the page,
not the table. Seeding writes rows straight into the backend's tables (``seeding.py``: a benchmark,
not a test, so the 100,000-row setup takes seconds instead of minutes); every measured operation goes
through the Backend contract. The service over HTTP is measured by ``http_bench.py``.

    python tests/benchmarks/bench_sql.py [--large 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import seeding
from scim_sql.backend import SqlBackend

from scim_service.model import GroupChanges, Member, Tenant
from scim_service.query.ast import ListQuery
from scim_service.query.parser import parse_filter
from scim_service.query.resolve import resolve_filter
from scim_service.schemas.definitions import USER_RESOURCE


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def seed(backend: SqlBackend, tenant: Tenant, users: int, group_members: int) -> tuple[list[str], str]:
    """Insert ``users`` users and one group holding the first ``group_members`` of them."""
    ids = seeding.seed_users(backend.engine, tenant.id, users)
    group_id = seeding.seed_group(backend.engine, tenant.id, "everyone", ids[:group_members])
    seeding.analyze(backend.engine)
    return ids, group_id


def timed(action: Callable[[], object], repeat: int = 30) -> float:
    """Median seconds of ``action`` over ``repeat`` runs (after one warm-up)."""
    action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def peak_memory(action: Callable[[], object]) -> int:
    """Peak bytes Python allocated while ``action`` ran."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        backend = SqlBackend.from_config({"SCIM_DATABASE_URL": url})
        backend.migrate()
        small = Tenant(id=f"bench-small-{uuid.uuid4().hex[:8]}", name="small")
        large = Tenant(id=f"bench-large-{uuid.uuid4().hex[:8]}", name="large")
        progress(f"seeding {args.small:,} users (group of 10) and {args.large:,} users (group of {args.large:,})")
        started = time.perf_counter()
        small_ids, small_group = seed(backend, small, args.small, 10)
        large_ids, large_group = seed(backend, large, args.large, args.large)
        progress(f"seeded in {time.perf_counter() - started:.1f} s on {backend.engine.dialect.name}")

        rows: list[tuple[str, float, float, str]] = []

        def compare(name: str, unit: str, small_value: float, large_value: float) -> None:
            rows.append((name, small_value, large_value, unit))
            progress(f"{name}: done")

        # Membership deltas: add one member and remove it again, on a group of 10 and on a huge one.
        def toggle(tenant: Tenant, group_id: str, member: str) -> Callable[[], object]:
            def run() -> None:
                backend.patch_group(tenant, group_id, GroupChanges(add=(Member(member),)), include_members=False)
                backend.patch_group(tenant, group_id, GroupChanges(remove=(member,)), include_members=False)

            return run

        compare(
            "PATCH add+remove one member (group of 10 vs all)",
            "ms",
            timed(toggle(small, small_group, small_ids[-1])) * 1000,
            timed(toggle(large, large_group, large_ids[-1] if args.large > 10 else large_ids[0])) * 1000,
        )

        def by_user_name(tenant: Tenant, name: str) -> Callable[[], object]:
            query = ListQuery(filter=resolve_filter(parse_filter(f'userName eq "{name}"'), USER_RESOURCE))
            return lambda: backend.list_users(tenant, query)

        compare(
            "filter userName eq (users in tenant)",
            "ms",
            timed(by_user_name(small, f"user{args.small // 2:07d}")) * 1000,
            timed(by_user_name(large, f"user{args.large // 2:07d}")) * 1000,
        )

        def by_email(tenant: Tenant, value: str) -> Callable[[], object]:
            query = ListQuery(filter=resolve_filter(parse_filter(f'emails.value eq "{value}"'), USER_RESOURCE))
            found = backend.list_users(tenant, query).total_results
            assert found == 1, f"emails.value eq {value!r} found {found} users, not 1: the seeding is wrong"
            return lambda: backend.list_users(tenant, query)

        compare(
            "filter emails.value eq, a secondary email (users)",
            "ms",
            timed(by_email(small, f"U{args.small // 2}@HOME.example.org")) * 1000,
            timed(by_email(large, f"U{args.large // 2}@HOME.example.org")) * 1000,
        )

        def page(tenant: Tenant) -> Callable[[], object]:
            return lambda: backend.list_users(tenant, ListQuery(start_index=1, count=100, include_groups=False))

        compare("list first page of 100 with exact total", "ms", timed(page(small)) * 1000, timed(page(large)) * 1000)

        def group_without_members(tenant: Tenant, group_id: str) -> Callable[[], object]:
            return lambda: backend.get_group(tenant, group_id, include_members=False)

        compare(
            "GET group excludedAttributes=members",
            "ms",
            timed(group_without_members(small, small_group)) * 1000,
            timed(group_without_members(large, large_group)) * 1000,
        )
        compare(
            "peak memory, GET group without members",
            "KiB",
            peak_memory(group_without_members(small, small_group)) / 1024,
            peak_memory(group_without_members(large, large_group)) / 1024,
        )
        compare(
            "peak memory, list page of 100",
            "KiB",
            peak_memory(page(small)) / 1024,
            peak_memory(page(large)) / 1024,
        )
        backend.close()

    print(f"\nsql backend on {url.split(':', 1)[0]}: small = {args.small:,} users, large = {args.large:,} users")
    print(f"{'operation':<50} {'small':>10} {'large':>10}  {'large/small':>11}")
    for name, small_value, large_value, unit in rows:
        ratio = large_value / small_value if small_value else float("inf")
        print(f"{name:<50} {small_value:>8.2f}{unit:>2} {large_value:>8.2f}{unit:>2}  {ratio:>10.2f}x")


if __name__ == "__main__":
    main()
