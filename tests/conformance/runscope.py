"""A small replayer of Runscope API-test exports (the format of Okta's "SCIM 2.0 SPEC Test").

An export is a JSON document whose ``steps`` are requests and pauses. A request step has a method, a URL
template, headers and a body with ``{{variable}}`` placeholders, ``variables`` to extract from the response
(JSON paths such as ``Resources[0].id``) and ``assertions``: a source (status, JSON property, headers, text,
response time), a comparison named as Runscope names it, and an expected value. Pauses are not replayed (they
only gave Runscope's hosted servers time). Post-response ``scripts`` are JavaScript; the runner does not
execute JavaScript, so each script it knows is translated into a Python check, and an unknown script fails
loudly instead of passing silently.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([^}\s]+)\s*\}\}")
_MISSING = object()


class RunscopeError(Exception):
    """The export uses something this runner does not implement, or a variable has no value."""


@dataclass(frozen=True)
class Assertion:
    """One Runscope assertion: ``source`` (+ ``property``) compared to ``value`` with ``comparison``."""

    source: str
    comparison: str
    property: str | None
    value: str | None

    @property
    def label(self) -> str:
        """A readable name, e.g. ``response_json totalResults equal_number 0``."""
        parts = [self.source, self.property or "", self.comparison, "" if self.value is None else repr(self.value)]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Step:
    """One request step of an export, with its position among the export's steps."""

    index: int
    note: str
    method: str
    url: str
    headers: dict[str, list[str]]
    body: str
    variables: list[dict[str, str]]
    assertions: list[Assertion]
    scripts: list[str]

    @property
    def id(self) -> str:
        """A short test id: the step's position and its note."""
        note = re.sub(r"[^A-Za-z0-9]+", "-", self.note).strip("-")
        return f"{self.index:02d}-{note}"


@dataclass
class Response:
    """What a replayed request got back."""

    status: int
    headers: dict[str, str]
    text: str
    elapsed_ms: float
    json: Any = field(default=_MISSING)


@dataclass(frozen=True)
class Outcome:
    """The result of one assertion or script check."""

    label: str
    passed: bool
    detail: str


def load_steps(path: Path) -> list[Step]:
    """The request steps of the export at ``path`` in order (pauses and steps marked ``skipped`` left out)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    steps: list[Step] = []
    for index, raw in enumerate(document["steps"]):
        kind = raw.get("step_type")
        if kind == "pause" or raw.get("skipped"):
            continue
        if kind != "request":
            raise RunscopeError(f"{path.name} step {index}: unsupported step_type {kind!r}")
        headers = {
            name: [values] if isinstance(values, str) else list(values) for name, values in raw["headers"].items()
        }
        steps.append(
            Step(
                index=index,
                note=raw.get("note") or "",
                method=raw["method"],
                url=raw["url"],
                headers=headers,
                body=raw.get("body") or "",
                variables=list(raw.get("variables") or []),
                assertions=[
                    Assertion(a["source"], a["comparison"], a.get("property"), a.get("value"))
                    for a in raw.get("assertions") or []
                ],
                scripts=[s for s in raw.get("scripts") or [] if s.strip()],
            )
        )
    return steps


def substitute(template: str, variables: dict[str, str]) -> str:
    """Replace every ``{{name}}`` in ``template``; a name without a value is an error, never an empty string."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise RunscopeError(f"no value for variable {{{{{name}}}}} in {template!r}")
        return variables[name]

    return _PLACEHOLDER.sub(value, template)


def json_property(document: Any, path: str) -> Any:
    """The value at a Runscope JSON path (``a.b[0].c``); ``_MISSING`` when absent.

    A key applied to a list (``emails.value``) projects it over the list's items, as Runscope's path
    evaluator does for arrays.
    """
    current = document
    for segment in path.split("."):
        match = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", segment)
        if match is None:
            raise RunscopeError(f"unsupported JSON path segment {segment!r} in {path!r}")
        key, indexes = match.group(1), [int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))]
        if key:
            if isinstance(current, dict):
                current = current.get(key, _MISSING)
            elif isinstance(current, list):
                current = [item[key] for item in current if isinstance(item, dict) and key in item]
            else:
                return _MISSING
        for i in indexes:
            if not isinstance(current, list) or i >= len(current):
                return _MISSING
            current = current[i]
        if current is _MISSING:
            return _MISSING
    return current


