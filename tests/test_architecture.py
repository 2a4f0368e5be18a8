"""The layering DESIGN.md asks for, checked: nothing below the blueprints imports Flask."""

from __future__ import annotations

import subprocess
import sys

import pytest

BELOW_THE_BLUEPRINTS = [
    "scim_service.model",
    "scim_service.errors",
    "scim_service.backend",
    "scim_service.hookspecs",
    "scim_service.plugins",
    "scim_service.lifecycle",
    "scim_service.rules",
    "scim_service.state",
    "scim_service.patch",
    "scim_service.profiles",
    "scim_service.bulk",
    "scim_service.schemas.extensions",
    "scim_service.testing",
    "scim_service.config",
    "scim_service.auth",
    "scim_service.sqlengine",
    "scim_service.query.parser",
    "scim_service.query.resolve",
    "scim_service.query.evaluator",
    "scim_service.query.params",
    "scim_service.schemas.resources",
    "scim_service.schemas.messages",
    "scim_service.schemas.render",
    "scim_service.schemas.projection",
    "scim_service.schemas.discovery",
    "scim_service.servicedb.store",
    "scim_service.durations",
    "scim_service.logformat",
    "scim_service.operations",
    "scim_sql.backend",
    "scim_ldap.backend",
]


@pytest.mark.parametrize("module", BELOW_THE_BLUEPRINTS)
def test_module_does_not_import_flask(module):
    code = (
        f"import sys, {module}; sys.exit(1 if any(m == 'flask' or m.startswith('flask.') for m in sys.modules) else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, f"{module} imports Flask (or failed: {done.stderr[-500:]})"
