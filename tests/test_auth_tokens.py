"""Bearer tokens: creation, hashing, revocation seen by every worker, last-used throttling, the auth hook."""

from __future__ import annotations

import base64
import hashlib
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
        return raw.execute("SELECT last_used FROM tokens WHERE id = ?", (token_id,)).fetchone()[0]


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
        assert raw.execute("SELECT token_hash FROM tokens WHERE id = ?", (token_id,)).fetchone() == (digest,)
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
        if statement.lstrip().upper().startswith("UPDATE TOKENS"):
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

    assert auth.scim_authenticate(_request(f"Bearer {token}"), {}) == Principal(acme, token_id=token_id)
    assert auth.scim_authenticate(_request(f"bearer   {token}  "), {}) == Principal(acme, token_id=token_id)
    assert auth.scim_authenticate(_request(f"BEARER {token}"), {}) == Principal(acme, token_id=token_id)
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

    assert ask({"authorization": f"Bearer {token}"}) == Principal(acme, token_id=token_id)
    assert ask({"x-api-key": "host-key", "authorization": f"Bearer {token}"}) == host_principal
    assert ask({}) is None
    with pytest.raises(Unauthorized):
        ask({"authorization": "Bearer scim_wrong"})
