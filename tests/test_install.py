"""Installing and starting the service: the plugin allow-list, unavailable plugins, the ``database:`` line,
the 503 of an unmigrated database, ``flask scim`` in a host app, and a wheel installed without extras."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from scim_service.app import create_app
from scim_service.cli import main
from scim_service.extension import get_state
from scim_service.plugins import (
    LOADED,
    NOT_ALLOWED,
    UNAVAILABLE,
    PluginError,
    allowed_plugins,
    build_backend,
    entry_point_report,
    make_plugin_manager,
)
from scim_service.state import UNMIGRATED_DETAIL

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a standalone run on a SQLite file in ``tmp_path``."""
    return {
        "SCIM_DATABASE_URL": f"sqlite:///{tmp_path / 'scim.db'}",
        "SCIM_INSTANCE_PATH": str(tmp_path / "instance"),
        "SCIM_BACKEND": "sql",
        "SCIM_PLUGINS": "",
        "SCIM_LOG_LEVEL": "WARNING",
        **extra,
    }


# -- the allow-list ------------------------------------------------------------------------------------


def test_the_allow_list_is_empty_by_default_star_for_all_and_trims_names() -> None:
    assert allowed_plugins({}) == set()
    assert allowed_plugins({"SCIM_PLUGINS": " memory , audit,"}) == {"memory", "audit"}
    assert allowed_plugins({"SCIM_PLUGINS": "*"}) is None


def test_by_default_only_the_built_ins_and_the_selected_backend_load() -> None:
    pm = make_plugin_manager(config={"SCIM_BACKEND": "sql", "SCIM_PLUGINS": ""})
    status = pm.entry_point_status
    assert status["sql"].status == LOADED
    assert status["ldap"].status == LOADED  # built in, and ldap3 is installed here
    assert status["memory"].status == NOT_ALLOWED
    assert status["memory"].reason == "not in SCIM_PLUGINS"
    assert pm.get_plugin("memory") is None


def test_a_listed_or_selected_plugin_loads() -> None:
    listed = make_plugin_manager(config={"SCIM_BACKEND": "sql", "SCIM_PLUGINS": "memory"})
    assert listed.entry_point_status["memory"].status == LOADED
    selected = make_plugin_manager(config={"SCIM_BACKEND": "memory", "SCIM_PLUGINS": ""})
    assert selected.entry_point_status["memory"].status == LOADED
    assert build_backend(selected, {"SCIM_BACKEND": "memory"}).name == "memory"
    everything = make_plugin_manager(config={"SCIM_BACKEND": "sql", "SCIM_PLUGINS": "*"})
    assert {s.status for s in everything.entry_point_status.values()} == {LOADED}


def test_a_backend_left_out_is_reported_as_not_installed() -> None:
    pm = make_plugin_manager(config={"SCIM_BACKEND": "sql", "SCIM_PLUGINS": ""})
    with pytest.raises(PluginError, match="'memory' is not an installed backend"):
        build_backend(pm, {"SCIM_BACKEND": "memory"})


