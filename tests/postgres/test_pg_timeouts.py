"""PostgreSQL timeouts: a held lock, a slow statement or an unreachable server give a quick SCIM 503.

The lock test is the case of issue 11: a transaction left open holding an organization's row in
``scim_tenant_state`` (the row every write of the ``sql`` backend locks first, see ``_lock_tenant``),
as a host whose network dropped mid-write leaves it. A POST /Users of that organization, over HTTP to
a gunicorn server, must answer 503 with ``Retry-After`` within ``SCIM_DB_LOCK_TIMEOUT`` (plus a
margin), not hang until gunicorn kills the worker; once the lock is released the POST works.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from pg_support import Admin, Servers, call, gunicorn_servers, service_env

from scim_service.errors import Unavailable
from scim_service.sqlengine import make_engine, read_transaction

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LOCK_TIMEOUT = 1.0  # seconds, what the servers of this module are given
BOUND = LOCK_TIMEOUT + 3.0  # the answer must come within the timeout plus a margin for a slow machine


@pytest.fixture(scope="module")
def servers(service_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """One gunicorn server on the module's database with a short lock timeout."""
    env = service_env(service_db, SCIM_DB_LOCK_TIMEOUT=str(LOCK_TIMEOUT))
    with gunicorn_servers(env, tmp_path_factory.mktemp("timeout-logs"), count=1, workers=1, threads=4) as running:
        yield running


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_a_held_tenant_lock_gives_a_quick_503_with_retry_after_then_the_post_works(
    service_db: str, admin: Admin, servers: Servers
) -> None:
    tenant, token = admin.org("locked-org", max_seats=100)
    base = servers.bases[0]
    first = call(base + "/Users", token, "POST", {"schemas": [USER], "userName": "before.lock"})
    assert first.status == 201, first.body  # the organization's scim_tenant_state row exists now

    holder = psycopg.connect(_libpq(service_db), autocommit=False)
    try:
        # Another "server" takes the organization's row lock and never commits.
        locked = holder.execute(
            "SELECT tenant_id FROM scim_tenant_state WHERE tenant_id = %s FOR UPDATE", (tenant.id,)
        ).fetchone()
        assert locked == (tenant.id,)

        blocked = call(base + "/Users", token, "POST", {"schemas": [USER], "userName": "during.lock"}, timeout=20)
        assert blocked.status == 503, blocked.body
        assert blocked.seconds < BOUND, f"answered after {blocked.seconds:.1f}s"
        assert blocked.body.get("schemas") == [ERROR] and blocked.body.get("status") == "503", blocked.body
        assert int(blocked.headers.get("Retry-After", "0")) > 0, blocked.headers
        detail = blocked.body["detail"]
        assert "retry" in detail.lower(), detail
        # No driver text: neither the tenant id, the table, nor the server's address.
        for secret in (tenant.id, "scim_tenant_state", "127.0.0.1", "lock_timeout"):
            assert secret not in detail, detail

        # Reads of the same organization do not wait for the lock.
        listed = call(base + "/Users?count=5", token, timeout=20)
        assert listed.status == 200 and listed.seconds < BOUND, (listed.status, listed.seconds)
    finally:
        holder.rollback()
        holder.close()

    after = call(base + "/Users", token, "POST", {"schemas": [USER], "userName": "during.lock"}, timeout=20)
    assert after.status == 201, after.body
    assert admin.scalar("SELECT count(*) FROM scim_users WHERE tenant_id = :t", t=tenant.id) == 2
    assert "Traceback" not in servers.logs(), servers.logs()[-3000:]


def test_a_statement_over_the_statement_timeout_is_a_503(service_db: str) -> None:
    engine = make_engine(service_db, {"SCIM_DB_STATEMENT_TIMEOUT": 0.5})
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught, read_transaction(engine) as conn:
            conn.execute(sa.text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 3
        assert caught.value.status == 503 and caught.value.retry_after > 0
        assert "did not answer in time" in caught.value.detail, caught.value.detail
        # The pool is still usable afterwards.
        with read_transaction(engine) as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_the_timeouts_reach_the_server_and_the_url_wins(service_db: str) -> None:
    engine = make_engine(service_db, {"SCIM_DB_LOCK_TIMEOUT": 2, "SCIM_DB_STATEMENT_TIMEOUT": 7.5})
    own = make_engine(service_db + "?options=-c%20statement_timeout%3D0", {})
    try:
        with read_transaction(engine) as conn:
            assert conn.execute(sa.text("SHOW lock_timeout")).scalar_one() == "2s"
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "7500ms"
            # Keepalives and the TCP user timeout are the client's socket options: libpq's parameters.
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            assert params.get("keepalives_idle") == "30" and params.get("tcp_user_timeout") == "5000", params
        with read_transaction(own) as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "0"
            assert conn.execute(sa.text("SHOW lock_timeout")).scalar_one() == "5s"
    finally:
        engine.dispose()
        own.dispose()


def test_an_unreachable_server_is_a_503_that_names_no_host(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x", {"SCIM_DB_CONNECT_TIMEOUT": 2})
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING), pytest.raises(Unavailable) as caught, read_transaction(engine):
            pass
        assert time.monotonic() - started < 3
        detail = caught.value.detail
        assert detail == "The database is unavailable; retry later", detail
        assert "127.0.0.1" not in detail and str(port) not in detail
        assert str(port) in caplog.text, caplog.text  # the operator sees where it tried
    finally:
        engine.dispose()


def test_a_missing_table_says_to_run_db_upgrade(service_db: str) -> None:
    engine = make_engine(service_db, {})
    try:
        with pytest.raises(Unavailable) as caught, read_transaction(engine) as conn:
            conn.execute(sa.text("SELECT 1 FROM scim_not_migrated_yet"))
        assert "no such table: scim_not_migrated_yet" in caught.value.detail, caught.value.detail
        assert "run `scim-service db upgrade` first" in caught.value.detail
    finally:
        engine.dispose()


def test_a_server_that_accepts_but_never_answers_is_a_503_within_the_connect_timeout() -> None:
    # A host whose network silently drops packets after the TCP handshake looks like this to libpq.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x", {"SCIM_DB_CONNECT_TIMEOUT": 2})
        try:
            started = time.monotonic()
            with pytest.raises(Unavailable) as caught, read_transaction(engine):
                pass
            elapsed = time.monotonic() - started
            assert elapsed < 2 + 2.5, f"gave up after {elapsed:.1f}s"
            assert caught.value.retry_after > 0 and str(port) not in caught.value.detail
        finally:
            engine.dispose()
