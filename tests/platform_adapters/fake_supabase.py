"""A local HTTP server standing in for hosted Supabase's Storage and Auth APIs.

It records every request exactly as received (method, path, query, headers,
body) and answers with the documented response shapes, so the tests check
the wire format the official SDKs really send.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[Recorded], Reply]


def json_reply(status: int, data: Any) -> Reply:
    return status, {"content-type": "application/json"}, json.dumps(data).encode()


class FakeSupabase:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: list[tuple[str, str, Route]] = []
        self.url = ""

    def route(self, method: str, path_prefix: str, reply: Route) -> None:
        self.routes.insert(0, (method, path_prefix, reply))

    def handle(self, rec: Recorded) -> Reply:
        self.requests.append(rec)
        for method, prefix, reply in self.routes:
            if rec.method == method and rec.path.startswith(prefix):
                return reply(rec)
        return json_reply(404, {"statusCode": "404", "error": "not_found", "message": "no route"})


@contextmanager
def fake_supabase() -> Iterator[FakeSupabase]:
    fake = FakeSupabase()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            rec = Recorded(
                self.command,
                unquote(parts.path),
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            status, headers, payload = fake.handle(rec)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
