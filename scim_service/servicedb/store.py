"""The service's own data in SQL: organizations (tenants), bearer tokens and the provisioning log.

A :class:`ServiceStore` keeps no state between calls beyond its engine, so any number of workers and
hosts can share one database: a revoked token is refused by every worker on its next request.
Tokens are stored only as SHA-256 hashes; the token itself is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from scim_service.errors import Unauthorized, Unavailable
from scim_service.model import MatchPolicy, SeatPolicy, Tenant
from scim_service.profiles import AUTO, PROFILE_CHOICES
from scim_service.servicedb import tables
from scim_service.servicedb.tables import ORG_NAME_RE, organizations, provisioning_log, tokens
from scim_service.sqlengine import read_transaction, write_transaction

log = logging.getLogger(__name__)

TOKEN_PREFIX = "scim_"
TOKEN_RANDOM_BYTES = 32  # 256 bits from the OS's CSPRNG
# A presented token longer than this cannot be one of ours: refuse it before hashing.
MAX_PRESENTED_TOKEN_LENGTH = 512


class AdminError(ValueError):
    """An administrative request that cannot be done as asked (unknown or duplicate organization,
    unknown token, invalid value); its message is meant for the operator at the command line."""


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a bearer token: never the token nor its hash."""

    id: str
    org_name: str
    created: datetime
    last_used: datetime | None = None
    revoked_at: datetime | None = None
    description: str | None = None

    @property
    def revoked(self) -> bool:
        """Whether an admin revoked the token."""
        return self.revoked_at is not None


