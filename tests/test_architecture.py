"""The layering of docs/architecture.md, checked: nothing below the blueprints imports Flask.

Every module of the shipped packages (``scim_service``, ``scim_sql``, ``scim_ldap``) is found by walking
their folders, so a new module is checked without being listed here. Only :data:`FLASK_LAYER` may import
Flask. Each module is imported in a process of its own (forked from one that holds no project module
and no Flask), so what one module imports cannot hide what another does.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ["scim_service", "scim_sql", "scim_ldap"]

# The modules allowed to import Flask, and why: the HTTP edge and what mounts it.
FLASK_LAYER = {
    "scim_service.api": "the blueprints: the HTTP edge",
    "scim_service.app": "create_app builds the standalone Flask app",
    "scim_service.wsgi": "the WSGI entry point: the standalone app gunicorn serves",
    "scim_service.extension": "ScimService, the Flask extension that mounts the blueprints",
    "scim_service.ops.routes": "the blueprints of /healthz, /readyz and /metrics",
    "scim_service.admin.views": "the admin page's blueprint",
}

# Files that are not importable modules: alembic runs its env.py scripts inside a migration context.
NOT_MODULES = {"env"}


def modules_of(package: str) -> list[str]:
    """Every module of ``package``, found by walking its folder (the package is not imported)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not an installed package"
    root = Path(next(iter(spec.submodule_search_locations)))
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        elif parts[-1] in NOT_MODULES:
            continue
        if all(part.isidentifier() for part in parts):
            found.append(".".join([package, *parts]))
    return found


MODULES = [module for package in PACKAGES for module in modules_of(package)]


def in_flask_layer(module: str) -> bool:
    """Whether ``module`` is, or belongs to a package that is, in :data:`FLASK_LAYER`."""
    return any(module == layer or module.startswith(layer + ".") for layer in FLASK_LAYER)


# Runs in a fresh interpreter: loads the Flask-free libraries every module needs once, then forks one child
# per module, which imports it and reports whether Flask came along (or the import failed).
PROBE = r"""
import importlib, json, os, sys
import alembic, marshmallow, pluggy, sqlalchemy  # Flask-free and slow to import: loaded once, before forking
assert not any(m == "flask" or m.startswith("flask.") for m in sys.modules), "a preloaded library imported Flask"
verdicts = {}
for name in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            verdict = "flask" if any(m == "flask" or m.startswith("flask.") for m in sys.modules) else "clean"
        except BaseException as exc:
            verdict = f"import failed: {type(exc).__name__}: {exc}"
        os.write(write, verdict.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        verdicts[name] = pipe.read().decode()
    os.waitpid(pid, 0)
print(json.dumps(verdicts))
"""


@pytest.fixture(scope="module")
def verdicts() -> dict[str, str]:
    """For every module: ``clean``, ``flask`` (its import brought Flask in) or why its import failed."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(MODULES)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_walk_finds_the_core_and_both_backends() -> None:
    for module in ("scim_service.model", "scim_service.testing.kit.users", "scim_sql.filters", "scim_ldap.backend"):
        assert module in MODULES
    assert len(MODULES) > 50, MODULES


@pytest.mark.parametrize("module", [m for m in MODULES if not in_flask_layer(m)])
def test_module_does_not_import_flask(module: str, verdicts: dict[str, str]) -> None:
    assert verdicts[module] == "clean", f"{module}: {verdicts[module]} (only {sorted(FLASK_LAYER)} may import Flask)"


@pytest.mark.parametrize("module", [m for m in MODULES if in_flask_layer(m)])
def test_module_of_the_flask_layer_imports(module: str, verdicts: dict[str, str]) -> None:
    assert verdicts[module] in ("clean", "flask"), f"{module}: {verdicts[module]}"
