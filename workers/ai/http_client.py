"""The provider HTTP client (aiohttp): keep-alive pool, timeouts, TLS verification, no cookies.

Provider calls are the proxy's hot path. httpx cost ~0.48 ms of CPU per call here
(measured, docs/benchmarks.md); aiohttp's C-accelerated HTTP parser a fraction
of that. This module is the only one that knows about aiohttp: adapters see
`ProviderClient.post()` and a `ProviderResponse` with `status_code`, `aread()` and
`aiter_lines()` (incremental, for SSE), and two exceptions for the retry logic.

One client serves every user's calls, so a cookie a provider sets (CDN bot
cookies, session affinity) must never be stored and replayed on the next user's
request: the session uses aiohttp's `DummyCookieJar`.
"""

from __future__ import annotations

import codecs
import functools
import http.cookiejar
import json
import os
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import certifi
import httpx
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from workers.errors import BacklineError


class ProviderTransportError(Exception):
    """No usable answer from the provider: connection refused/reset/closed, bad HTTP."""


class ProviderTimeout(ProviderTransportError):
    """Connecting, waiting for the pool, or reading took longer than the configured timeout."""


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class ProviderConfigError(BacklineError):
    """The environment asks for something the provider client cannot do (refused at startup)."""


def ssl_context() -> ssl.SSLContext:
    """The CA trust for provider TLS: certifi's bundle, as with httpx before (aiohttp would use
    the system store), unless SSL_CERT_FILE / SSL_CERT_DIR name the CAs to trust instead."""
    return _ssl_context(os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=4)
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # Cached: loading certifi's ~150 certificates takes milliseconds, and queue jobs build a client each.
    if cafile is None and capath is None:
        return ssl.create_default_context(cafile=certifi.where())
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        which = f"SSL_CERT_FILE={cafile}" if cafile else f"SSL_CERT_DIR={capath}"
        raise ProviderConfigError(f"cannot load the CA certificates of {which}: {exc}") from None


def check_proxy_env() -> None:
    """Refuse an https:// proxy URL in HTTPS_PROXY/HTTP_PROXY (either case).

    aiohttp's environment lookup ignores such a proxy with only a log warning and the call
    goes DIRECT, bypassing the operator's proxy; fail loudly instead. (The provider traffic
    is TLS end to end through an http:// proxy's CONNECT tunnel anyway.)"""
    for scheme, value in urllib.request.getproxies().items():
        if scheme not in ("http", "https"):
            continue  # ALL_PROXY, FTP_PROXY, ...: not used for provider calls
        proxy = URL(value)
        if proxy.scheme in ("https", "wss"):
            # Host and port only: the URL may carry credentials.
            raise ProviderConfigError(
                f"{scheme.upper()}_PROXY is an {proxy.scheme}:// proxy URL ({proxy.host}:{proxy.port}); "
                f"the AI provider client supports only http:// proxy URLs (provider calls stay TLS "
                f"end to end through the proxy's CONNECT tunnel): use http://{proxy.host}:{proxy.port}"
            )


