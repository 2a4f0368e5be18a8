"""The app's wiring: a fresh blueprint per app, no routes registered by imports, host auth before bearer
tokens by ``trylast`` whatever the registration order, and no import circle between api/ and the extension."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from api_helpers import BASE, Scim, make_app, new_org
from flask import Flask

from scim_service import ScimService, get_state
from scim_service.api import create_blueprint
from scim_service.auth import BearerTokenAuth
from scim_service.hookspecs import AuthRequest, Principal, hookimpl
from scim_service.plugins import make_plugin_manager
from scim_service.servicedb.migrate import upgrade_service_db
from scim_service.servicedb.store import ServiceStore
from scim_service.sqlengine import make_engine


def test_each_call_builds_a_new_blueprint_with_every_route() -> None:
    first, second = create_blueprint(), create_blueprint()
    assert first is not second
    assert first.name == second.name == "scim"
    app_a, app_b = Flask("a"), Flask("b")
    app_a.register_blueprint(first, url_prefix="/scim/v2")
    app_b.register_blueprint(second, url_prefix="/other")
    rules_a = sorted(r.rule.removeprefix("/scim/v2") for r in app_a.url_map.iter_rules() if r.endpoint != "static")
    rules_b = sorted(r.rule.removeprefix("/other") for r in app_b.url_map.iter_rules() if r.endpoint != "static")
    assert rules_a == rules_b
    assert {"/Users", "/Users/<user_id>", "/Groups/<group_id>", "/Bulk", "/.search", "/Schemas"} <= set(rules_a)


def test_two_apps_in_one_process_each_get_their_own_blueprint(tmp_path: Path) -> None:
    one = make_app(tmp_path / "one")
    two = make_app(tmp_path / "two", SCIM_BASE_PATH="/api/sch/scim/v2")
    try:
        assert one.blueprints["scim"] is not two.blueprints["scim"]
        alice = Scim(one.test_client(), new_org(get_state(one), "acme")).create_user("alice")
        bob = Scim(two.test_client(), new_org(get_state(two), "acme"), base="/api/sch/scim/v2").create_user("bob")
        assert alice["meta"]["location"].endswith(f"{BASE}/Users/{alice['id']}")
        assert bob["meta"]["location"].endswith(f"/api/sch/scim/v2/Users/{bob['id']}")
        # Neither app answers under the other's prefix.
        assert one.test_client().get("/api/sch/scim/v2/Users").status_code == 404
        assert two.test_client().get(f"{BASE}/Users").status_code == 404
    finally:
        get_state(one).close()
        get_state(two).close()


def test_importing_the_api_registers_nothing_and_the_circle_is_cut() -> None:
    # The endpoint modules hold no blueprint of their own, and the api package imports the app state
    # from scim_service.state, never the extension (which imports the api package).
    code = (
        "import sys\n"
        "import scim_service.api.resources, scim_service.api.bulk, scim_service.api.discovery\n"
        "import scim_service.api.blueprint as b\n"
        "from flask import Blueprint\n"
        "mods = [scim_service.api.resources, scim_service.api.bulk, scim_service.api.discovery, b]\n"
        "assert not any(isinstance(v, Blueprint) for m in mods for v in vars(m).values()), 'a module-level blueprint'\n"
        "assert 'scim_service.extension' not in sys.modules, 'api/ imported the extension'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1500:]


class HostAuth:
    """A host app's API keys: authenticates 'x-api-key: host-key' as its own principal."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @hookimpl
    def scim_authenticate(self, request: AuthRequest, config: object) -> Principal | None:
        return self.principal if request.headers.get("x-api-key") == "host-key" else None


@pytest.fixture
def store(tmp_path: Path) -> ServiceStore:
    engine = make_engine(f"sqlite:///{tmp_path}/service.db", {})
    upgrade_service_db(engine)
    return ServiceStore(engine)


@pytest.mark.parametrize("host_first", [True, False], ids=["host-registered-first", "host-registered-last"])
def test_host_auth_runs_before_bearer_tokens_whatever_the_registration_order(
    store: ServiceStore, host_first: bool
) -> None:
    acme = store.create_org("acme")
    beta = store.create_org("beta")
    token_id, token = store.create_token("acme")
    host = HostAuth(Principal(beta, label="host"))
    bearer = BearerTokenAuth(store)
    plugins = [host, bearer] if host_first else [bearer, host]
    pm = make_plugin_manager(plugins, load_entry_points=False)

    def ask(headers: dict[str, str]) -> Principal | None:
        return pm.hook.scim_authenticate(request=AuthRequest("GET", "/scim/v2/Users", headers), config={})

    # Both credentials: the host's answer wins, in either order of registration.
    assert ask({"x-api-key": "host-key", "authorization": f"Bearer {token}"}) == Principal(beta, label="host")
    assert ask({"authorization": f"Bearer {token}"}) == Principal(acme, token_id=token_id, profile="auto")
    impls = [impl.plugin for impl in pm.hook.scim_authenticate.get_hookimpls()]
    assert impls[0] is bearer, "pluggy runs the list from the end: the bearer plugin must be first in it (trylast)"


def test_host_auth_through_the_extension_is_asked_first(tmp_path: Path) -> None:
    app = Flask("host", instance_path=str(tmp_path))
    app.config.update(SCIM_DATABASE_URL=f"sqlite:///{tmp_path}/host.db", SCIM_LOG_LEVEL="WARNING")

    class OrgKey:
        @hookimpl
        def scim_authenticate(self, request: AuthRequest, config: object) -> Principal | None:
            if request.headers.get("x-api-key") != "beta-key":
                return None
            return Principal(get_state(app).store.get_org("beta"), label="host")

    ScimService(app, plugins=[OrgKey()])
    state = get_state(app)
    try:
        state.upgrade()
        state.store.create_org("acme")
        state.store.create_org("beta")
        _id, acme_token = state.store.create_token("acme")
        Scim(app.test_client(), acme_token).create_user("in-acme")
        client = app.test_client()
        both = {"Authorization": f"Bearer {acme_token}", "X-Api-Key": "beta-key"}
        listed = client.get(f"{BASE}/Users", headers=both).get_json()
        assert listed["totalResults"] == 0  # beta's view: the host plugin answered, not the acme token
        only_token = client.get(f"{BASE}/Users", headers={"Authorization": f"Bearer {acme_token}"}).get_json()
        assert [u["userName"] for u in only_token["Resources"]] == ["in-acme"]
    finally:
        state.close()
