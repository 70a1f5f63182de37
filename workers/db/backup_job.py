"""The `db_backup` job (cron schedule `database-backup`, daily): `backline db backup` unattended.

Writes to BACKLINE_BACKUP_DIR (default <data dir>/backups) and keeps the newest
BACKLINE_BACKUP_KEEP archives. With BACKLINE_BACKUP_SCHEDULE=auto a hosted
Supabase database (host *.supabase.co / *.supabase.com) is not backed up: the
platform does that, so the job turns its schedule off and says so in its result;
`off` skips every run, `on` always backs up.
"""

from __future__ import annotations

from typing import Any

from workers.jobs.context import JobContext
from workers.jobs.errors import PermanentJobError

SCHEDULE_NAME = "database-backup"


def run_backup_job(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    from workers.db.backup import backup, is_hosted_supabase
    from workers.db.connect import connect

    if not ctx.database_url:
        raise PermanentJobError("db_backup needs a database URL (DATABASE_URL)")
    settings = ctx.settings
    keep = payload.get("keep", settings.backup_keep)
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise PermanentJobError(f"payload keep must be a positive integer, got {keep!r}")
    if settings.backup_schedule == "off":
        return {"skipped": "BACKLINE_BACKUP_SCHEDULE=off"}
    if settings.backup_schedule == "auto" and is_hosted_supabase(ctx.database_url):
        with connect(ctx.database_url) as conn, conn.transaction():
            conn.execute(
                "update private.cron_schedules set enabled = false where name = %s", (SCHEDULE_NAME,)
            )
        return {
            "skipped": "hosted Supabase backs this database up itself; schedule database-backup turned off"
            " (set BACKLINE_BACKUP_SCHEDULE=on and enable it to back up anyway)"
        }
    result = backup(ctx.database_url, settings.resolved_backup_dir, keep=keep)
    return result.as_dict()
