"""AI proxy fixtures: the fake provider, a migrated database we commit to, the proxy under uvicorn."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest
import uvicorn

from tests.ai.fake_provider import FakeProvider
from tests.helpers import create_user
from workers.ai.app import create_app
from workers.settings import Settings

SECRET = "test-secret-with-at-least-32-characters-long!!"
# Fixed (not random): this module may be imported twice (as conftest and by tests).
MASTER_A = "a:" + base64.b64encode(b"A" * 32).decode()
MASTER_B = "b:" + base64.b64encode(b"B" * 32).decode()


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    fake.start()
    yield fake
    fake.stop()


def make_token(
    user_id: uuid.UUID | str,
    *,
    secret: str = SECRET,
    exp: int | None = None,
    aud: str = "authenticated",
    role: str = "authenticated",
    **extra: Any,
) -> str:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "role": role,
        "aud": aud,
        "iat": now,
        "exp": exp or now + 3600,
        "is_anonymous": False,
        **extra,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class Proxy:
    def __init__(self, url: str, db_url: str, fake: FakeProvider, settings: Settings) -> None:
        self.url = url
        self.db_url = db_url
        self.fake = fake
        self.settings = settings
        self.http = httpx.Client(base_url=url, timeout=30)
        self.app: Any = None  # the Starlette app (app.state.proxy: the ProxyApp)

    def user(self, *, anonymous: bool = False, plan: str = "free") -> tuple[uuid.UUID, dict[str, str]]:
        with psycopg.connect(self.db_url) as conn:
            uid = create_user(conn, anonymous=anonymous)
            conn.execute("insert into public.profiles (id) values (%s) on conflict do nothing", (uid,))
            conn.execute("update public.profiles set plan = %s where id = %s", (plan, uid))
        return uid, {"authorization": f"Bearer {make_token(uid, is_anonymous=anonymous)}"}

    def settled(self, user_id: uuid.UUID, timeout: float = 5.0) -> None:
        """Wait until none of the user's calls is pending: a JSON response is sent before its
        settlement commits (it runs right after, as a background task)."""
        deadline = time.time() + timeout
        query = "select count(*) from public.ai_usage where user_id = %s and status = 'pending'"
        while self.sql(query, (user_id,))[0][0]:
            assert time.time() < deadline, "a call was never settled"
            time.sleep(0.02)

    def sql(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []


def serve(app: Any) -> tuple[uvicorn.Server, str, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("proxy did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", thread


@pytest.fixture
def proxy_factory(clone_url: str, fake_provider: FakeProvider) -> Iterator[Callable[..., Proxy]]:
    servers: list[tuple[uvicorn.Server, Proxy, threading.Thread]] = []

    def make(**overrides: Any) -> Proxy:
        values: dict[str, Any] = dict(
            jwt_secret=SECRET,
            ai_master_keys=MASTER_A,
            ai_openai_base_url=fake_provider.url + "/v1",
            ai_openai_compat_base_url=fake_provider.url + "/v1",
            ai_anthropic_base_url=fake_provider.url,
            ai_gemini_base_url=fake_provider.url,
            ai_pool_min=1,
            ai_pool_max=12,
            ai_cors_origins=("https://app.example",),
            ai_provider_timeout_seconds=10.0,
        )
        values.update(overrides)
        settings = Settings.model_construct(**{**Settings().model_dump(), **values})
        app = create_app(settings, clone_url)
        server, url, thread = serve(app)
        proxy = Proxy(url, clone_url, fake_provider, settings)
        proxy.app = app
        servers.append((server, proxy, thread))
        return proxy

    yield make
    for server, proxy, _ in servers:
        proxy.http.close()
        server.should_exit = True
    for _, _, thread in servers:
        thread.join(timeout=10)


@pytest.fixture
def proxy(proxy_factory: Callable[..., Proxy]) -> Proxy:
    return proxy_factory()
