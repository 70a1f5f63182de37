"""The shared provider HTTP client: keep-alive pool, timeouts, and no cookie jar.

One client serves every user's calls, so a cookie a provider sets (CDN bot
cookies, session affinity) must not be stored and replayed on the next user's
request; skipping the jar also saves its per-response bookkeeping.
"""

from __future__ import annotations

import http.cookiejar
from typing import Any

import httpx


class NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that never stores or sends anything."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def provider_client(timeout_seconds: float, *, max_connections: int = 200) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2)
    timeout = httpx.Timeout(timeout_seconds, connect=5.0)
    return httpx.AsyncClient(limits=limits, timeout=timeout, cookies=NoCookies())
