"""Filters agree with the reference evaluator on the matrix users and groups."""

from __future__ import annotations

import pytest

from scim_service.backend import Backend
from scim_service.errors import InvalidFilter
from scim_service.model import Tenant
from scim_service.testing.data import group_filter, query, user_filter
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import user_ids
from scim_service.testing.kit.matrix import GROUP_FILTERS, USER_FILTERS, Matrix
from scim_service.testing.kit.requirements import declared_filter_refusal, list_or_refuse, requires

__all__ = ["FilterTests"]


class FilterTests(KitBase):
    """list_users / list_groups filters agree with the reference evaluator on every operator."""

    @pytest.fixture
    def filter_matrix(self, backend: Backend, tenant: Tenant) -> Matrix:
        """A tenant populated with the matrix users and groups."""
        return Matrix(backend, tenant)

    @requires.filter
    @pytest.mark.parametrize("text", USER_FILTERS)
    def test_user_filter_matches_reference_evaluator(self, backend: Backend, filter_matrix: Matrix, text: str) -> None:
        filled, expected = filter_matrix.expected_users(text)
        f = user_filter(filled)
        reason = declared_filter_refusal(backend, "User", f)
        page = list_or_refuse(
            backend,
            reason,
            InvalidFilter,
            f"list_users filter {filled!r}",
            lambda: backend.list_users(filter_matrix.tenant, query(filter=f)),
        )
        got = sorted(user_ids(page.resources))
        assert got == expected, (
            f"list_users filter {filled!r} must select exactly what the reference evaluator selects: "
            f"expected {filter_matrix.names(expected)}, got {filter_matrix.names(got)}"
            + (f" ({reason}: refuse it with InvalidFilter rather than answer wrongly)" if reason else "")
        )
        assert page.total_results == len(expected), (
            f"list_users filter {filled!r}: total_results must be the exact number of matches"
        )

    @requires.filter
    @pytest.mark.parametrize("text", GROUP_FILTERS)
    def test_group_filter_matches_reference_evaluator(self, backend: Backend, filter_matrix: Matrix, text: str) -> None:
        filled, expected = filter_matrix.expected_groups(text)
        f = group_filter(filled)
        reason = declared_filter_refusal(backend, "Group", f)
        page = list_or_refuse(
            backend,
            reason,
            InvalidFilter,
            f"list_groups filter {filled!r}",
            lambda: backend.list_groups(filter_matrix.tenant, query(filter=f)),
        )
        got = sorted(user_ids(page.resources))
        assert got == expected, (
            f"list_groups filter {filled!r} must select exactly what the reference evaluator selects: "
            f"expected {filter_matrix.names(expected)}, got {filter_matrix.names(got)}"
            + (f" ({reason}: refuse it with InvalidFilter rather than answer wrongly)" if reason else "")
        )
        assert page.total_results == len(expected), (
            f"list_groups filter {filled!r}: total_results must be the exact number of matches"
        )
