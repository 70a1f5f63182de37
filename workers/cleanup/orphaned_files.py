"""Cleanup: storage objects nothing refers to, older than a grace period; expired exports.

An object is orphaned when no public.file_links row names it (documents,
room elements and profiles record their files there) and it is older than
the grace period (an upload whose link is still being written is young).
Thumbnails (`<name>.thumbNNN.webp`) and re-encoded originals
(`<name>.full.webp`) follow their original: orphaned once the original is
gone. Objects in the `exports` bucket are never linked: they are removed once
older than the export retention. Bytes and rows go together
through the storage adapter.
"""

from __future__ import annotations

from collections import defaultdict

import psycopg

from workers.export.context import CleanupContextLike, require_database_url
from workers.platform.factory import Adapters, make_adapters
from workers.platform.storage import SERVICE

ORPHANS_SQL = r"""
select o.bucket_id, o.name, o.created_at::text,
       case when o.bucket_id = 'exports' then 'expired export' else 'orphaned' end
  from storage.objects o
 where (
         o.bucket_id = 'exports'
         and o.created_at < now() - make_interval(days => %(export_days)s)
       ) or (
         o.bucket_id <> 'exports'
         and o.created_at < now() - make_interval(hours => %(grace_hours)s)
         and not exists (
           select 1 from public.file_links l where l.bucket_id = o.bucket_id and l.object_name = o.name)
         and (
           o.name !~ '\.(thumb[0-9]+|full)\.webp$'
           or not exists (
             select 1 from storage.objects s
              where s.bucket_id = o.bucket_id
                and s.name = regexp_replace(o.name, '\.(thumb[0-9]+|full)\.webp$', ''))
         )
       )
 order by o.created_at, o.bucket_id, o.name
 limit %(limit)s
"""


def cleanup_orphaned_files(
    database_url: str,
    adapters: Adapters,
    batch_size: int,
    dry_run: bool,
    *,
    grace_hours: int = 24,
    export_retention_days: int = 7,
) -> list[str]:
    """Remove (dry run: list) at most batch_size orphaned objects and expired exports."""
    if batch_size < 1 or grace_hours < 0 or export_retention_days < 0:
        raise ValueError("batch_size must be positive and the periods non-negative")
    with psycopg.connect(database_url, prepare_threshold=None) as conn:
        rows = conn.execute(
            ORPHANS_SQL,
            {"grace_hours": grace_hours, "export_days": export_retention_days, "limit": batch_size},
        ).fetchall()
    items = [f"{why} {bucket}/{name} (created {created})" for bucket, name, created, why in rows]
    if dry_run or not rows:
        return items
    by_bucket: dict[str, list[str]] = defaultdict(list)
    for bucket, name, _created, _why in rows:
        by_bucket[bucket].append(name)
    removed: set[tuple[str, str]] = set()
    for bucket, names in by_bucket.items():
        removed.update((bucket, n) for n in adapters.storage.remove(bucket, names, caller=SERVICE))
    pairs = zip(items, rows, strict=True)
    return [item for item, (bucket, name, _c, _w) in pairs if (bucket, name) in removed]


def cleanup_task(ctx: CleanupContextLike, batch_size: int, dry_run: bool) -> list[str]:
    """The cleanup runner's entry (PYTHON_TASKS["orphaned_files"]): adapters and periods from settings."""
    url = require_database_url(ctx.settings, ctx.database_url)
    adapters = make_adapters(ctx.settings, url)
    try:
        return _run(url, adapters, batch_size, dry_run, ctx)
    finally:
        adapters.close()


def _run(url: str, adapters: Adapters, batch_size: int, dry_run: bool, ctx: CleanupContextLike) -> list[str]:
    return cleanup_orphaned_files(
        url,
        adapters,
        batch_size,
        dry_run,
        grace_hours=ctx.settings.orphan_grace_hours,
        export_retention_days=ctx.settings.export_retention_days,
    )
