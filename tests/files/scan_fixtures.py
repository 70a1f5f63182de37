"""Real file bytes of every type the buckets allow, and helpers for the upload-scan tests."""

from __future__ import annotations

import io
import uuid
import wave
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image

from tests.export.conftest import FakeJobContext
from workers.settings import Settings

# ID3v2 header (no frames) followed by one MPEG-1 Layer III frame header (128 kbit/s, 44.1 kHz).
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(400)
MP3_FRAME_ONLY = b"\xff\xfb\x90\x64" + bytes(400)
AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64)
TEXT = b"this is a text file pretending to be audio\n" * 20


def wav_bytes(extra: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(800) + extra)
    return buf.getvalue()


def image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buf, fmt)
    return buf.getvalue()


def scan_settings(url: str, data_dir: Path, **env: Any) -> Settings:
    return Settings(_env_file=None, DATABASE_URL=url, BACKLINE_DATA_DIR=str(data_dir), **env)  # type: ignore[call-arg]


def ctx(settings: Settings, url: str, owner: uuid.UUID | None = None) -> FakeJobContext:
    return FakeJobContext(settings, url, owner, kind="upload_scan")


def scan_row(url: str, object_name: str) -> dict[str, Any] | None:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "select state, declared_type, detected_type, reason, action, quarantine_path, object_id,"
            " object_version, checked_at is not null as checked"
            " from public.upload_scans where object_name = %s",
            (object_name,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        names = [d.name for d in cur.description or ()]
    return dict(zip(names, row, strict=True))


def scan_jobs(url: str, object_name: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select payload, owner_id, status, result, last_error from public.jobs"
            " where kind = 'upload_scan' and payload ->> 'name' = %s order by created_at",
            (object_name,),
        ).fetchall()
    return [
        {"payload": p, "owner_id": o, "status": s, "result": r, "last_error": e} for p, o, s, r, e in rows
    ]
