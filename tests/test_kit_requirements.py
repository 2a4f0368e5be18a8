"""The kit's requirements gate and its fixtures, each run in a separate pytest session (``pytester``).

A test that declares a requirement (``@requires.etag``) skips when the backend declares the capability
away, before its other fixtures build anything, and the skip reason quotes the declaration. The kit's
fixtures are its own inside the kit classes (a backend author's ``tenant`` fixture cannot leak in), and
the same fixtures serve other tests through the plugin ``scim_service.testing.fixtures``.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SOURCE = """
import dataclasses

import pytest
from scim_sql.backend import SqlBackend

from scim_service.model import Tenant
from scim_service.testing import ConcurrencyTests, KitBase, UserCrudTests, VersionTests, requires


@pytest.fixture
def backend(tmp_path):
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/kit.db"})
    backend.migrate()
    backend.capabilities = dataclasses.replace(backend.capabilities, **DECLARED)
    yield backend
    backend.close()
"""


def run(pytester: pytest.Pytester, declared: dict[str, object], body: str, *args: str) -> pytest.HookRecorder:
    """Run ``body`` (test classes) against a SQLite SqlBackend whose capabilities are changed by ``declared``."""
    pytester.makepyfile(test_gate=SOURCE + f"\nDECLARED = {declared!r}\n\n{body}")
    return pytester.inline_run("-p", "no:cacheprovider", *args)


def skip_reasons(recorder: pytest.HookRecorder) -> dict[str, str]:
    """The skipped tests of a run (by test name) and their skip reasons."""
    reasons = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        if report.skipped:
            _path, _line, reason = report.longrepr
            reasons[report.nodeid.rpartition("::")[2]] = reason.removeprefix("Skipped: ")
    return reasons


def test_declared_away_capabilities_skip_their_tests_quoting_the_declaration(pytester: pytest.Pytester) -> None:
    body = "class TestKit(VersionTests, ConcurrencyTests):\n    pass\n"
    recorder = run(pytester, {"etag": False, "concurrency": False}, body)
    recorder.assertoutcome(skipped=11)
    reasons = skip_reasons(recorder)
    assert reasons["test_every_user_write_gives_a_new_version"] == "SqlBackend declares capabilities.etag=False"
    assert reasons["test_racing_creates_of_one_username_one_wins"] == (
        "SqlBackend declares capabilities.concurrency=False"
    )
    # A test needing two things names every declaration that stands against it.
    assert reasons["test_racing_replaces_with_one_version_one_wins"] == (
        "SqlBackend declares capabilities.concurrency=False; SqlBackend declares capabilities.etag=False"
    )


def test_met_requirements_run(pytester: pytest.Pytester) -> None:
    body = "class TestKit(VersionTests):\n    pass\n"
    run(pytester, {"etag": True}, body).assertoutcome(passed=5)


def test_the_gate_runs_before_the_tests_other_fixtures(pytester: pytest.Pytester) -> None:
    body = """
class TestGate(KitBase):
    @pytest.fixture
    def expensive(self):
        raise AssertionError("this fixture must not run for a test the backend cannot serve")

    @requires.cursor
    def test_pages_with_cursors(self, backend, expensive):
        raise AssertionError("unreachable")

    @requires.flat_groups
    def test_runs_without_nested_groups(self, backend):
        assert not backend.capabilities.nested_groups
"""
    recorder = run(pytester, {"cursor": False, "nested_groups": False}, body)
    recorder.assertoutcome(passed=1, skipped=1)
    assert skip_reasons(recorder) == {"test_pages_with_cursors": "SqlBackend declares capabilities.cursor=False"}


def test_kit_classes_use_the_kits_own_tenant_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def tenant():
    return "the backend author's own tenant fixture, which means something else"
"""
    )
    body = "class TestKit(UserCrudTests):\n    pass\n"
    run(pytester, {}, body, "-k", "round_trip_every_user_attribute or returns_id").assertoutcome(passed=2)


def test_the_plugin_serves_the_same_fixtures_to_other_tests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["scim_service.testing.fixtures"]\n')
    pytester.makepyfile(
        test_plain="""
from scim_service.model import SeatPolicy, Tenant


def test_fixtures(tenant, other_tenant, make_tenant):
    limited = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
    assert all(isinstance(t, Tenant) for t in (tenant, other_tenant, limited))
    assert len({tenant.id, other_tenant.id, limited.id}) == 3
    assert (limited.max_seats, limited.seat_policy) == (1, SeatPolicy.ACTIVE)
    assert tenant.max_seats is None
"""
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q").assert_outcomes(passed=1)
