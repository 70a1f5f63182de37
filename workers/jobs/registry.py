"""Which handler runs each job kind: one explicit dict, no decorator magic.

Add a kind here (and a row in public.job_kinds, by migration). A handler takes
(JobContext, payload) and returns a JSON-able dict stored as the job's result,
or None; raising fails the attempt (message = str(exc)); raising
PermanentJobError fails the job without retry; JobInterrupted hands it back.
"""

from __future__ import annotations

from workers.ai.queue import run_ai_request
from workers.cleanup.handler import run_cleanup_job
from workers.db.backup_job import run_backup_job
from workers.export.jobs import run_erasure, run_export, run_room_export
from workers.export.thumbnails import run_thumbnail
from workers.files.scan import run_upload_scan
from workers.health.job import run_health_check
from workers.identity.merge_files import run_account_merge_files
from workers.jobs import builtin
from workers.jobs.context import Handler
from workers.telemetry.jobs import run_metrics

HANDLERS: dict[str, Handler] = {
    "echo": builtin.echo,
    "cleanup": run_cleanup_job,
    "usage_report": builtin.usage_report,
    "export": run_export,
    "erasure": run_erasure,
    "room_export": run_room_export,
    "thumbnail": run_thumbnail,
    "upload_scan": run_upload_scan,
    "metrics": run_metrics,
    "ai_request": run_ai_request,
    "account_merge_files": run_account_merge_files,
    "health_check": run_health_check,
    "db_backup": run_backup_job,
}
