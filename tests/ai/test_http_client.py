"""The provider HTTP client (workers/ai/http_client.py) against a raw local HTTP/1.1 server:
incremental SSE lines, timeouts, connection errors, keep-alive reuse, environment proxies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from workers.ai.http_client import (
    ProviderClient,
    ProviderConfigError,
    ProviderTimeout,
    ProviderTransportError,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_sse_lines_arrive_incrementally_with_any_line_ending() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for piece in (b"data: one\r", b"\ndata: tw", "o\u2028\n\ndata: three\r\r".encode()):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            if piece.startswith(b"data: one"):
                await release.wait()  # nothing more until the client has seen the first line
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main() -> list[str]:
        server, url = await serve(handler)
        lines: list[str] = []
        body, headers = {"stream": True}, {"x-api-key": "k"}
        async with server, ProviderClient(5) as client, client.post(url + "/s", body, headers) as resp:
            assert resp.status_code == 200
            async for line in resp.aiter_lines():
                lines.append(line)
                release.set()
        return lines

    # "\r" then "\n" in the next chunk is one line end; U+2028 inside data is not a line end.
    assert run(main()) == ["data: one", "data: two\u2028", "", "data: three", ""]


def test_json_body_headers_and_keep_alive_reuse() -> None:
    seen: list[bytes] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            seen.append(head + body)
            out = b'{"ok":true}'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nset-cookie: a=b\r\n\r\n%s" % (len(out), out)
            )
            await writer.drain()
        writer.close()

    async def main() -> list[bytes]:
        server, url = await serve(handler)
        async with server, ProviderClient(5) as client:
            out = []
            for _ in range(3):
                async with client.post(
                    url + "/v1/x", {"m": "é", "n": [1]}, {"authorization": "Bearer k"}
                ) as r:
                    out.append(await r.aread())
        return out

    assert run(main()) == [b'{"ok":true}'] * 3
    assert connections == 1  # pooled keep-alive connection
    assert all(b'{"m":"\xc3\xa9","n":[1]}' in s and b"authorization: bearer k" in s.lower() for s in seen)
    assert not any(b"cookie" in s.lower() for s in seen)  # the provider's cookie is never replayed


def test_read_timeout_and_unreachable_provider() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)
        writer.close()

    async def timed_out() -> None:
        server, url = await serve(silent)
        async with server, ProviderClient(0.3) as client, client.post(url, {}, {}) as resp:
            await resp.aread()

    with pytest.raises(ProviderTimeout):
        run(timed_out())

    async def refused() -> None:
        server, url = await serve(silent)
        server.close()
        await server.wait_closed()
        async with ProviderClient(2) as client, client.post(url, {}, {}):
            pass

    with pytest.raises(ProviderTransportError) as exc:
        run(refused())
    assert not isinstance(exc.value, ProviderTimeout)


def test_environment_proxy_is_used_unless_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    requests: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        requests.append(head.split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main(target: str) -> int:
        server, url = await serve(proxy)
        monkeypatch.setenv("HTTP_PROXY", url)
        monkeypatch.setenv("NO_PROXY", "direct.invalid")
        async with server, ProviderClient(2) as client, client.post(target, {}, {}) as resp:
            return resp.status_code

    assert run(main("http://provider.example/v1/chat")) == 204
    assert requests == [b"POST http://provider.example/v1/chat HTTP/1.1"]
    with pytest.raises(ProviderTransportError):  # NO_PROXY host: connected directly (and unresolvable)
        run(main("http://direct.invalid/v1/chat"))
    assert len(requests) == 1


def test_https_proxy_url_is_refused_instead_of_silently_going_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp's environment lookup drops an https:// proxy (a log warning) and connects directly:
    building the client (the proxy's startup) refuses it, naming the variable but no credentials."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "https://user:s3cret@proxy.corp.example:3129")

    async def build() -> None:
        async with ProviderClient(2):
            pass

    with pytest.raises(ProviderConfigError) as info:
        run(build())
    message = str(info.value)
    assert "HTTPS_PROXY" in message and "http://proxy.corp.example:3129" in message
    assert "s3cret" not in message and "user" not in message
    # http:// proxies and ALL_PROXY (ignored for provider calls) are accepted.
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.setenv("ALL_PROXY", "https://ignored.example:1080")
    run(build())


def test_tls_trust_is_certifi_unless_ssl_cert_file_or_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The client moved from httpx (certifi's CAs) to aiohttp (the system store by default):
    the context keeps certifi's bundle, and SSL_CERT_FILE / SSL_CERT_DIR replace it as before."""
    import ssl

    import certifi

    from workers.ai import http_client

    calls: list[dict[str, Any]] = []
    real = ssl.create_default_context

    def spy(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", spy)
    http_client._ssl_context.cache_clear()
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    ctx = http_client.ssl_context()
    assert calls[-1] == {"cafile": certifi.where()}
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with open(certifi.where()) as bundle:
        assert len(ctx.get_ca_certs()) == bundle.read().count("BEGIN CERTIFICATE")

    async def connector_ssl() -> Any:
        async with ProviderClient(2) as client:
            return client._session.connector._ssl  # type: ignore[union-attr]

    assert run(connector_ssl()) is ctx  # the client uses exactly this context

    pem = tmp_path / "ca.pem"
    with open(certifi.where()) as bundle:
        first = bundle.read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    pem.write_text(first)
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    ctx = http_client.ssl_context()
    assert calls[-1] == {"cafile": str(pem), "capath": None} and len(ctx.get_ca_certs()) == 1
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    http_client.ssl_context()
    assert calls[-1] == {"cafile": None, "capath": str(tmp_path)}
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ProviderConfigError, match="SSL_CERT_FILE"):
        http_client.ssl_context()
    http_client._ssl_context.cache_clear()


def test_proxy_credentials_come_from_netrc_when_the_url_has_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """As documented: aiohttp's environment lookup reads ~/.netrc ($NETRC) for the proxy host."""
    import base64

    heads: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        heads.append(head)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login proxyuser password proxypass\n")
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("HTTPS_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def main() -> int:
        server, url = await serve(proxy)
        monkeypatch.setenv("HTTP_PROXY", url)
        async with server, ProviderClient(2) as client, client.post("http://provider.example/x", {}, {}) as r:
            return r.status_code

    assert run(main()) == 204
    expected = b"Proxy-Authorization: Basic " + base64.b64encode(b"proxyuser:proxypass")
    assert expected.lower() in heads[0].lower()


def test_proxy_credentials_go_on_the_connect_request_not_into_the_tunnel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An https provider through an http:// proxy: the proxy's credentials are sent with the
    CONNECT request (to the proxy), and the client passes no deprecated `proxy_auth`."""
    import base64
    import warnings

    heads: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    for name in ("HTTPS_PROXY", "https_proxy", "http_proxy", "HTTP_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def main() -> None:
        server, url = await serve(proxy)
        monkeypatch.setenv("HTTPS_PROXY", url.replace("http://", "http://proxyuser:proxypass@"))
        async with server, ProviderClient(2) as client:
            with pytest.raises(ProviderTransportError):  # the proxy refuses the tunnel
                async with client.post("https://provider.example/v1/chat", {}, {"x-api-key": "k"}):
                    pass

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        run(main())
    assert len(heads) == 1
    assert heads[0].startswith(b"CONNECT provider.example:443 HTTP/1.1")
    expected = b"Proxy-Authorization: Basic " + base64.b64encode(b"proxyuser:proxypass")
    assert expected.lower() in heads[0].lower()
    assert b"x-api-key" not in heads[0].lower()  # the provider's headers stay inside the tunnel
