"""sortBy / sortOrder agree with the reference evaluator's order on the matrix users and groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scim_service.backend import Backend
from scim_service.errors import InvalidValue
from scim_service.model import Tenant
from scim_service.query import evaluator
from scim_service.query.ast import ListQuery
from scim_service.testing.data import group_sort, query, user_sort
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import user_ids
from scim_service.testing.kit.matrix import USER_SORTS, Matrix
from scim_service.testing.kit.requirements import declared_sort_refusal, list_or_refuse, requires

__all__ = ["SortTests"]


def assert_sorted(
    docs: list[dict[str, Any]], path_text: str, descending: bool, resolve: Callable[[str], Any], what: str
) -> None:
    """``docs`` (rendered resources, in the order a list returned them) are in the reference evaluator's order."""
    path = resolve(path_text)
    keys = [evaluator.sort_key(path, d) for d in docs]
    order = "descending" if descending else "ascending"
    for i in range(len(keys) - 1):
        a, b = keys[i], keys[i + 1]
        in_order = a >= b if descending else a <= b
        assert in_order, (
            f"{what} sorted by {path_text} {order} must order {docs[i]['id']} and {docs[i + 1]['id']} the other way "
            f"(missing values sort last ascending and first descending; strings case-insensitively unless caseExact)"
        )


class SortTests(KitBase):
    """sortBy / sortOrder, missing values last ascending and first descending."""

    @pytest.fixture
    def sort_matrix(self, backend: Backend, tenant: Tenant) -> Matrix:
        """A tenant populated with the matrix users and groups."""
        return Matrix(backend, tenant)

    @requires.sort
    @pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
    @pytest.mark.parametrize("path", USER_SORTS)
    def test_users_sorted_like_reference(
        self, backend: Backend, sort_matrix: Matrix, path: str, descending: bool
    ) -> None:
        sort_by = user_sort(path)
        page = list_or_refuse(
            backend,
            declared_sort_refusal(backend, "User", sort_by),
            InvalidValue,
            f"list_users sorted by {path}",
            lambda: backend.list_users(sort_matrix.tenant, query(sort_by=sort_by, descending=descending)),
        )
        assert sorted(user_ids(page.resources)) == sorted(d["id"] for d in sort_matrix.user_docs), (
            "a sorted list_users must return every visible user of the tenant once"
        )
        by_id = {d["id"]: d for d in sort_matrix.user_docs}
        assert_sorted([by_id[r.id] for r in page.resources], path, descending, user_sort, "list_users")

    @requires.sort
    @pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
    @pytest.mark.parametrize("path", ["displayName", "externalId", "meta.lastModified"])
    def test_groups_sorted_like_reference(
        self, backend: Backend, sort_matrix: Matrix, path: str, descending: bool
    ) -> None:
        sort_by = group_sort(path)
        page = list_or_refuse(
            backend,
            declared_sort_refusal(backend, "Group", sort_by),
            InvalidValue,
            f"list_groups sorted by {path}",
            lambda: backend.list_groups(sort_matrix.tenant, query(sort_by=sort_by, descending=descending)),
        )
        by_id = {d["id"]: d for d in sort_matrix.group_docs}
        assert sorted(user_ids(page.resources)) == sorted(by_id), "a sorted list_groups must return every group once"
        assert_sorted([by_id[r.id] for r in page.resources], path, descending, group_sort, "list_groups")

    @requires.sort
    def test_sorted_paging_is_consistent(self, backend: Backend, sort_matrix: Matrix) -> None:
        sort_by = user_sort("title")
        reason = declared_sort_refusal(backend, "User", sort_by)
        if reason is not None:
            pytest.skip(reason)
        whole = user_ids(backend.list_users(sort_matrix.tenant, query(sort_by=sort_by)).resources)
        paged: list[str] = []
        for start in range(1, len(whole) + 1, 2):
            paged += user_ids(
                backend.list_users(sort_matrix.tenant, ListQuery(sort_by=sort_by, start_index=start, count=2)).resources
            )
        assert paged == whole, "paging through a sorted list (ties included) must give the same order as one big page"
