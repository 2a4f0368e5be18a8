"""Index paging (startIndex / count) and the exact totalResults."""

from __future__ import annotations

import pytest

from scim_service.backend import Backend
from scim_service.model import Tenant, UserRecord
from scim_service.query.ast import ListQuery
from scim_service.testing.data import group_document, query, user_document, user_filter
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import user_ids
from scim_service.testing.kit.requirements import requires

__all__ = ["PagingTests"]


class PagingTests(KitBase):
    """start_index / count paging and the exact total_results."""

    @pytest.fixture
    def seven(self, backend: Backend, tenant: Tenant) -> list[UserRecord]:
        """Seven users of the tenant; the odd ones have title "odd"."""
        return [
            backend.create_user(tenant, user_document(f"user-{i:02d}", **({"title": "odd"} if i % 2 else {})))
            for i in range(1, 8)
        ]

    def test_total_results_is_exact_on_every_page(
        self, backend: Backend, tenant: Tenant, seven: list[UserRecord]
    ) -> None:
        seen: list[str] = []
        for start, size in ((1, 3), (4, 3), (7, 1)):
            page = backend.list_users(tenant, ListQuery(start_index=start, count=3))
            assert page.total_results == 7, (
                "list_users total_results must be the exact number of matches, not the page size"
            )
            assert len(page.resources) == size, f"the page at start_index={start} with count=3 must hold {size} users"
            seen += user_ids(page.resources)
        assert sorted(seen) == sorted(u.id for u in seven), "paging must return every user exactly once"

    @requires.filter
    def test_total_results_counts_filter_matches(
        self, backend: Backend, tenant: Tenant, seven: list[UserRecord]
    ) -> None:
        page = backend.list_users(tenant, ListQuery(filter=user_filter('title eq "odd"'), count=2))
        assert page.total_results == 4, "total_results must count every filter match, not the page size"
        assert len(page.resources) == 2, "a page must hold at most count resources"

    def test_count_zero_gives_only_the_total(self, backend: Backend, tenant: Tenant, seven: list[UserRecord]) -> None:
        page = backend.list_users(tenant, ListQuery(count=0))
        assert page.resources == [] and page.total_results == 7, "count=0 must return no resources and the total"

    def test_start_index_past_the_end(self, backend: Backend, tenant: Tenant, seven: list[UserRecord]) -> None:
        page = backend.list_users(tenant, ListQuery(start_index=20, count=5))
        assert page.resources == [] and page.total_results == 7, (
            "a start_index past the last match must give an empty page with the exact total"
        )

    def test_start_index_is_echoed(self, backend: Backend, tenant: Tenant, seven: list[UserRecord]) -> None:
        assert backend.list_users(tenant, ListQuery(start_index=3, count=2)).start_index == 3, (
            "Page.start_index must be the query's start_index"
        )

    def test_unsorted_order_is_stable(self, backend: Backend, tenant: Tenant, seven: list[UserRecord]) -> None:
        whole = user_ids(backend.list_users(tenant, query()).resources)
        assert whole == user_ids(backend.list_users(tenant, query()).resources), (
            "an unsorted list must come in a stable order"
        )
        paged: list[str] = []
        for start in (1, 3, 5, 7):
            paged += user_ids(backend.list_users(tenant, ListQuery(start_index=start, count=2)).resources)
        assert paged == whole, "unsorted pages must follow the same stable order as one big page"

    def test_groups_paging_and_total(self, backend: Backend, tenant: Tenant) -> None:
        made = [backend.create_group(tenant, group_document(f"g{i}"), []) for i in range(5)]
        seen: list[str] = []
        for start in (1, 3, 5):
            page = backend.list_groups(tenant, ListQuery(start_index=start, count=2))
            assert page.total_results == 5, "list_groups total_results must be exact, not the page size"
            seen += user_ids(page.resources)
        assert sorted(seen) == sorted(g.id for g in made), "group paging must return every group exactly once"
