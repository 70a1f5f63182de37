"""Cleanup: anonymous users inactive for N days (default 90), with everything they own, files included.

Only `is_anonymous` accounts qualify; an inactive user with an email is kept.
Each account is erased like a deletion request (workers.export.rights):
files through the storage adapter, the auth user through the auth adapter.
"""

from __future__ import annotations

import uuid

import psycopg

from workers.export.rights import erase_user
from workers.platform.factory import Adapters

CANDIDATES_SQL = """
select u.id, coalesce(u.last_sign_in_at, u.created_at) as last_active
  from auth.users u
 where u.is_anonymous
   and coalesce(u.last_sign_in_at, u.created_at) < now() - make_interval(days => %(days)s)
 order by last_active, u.id
 limit %(limit)s
"""


def inactive_anonymous_users(database_url: str, batch_size: int, days: int) -> list[tuple[uuid.UUID, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(CANDIDATES_SQL, {"days": days, "limit": batch_size}).fetchall()
    return [(r[0], str(r[1])) for r in rows]


def cleanup_anonymous_users(
    database_url: str, adapters: Adapters, batch_size: int, dry_run: bool, *, inactive_days: int = 90
) -> list[str]:
    """Erase (dry run: list) at most batch_size anonymous users inactive for `inactive_days`."""
    if batch_size < 1 or inactive_days < 1:
        raise ValueError("batch_size and inactive_days must be positive")
    items = []
    for user_id, last_active in inactive_anonymous_users(database_url, batch_size, inactive_days):
        label = f"anonymous user {user_id} (last active {last_active})"
        if dry_run:
            items.append(label)
            continue
        result = erase_user(database_url, adapters, user_id, reason="anonymous_inactive")
        items.append(f"{label}: {result.objects_removed} files, {sum(result.rows_removed.values())} rows")
    return items
