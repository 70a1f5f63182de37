"""Uploads scanned by a real ClamAV daemon (issue #13 item 5).

The module starts Debian's clamd itself (tests/files/clamd.py) with the one
signature tests/files/clamav/backline-test.ndb ships, so nothing is
downloaded. A real WAV that carries the signature passes the type check and
is rejected by ClamAV; a clean one is `clean`. These tests never skip: without
clamd they fail saying how to install it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.files.clamd import SIGNATURE_BYTES, SIGNATURE_NAME, Clamd, start_clamd
from tests.files.scan_fixtures import ctx, scan_jobs, scan_row, scan_settings, wav_bytes
from tests.helpers import create_user
from workers.files.clamd import ClamdAddress, ClamdError, scan_stream
from workers.files.scan import run_upload_scan
from workers.jobs.logs import JobLog
from workers.jobs.queue_sql import SqlQueue
from workers.jobs.registry import HANDLERS
from workers.jobs.worker import Worker
from workers.platform.factory import make_adapters
from workers.platform.storage import Caller, StorageError
from workers.settings import Settings

INFECTED = wav_bytes(extra=SIGNATURE_BYTES)


def _run_worker(settings: Settings) -> None:
    """One `backline workers run --once` pass with these settings (the ClamAV address among them)."""
    assert settings.database_url is not None
    queue = SqlQueue(settings.database_url, pool_size=2)
    try:
        Worker(
            queue, HANDLERS, settings=settings, cron=False, concurrency=1, log=JobLog(stream=io.StringIO())
        ).run(once=True)
    finally:
        queue.close()


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    with start_clamd() as daemon:
        yield daemon


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_clamd_finds_the_shipped_signature_and_passes_clean_bytes(clamd: Clamd, transport: str) -> None:
    address = clamd.tcp if transport == "tcp" else clamd.unix
    # Split across chunks so the signature straddles an INSTREAM chunk boundary.
    half = len(INFECTED) - len(SIGNATURE_BYTES) // 2
    verdict = scan_stream(address, [INFECTED[:half], INFECTED[half:]])
    assert (verdict.clean, verdict.signature) == (False, SIGNATURE_NAME)
    assert scan_stream(address, [wav_bytes()]).clean


def test_with_clamav_configured_an_infected_upload_is_rejected_and_a_clean_one_passes(
    clamd: Clamd, clone_url: str, tmp_path: Path
) -> None:
    settings = scan_settings(clone_url, tmp_path / "data", BACKLINE_CLAMAV_ADDRESS=str(clamd.tcp))
    with psycopg.connect(clone_url) as conn:
        user = create_user(conn)
    me = Caller.user(user)
    adapters = make_adapters(settings)
    try:
        adapters.storage.upload("samples", f"{user}/bad.wav", INFECTED, content_type="audio/wav", caller=me)
        adapters.storage.upload(
            "samples", f"{user}/good.wav", wav_bytes(), content_type="audio/wav", caller=me
        )

        _run_worker(settings)

        bad, good = scan_row(clone_url, f"{user}/bad.wav"), scan_row(clone_url, f"{user}/good.wav")
        assert bad is not None and good is not None
        assert (bad["state"], bad["action"], bad["detected_type"]) == ("rejected", "removed", "audio/wav")
        assert bad["reason"] == f"malware: ClamAV found {SIGNATURE_NAME}"
        assert (good["state"], good["reason"]) == ("clean", None)
        with pytest.raises(StorageError, match="Object not found"):
            adapters.storage.download("samples", f"{user}/bad.wav", caller=me)
        assert b"".join(adapters.storage.download("samples", f"{user}/good.wav", caller=me)) == wav_bytes()
        assert [j["status"] for j in scan_jobs(clone_url, f"{user}/bad.wav")] == ["succeeded"]
    finally:
        adapters.close()


def test_an_unreachable_clamd_leaves_the_upload_pending_and_the_job_retries(
    clamd: Clamd, clone_url: str, tmp_path: Path
) -> None:
    dead = ClamdAddress(path=str(tmp_path / "no-clamd.sock"))
    settings = scan_settings(clone_url, tmp_path / "data", BACKLINE_CLAMAV_ADDRESS=str(dead))
    with psycopg.connect(clone_url) as conn:
        user = create_user(conn)
    name = f"{user}/kick.wav"
    adapters = make_adapters(settings)
    try:
        adapters.storage.upload(
            "samples", name, wav_bytes(), content_type="audio/wav", caller=Caller.user(user)
        )
    finally:
        adapters.close()
    payload = scan_jobs(clone_url, name)[0]["payload"]
    with pytest.raises(ClamdError, match="cannot reach clamd"):
        run_upload_scan(ctx(settings, clone_url, user), payload)
    row = scan_row(clone_url, name)
    assert row is not None and row["state"] == "pending"
    # With the daemon back (here: the real one), the same job completes.
    working = settings.model_copy(update={"clamav_address": str(clamd.unix)})
    assert run_upload_scan(ctx(working, clone_url, user), payload) == {
        "state": "clean",
        "detected_type": "audio/wav",
    }


@pytest.mark.parametrize(
    "value", ["", "localhost", "tcp://host:notaport", "host:70000", "unix://relative/path", ":3310"]
)
def test_a_bad_clamav_address_is_a_clear_configuration_error(value: str) -> None:
    with pytest.raises(ClamdError, match="BACKLINE_CLAMAV_ADDRESS"):
        ClamdAddress.parse(value)


def test_clamav_addresses_parse() -> None:
    assert ClamdAddress.parse("tcp://127.0.0.1:3310") == ClamdAddress(host="127.0.0.1", port=3310)
    assert ClamdAddress.parse("clamav:3310") == ClamdAddress(host="clamav", port=3310)
    assert ClamdAddress.parse("unix:///run/clamav/clamd.ctl") == ClamdAddress(path="/run/clamav/clamd.ctl")
    assert ClamdAddress.parse("/run/clamav/clamd.ctl") == ClamdAddress(path="/run/clamav/clamd.ctl")
