# scim-service: a slim image that runs gunicorn with gunicorn.conf.py as an unprivileged user.
#   docker build -t scim-service .
#   docker run -p 8000:8000 -v scim-data:/data scim-service     (SQLite in /data)
# docs/deployment.md covers PostgreSQL (compose.yaml), TLS, proxies, backups and upgrades.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
# The admin page ships docs/troubleshooting.md through a link inside the package.
COPY docs/troubleshooting.md docs/troubleshooting.md
COPY scim_service scim_service
COPY backends backends
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres,ldap]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    SCIM_INSTANCE_PATH=/data
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin scim \
    && mkdir -p /data /app \
    && chown scim:scim /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "scim-service[postgres,ldap]" \
    && rm -rf /wheels
WORKDIR /app
COPY gunicorn.conf.py ./
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
# /healthz answers while the process serves; /readyz (the database too) is for the orchestrator.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# gunicorn finishes in-flight requests on SIGTERM (graceful_timeout in gunicorn.conf.py).
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "gunicorn.conf.py", "scim_service.wsgi:app"]
