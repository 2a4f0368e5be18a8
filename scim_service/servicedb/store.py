"""The service's own data in SQL: organizations (tenants), bearer tokens and the provisioning log.

A :class:`ServiceStore` keeps no state between calls beyond its engine, so any number of workers and
hosts can share one database: a revoked token is refused by every worker on its next request.
Tokens are stored only as SHA-256 hashes; the token itself is shown once, when it is created.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import math
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from scim_service.durations import Retention, format_duration
from scim_service.errors import Unauthorized, Unavailable
from scim_service.model import MatchPolicy, SeatPolicy, Tenant
from scim_service.profiles import AUTO, PROFILE_CHOICES
from scim_service.servicedb import tables
from scim_service.servicedb.tables import ORG_NAME_RE, ServiceTables, tables_for
from scim_service.sqlengine import read_transaction, retry_transient, write_transaction

log = logging.getLogger(__name__)

TOKEN_PREFIX = "scim_"
TOKEN_RANDOM_BYTES = 32  # 256 bits from the OS's CSPRNG
# A presented token longer than this cannot be one of ours: refuse it before hashing.
MAX_PRESENTED_TOKEN_LENGTH = 512
# How much of a token is shown as its prefix: "scim_" and 8 random characters (48 of its 256 bits).
VISIBLE_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
# Rows one statement of a prune or an organization delete removes: short transactions, so a prune
# never holds the write lock (SQLite) or many row locks (PostgreSQL) for long.
DELETE_BATCH = 5000
# A progress callback of a long job: (what, done so far).
Progress = Callable[[str, int], None]


class AdminError(ValueError):
    """An administrative request that cannot be done as asked (unknown or duplicate organization,
    unknown token, invalid value); its message is meant for the operator at the command line."""


class TokenRefused(Unauthorized):
    """A known token that may not be used (revoked or expired): the 401 names the token and its
    organization, so the provisioning log can file the failure under them."""

    def __init__(self, detail: str, *, tenant: Tenant, token_id: str) -> None:
        super().__init__(detail)
        self.tenant = tenant
        self.token_id = token_id


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a bearer token: never the token nor its hash.

    ``state`` as of when it was read: ``active``; ``rotating`` (replaced by ``replaced_by``, revoked
    automatically at ``revoked_at``); ``expired`` (past ``expires_at``); ``revoked``.
    ``prefix`` is the token's non-secret beginning (None for tokens made before it was recorded).
    """

    id: str
    org_name: str
    created: datetime
    last_used: datetime | None = None
    revoked_at: datetime | None = None
    description: str | None = None
    prefix: str | None = None
    expires_at: datetime | None = None
    replaced_by: str | None = None
    state: str = "active"

    @property
    def revoked(self) -> bool:
        """Whether the token is revoked (a rotation's revocation counts once its grace is over)."""
        return self.state == "revoked"

    @property
    def usable(self) -> bool:
        """Whether the token authenticates right now."""
        return self.state in {"active", "rotating"}

    @property
    def ends_at(self) -> datetime | None:
        """When the token stops working (its expiry or a scheduled revocation), if ever."""
        ends = [t for t in (self.expires_at, self.revoked_at) if t is not None]
        return min(ends) if ends else None


def _token_state(now: datetime, revoked_at: datetime | None, expires_at: datetime | None) -> str:
    if revoked_at is not None and revoked_at <= now:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "rotating" if revoked_at is not None else "active"


@dataclass(frozen=True)
class AuthFailure:
    """What :meth:`ServiceStore.record_auth_failure` decided: the address's failures in the current
    window, and whether it is over the limit (then ``retry_after`` seconds until the window ends)."""

    failures: int
    limited: bool
    retry_after: int


@dataclass(frozen=True)
class LogQuery:
    """A search of the provisioning log, the same for ``scim-service log`` and the admin page.

    Every field narrows the result; None (or empty) leaves it open.

    * ``org_name``: one organization (``AdminError`` if unknown).
    * ``since`` / ``until``: entries at or after / before these times (an entry that counts repeated
      failures is found by the time of its first one).
    * ``user``: a userName (any case) or a user id; ``user_ids`` adds ids known to be that user
      (:func:`scim_service.operations.log_query_for_user` fills them from the backend).
    * ``status``: ``409``, a class such as ``4xx``, or ``error`` (400 and above); ``errors_only`` too.
    * ``request_id``: the X-Request-Id of one request.
    * ``after_id``: only entries with a larger id (``--follow`` polls with it).
    * ``limit``: at most this many, the newest ones; ``oldest_first`` returns them in time order.
    """

    org_name: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    user: str | None = None
    user_ids: tuple[str, ...] = ()
    status: str | None = None
    errors_only: bool = False
    request_id: str | None = None
    after_id: int | None = None
    limit: int = 50
    oldest_first: bool = False

    def status_range(self) -> tuple[int, int] | None:
        """The (lowest, highest) status the query keeps, or None for any. ``AdminError`` if unreadable."""
        low, high = 0, 999
        if self.errors_only:
            low = 400
        if self.status is None or not str(self.status).strip():
            return (low, high) if self.errors_only else None
        text = str(self.status).strip().lower()
        if text in {"error", "errors"}:
            return max(low, 400), high
        match = re.fullmatch(r"([1-5])(\d\d|xx)", text)
        if match is None:
            raise AdminError(f"status {self.status!r}: give a status (409), a class (4xx) or 'error'")
        if match.group(2) == "xx":
            first = int(match.group(1)) * 100
            return max(low, first), min(high, first + 99)
        code = int(text)
        return (code, code) if code >= low else (1, 0)