def test_plugins_command_lists_every_entry_point(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"], env=env_for(tmp_path), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    by_name = {row["name"]: row for row in json.loads(result.stdout)}
    assert by_name["sql"]["status"] == LOADED
    assert by_name["memory"]["status"] == NOT_ALLOWED
    assert by_name["memory"]["distribution"] == "scim-backend-memory"
    table = CliRunner().invoke(main, ["plugins"], env=env_for(tmp_path, SCIM_PLUGINS="*"), catch_exceptions=False)
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split() == ["NAME", "STATUS", "DISTRIBUTION", "OBJECT", "REASON"]
    assert "not allowed" not in table.stdout
    # It needs no database: nothing was created.
    assert not (tmp_path / "scim.db").exists()


def test_report_statuses_are_sorted_and_complete() -> None:
    report = entry_point_report({"SCIM_BACKEND": "sql", "SCIM_PLUGINS": ""})
    names = [s.name for s in report]
    assert names == sorted(names)
    assert {"sql", "ldap", "memory"} <= set(names)
    assert all(s.status in {LOADED, NOT_ALLOWED, UNAVAILABLE} for s in report)


# -- the database line ---------------------------------------------------------------------------------


def test_database_commands_name_their_database_on_stderr_without_the_password(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"], env=env_for(tmp_path), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"database: sqlite:///{tmp_path / 'scim.db'}"
    assert lines.count(lines[0]) == 1
    assert "database:" not in result.stdout
    listed = CliRunner().invoke(main, ["orgs", "list", "--json"], env=env_for(tmp_path), catch_exceptions=False)
    assert listed.stderr.startswith("database: ")
    assert json.loads(listed.stdout) == []


def test_the_database_label_hides_the_password() -> None:
    from scim_service.cli import database_label

    assert database_label("postgresql+psycopg://scim:s3cret@db:5432/scim") == "postgresql+psycopg://scim@db:5432/scim"


# -- an unmigrated database ----------------------------------------------------------------------------


def test_an_unmigrated_database_answers_503_saying_what_to_run_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(env_for(tmp_path), environ={})
    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="scim_service"):
        answers = [client.get("/scim/v2/Users", headers={"Authorization": "Bearer x"}) for _ in range(3)]
        answers.append(client.post("/scim/v2/Users", json={"userName": "a"}))
        answers.append(client.get("/scim/v2/ServiceProviderConfig"))
    for response in answers:
        assert response.status_code == 503
        body = response.get_json()
        assert body["schemas"] == [ERROR_SCHEMA]
        assert body["status"] == "503"
        assert body["detail"] == UNMIGRATED_DETAIL
        assert "scim-service db upgrade" in body["detail"]
    logged = [r for r in caplog.records if "no scim-service tables" in r.getMessage()]
    assert len(logged) == 1
    # After the upgrade the same process serves: the token check answers (401), not the 503.
    get_state(app).upgrade()
    assert client.get("/scim/v2/Users", headers={"Authorization": "Bearer x"}).status_code == 401


# -- flask scim in a host app --------------------------------------------------------------------------


def host_app(tmp_path: Path):
    """A host Flask app that mounts the extension on its own config (no environment read)."""
    from flask import Flask

    from scim_service.extension import ScimService

    app = Flask("host", instance_path=str(tmp_path / "host-instance"))
    app.config.update(SCIM_DATABASE_URL=f"sqlite:///{tmp_path / 'host.db'}", SCIM_BACKEND="sql")
    ScimService(app)
    return app


def test_flask_scim_runs_the_same_commands_on_the_host_apps_database(tmp_path: Path) -> None:
    app = host_app(tmp_path)
    runner = app.test_cli_runner()
    upgraded = runner.invoke(args=["scim", "db", "upgrade"], catch_exceptions=False)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"database: sqlite:///{tmp_path / 'host.db'}" in upgraded.stderr
    created = runner.invoke(args=["scim", "orgs", "create", "acme"], catch_exceptions=False)
    assert created.exit_code == 0, created.output
    token = runner.invoke(args=["scim", "tokens", "create", "acme", "--json"], catch_exceptions=False)
    assert token.exit_code == 0, token.output
    assert json.loads(token.stdout)["token"].startswith("scim_")
    # The host's own state saw it: one organization, in the host's database file only.
    assert [t.name for t in get_state(app).store.list_orgs()] == ["acme"]
    assert (tmp_path / "host.db").exists() and not (tmp_path / "host-instance" / "scim.db").exists()
    # The same click command objects as scim-service, not copies.
    from scim_service.cli import main

    group = app.cli.commands["scim"]
    assert group.commands["orgs"] is main.commands["orgs"]
    listed = runner.invoke(args=["scim", "--help"], catch_exceptions=False)
    assert listed.exit_code == 0
    assert "ldap" in listed.stdout and "plugins" in listed.stdout  # built-in and plugin commands


def test_flask_scim_on_an_unmigrated_host_database_says_what_to_run(tmp_path: Path) -> None:
    app = host_app(tmp_path)
    result = app.test_cli_runner().invoke(args=["scim", "orgs", "list"])
    assert result.exit_code == 1
    assert "db upgrade` first" in result.stderr


def test_flask_scim_reaches_the_backend_the_host_passed_in(tmp_path: Path) -> None:
    from flask import Flask
    from scim_backend_memory.backend import MemoryBackend

    from scim_service.extension import ScimService

    backend = MemoryBackend.from_config({})
    app = Flask("host", instance_path=str(tmp_path / "host-instance"))
    app.config.update(SCIM_DATABASE_URL=f"sqlite:///{tmp_path / 'host.db'}")
    ScimService(app, backend=backend)
    runner = app.test_cli_runner()
    upgraded = runner.invoke(args=["scim", "db", "upgrade"], catch_exceptions=False)
    assert "backend 'memory': schema created or upgraded" in upgraded.stderr
    assert runner.invoke(args=["scim", "orgs", "create", "acme"], catch_exceptions=False).exit_code == 0
    tenant = get_state(app).store.get_org("acme")
    backend.create_user(tenant, {"userName": "ada", "active": True})
    listed = runner.invoke(args=["scim", "users", "list", "acme", "--json"], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    assert "ada" in listed.stdout


# -- a wheel installed without extras ------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_wheel_installed_without_extras_serves_sqlite(tmp_path: Path) -> None:
    """pip wheel, a fresh venv with only the base dependencies, then the CLI and gunicorn from that venv."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SCIM_", "VIRTUAL_ENV", "PYTHON"))}
    # Built from a copy of the tree without build output: a stale build/lib in the checkout would end up
    # in the wheel, and building in place would leave build/ and *.egg-info behind.
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "instance", "__pycache__", "var"
        ),
    )
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)], base)
    (wheel,) = (tmp_path / "dist").glob("scim_service-*.whl")
    venv = tmp_path / "venv"
    # The interpreter the test venv was made from, so the new venv shares nothing with it.
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], base)
    bin_dir = venv / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], base, timeout=180)
    # No extra came along: neither driver is importable there.
    probe = "import importlib.util as u; print(u.find_spec('ldap3'), u.find_spec('psycopg'))"
    missing = _run([str(bin_dir / "python"), "-c", probe], base)
    assert missing.stdout.split() == ["None", "None"]

    env = {
        **base,
        "SCIM_DATABASE_URL": f"sqlite:///{tmp_path / 'scim.db'}",
        "SCIM_INSTANCE_PATH": str(tmp_path / "instance"),
        "SCIM_LOG_LEVEL": "WARNING",
    }
    cli = str(bin_dir / "scim-service")
    upgraded = _run([cli, "db", "upgrade"], env)
    assert f"database: sqlite:///{tmp_path / 'scim.db'}" in upgraded.stderr
    plugins = json.loads(_run([cli, "plugins", "--json"], env).stdout)
    by_name = {row["name"]: row for row in plugins}
    assert by_name["sql"]["status"] == LOADED
    assert by_name["ldap"]["status"] == UNAVAILABLE
    assert by_name["ldap"]["install"] == "pip install 'scim-service[ldap]'"
    selected = subprocess.run(
        [cli, "orgs", "list"], env={**env, "SCIM_BACKEND": "ldap"}, capture_output=True, text=True
    )
    assert selected.returncode == 1
    assert "pip install 'scim-service[ldap]'" in selected.stderr and "Traceback" not in selected.stderr
    _run([cli, "orgs", "create", "acme"], env)
    token = json.loads(_run([cli, "tokens", "create", "acme", "--json"], env).stdout)["token"]

    port = _free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "1", "scim_service.wsgi:app"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base_url = f"http://127.0.0.1:{port}/scim/v2"
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = _http("GET", f"{base_url}/ServiceProviderConfig", token)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.1)
        assert status == 200
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com"}
        status, created = _http("POST", f"{base_url}/Users", token, user)
        assert status == 201, created
        status, read = _http("GET", f"{base_url}/Users/{created['id']}", token)
        assert status == 200
        assert read["userName"] == "ada@example.com"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
