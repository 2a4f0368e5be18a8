"""Connections to the directory: settings, TLS, timeouts and a small thread-safe pool of bound connections."""

from __future__ import annotations

import logging
import math
import queue
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import ldap3.core.results
from ldap3.core.exceptions import LDAPException, LDAPStartTLSError

from scim_service.errors import Unavailable, store_failure

log = logging.getLogger(__name__)

# ldap3 2.9 has no name for result 76 (virtualListViewError), which a VLV request past the end of the
# list returns; without one its decoder raises KeyError instead of returning the result.
ldap3.core.results.RESULT_CODES.setdefault(76, "virtualListViewError")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class LdapSettings:
    """The connection settings, from the ``SCIM_LDAP_*`` keys."""

    url: str
    bind_dn: str | None
    password: str | None
    base_dn: str
    start_tls: bool = False
    ca_file: str | None = None
    connect_timeout: float = 5.0
    timeout: float = 10.0
    pool_size: int = 8
    lock_timeout: float = 10.0
    lock_lease: float = 30.0
    max_scan: int = 10_000

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LdapSettings:
        """Read and check the settings; ``ValueError`` names the setting at fault."""
        url = config.get("SCIM_LDAP_URL")
        base_dn = config.get("SCIM_LDAP_BASE_DN")
        if not url:
            raise ValueError(
                "SCIM_LDAP_URL is not set: the ldap backend needs the directory's URL (ldap:// or ldaps://)"
            )
        if not base_dn:
            raise ValueError("SCIM_LDAP_BASE_DN is not set: the ldap backend needs the DN its tenants live under")
        password = config.get("SCIM_LDAP_BIND_PASSWORD")
        password_file = config.get("SCIM_LDAP_BIND_PASSWORD_FILE")
        if password_file and not password:
            try:
                password = Path(str(password_file)).read_text().rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"SCIM_LDAP_BIND_PASSWORD_FILE: cannot read {password_file}: {exc}") from exc

        def number(key: str, default: float) -> float:
            raw = config.get(key)
            if raw in (None, ""):
                return default
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{key}: expected a number of seconds, got {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{key}: expected a positive number, got {raw!r}")
            return value

        ca_file = config.get("SCIM_LDAP_CA_FILE") or None
        if ca_file is not None and not Path(str(ca_file)).is_file():
            raise ValueError(f"SCIM_LDAP_CA_FILE: no such file {ca_file} (a PEM file of the CA of the directory)")
        if not str(url).lower().startswith(("ldap://", "ldaps://", "ldapi://")):
            raise ValueError(f"SCIM_LDAP_URL: expected an ldap://, ldaps:// or ldapi:// URL, got {url!r}")
        return cls(
            url=str(url),
            bind_dn=config.get("SCIM_LDAP_BIND_DN") or None,
            password=password or None,
            base_dn=str(base_dn),
            start_tls=_bool(config.get("SCIM_LDAP_START_TLS", False)),
            ca_file=str(ca_file) if ca_file else None,
            connect_timeout=number("SCIM_LDAP_CONNECT_TIMEOUT", 5.0),
            timeout=number("SCIM_LDAP_TIMEOUT", 10.0),
            pool_size=int(number("SCIM_LDAP_POOL_SIZE", 8)),
            lock_timeout=number("SCIM_LDAP_LOCK_TIMEOUT", 10.0),
            lock_lease=number("SCIM_LDAP_LOCK_LEASE", 30.0),
            max_scan=_whole("SCIM_LDAP_MAX_SCAN", config.get("SCIM_LDAP_MAX_SCAN"), 10_000),
        )


def _whole(key: str, raw: Any, default: int) -> int:
    """A positive whole number setting (``ValueError`` names the setting)."""
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{key}: expected a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{key}: expected a positive number, got {raw!r}")
    return value


class ConnectionPool:
    """Up to ``pool_size`` bound ldap3 connections shared by threads; a broken one is replaced."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        tls = None
        if settings.ca_file or settings.start_tls or settings.url.lower().startswith("ldaps://"):
            tls = ldap3.Tls(ca_certs_file=settings.ca_file, validate=ssl.CERT_REQUIRED)
        self.server = ldap3.Server(
            settings.url, tls=tls, connect_timeout=max(1, math.ceil(settings.connect_timeout)), get_info=ldap3.NONE
        )
        self._idle: queue.LifoQueue[ldap3.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(settings.pool_size)
        self._closed = False

    def _open(self) -> ldap3.Connection:
        s = self.settings
        conn = ldap3.Connection(
            self.server,
            user=s.bind_dn,
            password=s.password,
            receive_timeout=max(1, math.ceil(s.timeout)),
            raise_exceptions=False,
            auto_referrals=False,
        )
        try:
            conn.open()
            # Never bind in clear text when StartTLS was asked for and did not happen.
            if s.start_tls and not conn.start_tls():
                conn.unbind()
                raise store_failure(
                    "StartTLS with the directory failed (SCIM_LDAP_START_TLS); see the service log",
                    f"{s.url}: {conn.result.get('description')} {conn.result.get('message') or ''}".rstrip(),
                    log,
                )
            if not conn.bind():
                raise store_failure(
                    "The directory refused the service's bind; see the service log",
                    f"bind as {s.bind_dn!r}: {conn.result.get('description')}",
                    log,
                )
        except LDAPException as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                trusted = s.ca_file or "the system's trusted CAs"
                raise store_failure(
                    "TLS with the directory failed: its certificate is not trusted (SCIM_LDAP_CA_FILE) or does "
                    "not name the host; see the service log",
                    f"{s.url}: not signed by a CA in {trusted}: {text}",
                    log,
                ) from exc
            if isinstance(exc, LDAPStartTLSError):
                raise store_failure(
                    "StartTLS with the directory failed (SCIM_LDAP_START_TLS); see the service log",
                    f"{s.url}: {text}",
                    log,
                ) from exc
            raise store_failure("The directory cannot be reached; retry later", f"{s.url}: {text}", log) from exc
        return conn

    @contextmanager
    def connection(self, *, discard: bool = False) -> Iterator[ldap3.Connection]:
        """Borrow a connection; one that failed at the socket level is dropped, not returned.

        ``discard`` closes it after use instead: OpenLDAP's sssvlv keeps every VLV sort context of a
        connection until the connection ends, and refuses new sorts ("busy") once a connection holds
        ``olcSssVlvMaxPerConn`` of them or the server ``olcSssVlvMax``.
        """
        if self._closed:
            raise Unavailable("The ldap backend is closed")
        if not self._slots.acquire(timeout=self.settings.timeout):
            raise Unavailable(
                f"No free directory connection within {self.settings.timeout} s (pool of {self.settings.pool_size})"
            )
        conn: ldap3.Connection | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            try:
                yield conn
            except LDAPException as exc:
                conn.unbind()
                conn = None
                raise store_failure("The directory connection failed; retry later", exc, log) from exc
            if conn.closed:
                conn = None
            elif discard:
                with suppress(LDAPException):
                    conn.unbind()
                conn = None
        finally:
            if conn is not None:
                self._idle.put(conn)
            self._slots.release()

    def close(self) -> None:
        """Unbind every idle connection."""
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            with suppress(LDAPException):
                conn.unbind()
