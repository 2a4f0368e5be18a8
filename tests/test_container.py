"""The container image: built and run only where a Docker engine answers.

Without an engine (``docker`` missing, or a client with no daemon behind it) the build test skips, in
CI as well: building the image is CI's job only where Docker is present. What can be checked without
Docker is checked anyway: the image's user, command and build inputs here, and its HEALTHCHECK command
in ``tests/test_ops_gunicorn.py``, run on this machine against gunicorn started the way the image's
CMD starts it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_support import dockerfile_instruction, exec_form, get, wait_for
from pg_support import REPO

pytestmark = pytest.mark.slow

DOCKERFILE = REPO / "Dockerfile"


def test_the_image_runs_as_an_unprivileged_user_and_serves_with_gunicorn_conf():
    assert dockerfile_instruction("USER").split(":")[0] not in {"0", "root"}
    assert exec_form(dockerfile_instruction("CMD")) == ["gunicorn", "-c", "gunicorn.conf.py", "scim_service.wsgi:app"]


def _docker_engine() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    done = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30)
    return docker if done.returncode == 0 else None


@pytest.fixture(scope="module")
def docker() -> str:
    found = _docker_engine()
    if found is None:
        pytest.skip("no Docker engine answers here (docker info failed): the image is not built")
    return found


@pytest.fixture(scope="module")
def image(docker: str) -> Iterator[str]:
    tag = f"scim-service:test-{uuid.uuid4().hex[:8]}"
    subprocess.run([docker, "build", "-t", tag, str(REPO)], check=True, timeout=900)
    try:
        yield tag
    finally:
        subprocess.run([docker, "image", "rm", "-f", tag], capture_output=True, timeout=120)


def test_the_image_becomes_healthy_and_serves_as_a_non_root_user(docker, image):
    name = f"scim-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [docker, "run", "-d", "--name", name, "-p", "127.0.0.1::8000", "--health-interval", "1s",
         "-e", "SCIM_ADMIN_PASSWORD=container test password", image],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        state = lambda: subprocess.run(  # noqa: E731
            [docker, "inspect", "-f", "{{.State.Health.Status}}", name], capture_output=True, text=True
        ).stdout.strip()
        assert wait_for(lambda: state() == "healthy", timeout=90), state()
        uid = subprocess.run([docker, "exec", name, "id", "-u"], capture_output=True, text=True, check=True)
        assert uid.stdout.strip() != "0"
        subprocess.run([docker, "exec", name, "scim-service", "db", "upgrade"], check=True, timeout=120)
        port = subprocess.run([docker, "port", name, "8000"], capture_output=True, text=True, check=True)
        base = "http://" + port.stdout.split()[0]
        assert get(base + "/readyz")[0] == 200
        assert get(base + "/admin/login")[0] == 200
        assert get(base + "/scim/v2/Users")[0] == 401
        started = time.monotonic()
        subprocess.run([docker, "stop", "-t", "40", name], check=True, timeout=60)
        assert time.monotonic() - started < 35  # gunicorn left on SIGTERM, not killed after the wait
    finally:
        subprocess.run([docker, "rm", "-f", name], capture_output=True, timeout=60)


def test_the_compose_file_is_valid(docker):
    done = subprocess.run(
        [docker, "compose", "-f", str(REPO / "compose.yaml"), "config", "--quiet"],
        env={"POSTGRES_PASSWORD": "x", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "is not a docker command" in done.stderr:
        pytest.skip("the docker compose plugin is not installed")
    assert done.returncode == 0, done.stderr


def test_the_image_build_copies_what_the_package_needs():
    # The admin page's guide is a link into docs/: the build stage must copy its target too.
    link = REPO / "scim_service" / "admin" / "troubleshooting.md"
    assert link.is_symlink()
    target = (link.parent / link.readlink()).resolve().relative_to(REPO)
    assert f"COPY {target} {target}" in DOCKERFILE.read_text()
    assert Path(REPO / target).is_file()
