"""Bearer tokens: creation, hashing, revocation seen by every worker, last-used throttling, the auth hook."""

from __future__ import annotations

import base64
import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from scim_service.auth import BearerTokenAuth
from scim_service.errors import Unauthorized
from scim_service.hookspecs import AuthRequest, Principal, hookimpl
from scim_service.plugins import make_plugin_manager
from scim_service.servicedb import AdminError, ServiceStore, upgrade_service_db
from scim_service.sqlengine import make_engine


class Clock:
    """A settable UTC clock, so throttling can be tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "service.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{db_path}")
    upgrade_service_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def second_engine(db_path: Path, engine: Engine) -> Iterator[Engine]:
    """Another worker process's engine on the same database file."""
    eng = make_engine(f"sqlite:///{db_path}")
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> ServiceStore:
    return ServiceStore(engine)


def _request(authorization: str | None) -> AuthRequest:
    headers = {} if authorization is None else {"authorization": authorization}
    return AuthRequest(method="GET", path="/scim/v2/Users", headers=headers)


def _last_used(db_path: Path, token_id: str) -> str | None:
    with sqlite3.connect(db_path) as raw:
        return raw.execute("SELECT last_used FROM scim_tokens WHERE id = ?", (token_id,)).fetchone()[0]


# -- creation and storage --------------------------------------------------------------------------


def test_tokens_have_at_least_256_random_bits_and_a_prefix(store: ServiceStore) -> None:
    store.create_org("acme")
    seen = set()
    for _ in range(20):
        token_id, token = store.create_token("acme")
        assert token.startswith("scim_")
        body = token.removeprefix("scim_")
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        assert len(raw) * 8 >= 256
        assert token_id not in token
        seen.add(token)
    assert len(seen) == 20


def test_only_the_hash_is_stored(store: ServiceStore, db_path: Path) -> None:
    store.create_org("acme")
    token_id, token = store.create_token("acme", description="Okta")
    store.authenticate(token)
    digest = hashlib.sha256(token.encode()).hexdigest()
    body = token.removeprefix("scim_")
    with sqlite3.connect(db_path) as raw:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        cells = [str(cell) for table in tables for row in raw.execute(f'SELECT * FROM "{table}"') for cell in row]
        assert raw.execute("SELECT token_hash FROM scim_tokens WHERE id = ?", (token_id,)).fetchone() == (digest,)
    assert not any(body in cell for cell in cells)
    # Nor anywhere in the files themselves (the database and its write-ahead log).
    for path in db_path.parent.glob(db_path.name + "*"):
        assert body.encode() not in path.read_bytes()


def test_list_tokens_never_shows_the_token(store: ServiceStore) -> None:
    store.create_org("acme")
    store.create_org("beta")
    first_id, first = store.create_token("acme", description="Okta")
    second_id, second = store.create_token("acme")
    store.create_token("beta")
    infos = store.list_tokens("acme")
    assert [i.id for i in infos] == [first_id, second_id]
    assert infos[0].description == "Okta" and infos[0].org_name == "acme"
    assert infos[0].created.tzinfo is not None and infos[0].last_used is None and not infos[0].revoked
    text = repr(infos)
    for secret in (first, second, hashlib.sha256(first.encode()).hexdigest()):
        assert secret not in text
        assert secret.removeprefix("scim_") not in text


def test_token_for_unknown_org(store: ServiceStore) -> None:
    with pytest.raises(AdminError, match="no organization named 'ghost'"):
        store.create_token("ghost")


# -- authenticate ----------------------------------------------------------------------------------


def test_authenticate_maps_each_token_to_its_organization(store: ServiceStore) -> None:
    acme = store.create_org("acme")
    beta = store.create_org("beta", max_seats=3)
    acme_id, acme_token = store.create_token("acme")
    beta_id, beta_token = store.create_token("beta")
    assert store.authenticate(acme_token) == (acme, acme_id)
    assert store.authenticate(beta_token) == (beta, beta_id)


