"""The auth admin contract: list users, delete a user (Supabase Auth admin API or local SQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from workers.errors import BacklineError


@dataclass(frozen=True)
class AuthUser:
    id: uuid.UUID
    email: str | None
    is_anonymous: bool
    created_at: str | None
    last_sign_in_at: str | None


class AuthAdminError(BacklineError):
    """The Auth admin API refused a call (status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"auth: {message} ({status})")
        self.status = status


class AuthAdmin(Protocol):
    def list_users(self, page: int = 1, per_page: int = 50) -> list[AuthUser]: ...

    def delete_user(self, user_id: uuid.UUID) -> None:
        """Delete the account; rows referencing it cascade (or are set null) in the database."""
        ...

    def close(self) -> None: ...
