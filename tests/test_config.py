"""Settings: every one documented, parsed strictly, with the host's app.config the only source when embedded."""

from __future__ import annotations

from pathlib import Path

import pytest

from scim_service import config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("setting", config.SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting):
    assert f"`{setting.name}`" in (ROOT / "docs" / "configuration.md").read_text()
    assert f"`{setting.name}`" in (ROOT / "README.md").read_text()


def test_environment_values_are_parsed_and_bad_ones_name_the_setting():
    parsed = config.from_environ({"SCIM_BASE_PATH": "api/scim/", "SCIM_MAX_PAGE_SIZE": "50", "HOME": "/x"})
    assert parsed == {"SCIM_BASE_PATH": "/api/scim", "SCIM_MAX_PAGE_SIZE": 50}
    with pytest.raises(config.ConfigError, match="SCIM_USER_DELETE"):
        config.from_environ({"SCIM_USER_DELETE": "shred"})
    with pytest.raises(config.ConfigError, match="SCIM_MAX_PAGE_SIZE"):
        config.from_environ({"SCIM_MAX_PAGE_SIZE": "0"})
