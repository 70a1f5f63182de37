"""Image thumbnails as the collection tracker specifies, written beside the original.

- `<name>.thumb150.webp` and `<name>.thumb300.webp`: exactly 150x150 and
  300x300, centre-cropped (ImageOps.fit: the image is scaled to cover the
  square and its middle kept, not aspect-fitted inside it; small images are
  scaled up so every thumbnail has the same size), WebP at quality 80
  (BACKLINE_IMAGES_WEBP_QUALITY);
- `<name>.full.webp`: the original re-encoded to WebP at the same quality
  when that is smaller than the original (BACKLINE_IMAGES_WEBP_ORIGINAL=false
  turns it off). The original itself is kept as uploaded: it is the user's
  file, charged to their quota; the derived files belong to no user and follow
  their original (the orphan cleanup and the thumbnail triggers treat them as
  derived).

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
from workers.platform.storage import SERVICE, StorageAdapter, StorageError

SIZES = (150, 300)
WEBP_QUALITY = 80
IMAGES_BUCKET = "images"
MAX_SOURCE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 50_000_000
THUMB_RE = re.compile(r"\.(thumb\d+|full)\.webp$")


class ThumbnailError(PermanentError):
    """The source cannot be turned into thumbnails (the job fails with this message)."""


def thumbnail_name(name: str, size: int) -> str:
    return f"{name}.thumb{size}.webp"


def full_webp_name(name: str) -> str:
    return f"{name}.full.webp"


def is_thumbnail(name: str) -> bool:
    """A derived file (a thumbnail or the re-encoded original), never itself a source."""
    return bool(THUMB_RE.search(name))


def source_of(name: str) -> str | None:
    """The original's name for a thumbnail name, else None."""
    return THUMB_RE.sub("", name) if is_thumbnail(name) else None


def _open(data: bytes) -> Image.Image:
    """The decoded image, EXIF orientation applied, in RGB or RGBA; ThumbnailError for bad bytes."""
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
            return image
    except ThumbnailError:
        raise
    except UnidentifiedImageError:
        raise ThumbnailError("not an image: the bytes are in no format Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ThumbnailError(f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ThumbnailError(f"broken image: {exc}") from None


def _webp(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=quality, method=4)
    return buffer.getvalue()


def make_thumbnails(
    data: bytes, sizes: tuple[int, ...] = SIZES, quality: int = WEBP_QUALITY
) -> dict[int, bytes]:
    """Square WebP thumbnails, size x size each, centre-cropped, EXIF orientation applied."""
    image = _open(data)
    return {
        size: _webp(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS), quality) for size in sizes
    }


def reencode_smaller(data: bytes, quality: int = WEBP_QUALITY) -> bytes | None:
    """The whole image as WebP at `quality` when that is smaller than `data`, else None.

    Animated images are left alone: a still WebP of their first frame is not the same picture.
    """
    image = _open(data)
    with Image.open(io.BytesIO(data)) as probe:
        if getattr(probe, "is_animated", False):
            return None
    webp = _webp(image, quality)
    return webp if len(webp) < len(data) else None


def _read_source(storage: StorageAdapter, bucket: str, name: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        stream = storage.download(bucket, name, caller=SERVICE)
    except StorageError as exc:
        if exc.status == 404:
            # Deleted, or removed by the upload check (workers/files/scan.py): retrying cannot help.
            raise ThumbnailError(f"Object not found: {bucket}/{name} was deleted or rejected") from None
        raise
    for chunk in stream:
        size += len(chunk)
        if size > MAX_SOURCE_BYTES:
            raise ThumbnailError(f"image too large: over {MAX_SOURCE_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def write_thumbnails(
    storage: StorageAdapter,
    bucket: str,
    name: str,
    *,
    quality: int = WEBP_QUALITY,
    webp_original: bool = True,
) -> dict[str, Any]:
    """Read `bucket/name`, write its thumbnails (and the smaller WebP original) beside it.

    Returns {"thumbnails": [names], "full_webp": name or None}. The re-encoded
    original is written before the thumbnails: storing both thumbnails marks the
    image record done (private.record_image_upload).
    """
    data = _read_source(storage, bucket, name)
    thumbs = make_thumbnails(data, quality=quality)
    full = reencode_smaller(data, quality) if webp_original else None
    full_name = None
    if full is not None:
        full_name = full_webp_name(name)
        storage.upload(bucket, full_name, full, content_type="image/webp", upsert=True, caller=SERVICE)
    written = []
    for px, webp in thumbs.items():
        target = thumbnail_name(name, px)
        storage.upload(bucket, target, webp, content_type="image/webp", upsert=True, caller=SERVICE)
        written.append(target)
    return {"thumbnails": written, "full_webp": full_name}


def _owned_by(ctx: HandlerContext, bucket: str, name: str, user_id: str) -> bool:
    """In the user's own folder, or uploaded by them elsewhere (room images: rooms/<room>/...)."""
    if name.split("/", 1)[0] == user_id:
        return True
    if ctx.database_url is None:
        return False
    with psycopg.connect(ctx.database_url, prepare_threshold=None) as conn:
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
        return write_thumbnails(
            adapters.storage,
            bucket,
            name,
            quality=ctx.settings.images_webp_quality,
            webp_original=ctx.settings.images_webp_original,
        )
    finally:
        adapters.close()
