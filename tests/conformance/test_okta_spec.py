"""Okta's "SCIM 2.0 SPEC Test" (Runscope exports of 2016, 2017 and 2024) replayed against a live server.

Each export runs against its own fresh organization, seeded the way Okta's guide asks ("create at least one
user in your SCIM server before running the test suite"): one user with a name and a work email, and one group
holding it (the 2016 export's Groups script wants at least one group). The initial variables are the ones
Okta's "Initial Script" sets (randomUsername is an email address, randomEmail equals it, randomUsernameCaps is
it upper-cased). One test per request step; a failure names the step and every assertion that failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import runscope
from conftest import CONFORMANCE_DIR, LiveServer, seed_group, seed_user

pytestmark = pytest.mark.slow

EXPORTS = {
    "2016": "Okta-SCIM-20-SPEC-Test.json",
    "2017": "Okta-SCIM-20-SPEC-Test-Latest.json",
    "2024": "Okta-SCIM-20-SPEC-Test.2024.json",
}


@dataclass(frozen=True)
class RfcException:
    """An assertion the export makes that the RFC contradicts; the test checks the RFC's behaviour instead."""

    reason: str
    rfc_check: Callable[[runscope.Response], bool]
    rfc_expectation: str


def _one_match(response: runscope.Response) -> bool:
    body = response.json if isinstance(response.json, dict) else {}
    return response.status == 200 and body.get("totalResults") == 1


@dataclass(frozen=True)
class RfcRewrite:
    """A step whose request is not valid SCIM: the literal request must get the RFC's answer, and the step is
    then replayed in its RFC form so its assertions (and the variables later steps need) still count."""

    reason: str
    rfc_url: str
    literal_check: Callable[[runscope.Response], bool]
    literal_expectation: str


def _invalid_filter(response: runscope.Response) -> bool:
    body = response.json if isinstance(response.json, dict) else {}
    return response.status == 400 and body.get("scimType") == "invalidFilter"


# (export, step index) -> the RFC form of a request the export sends malformed.
RFC_REWRITES: dict[tuple[str, int], RfcRewrite] = {
    ("2017", 14): RfcRewrite(
        reason=(
            "The 2017 export filters with an unquoted value, `userName eq runscope...@example.com`. RFC 7644 "
            "§3.4.2.2 (Figure 1 and its ABNF) makes compValue a JSON literal, so a string must be quoted; a filter "
            "that does not comply is answered 400 invalidFilter (§3.12). The 2016 and 2024 exports quote it. The "
            'step is replayed with `userName eq "..."` and all 13 of its assertions are checked on that.'
        ),
        rfc_url='{{SCIMBaseURL}}/Users?count=1&startIndex=1&filter=userName eq "{{randomUsername}}"',
        literal_check=_invalid_filter,
        literal_expectation="400 with scimType invalidFilter",
    ),
}

# (export, step index, assertion label) -> why the RFC forbids what the export expects, and what it requires.
RFC_EXCEPTIONS: dict[tuple[str, int, str], RfcException] = {
    ("2017", 28, "response_status equal_number '400'"): RfcException(
        reason=(
            "The 2017 export rewrote this step's URL from the malformed `filter=<USERNAME>` (2016, rightly 400) to "
            'the well-formed `filter=userName eq "<USERNAME IN CAPITALS>"` but kept the 400. RFC 7644 §3.4.2.2 '
            "answers a valid filter with 200 and a ListResponse (400 invalidFilter is only for a filter that does "
            "not parse), and RFC 7643 §4.1.1 makes userName caseExact=false, so the filter matches the user "
            "created earlier. The 2024 export expects 200 for the same request."
        ),
        rfc_check=_one_match,
        rfc_expectation="200 with totalResults 1 (the user, matched case-insensitively)",
    ),
    ("2017", 22, "response_json totalResults equal_number '0'"): RfcException(
        reason=(
            "The 2017 export moved 'Create Okta user' (step 12) before this check, and its step 14 asserts the "
            "created user's emails[0].value equals {{randomUsername}}, i.e. randomEmail == randomUsername (as "
            'Okta\'s Initial Script sets them). So `userName eq "{{randomEmail}}"` names the user created in '
            "step 12 and RFC 7644 §3.4.2.2 (`eq` on userName, caseExact=false per RFC 7643 §4.1.1) requires it in "
            "the result: no server can pass both steps. The 2016 and 2024 exports run this check before the create."
        ),
        rfc_check=_one_match,
        rfc_expectation="200 with totalResults 1 (the user created in step 12)",
    ),
}


def _initial_variables(base_url: str, token: str) -> dict[str, str]:
    """What Okta's Runscope "Initial Variables" and "Initial Script" set, with fresh random values."""
    tag = uuid.uuid4().hex[:10]
    username = f"runscope{tag}.tester@example.com"
    return {
        "SCIMBaseURL": base_url,
        "auth": f"Bearer {token}",
        "InvalidUserEmail": "abcdefgh@example.com",
        "UserIdThatDoesNotExist": "010101001010101011001010101011",
        "randomGivenName": f"Runscope{tag}",
        "randomFamilyName": "Tester",
        "randomUsername": username,
        "randomEmail": username,
        "randomUsernameCaps": username.upper(),
    }