@pytest.mark.parametrize("presented", ["", "scim_unknown", "x" * 10_000])
def test_unknown_tokens_are_none(store: ServiceStore, presented: str) -> None:
    store.create_org("acme")
    _, token = store.create_token("acme")
    assert store.authenticate(presented) is None
    assert store.authenticate(token[:-1]) is None
    assert store.authenticate(token + "x") is None


def test_revocation_is_seen_at_once_by_another_worker(engine: Engine, second_engine: Engine) -> None:
    worker_a = ServiceStore(engine)
    worker_b = ServiceStore(second_engine)
    worker_a.create_org("acme")
    token_id, token = worker_a.create_token("acme")
    assert worker_a.authenticate(token) is not None
    assert worker_b.authenticate(token) is not None

    info = worker_b.revoke_token(token_id)
    assert info.revoked and info.revoked_at is not None
    with pytest.raises(Unauthorized, match="revoked") as caught:
        worker_a.authenticate(token)
    assert caught.value.status == 401
    with pytest.raises(Unauthorized, match="revoked"):
        worker_b.authenticate(token)
    assert worker_a.list_tokens("acme")[0].revoked


def test_revoke_is_idempotent_and_unknown_ids_are_errors(store: ServiceStore) -> None:
    store.create_org("acme")
    token_id, _ = store.create_token("acme")
    _, other_token = store.create_token("acme")
    first = store.revoke_token(token_id)
    second = store.revoke_token(token_id)
    assert first.revoked_at == second.revoked_at
    assert store.get_token(token_id).revoked
    assert store.authenticate(other_token) is not None  # revoking one token leaves the others
    with pytest.raises(AdminError, match="no token has the id 'nope'"):
        store.revoke_token("nope")
    with pytest.raises(AdminError, match="no token has the id"):
        store.get_token("nope")


def test_last_used_is_written_at_most_every_touch_seconds(engine: Engine, db_path: Path) -> None:
    clock = Clock()
    store = ServiceStore(engine, touch_seconds=60, clock=clock)
    store.create_org("acme")
    token_id, token = store.create_token("acme")
    assert _last_used(db_path, token_id) is None

    store.authenticate(token)
    first = _last_used(db_path, token_id)
    assert first is not None
    assert store.get_token(token_id).last_used == clock.now

    updates: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE SCIM_TOKENS"):
            updates.append(statement)

    clock.advance(59)
    for _ in range(5):
        store.authenticate(token)
    assert _last_used(db_path, token_id) == first  # within the window: not written ...
    assert updates == []  # ... nor even attempted: authentication stays read-only

    clock.advance(2)
    store.authenticate(token)
    assert store.get_token(token_id).last_used == clock.now  # window passed: written again
    assert len(updates) == 1
    event.remove(engine, "before_cursor_execute", _count)


def test_throttle_is_shared_by_workers_through_the_database(engine: Engine, second_engine: Engine) -> None:
    clock = Clock()
    worker_a = ServiceStore(engine, touch_seconds=60, clock=clock)
    worker_b = ServiceStore(second_engine, touch_seconds=60, clock=clock)
    worker_a.create_org("acme")
    token_id, token = worker_a.create_token("acme")
    worker_a.authenticate(token)
    stamped = worker_a.get_token(token_id).last_used
    clock.advance(30)
    worker_b.authenticate(token)  # b has never seen the token, but the database says it is fresh
    assert worker_b.get_token(token_id).last_used == stamped


def test_touch_seconds_zero_writes_every_time(engine: Engine) -> None:
    clock = Clock()
    store = ServiceStore(engine, touch_seconds=0, clock=clock)
    store.create_org("acme")
    token_id, token = store.create_token("acme")
    for _ in range(3):
        clock.advance(1)
        store.authenticate(token)
        assert store.get_token(token_id).last_used == clock.now


# -- the scim_authenticate hook --------------------------------------------------------------------


