"""A private ClamAV daemon for the upload-scan tests, with the signature database the tests ship.

`start_clamd()` runs Debian's clamd (package clamav-daemon, installed by
scripts/lib.sh `ensure_clamd` when missing) in a temporary directory with its
own clamd.conf: a unix socket there and TCP on a free local port, databases
only from tests/files/clamav (one custom .ndb signature matching
SIGNATURE_BYTES), so nothing is downloaded and freshclam never runs. Missing
clamd fails the test with how to install it: these tests never skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from workers.files.clamd import ClamdAddress, ping

SIGNATURES = Path(__file__).parent / "clamav"
SIGNATURE_BYTES = b"BACKLINE-TEST-MALWARE-SIGNATURE"
SIGNATURE_NAME = "Backline.Test.Signature.UNOFFICIAL"  # clamd marks signatures outside its own databases
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class Clamd:
    tcp: ClamdAddress
    unix: ClamdAddress


def clamd_binary() -> str:
    for candidate in (shutil.which("clamd"), "/usr/sbin/clamd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "clamd is not installed: the upload-scan tests start their own ClamAV daemon. Install Debian's "
        "clamav-daemon (apt-get install clamav-daemon; scripts/test does it when run as root or with sudo)",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(directory: Path, port: int) -> Path:
    database = directory / "db"
    database.mkdir(exist_ok=True)
    for signature in SIGNATURES.iterdir():
        shutil.copy(signature, database / signature.name)
    conf = directory / "clamd.conf"
    conf.write_text(
        "\n".join(
            [
                "Foreground yes",
                f"DatabaseDirectory {database}",
                f"LocalSocket {directory / 'clamd.sock'}",
                f"TCPSocket {port}",
                "TCPAddr 127.0.0.1",
                f"PidFile {directory / 'clamd.pid'}",
                f"LogFile {directory / 'clamd.log'}",
                "Bytecode no",
                "",
            ]
        )
    )
    return conf


@contextmanager
def start_clamd() -> Iterator[Clamd]:
    """A running clamd answering PING on both its TCP port and unix socket; stopped afterwards."""
    binary = clamd_binary()
    # Short path: a unix socket path must fit in 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="bl-clamd-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # a free port can be taken before clamd binds it: try another
            port = _free_port()
            conf = _config(directory, port)
            output = directory / "clamd.out"
            with open(output, "wb") as out:
                process = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
            daemon = Clamd(
                ClamdAddress(host="127.0.0.1", port=port), ClamdAddress(path=str(directory / "clamd.sock"))
            )
            deadline = time.monotonic() + STARTUP_SECONDS
            while time.monotonic() < deadline and process.poll() is None:
                if ping(daemon.tcp, timeout=1.0) and ping(daemon.unix, timeout=1.0):
                    break
                time.sleep(0.2)
            if process.poll() is None and ping(daemon.tcp, timeout=1.0):
                yield daemon
                return
            _stop(process)
            log = output.read_text(errors="replace")[-2000:]
            if "Cannot bind" not in log:
                pytest.fail(f"clamd did not start within {STARTUP_SECONDS:.0f} s:\n{log}", pytrace=False)
        pytest.fail("clamd could not bind a free TCP port in 3 attempts", pytrace=False)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