@dataclass
class LogEntry:
    """One line of the provisioning log: who called, what, the outcome and how long it took.

    ``org_name`` is not a column: :meth:`ServiceStore.query_log` fills it from the organization;
    :meth:`ServiceStore.record` ignores it. ``id`` is given by the database. ``tolerances`` names the
    IdP profile's tolerances the request needed (``entra: capitalised_ops, string_booleans``), if any.
    ``request_id`` is the request's X-Request-Id; ``user_name`` the userName the request was about.
    An entry for failed authentications stands for ``repeat_count`` of them, the first at ``at``, the
    last at ``last_at``.
    """

    method: str
    path: str
    status: int
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    org_id: str | None = None
    token_id: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    scim_type: str | None = None
    detail: str | None = None
    duration_ms: float = 0.0
    user_agent: str | None = None
    client: str | None = None
    tolerances: str | None = None
    request_id: str | None = None
    user_name: str | None = None
    repeat_count: int = 1
    last_at: datetime | None = None
    id: int | None = None
    org_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["at"] = self.at.isoformat()
        out["last_at"] = self.last_at.isoformat() if self.last_at else None
        out["duration_ms"] = round(self.duration_ms, 3)
        return out


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(cls: type[SeatPolicy] | type[MatchPolicy], value: Any, what: str) -> Any:
    try:
        return cls(value.value if isinstance(value, cls) else str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise AdminError(f"{what} must be one of {allowed}, not {value!r}") from None


def _seats(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AdminError(f"max seats must be a whole number of 0 or more, or unlimited; got {value!r}")
    return value


def _profile(value: Any) -> str:
    """An organization's profile setting, checked: ``auto`` or the name of an IdP profile."""
    name = str(value).strip().lower()
    if name not in PROFILE_CHOICES:
        raise AdminError(f"profile must be one of {', '.join(PROFILE_CHOICES)}, not {value!r}")
    return name


def _tenant(row: Mapping[str, Any]) -> Tenant:
    return Tenant(
        id=row["id"],
        name=row["name"],
        max_seats=row["max_seats"],
        seat_policy=SeatPolicy(row["seat_policy"]),
        match_policy=MatchPolicy(row["match_policy"]),
    )


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _clip(value: str | None, limit: int) -> str | None:
    """A text for a log column: at most ``limit`` characters, and storable on every database (a NUL
    or a lone surrogate, which a hostile request can put in its path or detail, would make PostgreSQL
    refuse the whole row and lose the entry)."""
    if value is None:
        return value
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    if len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


class ServiceStore:
    """Organizations, tokens and the provisioning log in the service database.

    ``touch_seconds`` bounds how often a token's ``last_used`` is written (it keeps writes off the
    request path); ``clock`` returns the current UTC time (tests pass their own to move time on).
    ``retention`` bounds the provisioning log: every ``prune_every`` entries this store writes, a
    background thread applies it in batches (``prune_in_background=False`` runs it in the writing
    thread instead, for tests). ``expiry_warning``: a token used within this time of its end gets a
    warning in the service log, at most once per token per day in this process.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        touch_seconds: float = 60,
        clock: Callable[[], datetime] | None = None,
        retention: Retention | None = None,
        prune_every: int = 1000,
        prune_in_background: bool = True,
        expiry_warning: timedelta = timedelta(days=7),
        tables: ServiceTables | None = None,
    ) -> None:
        self.engine = engine
        self.tables = tables or tables_for()  # named with the app's SCIM_TABLE_PREFIX
        t = self.tables
        # The statements every request runs, built once: building one per call (and its cache key) was a
        # visible part of a request's SQLAlchemy time (docs/performance.md).
        self._token_lookup = (
            sa.select(
                t.tokens.c.id.label("token_id"),
                t.tokens.c.token_hash,
                t.tokens.c.last_used,
                t.tokens.c.revoked_at,
                t.tokens.c.expires_at,
                t.tokens.c.replaced_by,
                t.organizations,
            )
            .join(t.organizations, t.organizations.c.id == t.tokens.c.org_id)
            .where(t.tokens.c.token_hash == sa.bindparam("digest"))
        )
        self._log_insert = t.provisioning_log.insert()
        self.touch_seconds = touch_seconds
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.retention = retention or Retention()
        self.prune_every = max(1, int(prune_every))
        self.prune_in_background = prune_in_background
        self.expiry_warning = expiry_warning
        self._writes = 0
        self._prune_lock = threading.Lock()
        self._pruner: threading.Thread | None = None
        self._warned: dict[str, date] = {}  # token id -> the day its expiry warning was last logged
        # Tokens whose last-used touch is due and rides on the next provisioning log insert (see record).
        self._deferred_touches: set[str] = set()

    def _now(self) -> datetime:
        return _utc(self.clock()) or datetime.now(UTC)

    # -- organizations ---------------------------------------------------------------------------

    def create_org(
        self,
        name: str,
        max_seats: int | None = None,
        seat_policy: SeatPolicy | str = SeatPolicy.ALL,
        match_policy: MatchPolicy | str = MatchPolicy.EMAIL,
        profile: str = AUTO,
    ) -> Tenant:
        """Create an organization with an IdP ``profile`` (``auto`` by default: detected per request).
        ``AdminError`` if the name is invalid or already taken, or the profile unknown."""
        if not isinstance(name, str) or not ORG_NAME_RE.match(name):
            raise AdminError(f"invalid organization name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
        row = {
            "id": str(uuid.uuid4()),
            "name": name,
            "max_seats": _seats(max_seats),
            "seat_policy": _enum(SeatPolicy, seat_policy, "seat policy").value,
            "match_policy": _enum(MatchPolicy, match_policy, "match policy").value,
            "profile": _profile(profile),
            "created": self._now(),
        }
        try:
            with write_transaction(self.engine) as conn:
                if self._org_row(conn, name) is not None:
                    raise AdminError(f"organization {name!r} already exists")
                conn.execute(self.tables.organizations.insert().values(**row))
        except sa.exc.IntegrityError:
            # Another process created it between our check and our insert.
            raise AdminError(f"organization {name!r} already exists") from None
        return _tenant(row)

    def get_org(self, name: str) -> Tenant:
        """The organization of this name. ``AdminError`` if there is none."""
        with read_transaction(self.engine) as conn:
            return _tenant(self._require_org(conn, name))

    def get_org_by_id(self, org_id: str) -> Tenant:
        """The organization with this id. ``AdminError`` if there is none."""
        with read_transaction(self.engine) as conn:
            row = (
                conn.execute(sa.select(self.tables.organizations).where(self.tables.organizations.c.id == org_id))
                .mappings()
                .first()
            )
        if row is None:
            raise AdminError(f"no organization has the id {org_id!r}")
        return _tenant(row)

    def list_orgs(self) -> list[Tenant]:
        """Every organization, by name."""
        with read_transaction(self.engine) as conn:
            rows = (
                conn.execute(sa.select(self.tables.organizations).order_by(self.tables.organizations.c.name))
                .mappings()
                .all()
            )
        return [_tenant(r) for r in rows]

    def set_seats(self, name: str, max_seats: int | None) -> Tenant:
        """Set the organization's seat limit (None: unlimited) and return it."""
        return self._update_org(name, {"max_seats": _seats(max_seats)})

    def update_org(
        self,
        name: str,
        seat_policy: SeatPolicy | str | None = None,
        match_policy: MatchPolicy | str | None = None,
    ) -> Tenant:
        """Change the seat and/or match policy (None leaves one as it is) and return the organization."""
        values: dict[str, Any] = {}
        if seat_policy is not None:
            values["seat_policy"] = _enum(SeatPolicy, seat_policy, "seat policy").value
        if match_policy is not None:
            values["match_policy"] = _enum(MatchPolicy, match_policy, "match policy").value
        return self._update_org(name, values)

    def set_profile(self, name: str, profile: str) -> str:
        """Set the organization's IdP profile (a profile name or ``auto``) and return it."""
        values = {"profile": _profile(profile)}
        self._update_org(name, values)
        return values["profile"]

    def get_profile(self, name: str) -> str:
        """The IdP profile setting of the organization called ``name``."""
        with read_transaction(self.engine) as conn:
            return str(self._require_org(conn, name)["profile"])

    def profile_of(self, org_id: str) -> str:
        """The IdP profile setting of the organization with this id; ``auto`` when there is none (an
        organization a host app's own authentication knows but this store does not)."""
        with read_transaction(self.engine) as conn:
            found = conn.execute(
                sa.select(self.tables.organizations.c.profile).where(self.tables.organizations.c.id == org_id)
            ).scalar()
        return str(found) if found else AUTO

    def profiles(self) -> dict[str, str]:
        """Every organization's profile setting, by organization name."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(self.tables.organizations.c.name, self.tables.organizations.c.profile)).all()
        return {row.name: row.profile for row in rows}

    def _update_org(self, name: str, values: dict[str, Any]) -> Tenant:
        with write_transaction(self.engine) as conn:
            row = dict(self._require_org(conn, name))
            if values:
                conn.execute(
                    self.tables.organizations.update()
                    .where(self.tables.organizations.c.id == row["id"])
                    .values(**values)
                )
                row.update(values)
        return _tenant(row)

    def _org_row(self, conn: Connection, name: str) -> Mapping[str, Any] | None:
        return (
            conn.execute(sa.select(self.tables.organizations).where(self.tables.organizations.c.name == name))
            .mappings()
            .first()
        )

    def _require_org(self, conn: Connection, name: str) -> Mapping[str, Any]:
        row = self._org_row(conn, name)
        if row is None:
            raise AdminError(f"no organization named {name!r} (see `scim-service orgs list`)")
        return row

    # -- tokens ----------------------------------------------------------------------------------

    def create_token(
        self, org_name: str, description: str | None = None, expires_in: timedelta | None = None
    ) -> tuple[str, str]:
        """Create a bearer token for the organization; return (token id, token).

        The token is ``scim_`` followed by 256 random bits; only its SHA-256 hash is stored, so this is
        the one time it can be seen. Its first characters are kept as a visible prefix. With
        ``expires_in`` it stops working that long from now (401 saying it expired).
        """
        with write_transaction(self.engine) as conn:
            org = self._require_org(conn, org_name)
            return self._insert_token(conn, org["id"], description, expires_in)

    def _insert_token(
        self, conn: Connection, org_id: str, description: str | None, expires_in: timedelta | None
    ) -> tuple[str, str]:
        if description is not None and len(description) > 255:
            raise AdminError("a token description may be at most 255 characters")
        if expires_in is not None and expires_in <= timedelta(0):
            raise AdminError("a token's lifetime must be more than 0")
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)
        for _attempt in range(5):
            token_id = secrets.token_hex(6)
            # A 48-bit id clashing is unlikely, but cheap to rule out inside the write lock.
            if (
                conn.execute(sa.select(self.tables.tokens.c.id).where(self.tables.tokens.c.id == token_id)).first()
                is None
            ):
                break
        else:  # pragma: no cover - would take astronomically bad luck
            raise RuntimeError("could not pick an unused token id")
        now = self._now()
        conn.execute(
            self.tables.tokens.insert().values(
                id=token_id,
                org_id=org_id,
                token_hash=hash_token(token),
                created=now,
                description=description,
                prefix=token[:VISIBLE_PREFIX_LENGTH],
                expires_at=now + expires_in if expires_in is not None else None,
            )
        )
        return token_id, token

    def list_tokens(self, org_name: str) -> list[TokenInfo]:
        """The organization's tokens, oldest first, revoked and expired ones included."""
        with read_transaction(self.engine) as conn:
            org = self._require_org(conn, org_name)
            rows = (
                conn.execute(
                    sa.select(self.tables.tokens)
                    .where(self.tables.tokens.c.org_id == org["id"])
                    .order_by(self.tables.tokens.c.created, self.tables.tokens.c.id)
                )
                .mappings()
                .all()
            )
        return [self._token_info(r, org["name"]) for r in rows]

    def get_token(self, token_ref: str) -> TokenInfo:
        """What may be shown of one token, named by its id or its prefix. ``AdminError`` if unknown."""
        with read_transaction(self.engine) as conn:
            row = self._token_row(conn, token_ref)
        return self._token_info(row, row["org_name"])

    def revoke_token(self, token_ref: str) -> TokenInfo:
        """Revoke the token (by id or prefix): every worker refuses it from its next request. Revoking
        twice keeps the first time; a rotated token still in its grace is revoked now. ``AdminError``
        if the token is unknown."""
        with write_transaction(self.engine) as conn:
            row = dict(self._token_row(conn, token_ref))
            now = self._now()
            revoked_at = _utc(row["revoked_at"])
            if revoked_at is None or revoked_at > now:
                row["revoked_at"] = now
                conn.execute(
                    self.tables.tokens.update().where(self.tables.tokens.c.id == row["id"]).values(revoked_at=now)
                )
        return self._token_info(row, row["org_name"])

    def rotate_token(
        self, token_ref: str, grace: timedelta, expires_in: timedelta | None = None
    ) -> tuple[TokenInfo, str, str]:
        """Replace a token: a new one of the same organization now, the old one revoked ``grace`` from
        now (at once for a zero grace). Return (the old token as it is now, new token id, new token).

        The new token keeps the old one's description and, unless ``expires_in`` says otherwise, its
        lifetime (an old token that never expired gives a new one that never expires). ``AdminError``
        for an unknown, revoked or expired token, or a negative grace.
        """
        if grace < timedelta(0):
            raise AdminError("the grace period cannot be negative")
        with write_transaction(self.engine) as conn:
            row = dict(self._token_row(conn, token_ref))
            now = self._now()
            state = _token_state(now, _utc(row["revoked_at"]), _utc(row["expires_at"]))
            if state in {"revoked", "expired"}:
                raise AdminError(
                    f"token {row['id']} is {state}: create a new one with "
                    f"`scim-service tokens create {row['org_name']}`"
                )
            if expires_in is None and row["expires_at"] is not None:
                expires_in = _utc(row["expires_at"]) - _utc(row["created"])  # type: ignore[operator]
            new_id, new_token = self._insert_token(conn, row["org_id"], row["description"], expires_in)
            ends = now + grace
            current = _utc(row["revoked_at"])
            row["revoked_at"] = min(current, ends) if current is not None else ends
            row["replaced_by"] = new_id
            conn.execute(
                self.tables.tokens.update()
                .where(self.tables.tokens.c.id == row["id"])
                .values(revoked_at=row["revoked_at"], replaced_by=new_id)
            )
        return self._token_info(row, row["org_name"]), new_id, new_token

    def revoke_org_tokens(self, org_name: str) -> int:
        """Revoke every usable token of the organization now; return how many."""
        with write_transaction(self.engine) as conn:
            org = self._require_org(conn, org_name)
            now = self._now()
            result = conn.execute(
                self.tables.tokens.update()
                .where(self.tables.tokens.c.org_id == org["id"])
                .where(sa.or_(self.tables.tokens.c.revoked_at.is_(None), self.tables.tokens.c.revoked_at > now))
                .values(revoked_at=now)
            )
        return int(result.rowcount or 0)

    def _token_row(self, conn: Connection, token_ref: str) -> Mapping[str, Any]:
        query = sa.select(self.tables.tokens, self.tables.organizations.c.name.label("org_name")).join(
            self.tables.organizations, self.tables.organizations.c.id == self.tables.tokens.c.org_id
        )
        ref = (token_ref or "").strip()
        row = conn.execute(query.where(self.tables.tokens.c.id == ref)).mappings().first()
        if row is None and ref.startswith(TOKEN_PREFIX):
            # A prefix names a token only while no other token shares it.
            found = (
                conn.execute(query.where(self.tables.tokens.c.prefix == ref[:VISIBLE_PREFIX_LENGTH]).limit(2))
                .mappings()
                .all()
            )
            if len(found) > 1:
                raise AdminError(f"the prefix {ref!r} names more than one token: use the token id")
            row = found[0] if found else None
        if row is None:
            raise AdminError(f"no token has the id {token_ref!r}, nor that prefix (see `scim-service tokens list ORG`)")
        return row

    def _token_info(self, row: Mapping[str, Any], org_name: str) -> TokenInfo:
        revoked_at, expires_at = _utc(row["revoked_at"]), _utc(row["expires_at"])
        return TokenInfo(
            id=row["id"],
            org_name=org_name,
            created=_utc(row["created"]),  # type: ignore[arg-type]
            last_used=_utc(row["last_used"]),
            revoked_at=revoked_at,
            description=row["description"],
            prefix=row["prefix"],
            expires_at=expires_at,
            replaced_by=row["replaced_by"],
            state=_token_state(self._now(), revoked_at, expires_at),
        )

    def authenticate(self, token: str) -> tuple[Tenant, str] | None:
        """The organization and token id of a presented bearer token, or None if it is unknown
        (see :meth:`authenticate_with_profile`)."""
        found = self.authenticate_with_profile(token)
        return None if found is None else (found[0], found[1])

    def authenticate_with_profile(self, token: str, *, defer_touch: bool = False) -> tuple[Tenant, str, str] | None:
        """The organization, token id and organization's IdP profile setting of a presented bearer
        token, read in one statement; None if the token is unknown.

        ``defer_touch``: a due ``last_used`` write is not a transaction of its own but made by the next
        :meth:`record` of an entry of this token, in the log insert's transaction (the caller promises
        one). If that never comes, the touch stays due and the next authentication tries again.

        Raises :class:`TokenRefused` (an ``Unauthorized``) for a revoked or expired token, saying which.
        Reads the database on every call (no cache), so a revocation is seen at once by every worker.
        Writes ``last_used`` at most every ``touch_seconds`` per token; warns in the service log when the
        token's end (expiry or the end of a rotation's grace) is within ``expiry_warning``.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_PRESENTED_TOKEN_LENGTH:
            return None
        digest = hash_token(token)
        with read_transaction(self.engine) as conn:
            row = conn.execute(self._token_lookup, {"digest": digest}).mappings().first()
        # The lookup is by hash; the constant-time compare guards against a lax collation or index.
        if row is None or not hmac.compare_digest(row["token_hash"], digest):
            return None
        now = self._now()
        tenant, token_id = _tenant(row), row["token_id"]
        revoked_at, expires_at = _utc(row["revoked_at"]), _utc(row["expires_at"])
        state = _token_state(now, revoked_at, expires_at)
        if state == "revoked":
            why = "was replaced by a rotation" if row["replaced_by"] else "was revoked by an administrator"
            raise TokenRefused(f"The bearer token {why}", tenant=tenant, token_id=token_id)
        if state == "expired":
            raise TokenRefused(
                f"The bearer token expired at {_stamp(expires_at)}; ask an administrator for a new one",
                tenant=tenant,
                token_id=token_id,
            )
        self._warn_if_ending(tenant, token_id, revoked_at, expires_at, now)
        if self._touch_due(_utc(row["last_used"])):
            if defer_touch:
                self._deferred_touches.add(token_id)
            else:
                self._touch(token_id)
        return tenant, token_id, str(row["profile"] or AUTO)

    def _warn_if_ending(
        self,
        tenant: Tenant,
        token_id: str,
        revoked_at: datetime | None,
        expires_at: datetime | None,
        now: datetime,
    ) -> None:
        ends = [t for t in (revoked_at, expires_at) if t is not None]
        if not ends or min(ends) - now > self.expiry_warning:
            return
        if self._warned.get(token_id) == now.date():
            return
        self._warned[token_id] = now.date()
        end = min(ends)
        how = "its rotation's grace ends" if end == revoked_at else "it expires"
        log.warning(
            "token %s of organization %s stops working in %s: %s at %s; rotate it with "
            "`scim-service tokens rotate %s` and give the identity provider the new token",
            token_id,
            tenant.name,
            format_duration(timedelta(seconds=max(0, int((end - now).total_seconds())))),
            how,
            _stamp(end),
            token_id,
            extra={"scim": {"event": "token_expiry_warning", "org": tenant.name, "token_id": token_id, "ends_at": end}},
        )

    def _touch_due(self, last_used: datetime | None) -> bool:
        return last_used is None or self._now() - last_used >= timedelta(seconds=self.touch_seconds)

    def _touch_statement(self, token_id: str) -> Any:
        now = self._now()
        cutoff = now - timedelta(seconds=self.touch_seconds)
        # The condition keeps concurrent workers from writing the same minute twice.
        return (
            self.tables.tokens.update()
            .where(self.tables.tokens.c.id == token_id)
            .where(sa.or_(self.tables.tokens.c.last_used.is_(None), self.tables.tokens.c.last_used <= cutoff))
            .values(last_used=now)
        )

    def _touch(self, token_id: str) -> None:
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(self._touch_statement(token_id))
        except Unavailable as exc:
            # 'last used' is informative: failing to write it must not fail the request.
            log.warning("could not record the last use of token %s: %s", token_id, exc.detail)

    # -- provisioning log ------------------------------------------------------------------------

    @staticmethod
    def _log_values(entry: LogEntry) -> dict[str, Any]:
        return {
            "at": _utc(entry.at),
            "org_id": entry.org_id,
            "token_id": entry.token_id,
            "method": _clip(entry.method, 16),
            "path": _clip(entry.path, tables.LOG_PATH_MAX),
            "resource_type": _clip(entry.resource_type, 32),
            "resource_id": _clip(entry.resource_id, 255),
            "status": int(entry.status),
            "scim_type": _clip(entry.scim_type, 32),
            "detail": _clip(entry.detail, tables.LOG_DETAIL_MAX),
            "duration_ms": float(entry.duration_ms),
            "user_agent": _clip(entry.user_agent, tables.LOG_USER_AGENT_MAX),
            "client": _clip(entry.client, tables.LOG_CLIENT_MAX),
            "tolerances": entry.tolerances,
            "request_id": _clip(entry.request_id, tables.LOG_REQUEST_ID_MAX),
            "user_name": _clip(entry.user_name, 255),
            "repeat_count": max(1, int(entry.repeat_count)),
            "last_at": _utc(entry.last_at),
        }

    def record(self, entry: LogEntry) -> int:
        """Append one entry to the provisioning log (long texts are cut to the column sizes); return its id.

        Raises ``Unavailable`` if the database cannot be written; the caller decides whether that
        fails its request. Every ``prune_every`` writes, the retention is applied off this thread.
        """
        touch = entry.token_id is not None and entry.token_id in self._deferred_touches
        if touch:
            self._deferred_touches.discard(entry.token_id)
        try:
            with write_transaction(self.engine) as conn:
                result = conn.execute(self._log_insert, self._log_values(entry))
                new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                if touch:  # the token's last-used write of authenticate_with_profile(defer_touch=True)
                    conn.execute(self._touch_statement(entry.token_id))
        except BaseException:
            if touch:  # still due: the next request's entry writes it
                self._deferred_touches.add(entry.token_id)
            raise
        self._count_write()
        return new_id

    @retry_transient
    def record_auth_failure(
        self, entry: LogEntry, *, limit: int, window: timedelta, log_entry: bool = True
    ) -> AuthFailure:
        """Count a failed authentication from ``entry.client`` and file it in the provisioning log.

        The count is per client address in fixed windows of ``window`` and lives in the database, so
        it holds across workers and hosts. Within a window, failures alike (same status, token and
        detail) share one log entry whose ``repeat_count`` grows; once the address has more than
        ``limit`` failures (``limit`` 0: no limit) the result is ``limited`` and the rest of the
        window's failures share one 429 entry. ``log_entry=False`` only counts (the provisioning log
        is switched off). One write transaction per call.
        """
        now = self._now()
        client = _clip(entry.client or "unknown", tables.LOG_CLIENT_MAX) or "unknown"
        key = hashlib.sha256(f"{entry.status}|{entry.token_id}|{entry.detail}".encode()).hexdigest()
        with write_transaction(self.engine) as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            # Make sure the row exists, then lock it (SQLite's write lock already serialises writers).
            conn.execute(
                insert(self.tables.auth_failures)
                .values(client=client, window_start=now, failures=0)
                .on_conflict_do_nothing()
            )
            select = sa.select(self.tables.auth_failures).where(self.tables.auth_failures.c.client == client)
            if conn.dialect.name == "postgresql":
                select = select.with_for_update()
            row = dict(conn.execute(select).mappings().one())
            start = _utc(row["window_start"]) or now
            # Only a window that is over starts a new one. A start after our ``now`` is not a reason: it
            # was written by a worker that read the clock after us but got the lock first (or by a host
            # whose clock runs ahead), and resetting then would hand out fresh windows under load.
            if start + window <= now:
                row.update(window_start=now, failures=0, log_id=None, log_key=None, limited_log_id=None)
                start = now
            row["failures"] += 1
            limited = limit > 0 and row["failures"] > limit
            left = min(start + window - now, window)
            retry_after = max(1, math.ceil(left.total_seconds())) if limited else 0
            if log_entry:
                if limited:
                    repeats = row["failures"] - limit
                    if not self._add_repeat(conn, row["limited_log_id"], repeats, now):
                        limited_entry = dataclasses.replace(
                            entry,
                            status=429,
                            scim_type=None,
                            detail=f"Too many failed authentications from {client}: more than {limit} in "
                            f"{format_duration(window)}; refused until the window ends",
                        )
                        row["limited_log_id"] = self._insert_log(conn, limited_entry, now)
                elif row["log_key"] == key and self._add_repeat(conn, row["log_id"], None, now):
                    pass
                else:
                    row["log_id"], row["log_key"] = self._insert_log(conn, entry, now), key
            conn.execute(
                self.tables.auth_failures.update()
                .where(self.tables.auth_failures.c.client == client)
                .values(**{k: v for k, v in row.items() if k != "client"})
            )
        if log_entry:
            self._count_write()
        return AuthFailure(failures=row["failures"], limited=limited, retry_after=retry_after)

    def _insert_log(self, conn: Connection, entry: LogEntry, now: datetime) -> int:
        values = self._log_values(entry)
        values.update(at=now, repeat_count=1, last_at=None)
        result = conn.execute(self.tables.provisioning_log.insert().values(**values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _add_repeat(self, conn: Connection, log_id: int | None, repeats: int | None, now: datetime) -> bool:
        """Count one more failure on an existing entry; False when there is none (pruned, say)."""
        if log_id is None:
            return False
        count = self.tables.provisioning_log.c.repeat_count + 1 if repeats is None else repeats
        result = conn.execute(
            self.tables.provisioning_log.update()
            .where(self.tables.provisioning_log.c.id == log_id)
            .values(repeat_count=count, last_at=now)
        )
        return bool(result.rowcount)

    def query_log(self, query: LogQuery) -> list[LogEntry]:
        """The provisioning log entries that ``query`` selects: the newest ``query.limit`` of them,
        newest first (or in time order with ``oldest_first``). The one search behind ``scim-service
        log`` and the admin page. ``AdminError`` for an unknown organization or a bad value."""
        if query.limit < 1:
            raise AdminError(f"the limit must be at least 1, not {query.limit}")
        log_table = self.tables.provisioning_log
        select = sa.select(log_table, self.tables.organizations.c.name.label("org_name")).outerjoin(
            self.tables.organizations, self.tables.organizations.c.id == log_table.c.org_id
        )
        conditions: list[Any] = []
        statuses = query.status_range()
        if statuses is not None:
            conditions.append(log_table.c.status.between(*statuses))
        if query.since is not None:
            conditions.append(log_table.c.at >= _utc(query.since))
        if query.until is not None:
            conditions.append(log_table.c.at < _utc(query.until))
        if query.request_id:
            conditions.append(log_table.c.request_id == query.request_id.strip())
        if query.after_id is not None:
            conditions.append(log_table.c.id > query.after_id)
        if query.user:
            user = query.user.strip()
            ids = {user, *query.user_ids}
            conditions.append(
                sa.or_(sa.func.lower(log_table.c.user_name) == user.lower(), log_table.c.resource_id.in_(sorted(ids)))
            )
        elif query.user_ids:
            conditions.append(log_table.c.resource_id.in_(sorted(query.user_ids)))
        with read_transaction(self.engine) as conn:
            if query.org_name is not None:
                conditions.append(log_table.c.org_id == self._require_org(conn, query.org_name)["id"])
            select = select.where(*conditions)
            select = select.order_by(log_table.c.at.desc(), log_table.c.id.desc()).limit(query.limit)
            rows = conn.execute(select).mappings().all()
        entries = [LogEntry(**{**row, "at": _utc(row["at"]), "last_at": _utc(row["last_at"])}) for row in rows]
        return entries[::-1] if query.oldest_first else entries

    def recent_log(self, org_name: str | None = None, limit: int = 50, errors_only: bool = False) -> list[LogEntry]:
        """The newest log entries first, of one organization or all; ``errors_only`` keeps status >= 400."""
        return self.query_log(LogQuery(org_name=org_name, limit=limit, errors_only=errors_only))

    # -- retention -------------------------------------------------------------------------------

    def _count_write(self) -> None:
        """After ``prune_every`` writes by this store, apply the retention (in the background)."""
        if self.retention.keeps_everything:
            return
        self._writes += 1
        if self._writes % self.prune_every:
            return
        if not self.prune_in_background:
            self._prune_quietly()
            return
        with self._prune_lock:
            if self._pruner is not None and self._pruner.is_alive():
                return  # the last prune is still running: this one would find nothing more
            self._pruner = threading.Thread(target=self._prune_quietly, name="scim-log-prune", daemon=True)
            self._pruner.start()

    def _prune_quietly(self) -> None:
        try:
            removed = self.apply_retention()
        except Exception:  # a failed prune must not fail a request; the next one tries again
            log.exception("pruning the provisioning log failed")
            return
        if removed:
            log.info("pruned %d provisioning log entries (keeping %s)", removed, self.retention.describe())

    def wait_for_prune(self, timeout: float = 30) -> None:
        """Wait for a background prune this store started, if one is running (for tests and shutdown)."""
        pruner = self._pruner
        if pruner is not None:
            pruner.join(timeout)

    def apply_retention(self, retention: Retention | None = None, progress: Progress | None = None) -> int:
        """Delete the log entries ``retention`` (by default the store's) does not keep, in batches of
        :data:`DELETE_BATCH` rows per transaction; also forget finished failed-login windows. Return
        how many entries were deleted; ``progress`` hears the running total."""
        rule = retention or self.retention
        removed = 0
        if rule.max_age is not None:
            removed += self.prune_log(self._now() - rule.max_age, progress=progress)
        if rule.max_rows is not None:
            removed += self.prune_log_rows(rule.max_rows, progress=progress, done=removed)
        self._forget_old_failures()
        return removed

    def prune_log(self, before: datetime, progress: Progress | None = None) -> int:
        """Delete log entries older than ``before`` in batches; return how many were deleted."""
        condition = self.tables.provisioning_log.c.at < _utc(before)
        return self._delete_log_batches(condition, progress)

    def prune_log_rows(self, keep: int, progress: Progress | None = None, done: int = 0) -> int:
        """Keep only the newest ``keep`` log entries (by id, the order they were written); delete the
        rest in batches and return how many."""
        if keep < 1:
            raise AdminError("keep at least one log entry")
        with read_transaction(self.engine) as conn:
            cutoff = conn.execute(
                sa.select(self.tables.provisioning_log.c.id)
                .order_by(self.tables.provisioning_log.c.id.desc())
                .offset(keep)
                .limit(1)
            ).scalar()
        if cutoff is None:
            return 0
        return self._delete_log_batches(self.tables.provisioning_log.c.id <= cutoff, progress, done)

    def _delete_log_batches(self, condition: Any, progress: Progress | None, done: int = 0) -> int:
        removed = 0
        while True:
            with write_transaction(self.engine) as conn:
                batch = (
                    sa.select(self.tables.provisioning_log.c.id).where(condition).limit(DELETE_BATCH).scalar_subquery()
                )
                result = conn.execute(
                    self.tables.provisioning_log.delete().where(self.tables.provisioning_log.c.id.in_(batch))
                )
            count = int(result.rowcount or 0)
            removed += count
            if count and progress is not None:
                progress("log entries deleted", done + removed)
            if count < DELETE_BATCH:
                return removed

    def _forget_old_failures(self) -> None:
        # A window older than a day is over for any sane window length; its row only takes space.
        with write_transaction(self.engine) as conn:
            conn.execute(
                self.tables.auth_failures.delete().where(
                    self.tables.auth_failures.c.window_start < self._now() - timedelta(days=1)
                )
            )

    # -- removing and renaming organizations ------------------------------------------------------

    def rename_org(self, old: str, new: str) -> Tenant:
        """Rename an organization (its id, tokens, users and log stay). ``AdminError`` if ``old`` is
        unknown, ``new`` invalid or taken."""
        if not isinstance(new, str) or not ORG_NAME_RE.match(new):
            raise AdminError(f"invalid organization name {new!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
        try:
            with write_transaction(self.engine) as conn:
                row = dict(self._require_org(conn, old))
                if new != old and self._org_row(conn, new) is not None:
                    raise AdminError(f"organization {new!r} already exists")
                conn.execute(
                    self.tables.organizations.update()
                    .where(self.tables.organizations.c.id == row["id"])
                    .values(name=new)
                )
                row["name"] = new
        except sa.exc.IntegrityError:
            raise AdminError(f"organization {new!r} already exists") from None
        return _tenant(row)

    def delete_org(self, name: str, progress: Progress | None = None) -> dict[str, int]:
        """Delete the organization's row, its tokens and its provisioning log entries (log entries in
        batches); return the counts. Its users and groups are the backend's: remove them first
        (:func:`scim_service.operations.delete_org` does both in the right order)."""
        with read_transaction(self.engine) as conn:
            org_id = self._require_org(conn, name)["id"]
        log_rows = self._delete_log_batches(self.tables.provisioning_log.c.org_id == org_id, progress)
        with write_transaction(self.engine) as conn:
            token_rows = conn.execute(self.tables.tokens.delete().where(self.tables.tokens.c.org_id == org_id)).rowcount
            conn.execute(self.tables.organizations.delete().where(self.tables.organizations.c.id == org_id))
        return {"tokens": int(token_rows or 0), "log_entries": log_rows}
