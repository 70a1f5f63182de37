"""Thumbnails: real images generated here become 150/300 px WebP beside the original; bad bytes fail."""

from __future__ import annotations

import io
from collections.abc import Callable

import psycopg
import pytest
from PIL import Image

from tests.export.conftest import FakeJobContext
from tests.helpers import create_user
from workers.export.thumbnails import ThumbnailError, make_thumbnails, run_thumbnail, source_of
from workers.platform.factory import Adapters
from workers.platform.storage import Caller


def image_bytes(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    img = Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30))
    for x in range(0, size[0], 7):
        img.putpixel((x, x % size[1]), (0, 0, 255, 255) if mode == "RGBA" else (0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "size", "mode", "expected"),
    [
        ("PNG", (1200, 800), "RGBA", {150: (150, 100), 300: (300, 200)}),
        ("JPEG", (600, 900), "RGB", {150: (100, 150), 300: (200, 300)}),
        ("GIF", (100, 40), "RGB", {150: (100, 40), 300: (100, 40)}),  # never upscaled
    ],
)
def test_thumbnails_are_webp_within_the_size(fmt, size, mode, expected):
    out = make_thumbnails(image_bytes(fmt, size, mode))
    for px, data in out.items():
        with Image.open(io.BytesIO(data)) as thumb:
            assert thumb.format == "WEBP"
            assert thumb.size == expected[px]


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
    assert result == {"thumbnails": [f"{name}.thumb150.webp", f"{name}.thumb300.webp"]}
    data = b"".join(adapters.storage.download("images", f"{name}.thumb300.webp"))
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.size == (300, 225)
    assert source_of(f"{name}.thumb300.webp") == name
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
