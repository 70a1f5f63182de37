"""Token lifetime: the sketchpad's 1 hour by default, the tracker's 24 hours one setting away (#13).

Supabase Auth takes the lifetime from supabase/config.toml [auth] jwt_expiry; `backline token`
mints local tokens with that same configured lifetime (BACKLINE_JWT_EXPIRY overrides it).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import jwt
import pytest

from tests.helpers import backline
from workers.errors import BacklineError
from workers.platform.token_lifetime import SUPABASE_CONFIG, configured_jwt_expiry
from workers.settings import Settings


def lifetime_of(token: str) -> int:
    claims = jwt.decode(token, options={"verify_signature": False})
    return int(claims["exp"]) - int(claims["iat"])


def test_config_toml_ships_the_sketchpads_hour_and_names_the_trackers_day() -> None:
    text = SUPABASE_CONFIG.read_text()
    assert tomllib.loads(text)["auth"]["jwt_expiry"] == 3600
    assert "# jwt_expiry = 86400" in text


def test_local_tokens_follow_the_configured_lifetime(clone_url: str) -> None:
    result = backline("token", "--anonymous", "--database-url", clone_url)
    assert result.returncode == 0, result.stderr
    assert lifetime_of(result.stdout.strip()) == 3600


def test_the_setting_and_the_option_change_it(clone_url: str) -> None:
    day = backline("token", "--anon-key", "--database-url", clone_url, env={"BACKLINE_JWT_EXPIRY": "86400"})
    assert day.returncode == 0, day.stderr
    assert lifetime_of(day.stdout.strip()) == 86400
    explicit = backline("token", "--anon-key", "--expires-in", "120", "--database-url", clone_url)
    assert lifetime_of(explicit.stdout.strip()) == 120


def test_a_too_short_setting_is_a_configuration_error(clone_url: str) -> None:
    result = backline("token", "--anon-key", "--database-url", clone_url, env={"BACKLINE_JWT_EXPIRY": "10"})
    assert result.returncode == 1
    assert "BACKLINE_JWT_EXPIRY" in result.stderr and not result.stdout


def test_config_file_is_read(tmp_path: Path) -> None:
    settings = Settings.model_construct(**{**Settings().model_dump(), "jwt_expiry_seconds": None})
    tracker = tmp_path / "config.toml"
    tracker.write_text("[auth]\njwt_expiry = 86400\n")
    assert configured_jwt_expiry(settings, tracker) == 86400
    assert configured_jwt_expiry(settings, tmp_path / "missing.toml") == 3600
    tracker.write_text("[auth]\njwt_expiry = 5\n")
    with pytest.raises(BacklineError, match="jwt_expiry must be a number of seconds"):
        configured_jwt_expiry(settings, tracker)
    tracker.write_text("[auth\n")
    with pytest.raises(BacklineError, match="not valid TOML"):
        configured_jwt_expiry(settings, tracker)
