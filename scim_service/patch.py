"""The PATCH engine (RFC 7644 §3.5.2): parsed PATCH operations applied to user documents and turned
into group deltas.

The body was parsed at the edge (:func:`scim_service.schemas.messages.load_patch_op`, called by the API
before the store is read) into :class:`~scim_service.schemas.messages.PatchOperation` objects; this
module resolves their paths against the resource type and applies them.

Users: :func:`apply_user_patch` applies every operation, in order, to a copy of the stored document and
returns the new document; it never mutates its input, and any error raises before a result exists, so a
PATCH is atomic by construction. Groups: :func:`apply_group_patch` never needs the current members; it
returns a :class:`~scim_service.model.GroupChanges` with the new attributes and the membership deltas, so
a PATCH of a huge group costs what the change costs.

Deviations from the RFC that identity providers send are accepted only when the request's IdP profile
allows them (:mod:`scim_service.profiles`; each operation carries the request's
:class:`~scim_service.profiles.ActiveProfile`). Each one that fires is recorded on that object:

* ``op`` in another case (Entra ID sends ``"Add"``, ``"Replace"``, ``"Remove"``): ``capitalised_ops``,
  decided when the body is parsed.
* Values are read by the resources' value loader
  (:func:`scim_service.schemas.resources.load_attribute_value`), with its tolerances
  (``string_booleans``, ``manager_bare_string``, unknown sub-attributes) and rules (readOnly
  sub-attributes ignored), exactly as in a POST or PUT body.
* A path-less ``add``/``replace`` takes a map of attributes (and extension URNs holding a map of that
  extension's attributes); dotted (``name.givenName``), URN-qualified
  (``urn:...:enterprise:2.0:User:employeeNumber``) and value-path (``emails[type eq "work"].value``)
  keys need ``pathless_qualified_keys``, unknown keys ``unknown_attribute_ignored`` or
  ``unknown_schema_ignored`` (then they are skipped). ``id`` and ``meta`` in such a map are ignored
  (Okta echoes the group's ``id``), unless ``current_id`` is given and the ``id`` differs.
* ``add``/``replace`` on ``emails[type eq "work"].value`` (a filter made of ``eq`` tests joined by
  ``and``) that matches no element creates ``{"type": "work", "value": ...}`` under
  ``value_path_creates``; otherwise, and for any other filter that matches nothing, it is ``noTarget``.
  ``remove`` with a filter that matches nothing is a no-op.
* ``remove`` with a value list on a multi-valued attribute (``members`` included) removes exactly those
  values under ``remove_with_value``; otherwise a remove with a value is ``invalidSyntax``. A remove
  never empties a group because of a value it could not apply.

Rules of the RFC itself, for every profile:

* ``add`` to a multi-valued attribute appends the values not already present; ``replace`` replaces the
  list. On a complex single-valued attribute both merge the given sub-attributes (RFC 7644 §3.5.2.3).
* A value set to ``null`` (or an empty list) removes the target.
* ``primary`` stays unique: writing ``primary: true`` on one element sets it false on the others;
  writing it true on two elements in one operation is ``invalidValue``.
* A path naming a readOnly attribute or sub-attribute is ``mutability``; removing a required attribute
  is ``invalidValue``; an unknown attribute in a path is ``invalidPath`` (``invalidValue`` as a key of
  a value map).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim_service.errors import InvalidFilter, InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget
from scim_service.model import GroupChanges, Member
from scim_service.profiles import Tolerance
from scim_service.query.ast import And, Compare, Filter, Or, ValuePath
from scim_service.query.evaluator import get_ci, matches_element
from scim_service.query.parser import PatchPath, parse_path
from scim_service.query.resolve import resolve_filter
from scim_service.schemas.definitions import (
    GROUP_RESOURCE,
    USER_RESOURCE,
    Attribute,
    ResolvedAttribute,
    ResourceTypeDef,
    resolve_attribute,
    split_urn_path,
)
from scim_service.schemas.messages import PATCH_OP_SCHEMA, PatchOperation
from scim_service.schemas.resources import load_attribute_value

__all__ = ["PATCH_OP_SCHEMA", "PatchOperation", "apply_group_patch", "apply_user_patch"]

# Never part of a stored document: the server owns them (or, for groups/members, another table does).
_SERVER_KEYS = frozenset({"id", "meta", "schemas", "groups"})


# -- values ---------------------------------------------------------------------------------------


def _value(attr: Attribute, value: Any, op: PatchOperation, *, element: bool = False) -> Any:
    """The value an operation writes to ``attr``, read by the resources' value loader (the same types,
    tolerances and ignored readOnly sub-attributes as a POST body). A lone value given for a
    multi-valued attribute is one element (RFC 7644 §3.5.2.1 adds values to the attribute); elements
    left empty (only readOnly sub-attributes, say) are dropped."""
    if value is None:
        return None
    if attr.multi_valued and not element:
        items = value if isinstance(value, list) else [value]
        loaded = load_attribute_value(attr, items, profile=op.profile, where=f"{op.where}: ")
        return [item for item in loaded if item not in (None, {})]
    return load_attribute_value(attr, value, profile=op.profile, element=element, where=f"{op.where}: ")


# -- the document ---------------------------------------------------------------------------------


def _find_key(container: Mapping[str, Any], name: str) -> str | None:
    if name in container:
        return name
    lowered = name.lower()
    for key in container:
        if isinstance(key, str) and key.lower() == lowered:
            return key
    return None


def _put(container: dict[str, Any], name: str, value: Any) -> None:
    """Set ``container[name]`` under the canonical name, dropping a differently-cased old key."""
    key = _find_key(container, name)
    empty = value is None or value == [] or value == {}
    if key == name and not empty:
        container[name] = value  # in place, so the document keeps its key order
        return
    if key is not None:
        del container[key]
    if not empty:
        container[name] = value


def _take(container: Mapping[str, Any], name: str) -> Any:
    key = _find_key(container, name)
    return None if key is None else container[key]


def _canonical_copy(doc: Mapping[str, Any], resource: ResourceTypeDef) -> dict[str, Any]:
    """A deep copy of a stored document with canonical top-level keys and no server-owned keys."""
    out: dict[str, Any] = {}
    for key, value in copy.deepcopy(dict(doc)).items():
        if not isinstance(key, str) or key.lower() in _SERVER_KEYS or (key.lower() == "members"):
            continue
        ext = resource.extension(key)
        if ext is not None:
            if isinstance(value, Mapping):
                nested = {}
                for k, v in value.items():
                    attr = ext.attribute(k)
                    nested[attr.name if attr is not None else k] = v
                out[ext.id] = nested
            continue
        try:
            name = resolve_attribute(resource, key, schema=resource.schema.id).attribute.name
        except LookupError:
            name = key
        out[name] = value
    return out


@dataclass(frozen=True)
class _Target:
    """Where an operation points: an attribute, maybe one sub-attribute, maybe a value filter."""

    schema: str
    attribute: Attribute
    sub: Attribute | None = None  # attr.sub (no filter)
    value_filter: Filter | None = None  # resolved inner filter of attr[...]
    filter_sub: Attribute | None = None  # attr[...].sub

    @property
    def text(self) -> str:
        return self.attribute.name + (f".{self.sub.name}" if self.sub else "")


class _Doc:
    """The document being patched, with the extension dicts reached through their schema URN."""

    def __init__(self, data: dict[str, Any], resource: ResourceTypeDef) -> None:
        self.data = data
        self.resource = resource

    def container(self, schema: str, create: bool) -> dict[str, Any] | None:
        if schema.lower() == self.resource.schema.id.lower():
            return self.data
        nested = self.data.get(schema)
        if not isinstance(nested, dict):
            if not create:
                return None
            nested = self.data[schema] = {}
        return nested

    def cleanup(self, schema: str) -> None:
        """Drop an extension dict left empty."""
        if schema in self.data and schema.lower() != self.resource.schema.id.lower() and not self.data[schema]:
            del self.data[schema]


def _resolve_target(path: PatchPath, resource: ResourceTypeDef, op: PatchOperation) -> _Target:
    raw = path.attr
    try:
        resolved = resolve_attribute(resource, raw.attr, raw.sub_attr, raw.schema)
    except LookupError as exc:
        raise InvalidPath(f"{op.where}: {exc}") from None
    if path.value_filter is None:
        return _Target(resolved.schema_urn, resolved.attribute, resolved.sub_attribute)
    attribute = resolved.attribute
    if not (attribute.type == "complex" and attribute.multi_valued):
        raise InvalidPath(f"{op.where}: a value filter needs a multi-valued complex attribute, not {attribute.name!r}")
    try:
        resolved_filter = resolve_filter(ValuePath(raw, path.value_filter), resource)
    except InvalidFilter as exc:
        raise InvalidPath(f"{op.where}: {exc.detail}") from None
    assert isinstance(resolved_filter, ValuePath)
    filter_sub = None
    if path.sub_attr is not None:
        filter_sub = attribute.sub(path.sub_attr)
        if filter_sub is None:
            raise InvalidPath(f"{op.where}: the attribute {attribute.name!r} has no sub-attribute {path.sub_attr!r}")
    return _Target(resolved.schema_urn, attribute, None, resolved_filter.filter, filter_sub)


def _check_mutability(target: _Target, op: PatchOperation) -> None:
    for attr in (target.attribute, target.sub, target.filter_sub):
        if attr is not None and attr.mutability == "readOnly":
            raise Mutability(f"{op.where}: the attribute {attr.name!r} is readOnly and cannot be changed")


def _eq_pairs(f: Filter) -> dict[str, Any] | None:
    """``type eq "work" and ...`` as ``{"type": "work", ...}``; None for any other filter shape."""
    if isinstance(f, Compare) and f.op == "eq" and f.path.sub_attr is not None and f.value is not None:
        return {f.path.sub_attr: f.value}
    if isinstance(f, And):
        left, right = _eq_pairs(f.left), _eq_pairs(f.right)
        if left is None or right is None:
            return None
        return {**left, **right}
    return None


def _enforce_primary(
    attribute: Attribute, elements: list[Any], written: list[dict[str, Any]], op: PatchOperation
) -> None:
    """Keep at most one ``primary: true`` element, the one this operation wrote."""
    if attribute.sub("primary") is None:
        return
    chosen = [e for e in written if isinstance(e, dict) and e.get("primary") is True]
    if len(chosen) > 1:
        raise InvalidValue(f"{op.where}: at most one value of {attribute.name} may be primary")
    if not chosen:
        return
    for element in elements:
        if isinstance(element, dict) and element is not chosen[0] and element.get("primary") is True:
            element["primary"] = False


def _apply(doc: _Doc, op: PatchOperation, target: _Target, value: Any) -> None:
    """Apply one add/replace/remove to one target of the document."""
    _check_mutability(target, op)
    container = doc.container(target.schema, create=op.op != "remove")
    if container is None:  # remove from an extension the document does not have
        return
    if target.value_filter is not None:
        _apply_filtered(container, op, target, value)
    elif target.sub is not None:
        _apply_sub(container, op, target, value)
    else:
        _apply_whole(container, op, target, value)
    doc.cleanup(target.schema)


def _apply_whole(container: dict[str, Any], op: PatchOperation, target: _Target, value: Any) -> None:
    attribute = target.attribute
    name = attribute.name
    current = _take(container, name)
    if op.op == "remove":
        if attribute.required:
            raise InvalidValue(f"{op.where}: {name} is required and cannot be removed")
        if op.has_value and value is not None and attribute.multi_valued:
            # Remove the listed values only (Entra ID sends remove with a value list), never all of them.
            _allow_remove_with_value(op)
            if not isinstance(current, list):
                return
            drop = _value(attribute, value, op)
            kept = [e for e in current if not any(_same_value(e, d) for d in drop)]
            _put(container, name, kept)
            return
        _put(container, name, None)
        return
    coerced = _value(attribute, value, op)
    if coerced is None and attribute.required:
        raise InvalidValue(f"{op.where}: {name} is required and cannot be null")
    if attribute.multi_valued:
        if op.op == "replace" or not isinstance(current, list):
            elements = list(coerced or [])
            written = elements
        else:
            elements = list(current)
            written = []
            for item in coerced or []:
                if item not in elements:
                    elements.append(item)
                    written.append(item)
        _enforce_primary(attribute, elements, written, op)
        _put(container, name, elements)
    elif attribute.type == "complex" and isinstance(coerced, dict):
        merged = dict(current) if isinstance(current, Mapping) else {}
        for key, sub_value in coerced.items():
            _put(merged, key, sub_value)
        _put(container, name, merged)
    else:
        _put(container, name, coerced)


def _same_value(element: Any, given: Any) -> bool:
    """Whether a stored element is the one a remove-with-value names: every given sub-attribute equal."""
    if isinstance(element, Mapping) and isinstance(given, Mapping):
        return bool(given) and all(_take(element, k) == v for k, v in given.items())
    return element == given


def _apply_sub(container: dict[str, Any], op: PatchOperation, target: _Target, value: Any) -> None:
    """``attr.sub``: a sub-attribute of a complex value, or of every element of a multi-valued one."""
    attribute, sub = target.attribute, target.sub
    assert sub is not None
    current = _take(container, attribute.name)
    if op.op == "remove":
        if sub.required:
            raise InvalidValue(f"{op.where}: {sub.name} is required and cannot be removed")
        new_value = None
    else:
        new_value = _value(sub, value, op)
    if attribute.multi_valued:
        elements = [dict(e) for e in current] if isinstance(current, list) else []
        if not elements and new_value is not None:
            elements = [{}]
        for element in elements:
            _put(element, sub.name, new_value)
        elements = [e for e in elements if e]
        if sub.name == "primary" and new_value is True and len(elements) > 1:
            raise InvalidValue(f"{op.where}: at most one value of {attribute.name} may be primary")
        _put(container, attribute.name, elements)
        return
    merged = dict(current) if isinstance(current, Mapping) else {}
    _put(merged, sub.name, new_value)
    _put(container, attribute.name, merged)


def _apply_filtered(container: dict[str, Any], op: PatchOperation, target: _Target, value: Any) -> None:
    """``attr[filter]`` and ``attr[filter].sub``."""
    attribute, sub, value_filter = target.attribute, target.filter_sub, target.value_filter
    assert value_filter is not None
    current = _take(container, attribute.name)
    elements = [dict(e) if isinstance(e, Mapping) else e for e in current] if isinstance(current, list) else []
    matched = [e for e in elements if isinstance(e, dict) and matches_element(value_filter, e)]

    if op.op == "remove":
        if sub is None:
            elements = [e for e in elements if not any(e is m for m in matched)]
        else:
            for element in matched:
                _put(element, sub.name, None)
            elements = [e for e in elements if e]
        _put(container, attribute.name, elements)
        return

    if sub is not None:
        new_value = _value(sub, value, op)
    else:
        if value is not None and not isinstance(value, Mapping):
            raise InvalidValue(f"{op.where}: the value must be an object of {attribute.name} sub-attributes")
        new_value = _value(attribute, value, op, element=True)

    written: list[dict[str, Any]] = []
    if not matched:
        pairs = _eq_pairs(value_filter)
        if pairs is None or not op.profile.allows(
            Tolerance.VALUE_PATH_CREATES, f"{op.where}: created a new value of {attribute.name}"
        ):
            raise NoTarget(f"{op.where}: the filter matches no value of {attribute.name}")
        element = dict(pairs)
        if sub is not None:
            _put(element, sub.name, new_value)
        else:
            for key, sub_value in (new_value or {}).items():
                _put(element, key, sub_value)
        elements.append(element)
        written.append(element)
    else:
        for element in matched:
            if sub is not None:
                _put(element, sub.name, new_value)
            elif op.op == "replace":
                element.clear()
                element.update(new_value or {})
            else:
                for key, sub_value in (new_value or {}).items():
                    _put(element, key, sub_value)
            written.append(element)
    elements = [e for e in elements if e]
    _enforce_primary(attribute, elements, [w for w in written if w], op)
    _put(container, attribute.name, elements)


# -- dispatch -------------------------------------------------------------------------------------


def _allow_remove_with_value(op: PatchOperation) -> None:
    """A ``remove`` that carries a value list: allowed only under ``remove_with_value``."""
    if not op.profile.allows(Tolerance.REMOVE_WITH_VALUE, f"{op.where}: removed the listed values only"):
        raise InvalidSyntax(
            f"{op.where}: a remove operation takes no value (RFC 7644 §3.5.2.2); select the values to remove "
            f'with a filter in the path, such as {op.path or "members"}[value eq "..."]'
        )


def _extension_of_path(path: str, resource: ResourceTypeDef) -> str | None:
    """The extension URN when ``path`` is exactly an extension schema URN (the whole extension)."""
    urn, rest = split_urn_path(path, resource)
    if urn is not None and not rest and urn.lower() != resource.schema.id.lower():
        return urn
    return None


def _unknown_key(op: PatchOperation, key: str, problem: str, *, schema: bool = False) -> None:
    """An unknown key of a path-less value map: skipped when the profile allows it, else invalidValue."""
    tolerance = Tolerance.UNKNOWN_SCHEMA_IGNORED if schema else Tolerance.UNKNOWN_ATTRIBUTE_IGNORED
    if not op.profile.allows(tolerance, f"{op.where}: ignored {key!r}"):
        raise InvalidValue(f"{op.where}: {problem}")


def _key_target(key: str, resource: ResourceTypeDef, op: PatchOperation, schema: str | None = None) -> _Target | None:
    """The target named by a key of a path-less value map, or None for an unknown key the profile skips.

    Plain attribute names (and, inside an extension's map, that extension's attribute names) are the
    RFC's form; ``name.givenName``, ``urn:...:attr`` and ``emails[type eq "work"].value`` need
    ``pathless_qualified_keys``.
    """
    if schema is None:
        urn, rest = split_urn_path(key, resource)
        qualified = urn is not None or "." in key or "[" in key
        if urn is None and key.lower().startswith("urn:"):
            _unknown_key(op, key, f"{key!r} names no schema of the {resource.name} resource", schema=True)
            return None
        if qualified and not op.profile.allows(Tolerance.PATHLESS_QUALIFIED_KEYS, f"{op.where}: key {key!r}"):
            raise InvalidValue(
                f"{op.where}: without a path, the value's keys must be attribute names (or an extension URN "
                f"holding an object of its attributes), got {key!r}; put {key!r} in the operation's path instead"
            )
        if "[" in key:
            try:
                return _resolve_target(parse_path(key), resource, op)
            except (InvalidFilter, InvalidPath) as exc:
                raise InvalidValue(f"{op.where}: the key {key!r} is not a valid attribute path: {exc.detail}") from None
        schema, key = (urn, rest) if urn is not None else (None, key)
    try:
        resolved: ResolvedAttribute = resolve_attribute(resource, key, None, schema)
    except LookupError as exc:
        _unknown_key(op, key, str(exc))
        return None
    return _Target(resolved.schema_urn, resolved.attribute, resolved.sub_attribute)


def _value_map_items(
    op: PatchOperation, resource: ResourceTypeDef, current_id: str | None
) -> list[tuple[_Target, Any]]:
    """The (target, value) pairs of a path-less add/replace, checked before anything is applied."""
    if not isinstance(op.value, Mapping):
        raise InvalidValue(f"{op.where}: without a path, the value must be an object of attributes")
    items: list[tuple[_Target, Any]] = []
    for key, value in op.value.items():
        if not isinstance(key, str):
            raise InvalidValue(f"{op.where}: attribute names must be strings, got {key!r}")
        lowered = key.lower()
        if lowered == "schemas" or lowered == "meta":
            continue
        if lowered == "id":
            # Okta echoes the resource's id in a path-less replace; only a different id is an error.
            if current_id is not None and value != current_id:
                raise Mutability(f"{op.where}: id is readOnly and cannot be changed")
            continue
        ext = _extension_of_path(key, resource)
        if ext is not None:
            if not isinstance(value, Mapping):
                raise InvalidValue(f"{op.where}: the value of {ext} must be an object of its attributes")
            # A serialised extension object may repeat its own "schemas"; it names no attribute.
            for k, v in value.items():
                if str(k).lower() != "schemas":
                    target = _key_target(str(k), resource, op, schema=ext)
                    if target is not None:
                        items.append((target, v))
            continue
        target = _key_target(key, resource, op)
        if target is not None:
            items.append((target, value))
    return items


def _apply_user_op(doc: _Doc, op: PatchOperation, resource: ResourceTypeDef, current_id: str | None) -> None:
    if op.path is None:
        if op.op == "remove":
            raise NoTarget(f"Operation {op.index} (remove): a remove needs a path")
        for target, value in _value_map_items(op, resource, current_id):
            _apply(doc, op, target, value)
        return
    ext = _extension_of_path(op.path, resource)
    if ext is not None:
        if op.op == "remove":
            doc.data.pop(ext, None)
            return
        if not isinstance(op.value, Mapping):
            raise InvalidValue(f"{op.where}: the value must be an object of the extension's attributes")
        for key, value in op.value.items():
            if str(key).lower() == "schemas":  # a serialised extension object may repeat its own "schemas"
                continue
            target = _key_target(str(key), resource, op, schema=ext)
            if target is not None:
                _apply(doc, op, target, value)
        return
    target = _resolve_target(parse_path(op.path), resource, op)
    _apply(doc, op, target, op.value)


def apply_user_patch(
    doc: Mapping[str, Any],
    operations: Sequence[PatchOperation],
    *,
    resource: ResourceTypeDef = USER_RESOURCE,
    current_id: str | None = None,
) -> dict[str, Any]:
    """Apply the parsed ``operations`` (:func:`~scim_service.schemas.messages.load_patch_op`) to the
    stored user document ``doc`` and return the new document.

    ``doc`` is never mutated. The result is in stored form: canonical top-level keys, extension
    attributes under their URN key, no ``id``/``meta``/``groups``/``schemas``. ``current_id`` (the
    user's id) lets an ``id`` echoed in a path-less value be checked. Each operation carries the
    request's IdP profile; the tolerances that fire are recorded on it. Raises
    :class:`InvalidSyntax`, :class:`InvalidValue`, :class:`InvalidPath`, :class:`NoTarget` or
    :class:`Mutability`.
    """
    state = _Doc(_canonical_copy(doc, resource), resource)
    for op in operations:
        _apply_user_op(state, op, resource, current_id)
    return state.data


# -- groups ---------------------------------------------------------------------------------------


class _MemberDeltas:
    """Membership changes folded in operation order (an add then a remove of one id ends removed)."""

    def __init__(self) -> None:
        self.clear = False
        self.add: dict[str, Member] = {}
        self.remove: dict[str, None] = {}  # an ordered set

    def added(self, members: list[Member]) -> None:
        for member in members:
            self.remove.pop(member.value, None)
            self.add[member.value] = member

    def removed(self, ids: list[str]) -> None:
        for member_id in ids:
            self.add.pop(member_id, None)
            if not self.clear:  # after a clear the member is gone anyway
                self.remove[member_id] = None

    def cleared(self) -> None:
        self.clear = True
        self.add.clear()
        self.remove.clear()


def _members(value: Any, op: PatchOperation) -> list[Member]:
    """Members from a value (a list of ``{"value": id, "type"?, "display"?}`` or one such object).

    A member without ``type`` is a User: RFC 7643 §4.2 makes ``type`` optional, and this server's groups
    hold users.
    """
    items = value if isinstance(value, list) else [value]
    out: list[Member] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise InvalidValue(f"{op.where}: each member must be an object with a value (the member's id)")
        member_id = get_ci(item, "value")
        if not isinstance(member_id, str) or not member_id.strip():
            raise InvalidValue(f"{op.where}: each member needs a value (the member's id), got {member_id!r}")
        member_type = get_ci(item, "type") or "User"
        if not isinstance(member_type, str) or member_type.lower() not in ("user", "group"):
            raise InvalidValue(f"{op.where}: a member's type must be User or Group, got {member_type!r}")
        display = get_ci(item, "display")
        out.append(Member(member_id, member_type.capitalize(), display if isinstance(display, str) else None))
    return out


def _member_ids(value: Any, op: PatchOperation) -> list[str]:
    return [m.value for m in _members(value, op)]


def _filter_member_ids(f: Filter, op: PatchOperation) -> list[str]:
    """The ids of ``members[value eq "a" or value eq "b"]``; any other filter is refused."""
    if isinstance(f, Or):
        return _filter_member_ids(f.left, op) + _filter_member_ids(f.right, op)
    if (
        isinstance(f, Compare)
        and f.op == "eq"
        and (f.path.sub_attr or "").lower() == "value"
        and isinstance(f.value, str)
    ):
        return [f.value]
    raise InvalidPath(
        f'{op.where}: members can be selected only by id (members[value eq "id"], optionally joined by or), '
        "because the server does not read the whole member list to evaluate other filters"
    )


def _group_members_op(
    deltas: _MemberDeltas, op: PatchOperation, path: PatchPath | None, resource: ResourceTypeDef
) -> None:
    if path is not None and path.attr.sub_attr is not None:
        raise InvalidPath(f"{op.where}: sub-attributes of members cannot be patched; add or remove whole members")
    if path is not None and path.value_filter is not None:
        if op.op != "remove":
            raise InvalidPath(f"{op.where}: a filtered members path is supported only for remove")
        if path.sub_attr is not None:
            raise InvalidPath(f"{op.where}: sub-attributes of members cannot be removed")
        try:
            resolved = resolve_filter(ValuePath(path.attr, path.value_filter), resource)
        except InvalidFilter as exc:
            raise InvalidPath(f"{op.where}: {exc.detail}") from None
        assert isinstance(resolved, ValuePath)
        deltas.removed(_filter_member_ids(resolved.filter, op))
        return
    if op.op == "add":
        deltas.added(_members(op.value, op) if op.value is not None else [])
    elif op.op == "replace":
        # An empty list replaces the members with none (RFC 7643 §2.5: [] is unassigned).
        deltas.cleared()
        deltas.added(_members(op.value, op) if op.value not in (None, []) else [])
    elif op.value is None or op.value == []:
        deltas.cleared()  # remove members without a value: every member goes (RFC 7644 §3.5.2.2)
    else:
        _allow_remove_with_value(op)  # strict profiles refuse it rather than empty the group
        deltas.removed(_member_ids(op.value, op))


def _is_members(attribute: Attribute) -> bool:
    return attribute.name == "members"


def apply_group_patch(
    data: Mapping[str, Any],
    operations: Sequence[PatchOperation],
    *,
    resource: ResourceTypeDef = GROUP_RESOURCE,
    current_id: str | None = None,
) -> GroupChanges:
    """Turn the parsed PATCH ``operations`` into one :class:`GroupChanges` without reading the group's members.

    ``data`` is the group's stored attribute document (``displayName``, ``externalId``, extensions);
    ``data`` of the result is the new document, or None when no attribute changed. ``members``
    operations become deltas: ``add`` adds, ``replace`` clears then adds, ``remove`` with a
    ``members[value eq "id"]`` filter (or, under ``remove_with_value``, a value list) removes those ids,
    ``remove members`` alone clears. Raises the errors of :func:`apply_user_patch`.
    """
    original = _canonical_copy(data, resource)
    doc = _Doc(copy.deepcopy(original), resource)
    deltas = _MemberDeltas()
    for op in operations:
        if op.path is None:
            if op.op == "remove":
                raise NoTarget(f"Operation {op.index} (remove): a remove needs a path")
            for target, value in _value_map_items(op, resource, current_id):
                if _is_members(target.attribute) and target.sub is None and target.value_filter is None:
                    members_op = PatchOperation(op.op, "members", value, True, op.index, op.profile)
                    _group_members_op(deltas, members_op, None, resource)
                elif _is_members(target.attribute):
                    raise InvalidValue(f"{op.where}: sub-attributes of members cannot be patched")
                else:
                    _apply(doc, op, target, value)
            continue
        ext = _extension_of_path(op.path, resource)
        if ext is not None:
            _apply_user_op(doc, op, resource, current_id)  # a whole extension: as for a user
            continue
        path = parse_path(op.path)
        target = _resolve_target(path, resource, op)
        if _is_members(target.attribute):
            _group_members_op(deltas, op, path, resource)
        else:
            _apply(doc, op, target, op.value)
    return GroupChanges(
        data=doc.data if doc.data != original else None,
        add=tuple(deltas.add.values()),
        remove=tuple(deltas.remove),
        clear_members=deltas.clear,
    )
