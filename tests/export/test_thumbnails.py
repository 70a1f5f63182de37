"""Thumbnails: real images generated here become 150/300 px WebP beside the original; bad bytes fail."""

from __future__ import annotations

import io
from collections.abc import Callable

import psycopg
import pytest
from PIL import Image

from tests.export.conftest import FakeJobContext
from tests.helpers import create_user
from workers.export.thumbnails import (
    ThumbnailError,
    make_thumbnails,
    reencode_smaller,
    run_thumbnail,
    source_of,
)
from workers.platform.factory import Adapters
from workers.platform.storage import Caller
from workers.settings import Settings


def image_bytes(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    img = Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30))
    for x in range(0, size[0], 7):
        img.putpixel((x, x % size[1]), (0, 0, 255, 255) if mode == "RGBA" else (0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def striped(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    """Three equal bands along the longer side: red, green (the centre), blue."""
    img = Image.new("RGB", size, (0, 200, 0))
    w, h = size
    band = (w if w >= h else h) // 3
    for x in range(w):
        for y in range(h):
            pos = x if w >= h else y
            if pos < band:
                img.putpixel((x, y), (220, 0, 0))
            elif pos >= w - band if w >= h else pos >= h - band:
                img.putpixel((x, y), (0, 0, 220))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _is_green(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return g > 150 and r < 60 and b < 60


@pytest.mark.parametrize(
    ("fmt", "size", "mode"),
    [
        ("PNG", (1200, 800), "RGBA"),
        ("JPEG", (600, 900), "RGB"),
        ("GIF", (100, 40), "RGB"),  # smaller than a thumbnail: scaled up to the same square
    ],
)
def test_thumbnails_are_exact_webp_squares(fmt, size, mode):
    out = make_thumbnails(image_bytes(fmt, size, mode))
    assert sorted(out) == [150, 300]
    for px, data in out.items():
        with Image.open(io.BytesIO(data)) as thumb:
            assert thumb.format == "WEBP"
            assert thumb.size == (px, px)


@pytest.mark.parametrize("size", [(600, 200), (200, 600)])
def test_thumbnails_keep_the_centre_not_the_whole_image(size):
    """Red|green|blue bands of a 3:1 image: a centre crop is all green; an aspect fit shows red and blue."""
    for px, data in make_thumbnails(striped(size)).items():
        with Image.open(io.BytesIO(data)) as thumb:
            rgb = thumb.convert("RGB")
            for point in [(2, 2), (px - 3, px - 3), (px // 2, px // 2), (2, px - 3), (px - 3, 2)]:
                assert _is_green(rgb.getpixel(point)), (px, point, rgb.getpixel(point))


def test_thumbnails_are_webp_quality_80_by_default():
    data = image_bytes("PNG", (900, 700))
    default = make_thumbnails(data)
    assert default == make_thumbnails(data, quality=80)
    assert default[300] != make_thumbnails(data, quality=95)[300]


def test_the_original_is_reencoded_only_when_that_is_smaller():
    photo = image_bytes("PNG", (800, 600))  # lossless PNG: WebP 80 is much smaller
    webp = reencode_smaller(photo)
    assert webp is not None and len(webp) < len(photo)
    with Image.open(io.BytesIO(webp)) as full:
        assert full.format == "WEBP" and full.size == (800, 600)
    tiny_webp = make_thumbnails(photo, sizes=(16,), quality=10)[16]  # already a small WebP
    assert reencode_smaller(tiny_webp, quality=100) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is plainly text, not an image", "not an image"),
        (image_bytes("PNG", (300, 300))[:200], "broken image"),
    ],
)
def test_bad_bytes_raise_a_clear_error(data, message):
    with pytest.raises(ThumbnailError, match=message):
        make_thumbnails(data)


def test_job_writes_thumbnails_beside_the_image(
    rights_url: str, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
    name = f"{uid}/photos/cat.jpg"
    adapters.storage.upload(
        "images", name, image_bytes("JPEG", (640, 480)), content_type="image/jpeg", caller=Caller.user(uid)
    )
    result = run_thumbnail(make_ctx(uid, kind="thumbnail"), {"bucket": "images", "name": name})
    assert result == {
        "thumbnails": [f"{name}.thumb150.webp", f"{name}.thumb300.webp"],
        "full_webp": f"{name}.full.webp",
    }
    data = b"".join(adapters.storage.download("images", f"{name}.thumb300.webp"))
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.size == (300, 300)
    full = b"".join(adapters.storage.download("images", f"{name}.full.webp"))
    with Image.open(io.BytesIO(full)) as original:
        assert original.format == "WEBP" and original.size == (640, 480)
    assert source_of(f"{name}.thumb300.webp") == name
    assert source_of(f"{name}.full.webp") == name
    # Idempotent re-run (a retried job) overwrites; a thumbnail is never thumbnailed.
    assert run_thumbnail(make_ctx(uid), {"name": name}) == result
    assert run_thumbnail(make_ctx(uid), {"name": f"{name}.thumb150.webp"}) == {
        "skipped": "already a thumbnail"
    }


def test_job_on_a_non_image_fails_with_a_message_and_writes_nothing(
    rights_url: str, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
    name = f"{uid}/fake.png"
    adapters.storage.upload("images", name, b"<html>not a png</html>", content_type="image/png")
    with pytest.raises(ThumbnailError, match="not an image"):
        run_thumbnail(make_ctx(uid), {"name": name})
    assert [e.name for e in adapters.storage.list("images", str(uid))] == ["fake.png"]
    with pytest.raises(Exception, match="Object not found"):
        run_thumbnail(make_ctx(uid), {"name": f"{uid}/missing.png"})
    with pytest.raises(ValueError, match="needs 'name'"):
        run_thumbnail(make_ctx(uid), {})


def test_reencoding_the_original_can_be_turned_off(rights_url: str, settings: Settings, adapters: Adapters):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
    name = f"{uid}/scan.png"
    adapters.storage.upload(
        "images", name, image_bytes("PNG", (500, 500)), content_type="image/png", caller=Caller.user(uid)
    )
    off = settings.model_copy(update={"images_webp_original": False, "images_webp_quality": 60})
    result = run_thumbnail(FakeJobContext(off, rights_url, uid, kind="thumbnail"), {"name": name})
    assert result == {"thumbnails": [f"{name}.thumb150.webp", f"{name}.thumb300.webp"], "full_webp": None}
    assert sorted(e.name for e in adapters.storage.list("images", str(uid))) == [
        "scan.png",
        "scan.png.thumb150.webp",
        "scan.png.thumb300.webp",
    ]
    stored = b"".join(adapters.storage.download("images", f"{name}.thumb150.webp"))
    assert stored == make_thumbnails(image_bytes("PNG", (500, 500)), quality=60)[150]
