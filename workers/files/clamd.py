"""A minimal clamd client: stream bytes with INSTREAM over TCP or a unix socket, read the verdict.

Protocol (clamd(8)): send `zINSTREAM\\0`, then chunks each prefixed with its
length as a 4-byte big-endian integer, then a zero length; clamd answers
`stream: OK`, `stream: <signature> FOUND` or `<message> ERROR`, NUL-terminated.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from workers.errors import BacklineError

MAX_REPLY = 4096


class ClamdError(BacklineError):
    """clamd could not be reached or answered with an error: the scan is retried, never assumed clean."""


@dataclass(frozen=True)
class ClamdAddress:
    """Where clamd listens: a TCP host and port, or a unix socket path."""

    host: str | None = None
    port: int | None = None
    path: str | None = None

    @classmethod
    def parse(cls, value: str) -> ClamdAddress:
        """tcp://host:port, host:port, unix:///path/to/clamd.sock or /path/to/clamd.sock."""
        text = value.strip()
        if text.startswith("unix://"):
            text = text[len("unix://") :]
            if not text.startswith("/"):
                raise ClamdError(f"BACKLINE_CLAMAV_ADDRESS: unix socket paths are absolute, got {value!r}")
        if text.startswith("/"):
            return cls(path=text)
        if text.startswith("tcp://"):
            text = text[len("tcp://") :]
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ClamdError(
                f"BACKLINE_CLAMAV_ADDRESS must be tcp://host:port or unix:///path, got {value!r}"
            )
        return cls(host=host.strip("[]"), port=int(port))

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.path else f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True)
class Verdict:
    clean: bool
    signature: str | None = None


def _connect(address: ClamdAddress, timeout: float) -> socket.socket:
    try:
        if address.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address.path)
            return sock
        assert address.host is not None and address.port is not None
        return socket.create_connection((address.host, address.port), timeout=timeout)
    except OSError as exc:
        raise ClamdError(f"cannot reach clamd at {address}: {exc}") from None


def _reply(sock: socket.socket, address: ClamdAddress) -> str:
    data = b""
    while not data.endswith(b"\0") and len(data) < MAX_REPLY:
        part = sock.recv(MAX_REPLY)
        if not part:
            break
        data += part
    text = data.rstrip(b"\0").decode("utf-8", "replace").strip()
    if not text:
        raise ClamdError(f"clamd at {address} closed the connection without a verdict")
    return text


def parse_verdict(reply: str) -> Verdict:
    """`stream: OK` -> clean; `stream: Sig FOUND` -> infected with Sig; anything else is an error."""
    if reply.endswith("ERROR"):
        raise ClamdError(f"clamd refused the scan: {reply}")
    _, _, result = reply.partition(": ")
    if result == "OK":
        return Verdict(True)
    if result.endswith(" FOUND"):
        return Verdict(False, result[: -len(" FOUND")])
    raise ClamdError(f"clamd answered something unexpected: {reply!r}")


def scan_stream(address: ClamdAddress, chunks: Iterable[bytes], *, timeout: float = 30.0) -> Verdict:
    """Stream `chunks` to clamd (INSTREAM) and return its verdict."""
    with _connect(address, timeout) as sock:
        try:
            sock.sendall(b"zINSTREAM\0")
            for chunk in chunks:
                if chunk:
                    sock.sendall(struct.pack("!L", len(chunk)) + chunk)
            sock.sendall(struct.pack("!L", 0))
        except OSError as exc:
            # clamd closes the stream early when it exceeds StreamMaxLength: read why if it said so.
            try:
                reply = _reply(sock, address)
            except (OSError, ClamdError):
                raise ClamdError(f"clamd at {address} dropped the stream: {exc}") from None
            return parse_verdict(reply)
        try:
            return parse_verdict(_reply(sock, address))
        except OSError as exc:
            raise ClamdError(f"no verdict from clamd at {address}: {exc}") from None


def ping(address: ClamdAddress, *, timeout: float = 5.0) -> bool:
    """True when clamd answers PONG."""
    try:
        with _connect(address, timeout) as sock:
            sock.sendall(b"zPING\0")
            return _reply(sock, address) == "PONG"
    except (OSError, ClamdError):
        return False
