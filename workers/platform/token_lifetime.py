"""How long a user token lives: one configured value for Supabase Auth and local minting.

Supabase Auth reads `[auth] jwt_expiry` from supabase/config.toml (`supabase start`; a hosted
project sets the same number in its dashboard). `backline token` mints local tokens with that
same lifetime, so a frontend developed against the embedded default meets the expiry it will
meet in production. BACKLINE_JWT_EXPIRY overrides it for the local minting only.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from workers.errors import BacklineError
from workers.settings import PROJECT_ROOT, Settings

SUPABASE_CONFIG = PROJECT_ROOT / "supabase" / "config.toml"
DEFAULT_JWT_EXPIRY = 3600


def configured_jwt_expiry(settings: Settings, config: Path = SUPABASE_CONFIG) -> int:
    """Seconds a user token lives: the setting, else config.toml's jwt_expiry, else 3600."""
    if settings.jwt_expiry_seconds is not None:
        return settings.jwt_expiry_seconds
    if not config.exists():
        return DEFAULT_JWT_EXPIRY
    try:
        auth = tomllib.loads(config.read_text()).get("auth", {})
    except tomllib.TOMLDecodeError as exc:
        raise BacklineError(f"{config}: not valid TOML ({exc})") from None
    value = auth.get("jwt_expiry", DEFAULT_JWT_EXPIRY)
    if not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= 604800:
        raise BacklineError(f"{config}: [auth] jwt_expiry must be a number of seconds from 60 to 604800")
    return value
