"""Where a request's time goes, from py-spy's collapsed stacks (``http_bench.py --profile``).

Only samples taken inside ``Flask.wsgi_app`` count (a worker serving a request). Each sample is given
to the first *purpose* below whose function is on its stack, so the purposes add up to 100 %: the
write-lock wait is counted before the write that waits, the provisioning-log insert before the SQL it
runs, and so on; SQL work outside any named purpose stays with the backend call that ran it. A second
view gives the *layer* of the innermost frame (the code actually running: SQLAlchemy, the sqlite3 or
psycopg driver, marshmallow, json, Flask, ours).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# (purpose, function names as py-spy prints them: "Class.method" or "function"), first match wins.
PURPOSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SQLite write-lock wait (sqlengine.SqliteWriteLock)", ("SqliteWriteLock.held", "SqliteWriteLock._acquire")),
    ("provisioning-log insert (servicedb/store.py ServiceStore.record)", ("ServiceStore.record",)),
    ("request log line (api/blueprint.py _record: log.info)", ("Logger.info", "Logger._log")),
    ("token last-used touch (servicedb/store.py ServiceStore._touch)", ("ServiceStore._touch",)),
    (
        "token lookup (servicedb/store.py ServiceStore.authenticate)",
        ("ServiceStore.authenticate", "ServiceStore.authenticate_with_profile"),
    ),
    ("org profile read (servicedb/store.py ServiceStore.profile_of)", ("ServiceStore.profile_of",)),
    ("JSON encoding of the response (api/blueprint.py scim_response)", ("scim_response",)),
    ("JSON decoding of the body (api/blueprint.py json_body)", ("json_body",)),
    ("PatchOp parsing (schemas/messages.py load_patch_op)", ("load_patch_op",)),
    ("PATCH applied to the document (patch.py)", ("apply_user_patch", "apply_group_patch")),
    ("marshmallow validation (schemas/resources.py load_*)", ("load_user", "load_group", "load_resource")),
    ("rendering (schemas/render.py render_*)", ("render_user", "render_group")),
    ("projection (schemas/projection.py project)", ("project", "includes")),
    ("list parameters (query/params.py)", ("parse_list_params", "parse_search_request")),
    ("backend: read the user (scim_sql SqlBackend.get_user)", ("SqlBackend.get_user",)),
    ("backend: list users, count + page (SqlBackend.list_users)", ("SqlBackend.list_users",)),
    ("backend: write the user (SqlBackend.replace_user)", ("SqlBackend.replace_user",)),
    ("backend: create the user (SqlBackend.create_user)", ("SqlBackend.create_user",)),
    ("backend: read the group (SqlBackend.get_group)", ("SqlBackend.get_group",)),
    ("backend: membership change (SqlBackend.patch_group)", ("SqlBackend.patch_group",)),
    ("change hooks (pluggy)", ("HookCaller.__call__",)),
    ("authentication hook, other (api/blueprint.py _authenticate)", ("_authenticate",)),
)
OTHER = "the rest: Flask, werkzeug, routing, lifecycle glue"

# Layer of the innermost frame, by the file py-spy names.
LAYERS: tuple[tuple[str, str], ...] = (
    (
        "SQLite/PostgreSQL driver calls (execute, fetch, commit)",
        r"DefaultDialect\.do_|\(psycopg/|\.do_execute|\.do_commit|\.do_ping",
    ),
    (
        "SQLAlchemy (statement building, cache keys, compiling, results, pool)",
        r"\(sqlalchemy/|\((sql|engine|orm|util|event|pool|dialects)/",
    ),
    ("marshmallow", r"\(marshmallow/"),
    ("json (stdlib)", r"\(json/"),
    ("Flask / werkzeug", r"\((flask|werkzeug)/"),
    ("logging", r"\(logging/"),
    ("flock wait / release", r"SqliteWriteLock"),
    (
        "scim-service and scim_sql code",
        r"\((scim_service|api|schemas|query|servicedb|scim_sql)/|\((patch|lifecycle)\.py",
    ),
)


@dataclass
class Profile:
    """Sample counts of one profile."""

    total: int
    purposes: Counter[str]
    layers: Counter[str]
    inclusive: Counter[str]
    own: Counter[str]


def _name(frame: str) -> str:
    """``Class.method (file.py:12)`` -> ``Class.method``."""
    return frame.split(" (", 1)[0].strip()


def _short(frame: str) -> str:
    """``Class.method (pkg/file.py:12)`` -> ``Class.method (pkg/file.py)``."""
    return re.sub(r":\d+\)$", ")", frame.strip())


def read(raw: Path) -> Profile:
    """Count the samples of a py-spy ``--format raw`` file."""
    purposes: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if "Flask.wsgi_app" not in stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        frames = frames[next(i for i, f in enumerate(frames) if "Flask.wsgi_app" in f) :]
        names = {_name(f) for f in frames}
        total += count
        purpose = next((label for label, functions in PURPOSES if names.intersection(functions)), OTHER)
        purposes[purpose] += count
        leaf = frames[-1]
        layer = next((label for label, pattern in LAYERS if re.search(pattern, leaf)), "other (stdlib, C calls)")
        layers[layer] += count
        for short in {_short(f) for f in frames}:
            inclusive[short] += count
        own[_short(leaf)] += count
    return Profile(total, purposes, layers, inclusive, own)


def report(profile: Profile, ms_per_request: float, top: int) -> None:
    """Print the purposes (share and ms of a request), the layers, and the heaviest functions."""
    if not profile.total:
        print("  (no samples inside a request)")
        return

    def line(label: str, count: int) -> str:
        share = count / profile.total
        return f"  {100 * share:5.1f}%  {share * ms_per_request:6.2f} ms  {label}"

    print(f"  {profile.total} samples inside requests; {ms_per_request:.2f} ms of a worker's time per request")
    print("  by purpose (each sample counted once, first match in this order):")
    order = [label for label, _ in PURPOSES] + [OTHER]
    for label in sorted(order, key=lambda x: -profile.purposes[x]):
        if profile.purposes[label]:
            print(line(label, profile.purposes[label]))
    print("  by layer of the running code (innermost frame):")
    for label, count in profile.layers.most_common():
        print(line(label, count))
    print(f"  heaviest functions, inclusive (top {top}):")
    skip = ("Flask.", "_GeneratorContextManager", "dispatch (", "wrapper (", "Scaffold.", "<lambda>")
    shown = 0
    for name, count in profile.inclusive.most_common():
        if any(name.startswith(s) for s in skip):
            continue
        print(line(f"{name}   [self {100 * profile.own[name] / profile.total:.1f}%]", count))
        shown += 1
        if shown >= top:
            break
