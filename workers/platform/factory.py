"""Choose the platform transport from configuration only."""

from __future__ import annotations

from dataclasses import dataclass

from workers.db.connect import resolve_url
from workers.errors import BacklineError
from workers.platform.auth_admin import AuthAdmin
from workers.platform.local_auth import LocalAuthAdmin
from workers.platform.local_storage import LocalStorage
from workers.platform.storage import StorageAdapter
from workers.platform.supabase_auth import SupabaseAuthAdmin
from workers.platform.supabase_storage import SupabaseStorage
from workers.settings import Settings


@dataclass
class Adapters:
    storage: StorageAdapter
    auth: AuthAdmin
    transport: str

    def close(self) -> None:
        self.storage.close()
        self.auth.close()


def transport_for(settings: Settings) -> str:
    """'supabase' when chosen (or, with auto, when SUPABASE_URL and the service key are set), else 'local'."""
    choice = settings.platform_transport.strip().lower()
    if choice not in ("auto", "local", "supabase"):
        raise BacklineError(f"BACKLINE_PLATFORM_TRANSPORT must be auto, local or supabase, got {choice!r}")
    has_supabase = bool(settings.supabase_url and settings.supabase_service_role_key)
    if choice == "supabase" and not has_supabase:
        raise BacklineError("the supabase transport needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY")
    if choice == "auto":
        return "supabase" if has_supabase else "local"
    return choice


def make_adapters(settings: Settings, database_url: str | None = None) -> Adapters:
    """Storage + auth admin for this configuration (local: the database and `<data dir>/storage`)."""
    if transport_for(settings) == "supabase":
        assert settings.supabase_url and settings.supabase_service_role_key
        return Adapters(
            SupabaseStorage(settings.supabase_url, settings.supabase_service_role_key),
            SupabaseAuthAdmin(settings.supabase_url, settings.supabase_service_role_key),
            "supabase",
        )
    url = resolve_url(settings, database_url)
    return Adapters(
        LocalStorage(
            url,
            settings.data_dir / "storage",
            jwt_secret=settings.jwt_secret,
            public_url=settings.storage_public_url,
        ),
        LocalAuthAdmin(url),
        "local",
    )