def _as_text(value: Any) -> str:
    """How Runscope renders a JSON value for a string comparison (JSON literals, not Python's)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == "" or value == [] or value == {}


def _compare(comparison: str, actual: Any, expected: str | None) -> bool:
    if comparison == "equal":
        return actual is not _MISSING and _as_text(actual) == expected
    if comparison == "not_equal":
        return actual is _MISSING or _as_text(actual) != expected
    if comparison == "equal_number":
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and a == e
    if comparison in ("is_less_than", "is_less_than_or_equal", "is_greater_than", "is_greater_than_or_equal"):
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            return False
        return {
            "is_less_than": a < e,
            "is_less_than_or_equal": a <= e,
            "is_greater_than": a > e,
            "is_greater_than_or_equal": a >= e,
        }[comparison]
    if comparison == "empty":
        return _empty(actual)
    if comparison == "not_empty":
        return not _empty(actual)
    if comparison == "is_null":
        return actual is None
    if comparison == "is_a_number":
        return isinstance(actual, int | float) and not isinstance(actual, bool)
    if comparison == "has_key":
        return isinstance(actual, dict) and expected in actual
    if comparison == "has_value":
        if not isinstance(actual, list):
            return False
        if expected is None:  # no value named: the array must hold at least one non-empty value
            return any(not _empty(item) for item in actual)
        return any(_as_text(item) == expected for item in actual)
    if comparison in ("contains", "does_not_contain"):
        if isinstance(actual, list):
            found = any(_as_text(item) == expected for item in actual)
        elif actual is _MISSING:
            found = False
        else:
            found = str(expected) in _as_text(actual)
        return found if comparison == "contains" else not found
    raise RunscopeError(f"unsupported comparison {comparison!r}")


def check(assertion: Assertion, response: Response, variables: dict[str, str]) -> Outcome:
    """Evaluate one assertion against ``response`` (expected values may hold ``{{variables}}``)."""
    expected = None if assertion.value is None else substitute(assertion.value, variables)
    if assertion.source == "response_status":
        actual: Any = response.status
    elif assertion.source == "response_time":
        actual = response.elapsed_ms
    elif assertion.source == "response_headers":
        actual = response.headers.get((assertion.property or "").lower(), _MISSING)
    elif assertion.source == "response_text":
        actual = response.text
    elif assertion.source == "response_json":
        if response.json is _MISSING:
            return Outcome(assertion.label, False, f"response is not JSON: {response.text[:300]!r}")
        actual = response.json if not assertion.property else json_property(response.json, assertion.property)
    else:
        raise RunscopeError(f"unsupported assertion source {assertion.source!r}")
    passed = _compare(assertion.comparison, actual, expected)
    shown = "<missing>" if actual is _MISSING else _as_text(actual)
    return Outcome(assertion.label, passed, f"actual {shown[:300]}, expected {assertion.comparison} {expected!r}")


ScriptCheck = Callable[[Response], Outcome]


def _groups_array_or_none(response: Response) -> Outcome:
    # 2024 script: `if (max === 0) assert("nogroups", ...)` (a truthy string: passes) `else if (max >= 1 &&
    # Array.isArray(res)) assert.ok(true)`: it only fails when the body cannot be parsed.
    data = response.json if isinstance(response.json, dict) else {}
    ok = response.json is not _MISSING and (data.get("totalResults") == 0 or isinstance(data.get("Resources"), list))
    return Outcome("script: no groups, or Resources is an Array", ok, f"body {response.text[:300]!r}")


def _groups_at_least_one(response: Response) -> Outcome:
    # 2016 script: exists = max >= 1 && Array.isArray(res); assert.ok(exists, "Resources is of type Array").
    data = response.json if isinstance(response.json, dict) else {}
    total = data.get("totalResults")
    ok = isinstance(total, int) and total >= 1 and isinstance(data.get("Resources"), list)
    return Outcome("script: totalResults >= 1 and Resources is an Array", ok, f"body {response.text[:300]!r}")


def _resources_is_array(response: Response) -> Outcome:
    # 2017 script: exists = Array.isArray(res); assert.ok(exists, "Resources is of type Array").
    data = response.json if isinstance(response.json, dict) else {}
    ok = isinstance(data.get("Resources"), list)
    return Outcome("script: Resources is an Array", ok, f"body {response.text[:300]!r}")


def script_check(script: str) -> ScriptCheck:
    """The Python translation of a known post-response script; unknown scripts raise ``RunscopeError``."""
    compact = re.sub(r"\s+", " ", script)
    if "No Groups found in the endpoint" in compact:
        return _groups_array_or_none
    if "max >= 1 && Array.isArray(res)" in compact:
        return _groups_at_least_one
    if "exists = Array.isArray(res)" in compact or "if (Array.isArray(res))" in compact:
        return _resources_is_array
    raise RunscopeError(f"no Python translation for this post-response script: {script[:200]!r}")


def request_url(step: Step, variables: dict[str, str]) -> str:
    """The step's URL with variables substituted and spaces, quotes and the like percent-encoded."""
    return urllib.parse.quote(substitute(step.url, variables), safe="/:?&=%@,;+!$'()*~#")


def send(step: Step, variables: dict[str, str], timeout: float = 30) -> Response:
    """Replay one request step as Runscope would and return the response (no assertion checked)."""
    body = substitute(step.body, variables).encode() if step.body else None
    request = urllib.request.Request(request_url(step, variables), data=body, method=step.method)
    for name, values in step.headers.items():
        for value in values:
            request.add_header(name, substitute(value, variables))
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as raw:
            status, headers, payload = raw.status, dict(raw.headers.items()), raw.read()
    except urllib.error.HTTPError as error:
        status, headers, payload = error.code, dict(error.headers.items()), error.read()
    elapsed_ms = (time.perf_counter() - started) * 1000
    text = payload.decode("utf-8", errors="replace")
    response = Response(status, {k.lower(): v for k, v in headers.items()}, text, elapsed_ms)
    with contextlib.suppress(ValueError):  # not JSON: assertions on JSON then fail with the text shown
        response.json = json.loads(text)
    return response


def extract(step: Step, response: Response, variables: dict[str, str]) -> list[str]:
    """Set the step's variables from ``response``; returns a message per variable that could not be set."""
    problems: list[str] = []
    for spec in step.variables:
        if spec.get("source") != "response_json":
            raise RunscopeError(f"step {step.id}: unsupported variable source {spec.get('source')!r}")
        value = _MISSING if response.json is _MISSING else json_property(response.json, spec["property"])
        if value is _MISSING or value is None:
            problems.append(f"variable {spec['name']} from {spec['property']}: not in the response")
        else:
            variables[spec["name"]] = _as_text(value)
    return problems
