"""What a kit test needs from a backend, and the skip that quotes the backend's declaration.

This works like the requirements of SQLAlchemy's dialect suite. A test declares what it needs with a
decorator (``@requires.etag``); before any fixture builds data, :class:`~scim_service.testing.kit.base.KitBase`
skips it when the backend's :class:`~scim_service.model.Capabilities` say otherwise, and the skip
reason is the declaration (``MyBackend declares capabilities.etag=False``), so every skip traces back
to one line of the backend.

Finer limits depend on the test case rather than the test: which operators a backend evaluates on which
path (``capabilities.filter_operators``) and which paths it sorts by (``capabilities.sort_attributes``).
:func:`declared_filter_refusal` and :func:`declared_sort_refusal` say whether a backend declares such a
limit against a case, and :func:`list_or_refuse` lets a declared refusal skip and fails any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from scim_service.backend import Backend
from scim_service.query.ast import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath

__all__ = [
    "Requirement",
    "Requirements",
    "declared_filter_refusal",
    "declared_sort_refusal",
    "filter_atoms",
    "list_or_refuse",
    "path_key",
    "requirements_of",
    "requires",
    "skip_unless_met",
    "unmet",
]

F = TypeVar("F", bound=Callable[..., Any])

# The attribute of a test function listing the requirements its decorators declared.
_ATTRIBUTE = "__scim_kit_requires__"


@dataclass(frozen=True)
class Requirement:
    """One thing a test needs: the capability ``field`` set (``needed=True``) or unset (``needed=False``).

    Used as a decorator on a test function, it adds itself to the test's requirements.
    """

    field: str
    needed: bool = True

    def unmet(self, backend: Backend) -> str | None:
        """Why ``backend`` does not meet this requirement (its declaration, as a skip reason), or None."""
        declared = getattr(backend.capabilities, self.field)
        if bool(declared) is self.needed:
            return None
        return f"{type(backend).__name__} declares capabilities.{self.field}={declared!r}"

    def __call__(self, test: F) -> F:
        """Declare that ``test`` (a test function) needs this."""
        # Decorators apply bottom-up: prepending keeps the requirements in the order they are written.
        setattr(test, _ATTRIBUTE, (self, *getattr(test, _ATTRIBUTE, ())))
        return test


class Requirements:
    """Every requirement a test may declare, one attribute each (use the instance :data:`requires`)."""

    filter = Requirement("filter")
    """The backend filters lists (``capabilities.filter``)."""

    sort = Requirement("sort")
    """The backend sorts lists (``capabilities.sort``)."""

    etag = Requirement("etag")
    """Writes give new versions and refuse stale ones (``capabilities.etag``)."""

    cursor = Requirement("cursor")
    """Cursor paging (``capabilities.cursor``)."""

    nested_groups = Requirement("nested_groups")
    """Groups may be members of groups (``capabilities.nested_groups``)."""

    flat_groups = Requirement("nested_groups", needed=False)
    """Groups may not be members of groups (``capabilities.nested_groups`` False)."""

    concurrency = Requirement("concurrency")
    """The backend may be called from many threads at once (``capabilities.concurrency``)."""


requires = Requirements()
"""The decorators kit tests declare their needs with: ``@requires.etag``, ``@requires.cursor``, ..."""


def requirements_of(test: Callable[..., Any]) -> tuple[Requirement, ...]:
    """The requirements ``test`` declared with ``@requires...`` decorators."""
    return tuple(getattr(test, _ATTRIBUTE, ()))


def unmet(backend: Backend, requirements: Iterable[Requirement]) -> list[str]:
    """The declarations of ``backend`` that stand against ``requirements`` (empty when all are met)."""
    return [reason for reason in (r.unmet(backend) for r in requirements) if reason is not None]


def skip_unless_met(backend: Backend, *requirements: Requirement) -> None:
    """Skip the running test, quoting the declarations, unless ``backend`` meets every requirement."""
    reasons = unmet(backend, requirements)
    if reasons:
        pytest.skip("; ".join(reasons))


# -- declared limits of filters and sorts ---------------------------------------------------------

CORE_SCHEMA_PREFIX = "urn:ietf:params:scim:schemas:core:"


def path_key(path: AttrPath) -> str:
    """How ``capabilities.filter_operators`` and ``sort_attributes`` name a resolved path: ``attr`` or
    ``attr.subAttr``, prefixed with the schema URN and ``:`` for an extension attribute
    (``<enterprise urn>:manager.value``)."""
    if path.schema and not path.schema.lower().startswith(CORE_SCHEMA_PREFIX):
        return f"{path.schema}:{path.dotted()}"
    return path.dotted()


def filter_atoms(f: Filter) -> Iterator[tuple[AttrPath, str]]:
    """Every (path, operator) a filter uses, value paths included (``pr`` for presence)."""
    if isinstance(f, And | Or):
        yield from filter_atoms(f.left)
        yield from filter_atoms(f.right)
    elif isinstance(f, Not):
        yield from filter_atoms(f.expr)
    elif isinstance(f, ValuePath):
        yield from filter_atoms(f.filter)
    elif isinstance(f, Compare):
        yield f.path, f.op
    elif isinstance(f, Present):
        yield f.path, "pr"


def declared_filter_refusal(backend: Backend, resource: str, f: Filter) -> str | None:
    """Why the backend declares it cannot evaluate ``f``, or None when it declares nothing against it.

    ``capabilities.filter_operators`` maps a resource type (``"User"``, ``"Group"``) to
    ``{path: [operators]}``: the operators (``eq ne co sw ew gt ge lt le pr``) the backend evaluates on
    each path (see :func:`path_key`). A resource type it lists takes only those; one it leaves out,
    everything.
    """
    table = backend.capabilities.filter_operators.get(resource)
    if table is None:
        return None
    allowed = {key.lower(): {op.lower() for op in ops} for key, ops in table.items()}
    for path, op in filter_atoms(f):
        if op.lower() not in allowed.get(path_key(path).lower(), set()):
            return (
                f"{type(backend).__name__} declares in capabilities.filter_operators that it cannot "
                f"evaluate {op!r} on {resource} {path_key(path)!r}"
            )
    return None


def declared_sort_refusal(backend: Backend, resource: str, path: AttrPath) -> str | None:
    """Why the backend declares it cannot sort by ``path``, or None.

    ``capabilities.sort_attributes`` maps a resource type to the paths it sorts by; a resource type it
    leaves out sorts by every path.
    """
    table = backend.capabilities.sort_attributes.get(resource)
    if table is None or path_key(path).lower() in {key.lower() for key in table}:
        return None
    return (
        f"{type(backend).__name__} declares in capabilities.sort_attributes that it cannot sort "
        f"{resource} by {path_key(path)!r}"
    )


def list_or_refuse(
    backend: Backend, reason: str | None, refusal: type[Exception], what: str, call: Callable[[], Any]
) -> Any:
    """Run a list call; a refusal is fine only when declared (the test skips), and only as ``refusal``.

    With a declared reason the call may still succeed (the caller then checks the answer like any
    other): a declared limit allows a refusal, never a wrong answer.
    """
    try:
        return call()
    except refusal as exc:
        if reason is not None:
            pytest.skip(f"{reason}; refused with {refusal.__name__}: {exc}")
        pytest.fail(
            f"{what} was refused with {refusal.__name__} ({exc}) but the backend does not declare that limit "
            "in its capabilities (see docs/plugins.md, Capabilities)"
        )
    except Exception as exc:
        if reason is not None:
            pytest.fail(f"{what}: {reason}, so it must be refused with {refusal.__name__}, not {type(exc).__name__}")
        raise
