"""The admin page's own session: a signed cookie holding who logged in and the CSRF token of the forms.

Not Flask's session, so the page never reads or writes the host app's session and works in a host that
has none. The cookie is signed (itsdangerous, HMAC-SHA1 over a key derived from the secret), not
encrypted: it holds no secret worth hiding, only the administrator's name, the CSRF token and the
login time. Its lifetime is checked from the signature's timestamp.

The signing key must be the same in every worker and host: ``SCIM_ADMIN_SECRET_KEY``, else the host
app's ``SECRET_KEY``, else a key derived from ``SCIM_ADMIN_PASSWORD`` with scrypt (so changing the
password also ends every session).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from scim_service.config import ConfigError

COOKIE_NAME = "scim_admin"
_SALT = "scim-service admin session"
# scrypt cost of deriving a signing key from the password: ~50 ms once at start-up, and the price of
# each guess for anyone trying to recover the password from a cookie's signature.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class AdminSession:
    """One browser's admin session: its CSRF token, and the administrator once logged in."""

    csrf: str = field(default_factory=_token)
    user: str | None = None

    def logged_in(self, user: str) -> AdminSession:
        """The session after a login: the user set and a new CSRF token (no token survives a login)."""
        return AdminSession(csrf=_token(), user=user)

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a form carried this session's CSRF token (compared in constant time)."""
        return bool(presented) and hmac.compare_digest(self.csrf.encode(), str(presented).encode())


class SessionCodec:
    """Signs sessions into cookie values and reads them back, refusing forged or expired ones."""

    def __init__(self, secret: bytes, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age = max_age_seconds

    def dump(self, session: AdminSession) -> str:
        """The cookie value of ``session``."""
        return self._serializer.dumps({"c": session.csrf, "u": session.user})

    def load(self, value: str | None) -> AdminSession | None:
        """The session in a cookie value; None for a missing, forged, malformed or expired one."""
        if not value or len(value) > 4096:
            return None
        try:
            data: Any = self._serializer.loads(value, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str) or not data["c"]:
            return None
        user = data.get("u")
        return AdminSession(csrf=data["c"], user=user if isinstance(user, str) and user else None)


def password_matches(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is the admin password; constant time whatever the lengths."""
    if not given or not expected:
        return False
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def signing_key(config: Mapping[str, Any], host_secret: Any) -> bytes:
    """The key that signs admin cookies (see the module docstring for the order of precedence)."""
    secret = config.get("SCIM_ADMIN_SECRET_KEY")
    if secret:
        return str(secret).encode()
    if host_secret:
        return host_secret if isinstance(host_secret, bytes) else str(host_secret).encode()
    password = config.get("SCIM_ADMIN_PASSWORD")
    if password:
        return hashlib.scrypt(str(password).encode(), salt=_SALT.encode(), **_SCRYPT)
    raise ConfigError(
        "the admin page is enabled by a host plugin but has no key to sign its session cookie: set "
        "SCIM_ADMIN_SECRET_KEY or the app's SECRET_KEY"
    )
