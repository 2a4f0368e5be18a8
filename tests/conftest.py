"""Fixtures of the API tests: a real app on a real SQLite file, an organization and its token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import Scim, make_app, new_org
from flask import Flask

from scim_service.extension import ScimState, get_state


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    yield app
    get_state(app).close()


@pytest.fixture
def state(app: Flask) -> ScimState:
    return get_state(app)


@pytest.fixture
def scim(app: Flask, state: ScimState) -> Scim:
    """A client of organization 'acme' (100 seats, default policies)."""
    return Scim(app.test_client(), new_org(state, "acme", max_seats=100))