class ProviderResponse:
    """One provider response; the body is read with aread() or, streamed, with aiter_lines()."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status_code = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def aread(self) -> bytes:
        try:
            return await self._resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderTimeout("provider read timed out") from exc
        except aiohttp.ClientError as exc:
            raise ProviderTransportError(f"provider connection failed: {type(exc).__name__}") from exc

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Lines as they arrive, split on \r\n, \n or \r as the SSE spec says (not on the
        other characters str.splitlines() knows, which may occur inside JSON data)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        skip_lf = False  # the last chunk ended in "\r": a "\n" starting the next one belongs to it
        try:
            async for chunk in self._resp.content.iter_any():
                pending += decoder.decode(chunk)
                if skip_lf and pending:
                    skip_lf = False
                    if pending[0] == "\n":
                        pending = pending[1:]
                while pending:
                    n = pending.find("\n")
                    r = pending.find("\r", 0, n if n >= 0 else len(pending))
                    if r >= 0:
                        yield pending[:r]
                        if r + 1 == len(pending):
                            skip_lf, pending = True, ""
                        else:
                            pending = pending[r + 2 if pending[r + 1] == "\n" else r + 1 :]
                    elif n >= 0:
                        yield pending[:n]
                        pending = pending[n + 1 :]
                    else:
                        break
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderTimeout("provider read timed out") from exc
        except aiohttp.ClientError as exc:
            raise ProviderTransportError(f"provider connection failed: {type(exc).__name__}") from exc
        pending += decoder.decode(b"", final=True)
        if pending:  # a last line without its line end
            yield pending


class ProviderClient:
    """The shared provider client. Create it inside the running event loop (app lifespan)."""

    def __init__(self, timeout_seconds: float, *, max_connections: int = 200) -> None:
        # connect: waiting for a pooled connection + connecting; sock_connect: the TCP/TLS
        # handshake alone; sock_read: each read (a stream may run long, but never stall).
        timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout_seconds, sock_connect=5.0, sock_read=timeout_seconds
        )
        check_proxy_env()
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ssl=ssl_context())
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
            # trust_env=True would look up HTTP(S)_PROXY/NO_PROXY and ~/.netrc in a worker thread on
            # every request (measured: thread hops on the hot path); _proxy() does it once per host.
            # Certificates: ssl_context() (certifi's CAs unless SSL_CERT_FILE/SSL_CERT_DIR).
            trust_env=False,
        )
        self._proxies: dict[tuple[str, str], tuple[URL | None, dict[str, str], dict[str, str]]] = {}

    def _proxy(self, url: str) -> tuple[URL | None, dict[str, str], dict[str, str]]:
        """The environment's proxy for this URL's scheme and host (HTTPS_PROXY/HTTP_PROXY, NO_PROXY;
        credentials from the proxy URL, else from ~/.netrc or $NETRC for the proxy host), as httpx's
        trust_env did. Looked up on the first call to each host and kept (the environment does not
        change); https:// proxy URLs were refused when the client was built (check_proxy_env).
        Returns (proxy, headers for the CONNECT request, headers for the request itself): the
        credentials as a Proxy-Authorization header (aiohttp deprecates `proxy_auth`), on the
        CONNECT request for an https URL (never inside the tunnel, where headers reach the
        provider) and on the request itself for an http one, which goes to the proxy as is."""
        u = URL(url)
        key = (u.scheme, u.host or "")
        found = self._proxies.get(key)
        if found is None:
            try:
                proxy, auth = get_env_proxy_for_url(u)
            except LookupError:
                proxy, auth = None, None
            credentials = {"Proxy-Authorization": auth.encode()} if auth is not None else {}
            found = (proxy, credentials, {}) if u.scheme == "https" else (proxy, {}, credentials)
            self._proxies[key] = found
        return found

    @asynccontextmanager
    async def post(self, url: str, body: Any, headers: Mapping[str, str]) -> AsyncIterator[ProviderResponse]:
        """POST a JSON body; the response is open (unread) inside the block and released after
        it (an unfinished body closes the connection rather than returning it to the pool)."""
        try:
            proxy, connect_headers, request_headers = self._proxy(url)
            cm = self._session.post(
                url,
                data=_dumps(body),
                headers={**headers, **request_headers} if request_headers else headers,
                allow_redirects=False,
                proxy=proxy,
                proxy_headers=connect_headers or None,
            )
            resp = await cm.__aenter__()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderTimeout("provider request timed out") from exc
        except aiohttp.ClientError as exc:
            raise ProviderTransportError(f"cannot reach provider: {type(exc).__name__}") from exc
        try:
            yield ProviderResponse(resp)
        finally:
            resp.release()

    async def aclose(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> ProviderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def provider_client(timeout_seconds: float, *, max_connections: int = 200) -> ProviderClient:
    return ProviderClient(timeout_seconds, max_connections=max_connections)


class NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that never stores or sends anything (for the httpx client below)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def side_client(timeout_seconds: float) -> httpx.AsyncClient:
    """httpx for the rare non-provider calls (JWKS refresh, storage reads with the user's token):
    the same no-cookie rule, since it is shared by every user too."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds, connect=5.0), cookies=NoCookies())
