"""Image thumbnails: 150 px and 300 px WebP written beside the original (`<name>.thumb150.webp`).

Bad input (not an image, truncated, a decompression bomb, too large) raises
ThumbnailError with a clear message: the job fails, the worker carries on.
"""

from __future__ import annotations

import io
import re
from typing import Any

import psycopg
from PIL import Image, ImageOps, UnidentifiedImageError

from workers.export.context import HandlerContext, InvalidPayload, NotAllowed, PermanentError
from workers.platform.factory import make_adapters
from workers.platform.storage import SERVICE, StorageAdapter

SIZES = (150, 300)
IMAGES_BUCKET = "images"
MAX_SOURCE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 50_000_000
THUMB_RE = re.compile(r"\.thumb\d+\.webp$")


class ThumbnailError(PermanentError):
    """The source cannot be turned into thumbnails (the job fails with this message)."""


def thumbnail_name(name: str, size: int) -> str:
    return f"{name}.thumb{size}.webp"


def is_thumbnail(name: str) -> bool:
    return bool(THUMB_RE.search(name))


def source_of(name: str) -> str | None:
    """The original's name for a thumbnail name, else None."""
    return THUMB_RE.sub("", name) if is_thumbnail(name) else None


def make_thumbnails(data: bytes, sizes: tuple[int, ...] = SIZES) -> dict[int, bytes]:
    """WebP thumbnails whose longer side is at most `size` (never upscaled), EXIF orientation applied."""
    if not data:
        raise ThumbnailError("not an image: the object is empty")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                raise ThumbnailError(
                    f"image too large: {probe.width}x{probe.height} pixels (max {MAX_PIXELS:,})"
                )
            probe.verify()
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
            if image.mode not in ("RGB", "RGBA"):
                image = image.convert(
                    "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
                )
            out = {}
            for size in sizes:
                thumb = image.copy()
                thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
                buffer = io.BytesIO()
                thumb.save(buffer, "WEBP", quality=80, method=4)
                out[size] = buffer.getvalue()
            return out
    except ThumbnailError:
        raise
    except UnidentifiedImageError:
        raise ThumbnailError("not an image: the bytes are in no format Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ThumbnailError(f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ThumbnailError(f"broken image: {exc}") from None


def write_thumbnails(storage: StorageAdapter, bucket: str, name: str) -> list[str]:
    """Read `bucket/name`, write its thumbnails beside it; returns the names written."""
    chunks: list[bytes] = []
    size = 0
    for chunk in storage.download(bucket, name, caller=SERVICE):
        size += len(chunk)
        if size > MAX_SOURCE_BYTES:
            raise ThumbnailError(f"image too large: over {MAX_SOURCE_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    written = []
    for px, webp in make_thumbnails(b"".join(chunks)).items():
        target = thumbnail_name(name, px)
        storage.upload(bucket, target, webp, content_type="image/webp", upsert=True, caller=SERVICE)
        written.append(target)
    return written


def _owned_by(ctx: HandlerContext, bucket: str, name: str, user_id: str) -> bool:
    """In the user's own folder, or uploaded by them elsewhere (room images: rooms/<room>/...)."""
    if name.split("/", 1)[0] == user_id:
        return True
    if ctx.database_url is None:
        return False
    with psycopg.connect(ctx.database_url) as conn:
        row = conn.execute(
            "select owner_id from storage.objects where bucket_id = %s and name = %s", (bucket, name)
        ).fetchone()
    return row is not None and row[0] == user_id


def run_thumbnail(ctx: HandlerContext, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Job handler (kind 'thumbnail'): payload {"bucket": "images", "name": "<uid>/photo.jpg"}."""
    bucket = str(payload.get("bucket") or IMAGES_BUCKET)
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidPayload("payload needs 'name' (the object path)")
    if is_thumbnail(name):
        return {"skipped": "already a thumbnail"}
    if ctx.owner_id is not None and not _owned_by(ctx, bucket, name, str(ctx.owner_id)):
        raise NotAllowed("a user's thumbnail job may only read images the user uploaded")
    adapters = make_adapters(ctx.settings, ctx.database_url)
    try:
        return {"thumbnails": write_thumbnails(adapters.storage, bucket, name)}
    finally:
        adapters.close()
