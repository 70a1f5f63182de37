"""Supabase auth admin transport: the official `supabase_auth` SDK against `<SUPABASE_URL>/auth/v1`."""

from __future__ import annotations

import uuid

from supabase_auth import SyncGoTrueAdminAPI
from supabase_auth.errors import AuthApiError, AuthError

from workers.platform.auth_admin import AuthAdminError, AuthUser


class SupabaseAuthAdmin:
    def __init__(self, supabase_url: str, service_key: str) -> None:
        self.api = SyncGoTrueAdminAPI(
            url=supabase_url.rstrip("/") + "/auth/v1",
            headers={"apikey": service_key, "Authorization": f"Bearer {service_key}"},
        )

    def list_users(self, page: int = 1, per_page: int = 50) -> list[AuthUser]:
        try:
            users = self.api.list_users(page=page, per_page=per_page)
        except AuthError as exc:
            raise AuthAdminError(getattr(exc, "status", 500) or 500, str(exc)) from None
        return [
            AuthUser(
                uuid.UUID(str(u.id)),
                u.email,
                bool(u.is_anonymous),
                u.created_at.isoformat() if u.created_at else None,
                u.last_sign_in_at.isoformat() if u.last_sign_in_at else None,
            )
            for u in users
        ]

    def delete_user(self, user_id: uuid.UUID) -> None:
        try:
            self.api.delete_user(str(user_id))
        except AuthApiError as exc:
            raise AuthAdminError(exc.status, exc.message) from None
        except AuthError as exc:
            raise AuthAdminError(500, str(exc)) from None

    def close(self) -> None:
        self.api._http_client.close()
