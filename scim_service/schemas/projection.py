"""The ``attributes`` / ``excludedAttributes`` projection of RFC 7644 §3.4.2.5 and §3.9.

Names are case-insensitive and may be dotted (``name.givenName``) or qualified by a schema URN
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``, or a bare extension URN for
the whole extension). Names this resource does not define are ignored. Whatever is asked for:

- ``schemas`` and attributes with ``returned: always`` (``id``) are always kept;
- attributes with ``returned: never`` (``password``) are never kept;
- attributes with ``returned: request`` are kept only when ``attributes`` names them.

When both lists are given, ``attributes`` wins and ``excludedAttributes`` is ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scim_service.schemas.definitions import (
    COMMON_ATTRIBUTES,
    Attribute,
    ResourceTypeDef,
    resolve_attribute,
    split_urn_path,
)

# A selected name: (schema URN, attribute, sub-attribute); attribute None selects a whole schema.
_Name = tuple[str, str | None, str | None]
_DROP = object()


def _names(resource: ResourceTypeDef, raw: Sequence[str] | None) -> set[_Name] | None:
    """The canonical form of the names in ``raw`` (None when no names were given); unknown ones left out."""
    if not raw:
        return None
    selected: set[_Name] = set()
    for chunk in raw:
        # Lenient with an unsplit query parameter value ("userName,emails").
        for piece in chunk.split(","):
            name = piece.strip()
            if not name:
                continue
            urn, rest = split_urn_path(name, resource)
            if urn is not None and not rest:
                selected.add((urn, None, None))
                continue
            try:
                resolved = resolve_attribute(resource, rest, schema=urn)
            except LookupError:
                continue  # RFC 7644 §3.4.2.5 does not make an unknown name an error; it selects nothing
            sub = resolved.sub_attribute.name if resolved.sub_attribute is not None else None
            selected.add((resolved.schema_urn, resolved.attribute.name, sub))
    return selected


@dataclass(frozen=True)
class _Selection:
    """The parsed request: what ``attributes`` asks for (None: not given) and what is excluded."""

    requested: set[_Name] | None
    excluded: set[_Name]

    @classmethod
    def of(
        cls, resource: ResourceTypeDef, attributes: Sequence[str] | None, excluded: Sequence[str] | None
    ) -> _Selection:
        # Resolving the names costs far more than applying them: a page of resources resolves them once.
        return _selection(resource, tuple(attributes or ()), tuple(excluded or ()))

    def project(self, urn: str, attribute: Attribute, value: Any) -> Any:
        """``value`` of ``attribute`` as the projection leaves it, or ``_DROP``."""
        if attribute.returned == "never":
            return _DROP
        if attribute.returned == "always":
            return _subs(attribute, value, lambda sub: sub.returned != "never")
        if self.requested is not None:
            if (urn, None, None) in self.requested or (urn, attribute.name, None) in self.requested:
                return _subs(attribute, value, lambda sub: sub.returned != "never")
            wanted = {s for (u, a, s) in self.requested if u == urn and a == attribute.name and s}
            if not wanted:
                return _DROP
            return _subs(attribute, value, lambda sub: sub.returned == "always" or sub.name in wanted)
        if attribute.returned == "request":
            return _DROP
        if (urn, None, None) in self.excluded or (urn, attribute.name, None) in self.excluded:
            return _DROP
        dropped = {s for (u, a, s) in self.excluded if u == urn and a == attribute.name and s}
        return _subs(
            attribute,
            value,
            lambda sub: sub.returned == "always" or (sub.returned == "default" and sub.name not in dropped),
        )

    def keeps(self, urn: str, attribute: Attribute) -> bool:
        """Whether any part of ``attribute`` can survive (the value is not looked at)."""
        if attribute.returned == "never":
            return False
        if attribute.returned == "always":
            return True
        if self.requested is not None:
            return any(u == urn and a in (None, attribute.name) for (u, a, _s) in self.requested)
        if attribute.returned == "request":
            return False
        return (urn, None, None) not in self.excluded and (urn, attribute.name, None) not in self.excluded


@functools.lru_cache(maxsize=256)
def _selection(resource: ResourceTypeDef, attributes: tuple[str, ...], excluded: tuple[str, ...]) -> _Selection:
    requested = _names(resource, attributes)
    return _Selection(requested, set() if requested is not None else (_names(resource, excluded) or set()))


def _subs(attribute: Attribute, value: Any, keep: Callable[[Attribute], bool]) -> Any:
    """``value`` keeping only the sub-attributes for which ``keep(sub)`` holds (complex attributes only)."""
    if attribute.type != "complex":
        return value

    def one(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        result = {}
        for key, sub_value in item.items():
            sub = attribute.sub(key)
            if sub is None or keep(sub):
                result[key] = sub_value
        return result

    if isinstance(value, list):
        kept = [one(item) for item in value]
        kept = [item for item in kept if item not in ({}, None)]
        return kept or _DROP
    kept_one = one(value)
    return _DROP if kept_one == {} else kept_one


@functools.lru_cache(maxsize=64)
def _core_attributes(resource: ResourceTypeDef) -> dict[str, Attribute]:
    """The common and core attributes of ``resource`` by lower-cased name (the first of a name wins)."""
    found: dict[str, Attribute] = {}
    for attribute in COMMON_ATTRIBUTES + resource.schema.attributes:
        found.setdefault(attribute.name.lower(), attribute)
    return found


def project(
    document: dict[str, Any],
    resource: ResourceTypeDef,
    attributes: Sequence[str] | None,
    excluded: Sequence[str] | None,
) -> dict[str, Any]:
    """A copy of the rendered ``document`` reduced to what the client asked for (see the module docstring).

    Keys of ``document`` that no schema defines are kept unless ``attributes`` was given.
    """
    selection = _Selection.of(resource, attributes, excluded)
    core_attributes = _core_attributes(resource)
    result: dict[str, Any] = {}
    for key, value in document.items():
        if key == "schemas":
            result[key] = value
            continue
        extension = resource.extension(key)
        if extension is not None:
            if isinstance(value, dict):
                kept = {}
                for name, sub_value in value.items():
                    attribute = extension.attribute(name)
                    if attribute is None:
                        if selection.requested is None:
                            kept[name] = sub_value
                        continue
                    projected = selection.project(extension.id, attribute, sub_value)
                    if projected is not _DROP:
                        kept[name] = projected
                if kept:
                    result[key] = kept
            continue
        attribute = core_attributes.get(key.lower())
        if attribute is None:
            if selection.requested is None:
                result[key] = value
            continue
        projected = selection.project(resource.schema.id, attribute, value)
        if projected is not _DROP:
            result[key] = projected
    return result


def includes(
    resource: ResourceTypeDef, attributes: Sequence[str] | None, excluded: Sequence[str] | None, name: str
) -> bool:
    """Whether the attribute ``name`` (e.g. ``members``, ``groups``) would survive the projection.

    Lets the API tell a backend not to read group members or a user's groups that nobody will see.
    An attribute the resource does not define never survives.
    """
    try:
        resolved = resolve_attribute(resource, name)
    except LookupError:
        return False
    return _Selection.of(resource, attributes, excluded).keeps(resolved.schema_urn, resolved.attribute)