@dataclass
class OktaRun:
    """One export replayed in order against its own organization; responses cached by step index."""

    steps: list[runscope.Step]
    variables: dict[str, str]
    responses: dict[int, runscope.Response] = field(default_factory=dict)
    literal_responses: dict[int, runscope.Response] = field(default_factory=dict)
    extraction_problems: dict[int, list[str]] = field(default_factory=dict)

    export: str = ""

    def response_for(self, step: runscope.Step) -> runscope.Response:
        """The response to ``step``, replaying every earlier step first (they set the variables it uses)."""
        for earlier in self.steps:
            if earlier.index > step.index:
                break
            if earlier.index not in self.responses:
                rewrite = RFC_REWRITES.get((self.export, earlier.index))
                if rewrite is not None:
                    self.literal_responses[earlier.index] = runscope.send(earlier, self.variables)
                sent = earlier if rewrite is None else replace(earlier, url=rewrite.rfc_url)
                response = runscope.send(sent, self.variables)
                self.responses[earlier.index] = response
                self.extraction_problems[earlier.index] = runscope.extract(earlier, response, self.variables)
        return self.responses[step.index]


def _cases() -> list:
    if not CONFORMANCE_DIR.is_dir():
        return [pytest.param(None, None, id="okta-data-missing")]
    cases = []
    for export, filename in EXPORTS.items():
        for step in runscope.load_steps(CONFORMANCE_DIR / "okta" / filename):
            cases.append(pytest.param(export, step, id=f"{export}-{step.id}"))
    return cases


@pytest.fixture(scope="module")
def okta_run(live_server: LiveServer, conformance_dir: Path) -> Callable[[str], OktaRun]:
    """Returns the run of an export, creating its seeded organization on first use."""
    runs: dict[str, OktaRun] = {}

    def get(export: str) -> OktaRun:
        if export not in runs:
            # An organization created with the defaults only (profile auto).
            token = live_server.new_org(f"okta-{export}")
            seeded = seed_user(live_server, token, f"existing.{export}@example.com", "Existing", "Oktauser")
            seed_group(live_server, token, f"Okta seed group {export}", [seeded["id"]])
            steps = runscope.load_steps(conformance_dir / "okta" / EXPORTS[export])
            runs[export] = OktaRun(steps, _initial_variables(live_server.base_url, token), export=export)
        return runs[export]

    return get


@pytest.mark.parametrize(("export", "step"), _cases())
def test_okta_step(okta_run: Callable[[str], OktaRun], export: str | None, step: runscope.Step | None) -> None:
    """Every assertion (and translated script) of one step passes, or the RFC's behaviour where the RFC differs."""
    if export is None or step is None:
        pytest.fail("unreachable: conformance_dir skips or fails first")
    run = okta_run(export)
    response = run.response_for(step)
    failures: list[str] = list(run.extraction_problems.get(step.index, []))
    rewrite = RFC_REWRITES.get((export, step.index))
    if rewrite is not None:
        literal = run.literal_responses[step.index]
        if not rewrite.literal_check(literal):
            failures.append(
                f"literal (non-RFC) request: expected {rewrite.literal_expectation}, "
                f"got {literal.status} {literal.text[:300]!r}"
            )
    for assertion in step.assertions:
        excepted = RFC_EXCEPTIONS.get((export, step.index, assertion.label))
        if excepted is not None:
            if not excepted.rfc_check(response):
                failures.append(
                    f"{assertion.label} (RFC exception: expected {excepted.rfc_expectation}; "
                    f"got {response.status} {response.text[:300]!r})"
                )
            continue
        outcome = runscope.check(assertion, response, run.variables)
        if not outcome.passed:
            failures.append(f"{outcome.label}: {outcome.detail}")
    for script in step.scripts:
        outcome = runscope.script_check(script)(response)
        if not outcome.passed:
            failures.append(f"{outcome.label}: {outcome.detail}")
    url = runscope.request_url(step if rewrite is None else replace(step, url=rewrite.rfc_url), run.variables)
    assert not failures, f"{export} step {step.id} ({step.method} {url}) failed:\n  " + "\n  ".join(failures)


def test_rfc_exceptions_name_real_assertions(conformance_dir: Path) -> None:
    """Each encoded exception points at an assertion that exists, so a changed export cannot hide a failure."""
    for export, index, label in RFC_EXCEPTIONS:
        steps = {s.index: s for s in runscope.load_steps(conformance_dir / "okta" / EXPORTS[export])}
        assert index in steps, (export, index)
        assert label in [a.label for a in steps[index].assertions], (export, index, label)
    for export, index in RFC_REWRITES:
        steps = {s.index: s for s in runscope.load_steps(conformance_dir / "okta" / EXPORTS[export])}
        assert index in steps, (export, index)