@dataclass
class LogEntry:
    """One line of the provisioning log: who called, what, the outcome and how long it took.

    ``org_name`` is not a column: :meth:`ServiceStore.recent_log` fills it from the organization;
    :meth:`ServiceStore.record` ignores it. ``id`` is given by the database. ``tolerances`` names the
    IdP profile's tolerances the request needed (``entra: capitalised_ops, string_booleans``), if any.
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
    id: int | None = None
    org_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["at"] = self.at.isoformat()
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


def _clip(value: str | None, limit: int) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


class ServiceStore:
    """Organizations, tokens and the provisioning log in the service database.

    ``touch_seconds`` bounds how often a token's ``last_used`` is written (it keeps writes off the
    request path); ``clock`` returns the current UTC time (tests pass their own to move time on).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        touch_seconds: float = 60,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.touch_seconds = touch_seconds
        self._clock = clock or (lambda: datetime.now(UTC))

    def _now(self) -> datetime:
        return _utc(self._clock()) or datetime.now(UTC)

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
                conn.execute(organizations.insert().values(**row))
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
            row = conn.execute(sa.select(organizations).where(organizations.c.id == org_id)).mappings().first()
        if row is None:
            raise AdminError(f"no organization has the id {org_id!r}")
        return _tenant(row)

    def list_orgs(self) -> list[Tenant]:
        """Every organization, by name."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(organizations).order_by(organizations.c.name)).mappings().all()
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
            found = conn.execute(sa.select(organizations.c.profile).where(organizations.c.id == org_id)).scalar()
        return str(found) if found else AUTO

    def profiles(self) -> dict[str, str]:
        """Every organization's profile setting, by organization name."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(sa.select(organizations.c.name, organizations.c.profile)).all()
        return {row.name: row.profile for row in rows}

    def _update_org(self, name: str, values: dict[str, Any]) -> Tenant:
        with write_transaction(self.engine) as conn:
            row = dict(self._require_org(conn, name))
            if values:
                conn.execute(organizations.update().where(organizations.c.id == row["id"]).values(**values))
                row.update(values)
        return _tenant(row)

    @staticmethod
    def _org_row(conn: Connection, name: str) -> Mapping[str, Any] | None:
        return conn.execute(sa.select(organizations).where(organizations.c.name == name)).mappings().first()

    def _require_org(self, conn: Connection, name: str) -> Mapping[str, Any]:
        row = self._org_row(conn, name)
        if row is None:
            raise AdminError(f"no organization named {name!r} (see `scim-service orgs list`)")
        return row

    # -- tokens ----------------------------------------------------------------------------------

    def create_token(self, org_name: str, description: str | None = None) -> tuple[str, str]:
        """Create a bearer token for the organization; return (token id, token).

        The token is ``scim_`` followed by 256 random bits; only its SHA-256 hash is stored, so this is
        the one time it can be seen.
        """
        if description is not None and len(description) > 255:
            raise AdminError("a token description may be at most 255 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)
        with write_transaction(self.engine) as conn:
            org = self._require_org(conn, org_name)
            for _attempt in range(5):
                token_id = secrets.token_hex(6)
                # A 48-bit id clashing is unlikely, but cheap to rule out inside the write lock.
                if conn.execute(sa.select(tokens.c.id).where(tokens.c.id == token_id)).first() is None:
                    break
            else:  # pragma: no cover - would take astronomically bad luck
                raise RuntimeError("could not pick an unused token id")
            conn.execute(
                tokens.insert().values(
                    id=token_id,
                    org_id=org["id"],
                    token_hash=hash_token(token),
                    created=self._now(),
                    description=description,
                )
            )
        return token_id, token

    def list_tokens(self, org_name: str) -> list[TokenInfo]:
        """The organization's tokens, oldest first, revoked ones included."""
        with read_transaction(self.engine) as conn:
            org = self._require_org(conn, org_name)
            rows = (
                conn.execute(
                    sa.select(tokens).where(tokens.c.org_id == org["id"]).order_by(tokens.c.created, tokens.c.id)
                )
                .mappings()
                .all()
            )
        return [self._token_info(r, org["name"]) for r in rows]

    def get_token(self, token_id: str) -> TokenInfo:
        """What may be shown of one token. ``AdminError`` if the id is unknown."""
        with read_transaction(self.engine) as conn:
            row = self._token_row(conn, token_id)
        return self._token_info(row, row["org_name"])

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke the token: every worker refuses it from its next request. Revoking twice keeps the
        first time. ``AdminError`` if the id is unknown."""
        with write_transaction(self.engine) as conn:
            row = dict(self._token_row(conn, token_id))
            if row["revoked_at"] is None:
                row["revoked_at"] = self._now()
                conn.execute(tokens.update().where(tokens.c.id == token_id).values(revoked_at=row["revoked_at"]))
        return self._token_info(row, row["org_name"])

    @staticmethod
    def _token_row(conn: Connection, token_id: str) -> Mapping[str, Any]:
        row = (
            conn.execute(
                sa.select(tokens, organizations.c.name.label("org_name"))
                .join(organizations, organizations.c.id == tokens.c.org_id)
                .where(tokens.c.id == token_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise AdminError(f"no token has the id {token_id!r} (see `scim-service tokens list ORG`)")
        return row

    @staticmethod
    def _token_info(row: Mapping[str, Any], org_name: str) -> TokenInfo:
        return TokenInfo(
            id=row["id"],
            org_name=org_name,
            created=_utc(row["created"]),  # type: ignore[arg-type]
            last_used=_utc(row["last_used"]),
            revoked_at=_utc(row["revoked_at"]),
            description=row["description"],
        )

    def authenticate(self, token: str) -> tuple[Tenant, str] | None:
        """The organization and token id of a presented bearer token, or None if it is unknown.

        Raises ``Unauthorized`` for a revoked token. Reads the database on every call (no cache), so a
        revocation is seen at once by every worker. Writes ``last_used`` at most every
        ``touch_seconds`` per token.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_PRESENTED_TOKEN_LENGTH:
            return None
        digest = hash_token(token)
        query = (
            sa.select(
                tokens.c.id.label("token_id"),
                tokens.c.token_hash,
                tokens.c.last_used,
                tokens.c.revoked_at,
                organizations,
            )
            .join(organizations, organizations.c.id == tokens.c.org_id)
            .where(tokens.c.token_hash == digest)
        )
        with read_transaction(self.engine) as conn:
            row = conn.execute(query).mappings().first()
        # The lookup is by hash; the constant-time compare guards against a lax collation or index.
        if row is None or not hmac.compare_digest(row["token_hash"], digest):
            return None
        if row["revoked_at"] is not None:
            raise Unauthorized("The bearer token was revoked by an administrator")
        self._touch(row["token_id"], _utc(row["last_used"]))
        return _tenant(row), row["token_id"]

    def _touch(self, token_id: str, last_used: datetime | None) -> None:
        now = self._now()
        if last_used is not None and now - last_used < timedelta(seconds=self.touch_seconds):
            return
        cutoff = now - timedelta(seconds=self.touch_seconds)
        try:
            with write_transaction(self.engine) as conn:
                # The condition keeps concurrent workers from writing the same minute twice.
                conn.execute(
                    tokens.update()
                    .where(tokens.c.id == token_id)
                    .where(sa.or_(tokens.c.last_used.is_(None), tokens.c.last_used <= cutoff))
                    .values(last_used=now)
                )
        except Unavailable as exc:
            # 'last used' is informative: failing to write it must not fail the request.
            log.warning("could not record the last use of token %s: %s", token_id, exc.detail)

    # -- provisioning log ------------------------------------------------------------------------

    def record(self, entry: LogEntry) -> None:
        """Append one entry to the provisioning log (long texts are cut to the column sizes).

        Raises ``Unavailable`` if the database cannot be written; the caller decides whether that
        fails its request.
        """
        values = {
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
        }
        with write_transaction(self.engine) as conn:
            conn.execute(provisioning_log.insert().values(**values))

    def recent_log(self, org_name: str | None = None, limit: int = 50, errors_only: bool = False) -> list[LogEntry]:
        """The newest log entries first, of one organization or all; ``errors_only`` keeps status >= 400."""
        if limit < 1:
            raise AdminError(f"the limit must be at least 1, not {limit}")
        query = sa.select(provisioning_log, organizations.c.name.label("org_name")).outerjoin(
            organizations, organizations.c.id == provisioning_log.c.org_id
        )
        with read_transaction(self.engine) as conn:
            if org_name is not None:
                query = query.where(provisioning_log.c.org_id == self._require_org(conn, org_name)["id"])
            if errors_only:
                query = query.where(provisioning_log.c.status >= 400)
            query = query.order_by(provisioning_log.c.at.desc(), provisioning_log.c.id.desc()).limit(limit)
            rows = conn.execute(query).mappings().all()
        return [LogEntry(**{**row, "at": _utc(row["at"])}) for row in rows]

    def prune_log(self, before: datetime) -> int:
        """Delete log entries older than ``before``; return how many were deleted."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(provisioning_log.delete().where(provisioning_log.c.at < _utc(before)))
        return int(result.rowcount or 0)
