"""The webhook over real HTTP (uvicorn on 127.0.0.1): raw bytes, chunked bodies, JSON errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import uvicorn

from tests.billing.stripe_events import SECRET, Webhook, checkout_completed, new_customer, new_subscription
from tests.helpers import create_user
from workers.ai.billing import PATH
from workers.billing.signature import signature_header


@pytest.fixture
def server(clone_url: str) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(Webhook(clone_url).app, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


def test_signature_is_checked_over_the_exact_bytes_sent(clone_url, server):
    with psycopg.connect(clone_url) as conn:
        user = create_user(conn)
    # Stripe's bodies are pretty-printed JSON with non-ASCII text; re-serialising would break the HMAC.
    pretty = json.dumps(checkout_completed(user, new_customer(), new_subscription()), indent=2)
    body = pretty.replace('"metadata": {}', '"metadata": {"note": "Zoë ☕"}')
    assert "Zoë" in body
    raw = body.encode("utf-8")
    header = signature_header(raw, [SECRET])

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(raw), 97):
            yield raw[i : i + 97]

    with httpx.Client(base_url=server) as client:
        chunked = client.post(PATH, content=chunks(), headers={"stripe-signature": header})
        assert chunked.status_code == 200, chunked.text
        assert chunked.json()["outcome"] == "applied"
        again = client.post(PATH, content=raw, headers={"stripe-signature": header})
        assert again.json()["outcome"] == "duplicate"
        altered = raw.replace("Zoë".encode(), b"Zoe")
        forged = client.post(PATH, content=altered, headers={"stripe-signature": header})
        assert forged.status_code == 400
        assert forged.headers["content-type"] == "application/json"
        assert client.get(PATH).status_code == 405
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select plan from public.profiles where id = %s", (user,)).fetchone() == ("pro",)
