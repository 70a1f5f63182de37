"""Cleanup: anonymous users inactive for N days (default 90), with everything they own, files included.

Only `is_anonymous` accounts qualify; an inactive user with an email is kept.
Each account is erased like a deletion request (workers.export.rights):
files through the storage adapter, the auth user through the auth adapter.
"""

from __future__ import annotations

import uuid

import psycopg

from workers.export.context import CleanupContextLike, require_database_url
from workers.export.rights import erase_user
from workers.platform.factory import Adapters, make_adapters

CANDIDATES_SQL = """
select u.id, coalesce(u.last_sign_in_at, u.created_at) as last_active
  from auth.users u
 where u.is_anonymous
   and coalesce(u.last_sign_in_at, u.created_at) < now() - make_interval(days => %(days)s)
 order by last_active, u.id
 limit %(limit)s
"""


def inactive_anonymous_users(database_url: str, batch_size: int, days: int) -> list[tuple[uuid.UUID, str]]:
    with psycopg.connect(database_url, prepare_threshold=None) as conn:
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


def cleanup_task(ctx: CleanupContextLike, batch_size: int, dry_run: bool) -> list[str]:
    """The cleanup runner's entry (PYTHON_TASKS["anonymous_users"]): adapters and periods from settings."""
    url = require_database_url(ctx.settings, ctx.database_url)
    adapters = make_adapters(ctx.settings, url)
    try:
        return _run(url, adapters, batch_size, dry_run, ctx)
    finally:
        adapters.close()


def _run(url: str, adapters: Adapters, batch_size: int, dry_run: bool, ctx: CleanupContextLike) -> list[str]:
    return cleanup_anonymous_users(
        url, adapters, batch_size, dry_run, inactive_days=ctx.settings.anonymous_inactive_days
    )
