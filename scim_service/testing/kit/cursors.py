"""Cursor paging (RFC 9865) for backends that declare capabilities.cursor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scim_service.backend import Backend
from scim_service.errors import InvalidCursor
from scim_service.model import Tenant
from scim_service.query.ast import ListQuery
from scim_service.testing.data import group_document, query, user_document, user_filter, user_sort
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import assert_raises, user_ids
from scim_service.testing.kit.requirements import requires

__all__ = ["CursorTests"]


def assert_cursor_pages(lister: Callable[[ListQuery], Any], expected_total: int, **kwargs: Any) -> list[str]:
    """Walk every cursor page of ``lister`` two at a time, checking each carries the exact total and at
    most ``count`` resources and that the walk ends; the ids seen, in order."""
    seen: list[str] = []
    cursor = ""
    for _ in range(100):
        page = lister(ListQuery(cursor=cursor, count=2, **kwargs))
        assert page.total_results == expected_total, "cursor pages must carry the exact total_results"
        assert len(page.resources) <= 2, "a cursor page must hold at most count resources"
        seen += user_ids(page.resources)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    pytest.fail("cursor paging must end with next_cursor=None")


class CursorTests(KitBase):
    """Cursor paging (RFC 9865) for backends that declare capabilities.cursor."""

    @requires.cursor
    def test_cursor_pages_visit_every_user_once(self, backend: Backend, tenant: Tenant) -> None:
        made = [
            backend.create_user(tenant, user_document(f"c{i}", **({"title": "x"} if i < 4 else {}))) for i in range(5)
        ]
        seen = assert_cursor_pages(lambda q: backend.list_users(tenant, q), 5)
        assert sorted(seen) == sorted(u.id for u in made), "cursor paging must return every user exactly once"
        if backend.capabilities.filter:
            filtered = assert_cursor_pages(
                lambda q: backend.list_users(tenant, q), 4, filter=user_filter('title eq "x"')
            )
            assert sorted(filtered) == sorted(u.id for u in made[:4]), "cursor paging must honour the filter"

    @requires.cursor
    def test_cursor_pages_visit_every_group_once(self, backend: Backend, tenant: Tenant) -> None:
        made = [backend.create_group(tenant, group_document(f"g{i}"), []) for i in range(5)]
        seen = assert_cursor_pages(lambda q: backend.list_groups(tenant, q), 5)
        assert sorted(seen) == sorted(g.id for g in made), "cursor paging must return every group exactly once"

    @requires.cursor
    @requires.sort
    def test_cursor_pages_follow_the_sort_order(self, backend: Backend, tenant: Tenant) -> None:
        for i, title in enumerate(["b", None, "A", "c", None, "a"]):
            backend.create_user(tenant, user_document(f"s{i}", **({"title": title} if title else {})))
        sort_by = user_sort("title")
        whole = user_ids(backend.list_users(tenant, query(sort_by=sort_by, descending=True)).resources)
        seen = assert_cursor_pages(lambda q: backend.list_users(tenant, q), 6, sort_by=sort_by, descending=True)
        assert seen == whole, "cursor paging of a sorted list must follow the same order as one big sorted page"

    @requires.cursor
    def test_unknown_cursor_is_refused(self, backend: Backend, tenant: Tenant) -> None:
        backend.create_user(tenant, user_document("u"))
        assert_raises(
            InvalidCursor,
            "list_users must raise InvalidCursor for an unknown cursor",
            backend.list_users,
            tenant,
            ListQuery(cursor="not-a-cursor-this-backend-issued", count=2),
        )
        assert_raises(
            InvalidCursor,
            "list_groups must raise InvalidCursor for an unknown cursor",
            backend.list_groups,
            tenant,
            ListQuery(cursor="not-a-cursor-this-backend-issued", count=2),
        )
