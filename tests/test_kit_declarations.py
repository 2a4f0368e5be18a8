"""The kit's declared limits (``capabilities.filter_operators`` / ``capabilities.sort_attributes``).

A declared limit lets a backend refuse exactly those matrix cases with InvalidFilter / InvalidValue (the
test skips, saying why); it never excuses a wrong answer, and an undeclared refusal fails. Each case runs
the kit in a separate pytest session (``pytester``) on a SQLite SqlBackend subclass, which needs no slapd.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SOURCE = """
import dataclasses

import pytest

from scim_service.errors import InvalidFilter, InvalidValue
from scim_service.model import Capabilities
from scim_service.testing import FilterTests, SortTests
from scim_sql.backend import SqlBackend

GROUP_OPS = {"displayName": ["eq", "ne", "co", "sw", "ew", "pr"], "externalId": ["eq", "pr"],
             "members.value": ["eq", "ne", "pr"], "id": ["eq"], "meta.lastModified": ["gt"]}
DECLARED = dataclasses.replace(
    SqlBackend.capabilities,
    filter_operators={"Group": GROUP_OPS},
    sort_attributes={"Group": ["displayName"]},
)


def _ordering(f):
    return type(f).__name__ == "Compare" and f.op in ("gt", "ge", "lt", "le") and f.path.attr == "displayName"


class DeclaresAndRefuses(SqlBackend):
    declares = True

    def list_groups(self, tenant, query):
        if query.filter is not None and _ordering(query.filter):
            raise InvalidFilter("no ordering on displayName here")
        if query.sort_by is not None and query.sort_by.attr != "displayName":
            raise InvalidValue("sorts by displayName only")
        return super().list_groups(tenant, query)


class DeclaresButAnswersWrongly(SqlBackend):
    declares = True

    def list_groups(self, tenant, query):
        if query.filter is not None and _ordering(query.filter):
            return super().list_groups(tenant, dataclasses.replace(query, filter=None))
        return super().list_groups(tenant, query)


class RefusesWithoutDeclaring(SqlBackend):
    declares = False

    def list_groups(self, tenant, query):
        if query.filter is not None and _ordering(query.filter):
            raise InvalidFilter("no ordering on displayName here")
        return super().list_groups(tenant, query)


@pytest.fixture
def backend(tmp_path):
    backend = globals()[BACKEND].from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/kit.db"})
    backend.migrate()
    if backend.declares:
        backend.capabilities = DECLARED  # SqlBackend sets its capabilities per instance
    yield backend
    backend.close()
"""


def run_kit(pytester: pytest.Pytester, backend: str, select: str) -> pytest.RunResult:
    """Run the group filter and sort tests selected by ``-k select`` against one backend class."""
    source = SOURCE + f"\nBACKEND = {backend!r}\n\n\nclass TestKit(FilterTests, SortTests):\n    pass\n"
    pytester.makepyfile(test_declared=source)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-rs", "-k", select)


def test_a_declared_refusal_skips_exactly_that_case(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "DeclaresAndRefuses", "group_filter or groups_sorted")
    result.assert_outcomes(passed=13 + 2, skipped=1 + 4)
    result.stdout.fnmatch_lines(["*cannot evaluate 'gt' on Group 'displayName'; refused with InvalidFilter*"])
    result.stdout.fnmatch_lines(["*cannot sort Group by 'externalId'; refused with InvalidValue*"])


def test_a_declared_limit_never_excuses_a_wrong_answer(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "DeclaresButAnswersWrongly", "group_filter and displayName and gt")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refuse it with InvalidFilter rather than answer wrongly*"])


def test_an_undeclared_refusal_fails(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, "RefusesWithoutDeclaring", "group_filter and displayName and gt")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refused with InvalidFilter*but the backend does not declare that limit*"])
