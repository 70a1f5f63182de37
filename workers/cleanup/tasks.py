"""Cleanup tasks that need Python (bytes in Storage, the auth admin API).

SQL tasks need no registration: every private.cleanup_<task>(p_batch_size,
p_dry_run) function is found in the catalog. A task that must move bytes or
call the auth admin API is a Python callable registered here by name, with
the same contract as the SQL ones: handle at most `batch_size` items, delete
nothing when `dry_run`, return one readable line per item. The runner calls
it again until it returns fewer than `batch_size` items.

Registered: "anonymous_users" (inactive 90 days, with everything they own,
files included) and "orphaned_files" (storage objects no file_links row
refers to, older than the grace period). The cron
schedule `orphaned-files` runs the latter; `privacy-cleanup` runs every task
but "orphaned_files" and "jobs".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workers.cleanup import anonymous_users, orphaned_files
from workers.settings import Settings


@dataclass(frozen=True)
class CleanupContext:
    settings: Settings
    database_url: str | None


PythonCleanup = Callable[[CleanupContext, int, bool], list[str]]

PYTHON_TASKS: dict[str, PythonCleanup] = {
    "anonymous_users": anonymous_users.cleanup_task,
    "orphaned_files": orphaned_files.cleanup_task,
}
