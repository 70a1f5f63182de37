"""Local auth admin transport: auth.users through a superuser psycopg connection.

Stands in for the Auth server's admin API (GoTrue deletes the auth.users row
and Postgres cascades the rest), so erasure runs the same way locally.
"""

from __future__ import annotations

import uuid

import psycopg

from workers.platform.auth_admin import AuthAdminError, AuthUser


class LocalAuthAdmin:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def list_users(self, page: int = 1, per_page: int = 50) -> list[AuthUser]:
        if page < 1 or not 1 <= per_page <= 1000:
            raise AuthAdminError(400, "page must be >= 1 and per_page 1-1000")
        with psycopg.connect(self.database_url, prepare_threshold=None) as conn:
            rows = conn.execute(
                "select id, email, is_anonymous, created_at::text, last_sign_in_at::text from auth.users"
                " order by created_at, id limit %s offset %s",
                (per_page, (page - 1) * per_page),
            ).fetchall()
        return [AuthUser(*row) for row in rows]

    def delete_user(self, user_id: uuid.UUID) -> None:
        with psycopg.connect(self.database_url, prepare_threshold=None) as conn:
            deleted = conn.execute("delete from auth.users where id = %s", (user_id,)).rowcount
        if deleted == 0:
            raise AuthAdminError(404, "User not found")

    def close(self) -> None:
        return None
