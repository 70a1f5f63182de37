"""Write a user's data export: one zip with account.json, a JSON file per table and their files.

Memory stays flat with data size: rows come through server-side cursors and
are written one by one into a streamed zip entry; files are copied chunk by
chunk from the storage adapter; the zip itself goes to a file on disk.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg

from workers.export.catalog import UserObject, UserTable, account, iter_rows, user_objects, user_tables
from workers.platform.storage import SERVICE, StorageAdapter

FORMAT_VERSION = 1
Advance = Callable[[str], None]


@dataclass
class ExportPlan:
    user_id: uuid.UUID
    tables: list[UserTable]
    objects: list[UserObject]

    @property
    def steps(self) -> int:
        return 1 + len(self.tables) + len(self.objects)

    @property
    def file_bytes(self) -> int:
        return sum(o.size for o in self.objects)


@dataclass
class ExportSummary:
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    file_bytes: int = 0
    archive_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "files": self.files,
            "file_bytes": self.file_bytes,
            "archive_bytes": self.archive_bytes,
        }


def plan_export(conn: psycopg.Connection[Any], user_id: uuid.UUID) -> ExportPlan:
    """What the export will contain (previous exports are not exported again)."""
    return ExportPlan(user_id, user_tables(conn), user_objects(conn, user_id, include_exports=False))


def write_archive(
    conn: psycopg.Connection[Any],
    storage: StorageAdapter,
    plan: ExportPlan,
    out: Path,
    advance: Advance | None = None,
) -> ExportSummary:
    """Write the zip for `plan` to `out`. `advance(label)` is called after each step (progress, heartbeat)."""
    step = advance or (lambda _label: None)
    summary = ExportSummary()
    uid = plan.user_id
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as zf:
        info = account(conn, uid)
        if info is None:
            raise LookupError(f"user {uid} not found")
        _write_json(zf, "account.json", info)
        step("account")
        with conn.transaction():
            for table in plan.tables:
                entry = f"tables/{table.schema}.{table.table}.json"
                summary.rows[table.qualified] = _write_rows(zf, entry, conn, table, uid)
                step(table.qualified)
        for obj in plan.objects:
            info_ = zipfile.ZipInfo(f"files/{obj.bucket}/{obj.name}", _now_tuple())
            info_.compress_type = zipfile.ZIP_STORED
            with zf.open(info_, "w", force_zip64=True) as dest:
                for chunk in storage.download(obj.bucket, obj.name, caller=SERVICE):
                    dest.write(chunk)
                    summary.file_bytes += len(chunk)
            summary.files += 1
            step(f"{obj.bucket}/{obj.name}")
        _write_json(
            zf,
            "manifest.json",
            {
                "format": "backline-export",
                "version": FORMAT_VERSION,
                "user_id": str(uid),
                "created_at": datetime.now(UTC).isoformat(),
                "note": "Rows you own or authored. Ids of other accounts in them are replaced by null.",
                "tables": summary.rows,
                "files": [{"bucket": o.bucket, "name": o.name, "size": o.size} for o in plan.objects],
            },
        )
    summary.archive_bytes = out.stat().st_size
    return summary


def _write_rows(
    zf: zipfile.ZipFile, entry: str, conn: psycopg.Connection[Any], table: UserTable, uid: uuid.UUID
) -> int:
    count = 0
    with zf.open(entry, "w", force_zip64=True) as dest:
        dest.write(b"[")
        for value in iter_rows(conn, table, uid):
            dest.write(b",\n" if count else b"\n")
            dest.write(json.dumps(value, ensure_ascii=False, default=str).encode())
            count += 1
        dest.write(b"\n]\n")
    return count


def _write_json(zf: zipfile.ZipFile, entry: str, value: Any) -> None:
    with zf.open(entry, "w") as dest:
        _dump(dest, value)


def _dump(dest: IO[bytes], value: Any) -> None:
    dest.write(json.dumps(value, ensure_ascii=False, indent=2, default=str).encode())


def _now_tuple() -> tuple[int, int, int, int, int, int]:
    now = datetime.now(UTC)
    return (now.year, now.month, now.day, now.hour, now.minute, now.second)
