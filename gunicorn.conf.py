"""gunicorn settings for scim-service: ``gunicorn -c gunicorn.conf.py scim_service.wsgi:app`` (what ``make run`` and the
container run). Options given on the command line win over these; docs/deployment.md explains them.

Environment knobs (all optional):
  WEB_CONCURRENCY        worker processes (default: 2 per core plus 1, at most 8)
  GUNICORN_THREADS       threads per worker (default 4)
  GUNICORN_TIMEOUT       seconds a request may take before its worker is restarted (default 60)
  GUNICORN_BIND          address to listen on (default 0.0.0.0:$PORT, PORT defaulting to 8000)
  FORWARDED_ALLOW_IPS    proxies whose X-Forwarded-* headers are trusted (gunicorn's own; default 127.0.0.1)
  SCIM_METRICS           true: per-worker metrics files in PROMETHEUS_MULTIPROC_DIR, summed on scrape
"""

from __future__ import annotations

import os

from scim_service.ops import gunicorn_hooks


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this container or cgroup may use
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# The service waits on its database, not the CPU: threads overlap those waits, processes use the cores.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * _cores() + 1, 8))
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
worker_class = "gthread"

# A request that takes longer than this is stuck (a hung database); its worker is replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
# On SIGTERM, workers finish the requests they have for up to this long before they are killed.
graceful_timeout = 30
keepalive = 5  # seconds; keep it below the idle timeout of the load balancer in front
# Recycle workers now and then (with jitter, so they do not all restart at once).
max_requests = 10_000
max_requests_jitter = 1_000

# No runtime control socket (gunicorn 24+): nothing here uses it, and servers side by side would share
# its default path.
control_socket_disable = True

# One access line per request on stdout, with the request id the service returns as X-Request-Id.
# The path without its query string: a client may send its token as ?access_token=, and the service's
# own request line (scim_service.request, with the request id) prints the query with secrets redacted.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s bytes %(M)sms request_id=%({x-request-id}o)s agent="%(a)s"'


def on_starting(server: object) -> None:
    """Before the first worker forks: an empty, shared metrics folder when SCIM_METRICS is on."""
    gunicorn_hooks.prepare_multiprocess_dir(os.environ)


def on_exit(server: object) -> None:
    """The master is leaving: remove the metrics folder if on_starting made it."""
    gunicorn_hooks.remove_multiprocess_dir()


child_exit = gunicorn_hooks.child_exit
worker_exit = gunicorn_hooks.worker_exit
