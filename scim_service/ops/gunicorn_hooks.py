"""The gunicorn server hooks that ``gunicorn.conf.py`` installs; importable without Flask.

Metrics under gunicorn need one folder shared by the workers (``PROMETHEUS_MULTIPROC_DIR``), emptied
when the server starts (files of an earlier run would be added to this one's counts), and the files of
a worker that exits marked dead so its in-progress requests stop counting.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from scim_service.config import SETTINGS_BY_NAME, ConfigError
from scim_service.ops.metrics import MULTIPROC_ENV

log = logging.getLogger(__name__)

# Folders this process made with mkdtemp, removed again by :func:`remove_multiprocess_dir`.
_made: list[Path] = []


def metrics_enabled(environ: MutableMapping[str, str]) -> bool:
    """Whether ``SCIM_METRICS`` in the environment switches metrics on (a bad value stops the server)."""
    try:
        return bool(SETTINGS_BY_NAME["SCIM_METRICS"].parse(environ.get("SCIM_METRICS", "false")))
    except ValueError as exc:
        raise ConfigError(f"SCIM_METRICS: {exc}") from exc


def prepare_multiprocess_dir(environ: MutableMapping[str, str]) -> Path | None:
    """When metrics are on, make sure ``PROMETHEUS_MULTIPROC_DIR`` names an empty folder (a new temp
    folder if unset) before any worker imports prometheus-client; return it, or None when metrics are off.
    """
    if not metrics_enabled(environ):
        return None
    folder = environ.get(MULTIPROC_ENV)
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="scim-metrics-"))
        environ[MULTIPROC_ENV] = str(path)
        _made.append(path)
    return path


def remove_multiprocess_dir() -> None:
    """gunicorn's ``on_exit``: remove the metrics folder if :func:`prepare_multiprocess_dir` made it."""
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: a worker ended; drop its live gauges (in-progress requests).

    Its counters and histograms stay in the folder: what it served still counts.
    """
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, folder)


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``worker_exit`` hook: close the app's database pools and backend connections, so a
    graceful shutdown also ends its sessions on the database server cleanly."""
    app = getattr(worker, "wsgi", None)
    extensions = getattr(app, "extensions", None)
    if not extensions or "scim" not in extensions:
        return
    try:
        extensions["scim"].close()
    except Exception:  # shutting down: report, never stop the exit
        log.warning("could not close the service's connections at worker exit", exc_info=True)
