"""Install and entry-point checks: the packaged WSGI module serves without the checkout's ``wsgi.py``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_packaged_wsgi_module_builds_the_app_from_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # scim_service.wsgi is what gunicorn loads from an installed wheel; it reads SCIM_* from the env.
    monkeypatch.setenv("SCIM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delitem(sys.modules, "scim_service.wsgi", raising=False)
    module = importlib.import_module("scim_service.wsgi")
    assert module.app.name
    assert module.app.test_client().get("/healthz").status_code == 200


def test_top_level_wsgi_reexports_the_packaged_app(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delitem(sys.modules, "scim_service.wsgi", raising=False)
    monkeypatch.delitem(sys.modules, "wsgi", raising=False)
    monkeypatch.syspath_prepend(str(REPO))
    shim = importlib.import_module("wsgi")
    assert shim.app is importlib.import_module("scim_service.wsgi").app
