"""The production server as tests run it: gunicorn with the repository's ``gunicorn.conf.py``.

:func:`production_server` starts ``gunicorn -c gunicorn.conf.py scim_service.wsgi:app`` on a free port, waits until
``/healthz`` answers and stops it (SIGTERM, the graceful path) afterwards. Its stdout and stderr (the
access log and the error log) go to a file the test can read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pg_support import BIN, REPO, free_port

from scim_service.app import create_app
from scim_service.extension import get_state


@dataclass
class Server:
    """A running gunicorn master: its process, root URL and log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_text(self) -> str:
        """Everything the server wrote so far (access and error log)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def workers(self) -> set[int]:
        """The pids of the master's worker processes now."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(p) for p in children.read_text().split()} if children.exists() else set()


def get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``; an HTTP error status is an answer, not an exception."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@contextmanager
def production_server(env: Mapping[str, str], folder: Path, *args: str, timeout: float = 30) -> Iterator[Server]:
    """Run gunicorn with ``gunicorn.conf.py`` (plus ``args``) on 127.0.0.1 and a free port."""
    port = free_port()
    log = folder / f"gunicorn-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", *args,
             "scim_service.wsgi:app"],
            env=dict(env), cwd=REPO, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if get(server.url + "/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {server.log_text()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_for(predicate: Callable[[], object], timeout: float = 20, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; return its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(step)


def prepare_database(url: str, *, org: str, max_seats: int | None = None) -> str:
    """Migrate the database at ``url``, create ``org`` and return a new bearer token of it (in-process:
    quicker than three CLI runs, and the same store calls)."""
    app = create_app({"SCIM_DATABASE_URL": url, "SCIM_LOG_LEVEL": "WARNING"}, environ={})
    state = get_state(app)
    try:
        state.upgrade()
        state.store.create_org(org, max_seats=max_seats)
        return state.store.create_token(org)[1]
    finally:
        state.close()


def dockerfile_instruction(name: str) -> str:
    """The text of the Dockerfile's last ``name`` instruction (continuation lines joined)."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.*)$", text, re.M)
    assert found, f"the Dockerfile has no {name}"
    return found[-1]


def exec_form(text: str) -> list[str]:
    """The JSON array of an instruction in exec form (``CMD ["a", "b"]``)."""
    command = json.loads(text[text.index("[") :])
    assert isinstance(command, list) and all(isinstance(c, str) for c in command)
    return command


def os_environ_without_scim() -> dict[str, str]:
    """The test process's environment minus every ``SCIM_*`` setting and prometheus' folder."""
    return {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("SCIM_") and not k.startswith("SCIM_TEST_")) and k != "PROMETHEUS_MULTIPROC_DIR"
    }
