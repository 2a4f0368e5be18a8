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


def _without_ldap3(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import ldap3`` fail as in a plain install, and forget the already imported LDAP plugin."""
    monkeypatch.setitem(sys.modules, "ldap3", None)
    for name in [m for m in sys.modules if m == "scim_ldap" or m.startswith(("scim_ldap.", "ldap3."))]:
        monkeypatch.delitem(sys.modules, name)


def test_missing_extra_lists_the_backend_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from scim_service.plugins import make_plugin_manager

    _without_ldap3(monkeypatch)
    pm = make_plugin_manager()
    assert "ldap" in pm.unavailable
    assert pm.unavailable["ldap"].missing_module == "ldap3"
    assert pm.unavailable["ldap"].hint == "pip install 'scim-service[ldap]'"
    assert pm.get_plugin("sql") is not None


def test_sqlite_default_starts_without_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scim_service.app import create_app

    _without_ldap3(monkeypatch)
    monkeypatch.setenv("SCIM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SCIM_BACKEND", raising=False)
    app = create_app()
    assert app.test_client().get("/healthz").status_code == 200


def test_selecting_a_backend_without_its_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from scim_service.plugins import PluginError, build_backend, make_plugin_manager

    _without_ldap3(monkeypatch)
    pm = make_plugin_manager()
    with pytest.raises(PluginError) as caught:
        build_backend(pm, {"SCIM_BACKEND": "ldap"})
    assert "pip install 'scim-service[ldap]'" in str(caught.value)
    assert "'ldap3'" in str(caught.value)


def test_plugins_command_lists_entry_points_with_their_state(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from scim_service.cli import main

    _without_ldap3(monkeypatch)
    result = CliRunner().invoke(main, ["plugins", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["sql"]["state"] == "loaded"
    assert rows["ldap"]["state"] == "unavailable"
    assert rows["ldap"]["hint"] == "pip install 'scim-service[ldap]'"
    table = CliRunner().invoke(main, ["plugins"], catch_exceptions=False)
    assert "pip install 'scim-service[ldap]'" in table.stdout
    assert "database:" not in table.stderr


def test_unmigrated_database_answers_503_and_logs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from scim_service import sqlengine
    from scim_service.app import create_app

    monkeypatch.setenv("SCIM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIM_DATABASE_URL", f"sqlite:///{tmp_path}/never-upgraded.db")
    # A fresh process has not logged it yet; the flag is per process, so reset it for this test.
    monkeypatch.setattr(sqlengine, "_not_migrated_logged", __import__("threading").Event())
    client = create_app().test_client()
    headers = {"Authorization": "Bearer not-a-real-token"}
    with caplog.at_level("ERROR", logger="scim_service.sqlengine"):
        answers = [client.get("/scim/v2/Users", headers=headers) for _ in range(3)]
    for answer in answers:
        assert answer.status_code == 503
        body = answer.get_json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert body["status"] == "503"
        assert "scim-service db upgrade" in body["detail"] and "flask scim db upgrade" in body["detail"]
    logged = [r for r in caplog.records if "scim-service db upgrade" in r.getMessage()]
    assert len(logged) == 1


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_plain_wheel_install_serves_sqlite(tmp_path: Path) -> None:
    """Build the wheel, install it WITHOUT extras in a fresh venv, migrate, list plugins, serve, provision."""
    import json
    import os
    import subprocess
    import time
    import urllib.error
    import urllib.request

    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), "."],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("scim_service-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    installed = subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "SCIM_INSTANCE_PATH": str(tmp_path / "instance"),
        "SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/plain.db",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(bin_dir / "scim-service"), *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done

    assert subprocess.run([str(bin_dir / "python"), "-c", "import ldap3"], capture_output=True).returncode != 0
    upgraded = cli("db", "upgrade")
    assert f"database: sqlite:///{tmp_path}/plain.db" in upgraded.stderr
    rows = {row["name"]: row for row in json.loads(cli("plugins", "--json").stdout)}
    assert rows["ldap"]["state"] == "unavailable" and "scim-service[ldap]" in rows["ldap"]["hint"]
    assert rows["sql"]["state"] == "loaded"
    cli("orgs", "create", "acme")
    token = json.loads(cli("tokens", "create", "acme", "--json").stdout)["token"]

    port = _free_port()
    server = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "-b", f"127.0.0.1:{port}", "--workers", "1", "scim_service.wsgi:app"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/scim/v2"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice"}
        post = urllib.request.Request(f"{base}/Users", json.dumps(body).encode(), headers, method="POST")
        with urllib.request.urlopen(post, timeout=10) as created:
            assert created.status == 201
            user_id = json.loads(created.read())["id"]
        with urllib.request.urlopen(urllib.request.Request(f"{base}/Users/{user_id}", headers=headers)) as got:
            assert got.status == 200
            assert json.loads(got.read())["userName"] == "alice"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_scim_plugins_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from scim_service.cli import main
    from scim_service.plugins import allowed_entry_points

    # Default: the built-in entry points and the selected backend only.
    assert allowed_entry_points({"SCIM_BACKEND": "sql"}) == {"sql", "ldap"}
    assert allowed_entry_points({"SCIM_BACKEND": "memory"}) == {"sql", "ldap", "memory"}
    assert allowed_entry_points({"SCIM_PLUGINS": "audit, extra", "SCIM_BACKEND": "sql"}) == {
        "sql",
        "ldap",
        "audit",
        "extra",
    }
    assert allowed_entry_points({"SCIM_PLUGINS": "*"}) is None

    # The example memory backend is installed in the dev venv: not loaded unless allowed or selected.
    def states(env: dict[str, str]) -> dict[str, str]:
        done = CliRunner().invoke(main, ["plugins", "--json"], env=env, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return {row["name"]: row["state"] for row in json.loads(done.stdout)}

    if "memory" not in states({"SCIM_PLUGINS": "*"}):
        pytest.skip("the example memory plugin is not installed in this venv")
    assert states({"SCIM_PLUGINS": "", "SCIM_BACKEND": "sql"})["memory"] == "not allowed"
    assert states({"SCIM_PLUGINS": "memory", "SCIM_BACKEND": "sql"})["memory"] == "loaded"
    assert states({"SCIM_PLUGINS": "*", "SCIM_BACKEND": "sql"})["memory"] == "loaded"
    assert states({"SCIM_PLUGINS": "", "SCIM_BACKEND": "memory"})["memory"] == "loaded"