def test_bearer_auth_hook(store: ServiceStore) -> None:
    acme = store.create_org("acme")
    token_id, token = store.create_token("acme")
    auth = BearerTokenAuth(store)

    assert auth.scim_authenticate(_request(f"Bearer {token}"), {}) == Principal(acme, token_id=token_id, profile="auto")
    assert auth.scim_authenticate(_request(f"bearer   {token}  "), {}) == Principal(
        acme, token_id=token_id, profile="auto"
    )
    assert auth.scim_authenticate(_request(f"BEARER {token}"), {}) == Principal(acme, token_id=token_id, profile="auto")
    # Nothing it knows: let another plugin try.
    assert auth.scim_authenticate(_request(None), {}) is None
    assert auth.scim_authenticate(_request(""), {}) is None
    assert auth.scim_authenticate(_request(f"Basic {token}"), {}) is None
    assert auth.scim_authenticate(_request(f"Bearer{token}"), {}) is None

    with pytest.raises(Unauthorized, match="The bearer token is not valid") as caught:
        auth.scim_authenticate(_request("Bearer scim_nottherightone"), {})
    assert caught.value.status == 401
    with pytest.raises(Unauthorized, match="no token"):
        auth.scim_authenticate(_request("Bearer   "), {})

    store.revoke_token(token_id)
    with pytest.raises(Unauthorized, match="revoked"):
        auth.scim_authenticate(_request(f"Bearer {token}"), {})


