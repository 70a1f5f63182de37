"""Detect: image upload (raw body or base64 batch) -> Gemini vision wire format -> items with confidence."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_detect_raw_upload_uses_gemini_inline_data(proxy_factory: Any) -> None:
    proxy = proxy_factory(ai_operator_keys={"gemini": "operator-gemini"})
    uid, h = proxy.user()
    image = png()
    resp = proxy.http.post(
        "/v1/detect?prompt=What%20is%20this", headers={**h, "content-type": "image/png"}, content=image
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    (result,) = body["results"]
    assert result["items"] == [{"name": "vinyl record", "confidence": 0.93, "category": "music"}]
    assert result["processing_ms"] >= 0 and body["processing_ms"] >= result["processing_ms"]
    sent = proxy.fake.requests[-1]
    assert sent["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "operator-gemini"
    parts = sent["body"]["contents"][0]["parts"]
    assert parts[0]["text"].startswith("What is this")
    assert parts[1] == {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(image).decode()}}
    proxy.settled(uid)
    assert proxy.sql("select endpoint, images, status from public.ai_usage where user_id = %s", (uid,)) == [
        ("detect", 1, "ok")
    ]


def test_detect_batch_counts_each_image_and_validates(proxy_factory: Any) -> None:
    proxy = proxy_factory(ai_operator_keys={"gemini": "operator-gemini"})
    uid, h = proxy.user()
    b64 = base64.b64encode(png()).decode()
    resp = proxy.http.post(
        "/v1/detect",
        headers=h,
        json={"images": [{"data": b64, "mime_type": "image/png"}] * 3, "prompt": "items"},
    )
    assert resp.status_code == 200 and [r["image"] for r in resp.json()["results"]] == [0, 1, 2]
    assert (
        proxy.sql("select count(*) from private.rate_limit_events where key = %s", (f"ai:{uid}",))[0][0] == 3
    )
    bad: dict[str, Any]
    for bad in (
        {"images": []},
        {"images": [{"data": "!!notbase64"}]},
        {"images": [{"data": b64, "mime_type": "text/x"}]},
        {"images": [{"data": b64}] * 11},
    ):
        assert proxy.http.post("/v1/detect", headers=h, json=bad).status_code == 400
    too_big = proxy.http.post(
        "/v1/detect",
        headers={**h, "content-type": "image/png"},
        content=b"x" * (proxy.settings.ai_max_upload_bytes + 1),
    )
    assert too_big.status_code == 413
    # Storage paths need SUPABASE_URL (fetched with the user's own token).
    assert (
        proxy.http.post(
            "/v1/detect", headers=h, json={"images": [{"bucket": "items", "path": "a.png"}]}
        ).status_code
        == 501
    )
    assert proxy.sql("select count(*) from public.ai_usage where user_id = %s", (uid,))[0][0] == 3


def test_detect_storage_path_fetched_with_users_token(proxy_factory: Any, fake_provider: Any) -> None:
    proxy = proxy_factory(ai_operator_keys={"gemini": "op"}, supabase_url=fake_provider.url)
    uid, h = proxy.user()
    _, h_other = proxy.user()
    image = png()
    fake_provider.objects[("items", f"{uid}/a.png")] = (h["authorization"][7:], "image/png", image)
    ok = proxy.http.post(
        "/v1/detect", headers=h, json={"images": [{"bucket": "items", "path": f"{uid}/a.png"}]}
    )
    assert ok.status_code == 200, ok.text
    inline = proxy.fake.requests[-1]["body"]["contents"][0]["parts"][1]["inline_data"]
    assert inline == {"mime_type": "image/png", "data": base64.b64encode(image).decode()}
    other = proxy.http.post(
        "/v1/detect", headers=h_other, json={"images": [{"bucket": "items", "path": f"{uid}/a.png"}]}
    )
    assert other.status_code == 404
