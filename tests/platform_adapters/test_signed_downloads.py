"""The edge service serves the local transport's signed URLs: valid ones stream, others are refused."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from starlette.applications import Starlette

from tests.helpers import create_user
from workers.platform.factory import make_adapters
from workers.platform.signed_downloads import signed_download_routes
from workers.platform.storage import Caller
from workers.settings import Settings


@pytest.fixture
def setup(clone_url: str, tmp_path: Path):
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=clone_url,
        BACKLINE_DATA_DIR=str(tmp_path / "data"),
        BACKLINE_PLATFORM_TRANSPORT="local",
    )
    with psycopg.connect(clone_url) as conn:
        uid = create_user(conn)
        conn.commit()
    adapters = make_adapters(settings)
    adapters.storage.upload(
        "samples",
        f"{uid}/beat.wav",
        b"RIFF" + b"\0" * 5000,
        content_type="audio/wav",
        caller=Caller.user(uid),
    )
    app = Starlette(routes=signed_download_routes(settings))
    yield settings, adapters, uid, app
    adapters.close()


def _get(app: Starlette, url: str) -> httpx.Response:
    import anyio

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as c:
            return await c.get(httpx.URL(url).raw_path.decode())

    return anyio.run(fetch)


def test_a_signed_url_downloads_the_bytes(setup):
    settings, adapters, uid, app = setup
    url = adapters.storage.signed_url("samples", f"{uid}/beat.wav", 60, caller=Caller.user(uid))
    assert url.startswith(settings.storage_public_url + "/storage/v1/object/sign/samples/")
    response = _get(app, url)
    assert response.status_code == 200
    assert response.content == b"RIFF" + b"\0" * 5000
    assert 'filename="beat.wav"' in response.headers["content-disposition"]


def test_forged_expired_and_retargeted_urls_are_refused(setup):
    settings, adapters, uid, app = setup
    url = adapters.storage.signed_url("samples", f"{uid}/beat.wav", 60, caller=Caller.user(uid))
    forged = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
    now = int(time.time())
    expired_token = jwt.encode(
        {"url": f"samples/{uid}/beat.wav", "iat": now - 120, "exp": now - 60},
        settings.jwt_secret,
        algorithm="HS256",
    )
    expired = url.split("?")[0] + f"?token={expired_token}"
    other = url.replace("/samples/", "/images/")
    for bad, code in ((forged, "InvalidSignature"), (expired, "ExpiredToken"), (other, "InvalidSignature")):
        response = _get(app, bad)
        assert response.status_code == 400
        assert response.json()["error"] == code


def test_a_valid_token_for_a_removed_object_is_404(setup):
    _settings, adapters, uid, app = setup
    url = adapters.storage.signed_url("samples", f"{uid}/beat.wav", 60, caller=Caller.user(uid))
    adapters.storage.remove("samples", [f"{uid}/beat.wav"], caller=Caller.user(uid))
    response = _get(app, url)
    assert response.status_code == 400 and response.json()["statusCode"] == "404"
