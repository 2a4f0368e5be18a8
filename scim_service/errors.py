"""SCIM errors raised anywhere in the core, backends and plugins.

Every error the service can answer with is one of these classes. They carry the HTTP status and the
``scimType`` of RFC 7644 §3.12 but know nothing of Flask: the blueprint turns them into responses.
Backends raise the storage-level ones (:class:`NotFound`, :class:`UniquenessConflict`,
:class:`SeatLimitReached`, :class:`VersionMismatch`, :class:`Unavailable`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

SCIM_TYPES = frozenset(
    {
        "invalidFilter",
        "tooMany",
        "uniqueness",
        "mutability",
        "invalidSyntax",
        "invalidPath",
        "noTarget",
        "invalidValue",
        "invalidVers",
        "sensitive",
        "invalidCursor",
        "expiredCursor",
    }
)
"""The scimType values of RFC 7644 §3.12 and RFC 9865 (cursors): the only ones an error may carry."""


class ScimError(Exception):
    """Base of all SCIM errors: an HTTP status, an optional scimType and a human-readable detail."""

    status: int = 400
    scim_type: str | None = None

    def __init__(self, detail: str, *, status: int | None = None, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if scim_type is not None:
            self.scim_type = scim_type


class InvalidSyntax(ScimError):
    """The request body or a parameter is not parsable or violates the schema (400 invalidSyntax)."""

    scim_type = "invalidSyntax"


class InvalidValue(ScimError):
    """A required value is missing or a value is not compatible with its attribute (400 invalidValue)."""

    scim_type = "invalidValue"


class InvalidFilter(ScimError):
    """The filter does not parse or names an unknown attribute (400 invalidFilter)."""

    scim_type = "invalidFilter"


class InvalidPath(ScimError):
    """A PATCH path is malformed or names an unknown attribute (400 invalidPath)."""

    scim_type = "invalidPath"


class NoTarget(ScimError):
    """A PATCH path with a filter matched nothing where a match was required (400 noTarget)."""

    scim_type = "noTarget"


class Mutability(ScimError):
    """An attempt to change a readOnly or immutable attribute (400 mutability)."""

    scim_type = "mutability"


class InvalidVersion(ScimError):
    """The SCIM protocol version asked for is not supported (400 invalidVers)."""

    scim_type = "invalidVers"


class TooMany(ScimError):
    """The query would return more results than the server is willing to process (400 tooMany)."""

    scim_type = "tooMany"


class InvalidCursor(ScimError):
    """A pagination cursor is unknown, malformed or expired (400 invalidCursor, RFC 9865)."""

    scim_type = "invalidCursor"


class Unauthorized(ScimError):
    """Missing, unknown or revoked credentials (401)."""

    status = 401


class Forbidden(ScimError):
    """The caller is authenticated but may not do this (403)."""

    status = 403


class SeatLimitReached(Forbidden):
    """Storing the user would make the organization hold more seats than its maxSeats (403)."""

    def __init__(self, max_seats: int) -> None:
        super().__init__(
            f"Seat limit reached: the organization uses all of its {max_seats} seats. "
            "Remove inactive users or raise maxSeats."
        )
        self.max_seats = max_seats


class NotFound(ScimError):
    """The resource does not exist for this tenant (404)."""

    status = 404


class MethodNotAllowed(ScimError):
    """The endpoint exists but not with this HTTP method (405); ``allowed`` names the endpoint's methods,
    which the response lists in its ``Allow`` header (RFC 9110 §15.5.6)."""

    status = 405

    def __init__(self, method: str, allowed: Iterable[str]) -> None:
        self.allowed = tuple(sorted(allowed))
        super().__init__(f"{method} is not allowed on this endpoint (allowed: {', '.join(self.allowed)}).")


class UniquenessConflict(ScimError):
    """A unique attribute (userName, or the primary email where it is a matching key) is taken (409).

    ``existing_id`` names the resource that holds the value, so the lifecycle can decide between a
    reactivation and a 409; it is never shown to the client.
    """

    status = 409
    scim_type = "uniqueness"

    def __init__(self, detail: str, existing_id: str | None = None) -> None:
        super().__init__(detail)
        self.existing_id = existing_id


class VersionMismatch(ScimError):
    """An If-Match precondition or an optimistic version check failed (412)."""

    status = 412

    def __init__(self, detail: str = "The resource was changed since the version given in If-Match.") -> None:
        super().__init__(detail)


class PayloadTooLarge(ScimError):
    """The request body is larger than the server accepts (413)."""

    status = 413


class TooManyRequests(ScimError):
    """429: too many failed authentications from the caller's address; ``retry_after`` is the number
    of seconds until it may try again (sent as ``Retry-After``)."""

    status = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotImplementedByServer(ScimError):
    """The endpoint is defined by SCIM but this server does not serve it (501)."""

    status = 501


class Unavailable(ScimError):
    """The storage cannot be reached, timed out or is not initialised (503); the response says
    ``Retry-After: retry_after`` seconds.

    ``detail`` is shown to the client and must not hold a driver's or directory's own message (hosts,
    ports, DNs with tenant ids): build these with :func:`store_failure`, which logs that message.
    """

    status = 503
    retry_after: int = 5

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        if retry_after is not None:
            self.retry_after = retry_after


class NotMigrated(Unavailable):
    """503: the service database has no scim-service tables yet (``db upgrade`` never ran).

    Its detail names a command, never a host or a driver's text, so unauthenticated callers see it too:
    the IdP's administrator is the one who learns from it that the operator has a step left.
    """


def store_failure(detail: str, cause: object, logger: logging.Logger, *, retry_after: int | None = None) -> Unavailable:
    """The one mapper of a driver or directory failure to a 503: the client gets ``detail``, the
    service log gets ``cause`` (the raw message, which may name hosts, DNs or tenant ids)."""
    text = str(cause).strip() or type(cause).__name__
    logger.warning("%s: %s", detail, text.splitlines()[0] if isinstance(cause, BaseException) else text)
    return Unavailable(detail, retry_after=retry_after)