class HostAuth:
    """A host app's own authentication: an API key header, asked before the bearer tokens."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @hookimpl
    def scim_authenticate(self, request: AuthRequest, config: object) -> Principal | None:
        return self.principal if request.headers.get("x-api-key") == "host-key" else None


def test_bearer_auth_through_the_plugin_manager(store: ServiceStore) -> None:
    acme = store.create_org("acme")
    beta = store.create_org("beta")
    token_id, token = store.create_token("acme")
    host_principal = Principal(beta, label="host")
    pm = make_plugin_manager(
        [HostAuth(host_principal)], builtin_plugins=[BearerTokenAuth(store)], load_entry_points=False
    )

    def ask(headers: dict[str, str]) -> Principal | None:
        return pm.hook.scim_authenticate(request=AuthRequest("GET", "/scim/v2/Users", headers), config={})

    assert ask({"authorization": f"Bearer {token}"}) == Principal(acme, token_id=token_id, profile="auto")
    assert ask({"x-api-key": "host-key", "authorization": f"Bearer {token}"}) == host_principal
    assert ask({}) is None
    with pytest.raises(Unauthorized):
        ask({"authorization": "Bearer scim_wrong"})


# -- expiry, prefix, rotation ----------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(engine: Engine, clock: Clock) -> ServiceStore:
    """A store whose time the test moves."""
    return ServiceStore(engine, clock=clock)


def test_a_token_with_a_lifetime_expires_with_a_401_that_says_so(timed: ServiceStore, clock: Clock) -> None:
    from scim_service.servicedb.store import TokenRefused

    acme = timed.create_org("acme")
    token_id, token = timed.create_token("acme", expires_in=timedelta(days=90))
    forever_id, forever = timed.create_token("acme")
    info = timed.get_token(token_id)
    assert info.expires_at == clock.now + timedelta(days=90) and info.state == "active"
    clock.advance(90 * 86400 - 1)
    assert timed.authenticate(token) == (acme, token_id)
    clock.advance(1)
    with pytest.raises(TokenRefused, match="expired at 2025-08-30 09:00:00Z") as caught:
        timed.authenticate(token)
    assert caught.value.status == 401 and caught.value.tenant == acme and caught.value.token_id == token_id
    assert timed.get_token(token_id).state == "expired" and not timed.get_token(token_id).usable
    assert timed.authenticate(forever) == (acme, forever_id)  # no lifetime: never expires
    clock.advance(10 * 365 * 86400)
    assert timed.authenticate(forever) == (acme, forever_id)
    with pytest.raises(AdminError, match="more than 0"):
        timed.create_token("acme", expires_in=timedelta(0))


def test_the_prefix_is_visible_and_names_the_token(timed: ServiceStore, engine: Engine) -> None:
    timed.create_org("acme")
    token_id, token = timed.create_token("acme")
    info = timed.get_token(token_id)
    assert info.prefix == token[:13] and info.prefix.startswith("scim_") and len(info.prefix) == 13
    assert timed.get_token(info.prefix).id == token_id
    assert timed.revoke_token(info.prefix).id == token_id
    other_id, _other = timed.create_token("acme")
    with engine.begin() as conn:  # two tokens sharing a prefix: the prefix no longer names one
        conn.exec_driver_sql("UPDATE scim_tokens SET prefix = ? WHERE id = ?", (info.prefix, other_id))
    with pytest.raises(AdminError, match="names more than one token"):
        timed.get_token(info.prefix)
    with pytest.raises(AdminError, match="no token has the id 'scim_nothere'"):
        timed.get_token("scim_nothere")


def test_rotate_gives_a_new_token_and_revokes_the_old_after_the_grace(timed: ServiceStore, clock: Clock) -> None:
    acme = timed.create_org("acme")
    old_id, old = timed.create_token("acme", description="Okta", expires_in=timedelta(days=30))
    clock.advance(86400)
    before, new_id, new = timed.rotate_token(old_id, timedelta(hours=24))
    assert before.id == old_id and before.state == "rotating" and before.replaced_by == new_id
    assert before.revoked_at == clock.now + timedelta(hours=24)
    fresh = timed.get_token(new_id)
    assert fresh.description == "Okta" and fresh.expires_at == clock.now + timedelta(days=30)  # same lifetime
    assert timed.authenticate(new) == (acme, new_id)
    clock.advance(24 * 3600 - 1)
    assert timed.authenticate(old) == (acme, old_id)  # still in its grace
    clock.advance(1)
    with pytest.raises(Unauthorized, match="replaced by a rotation"):
        timed.authenticate(old)
    assert timed.get_token(old_id).revoked
    with pytest.raises(AdminError, match="is revoked"):
        timed.rotate_token(old_id, timedelta(hours=1))
    # A zero grace revokes at once; the new token's lifetime can be given.
    _before, newest_id, newest = timed.rotate_token(new_id, timedelta(0), expires_in=timedelta(days=7))
    with pytest.raises(Unauthorized):
        timed.authenticate(new)
    assert timed.get_token(newest_id).expires_at == clock.now + timedelta(days=7)
    assert timed.authenticate(newest) == (acme, newest_id)
    with pytest.raises(AdminError, match="negative"):
        timed.rotate_token(newest_id, timedelta(seconds=-1))


def test_revoking_a_token_in_its_grace_revokes_it_now(timed: ServiceStore, clock: Clock) -> None:
    timed.create_org("acme")
    old_id, old = timed.create_token("acme")
    timed.rotate_token(old_id, timedelta(days=1))
    assert timed.revoke_token(old_id).revoked_at == clock.now
    with pytest.raises(Unauthorized, match="replaced by a rotation"):
        timed.authenticate(old)


def test_a_token_near_its_end_is_warned_about_once_per_day(
    timed: ServiceStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    timed.create_org("acme")
    token_id, token = timed.create_token("acme", expires_in=timedelta(days=10))

    def warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "scim", {}).get("event") == "token_expiry_warning"]

    with caplog.at_level(logging.WARNING, logger="scim_service.servicedb.store"):
        timed.authenticate(token)
        assert warnings() == []  # 10 days left: more than the 7-day warning
        clock.advance(3 * 86400 + 1)
        for _ in range(3):
            timed.authenticate(token)
        (first,) = warnings()
        assert f"token {token_id} of organization acme stops working in" in first.getMessage()
        assert "it expires at" in first.getMessage() and f"tokens rotate {token_id}" in first.getMessage()
        assert first.scim["org"] == "acme" and first.scim["token_id"] == token_id  # type: ignore[attr-defined]
        clock.advance(86400)
        timed.authenticate(token)
        assert len(warnings()) == 2  # a day later: once more
