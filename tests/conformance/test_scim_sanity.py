"""scim-sanity's conformance probe (PyPI ``scim-sanity``, strict mode) against a live server.

The probe runs a create/read/replace/patch/delete lifecycle for Users and Groups, searches, pages and
provokes errors, and reports each test as pass, fail, warning, skip or error. Every test must pass (skips
are only the Agent/AgenticApplication resource types, which this server does not offer), unless it is in
``KNOWN_GAPS`` with the server change it waits for: then the test xfails with the reason, and a known gap
that no longer occurs fails the test so the list cannot go stale.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LiveServer, skip_or_fail

pytestmark = pytest.mark.slow

SCIM_SANITY = Path(sys.executable).parent / "scim-sanity"

# Probe test name -> what the server does and the decision it waits for.
KNOWN_GAPS: dict[str, str] = {
    "PATCH /Groups/{id}": (
        "Group PATCH answers 204 unless attributes are asked for (RFC 7644 §3.5.2 allows 200 with the resource "
        "or 204); scim-sanity requires 200 with the group. Decide in scim_service/api/resources.py."
    ),
    "PATCH /Groups/{id} remove members": "As above: 204 for a Group PATCH.",
    "PATCH /Groups/{id} add member": (
        "Adding member 'fake-member-id' (no such user) is refused with 400; scim-sanity expects 200 (it notes "
        "RFC 7644 §3.5.2 does not require the member to exist)."
    ),
}


def test_scim_sanity_probe(live_server: LiveServer, tmp_path: Path) -> None:
    """`scim-sanity probe --json-output` reports no failure and no error."""
    if not SCIM_SANITY.exists() and shutil.which("scim-sanity") is None:
        skip_or_fail("scim-sanity is not installed; it is in the `test` extra")
    executable = str(SCIM_SANITY) if SCIM_SANITY.exists() else "scim-sanity"
    token = live_server.new_org("scim-sanity", "--max-seats", "1000")
    done = subprocess.run(
        [executable, "probe", live_server.base_url, "--token", token, "--i-accept-side-effects", "--json-output"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        pytest.fail(
            f"scim-sanity printed no JSON report (exit {done.returncode}): {done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    results = report["results"]
    assert results, "scim-sanity ran no test"
    bad = [r for r in results if r["status"] not in ("pass", "skip")]
    skipped = [r["name"] for r in results if r["status"] == "skip"]
    assert all("Agent" in name for name in skipped), f"unexpected skips: {skipped}"
    unexpected = [r for r in bad if r["name"] not in KNOWN_GAPS]
    details = [f"{r['status']} {r['name']}: {r.get('message')}" for r in unexpected]
    assert not unexpected, f"scim-sanity {report['summary']}; failures:\n  " + "\n  ".join(details)
    fixed = [name for name in KNOWN_GAPS if name not in {r["name"] for r in bad}]
    assert not fixed, f"these known gaps no longer occur; remove them from KNOWN_GAPS: {fixed}"
    if bad:
        pytest.xfail(f"scim-sanity {report['summary']}; known gaps: " + "; ".join(KNOWN_GAPS[r["name"]] for r in bad))
