"""The conformance kit must fail backends that break the contract, and say which rule they broke.

Each case runs the relevant kit mixins in a separate pytest session (``pytester``) against a
deliberately broken subclass of SqlBackend on a SQLite file, and checks the session fails with the
rule in its output. A control run shows the same mixins pass on the unbroken backend.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

BROKEN_BACKENDS = '''
import dataclasses

import pytest
import sqlalchemy as sa

from scim_service.testing import PagingTests, SoftDeleteTests, UniquenessTests
from scim_sql.backend import SqlBackend
from scim_sql.tables import users


class CaseSensitiveUniqueness(SqlBackend):
    """Compares userNames case-sensitively, in its check and in its unique index (a forgotten lower())."""

    def migrate(self):
        super().migrate()
        with self.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ux_scim_users_tenant_user_name")
            conn.exec_driver_sql("CREATE UNIQUE INDEX ux_broken_user_name ON scim_users (tenant_id, user_name)")

    def _find_conflict(self, conn, tenant, cols, exclude_id):
        conflict = super()._find_conflict(conn, tenant, cols, exclude_id)
        if conflict is not None and conflict.existing_id is not None:
            holder = conn.execute(sa.select(users.c.user_name).where(users.c.id == conflict.existing_id)).scalar_one()
            if holder != cols.user_name and holder.lower() == cols.user_name.lower():
                return None
        return conflict


class PageSizeAsTotal(SqlBackend):
    """Reports the number of resources on the page as total_results."""

    def list_users(self, tenant, query):
        page = super().list_users(tenant, query)
        return dataclasses.replace(page, total_results=len(page.resources))


class FindsSoftDeleted(SqlBackend):
    """Lets get_user find a soft-deleted user."""

    def get_user(self, tenant, user_id, *, include_groups=True, include_deleted=False):
        return super().get_user(tenant, user_id, include_groups=include_groups, include_deleted=True)


CLASSES = {
    "SqlBackend": SqlBackend,
    "CaseSensitiveUniqueness": CaseSensitiveUniqueness,
    "PageSizeAsTotal": PageSizeAsTotal,
    "FindsSoftDeleted": FindsSoftDeleted,
}


@pytest.fixture
def backend(tmp_path):
    backend = CLASSES[BACKEND].from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/kit.db"})
    backend.migrate()
    yield backend
    backend.close()
'''


def run_kit(pytester: pytest.Pytester, backend: str, mixin: str) -> pytest.RunResult:
    """Run one kit mixin against one backend class of BROKEN_BACKENDS in a fresh pytest session."""
    source = BROKEN_BACKENDS + f"\nBACKEND = {backend!r}\n\n\nclass TestKit({mixin}):\n    pass\n"
    pytester.makepyfile(test_broken=source)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")


def assert_fails_naming(result: pytest.RunResult, test_name: str, rule: str) -> None:
    """The session failed, the named test is among the failures, and the output states the rule."""
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, f"the kit must fail the broken backend: {outcomes}"
    result.stdout.fnmatch_lines([f"FAILED *{test_name}*"])
    result.stdout.fnmatch_lines([f"*{rule}*"])


def test_kit_passes_the_unbroken_sql_backend(pytester: pytest.Pytester) -> None:
    for mixin in ("UniquenessTests", "PagingTests", "SoftDeleteTests"):
        result = run_kit(pytester, "SqlBackend", mixin)
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed", 0) == 0 and outcomes.get("passed", 0) > 0, (mixin, outcomes)


def test_kit_fails_case_sensitive_uniqueness(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "CaseSensitiveUniqueness", "UniquenessTests")
    assert_fails_naming(
        result,
        "test_create_user_refuses_a_username_differing_only_in_case",
        "create_user must refuse a userName that differs only in case",
    )
    # The rules that hold regardless of case must still pass: the kit names the broken rule, not everything.
    result.stdout.no_fnmatch_line("FAILED *test_create_user_refuses_a_taken_username*")


def test_kit_fails_page_size_as_total(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "PageSizeAsTotal", "PagingTests")
    assert_fails_naming(
        result,
        "test_total_results_is_exact_on_every_page",
        "list_users total_results must be the exact number of matches, not the page size",
    )
    result.stdout.fnmatch_lines(["FAILED *test_total_results_counts_filter_matches*"])


def test_kit_fails_a_findable_soft_deleted_user(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "FindsSoftDeleted", "SoftDeleteTests")
    assert_fails_naming(
        result, "test_soft_deleted_user_is_not_found", "get_user must raise NotFound for a soft-deleted user"
    )
