"""A merged anonymous account's files, moved end to end through the local storage transport.

Committed database (the transport has its own connections), files uploaded as
the anonymous user the way the Storage API stores them, the claim made as the
permanent user, then the 'account_merge_files' job handler run as the worker
runs it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.export.conftest import FakeJobContext
from tests.helpers import act_as, claims_for, create_user
from workers.identity.merge_files import run_account_merge_files
from workers.jobs.registry import HANDLERS
from workers.platform.factory import Adapters, make_adapters
from workers.platform.storage import Caller
from workers.settings import Settings

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "


@pytest.fixture
def settings(clone_url: str, tmp_path: Path) -> Settings:
    return Settings(DATABASE_URL=clone_url, BACKLINE_DATA_DIR=str(tmp_path / "data"))


@pytest.fixture
def adapters(settings: Settings) -> Iterator[Adapters]:
    a = make_adapters(settings)
    yield a
    a.close()


def _as(conn: psycopg.Connection[Any], user: uuid.UUID, anonymous: bool) -> Any:
    return act_as(conn, user, claims=claims_for(user, extra={"is_anonymous": anonymous}), rollback=False)


def _merge(conn: psycopg.Connection[Any], anonymous: uuid.UUID, permanent: uuid.UUID) -> dict[str, Any]:
    with _as(conn, anonymous, True) as cur:
        ticket = cur.execute("select public.create_merge_ticket() ->> 'ticket'").fetchone()
    assert ticket is not None
    with _as(conn, permanent, False) as cur:
        row = cur.execute("select public.claim_merge_ticket(%s)", ticket).fetchone()
    assert row is not None
    return dict(row[0])


def _run_job(conn: psycopg.Connection[Any], settings: Settings, report: dict[str, Any]) -> dict[str, Any]:
    job = conn.execute(
        "select kind, payload, owner_id from public.jobs where id = %s", (report["files"]["job_id"],)
    ).fetchone()
    assert job is not None and job[0] == "account_merge_files" and job[2] == uuid.UUID(report["permanent_id"])
    assert HANDLERS["account_merge_files"] is run_account_merge_files
    ctx = FakeJobContext(settings, settings.database_url, job[2], kind=job[0])
    result = run_account_merge_files(ctx, job[1])
    assert result is not None
    return result


def _objects(conn: psycopg.Connection[Any], user: uuid.UUID) -> list[tuple[str, str, str | None]]:
    return [
        (b, n, o)
        for b, n, o in conn.execute(
            "select bucket_id, name, owner_id from storage.objects"
            " where owner_id = %s::text or (storage.foldername(name))[1] = %s::text order by 1, 2",
            (user, user),
        ).fetchall()
    ]


def test_files_move_to_the_permanent_folder_and_the_anonymous_account_goes(
    clone_url: str, settings: Settings, adapters: Adapters
) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        anonymous, permanent = create_user(conn, anonymous=True), create_user(conn)
        doc = conn.execute(
            "insert into public.documents (owner_id, kind, title, body)"
            " values (%s, 'folder', 'x', '{\"name\": \"x\"}') returning id",
            (anonymous,),
        ).fetchone()
        assert doc is not None
        store = adapters.storage
        store.upload(
            "samples",
            f"{anonymous}/kick.wav",
            WAV + b"anon kick",
            content_type="audio/wav",
            caller=Caller.user(anonymous),
        )
        store.upload(
            "samples",
            f"{anonymous}/loops/snare.wav",
            WAV + b"anon snare",
            content_type="audio/wav",
            caller=Caller.user(anonymous),
        )
        store.upload(
            "samples",
            f"{permanent}/kick.wav",
            WAV + b"own kick",
            content_type="audio/wav",
            caller=Caller.user(permanent),
        )
        conn.execute(
            "insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id)"
            " values (%s, 'samples', %s, 'document', %s)",
            (anonymous, f"{anonymous}/loops/snare.wav", doc[0]),
        )
        anon_bytes = len(WAV) * 2 + len(b"anon kick") + len(b"anon snare")

        report = _merge(conn, anonymous, permanent)
        assert report["files"] == {
            "moving": 2,
            "bytes": anon_bytes,
            "skipped": 0,
            "job_id": report["files"]["job_id"],
        }
        renamed = [r for r in report["renamed"] if r["table"] == "storage.objects"]
        merged_kick = f"{permanent}/merged-{str(anonymous)[:8]}/kick.wav"
        assert renamed == [
            {
                "table": "storage.objects",
                "bucket": "samples",
                "from": f"{anonymous}/kick.wav",
                "to": merged_kick,
                "reason": renamed[0]["reason"],
            }
        ]

        result = _run_job(conn, settings, report)

        assert result["moved"] == 2 and result["skipped"] == []
        assert result["anonymous_account_deleted"] is True
        assert _objects(conn, anonymous) == []
        assert _objects(conn, permanent) == [
            ("samples", f"{permanent}/kick.wav", str(permanent)),
            ("samples", f"{permanent}/loops/snare.wav", str(permanent)),
            ("samples", merged_kick, str(permanent)),
        ]
        me = Caller.user(permanent)
        assert b"".join(store.download("samples", merged_kick, caller=me)) == WAV + b"anon kick"
        assert (
            b"".join(store.download("samples", f"{permanent}/loops/snare.wav", caller=me))
            == WAV + b"anon snare"
        )
        assert b"".join(store.download("samples", f"{permanent}/kick.wav", caller=me)) == WAV + b"own kick"
        assert not (Path(settings.data_dir) / "storage" / "samples" / str(anonymous)).exists() or not any(
            (Path(settings.data_dir) / "storage" / "samples" / str(anonymous)).rglob("*")
        )
        # the file link follows the file; the quota follows the bytes
        assert conn.execute("select owner_id, object_name from public.file_links").fetchall() == [
            (permanent, f"{permanent}/loops/snare.wav")
        ]
        used = conn.execute("select storage_used from public.profiles where id = %s", (permanent,)).fetchone()
        assert used == (anon_bytes + len(WAV) + len(b"own kick"),)
        assert conn.execute("select 1 from auth.users where id = %s", (anonymous,)).fetchone() is None
        audit = conn.execute(
            "select details from public.audit_log"
            " where user_id = %s and action = 'account.merge_files_moved'",
            (permanent,),
        ).fetchone()
        assert audit is not None and audit[0]["left_in_anonymous_account"] == {}

        # a retry (the worker crashed after the work) changes nothing and still succeeds
        again = _run_job(conn, settings, report)
        assert again["moved"] == 2 and again["skipped"] == []


def test_files_that_do_not_fit_the_quota_stay_and_keep_the_anonymous_account(
    clone_url: str, settings: Settings, adapters: Adapters
) -> None:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        anonymous, permanent = create_user(conn, anonymous=True), create_user(conn)
        store = adapters.storage
        store.upload(
            "samples", f"{anonymous}/small.wav", WAV, content_type="audio/wav", caller=Caller.user(anonymous)
        )
        store.upload(
            "samples",
            f"{anonymous}/big.wav",
            WAV * 20,
            content_type="audio/wav",
            caller=Caller.user(anonymous),
        )
        # the permanent account has room for the small file only
        conn.execute(
            "update public.profiles p set storage_used = pl.storage_bytes - %s from public.plans pl"
            " where pl.id = p.plan and p.id = %s",
            (len(WAV) * 2, permanent),
        )

        report = _merge(conn, anonymous, permanent)
        assert report["files"]["moving"] == 1 and report["files"]["skipped"] == 1
        skipped = [s for s in report["skipped"] if s["table"] == "storage.objects"]
        assert [s["name"] for s in skipped] == [f"{anonymous}/big.wav"]
        assert "storage quota" in skipped[0]["reason"]
        assert report["anonymous_account"].startswith("kept")

        result = _run_job(conn, settings, report)

        assert result["moved"] == 1 and result["anonymous_account_deleted"] is False
        assert result["left_in_anonymous_account"] == {"storage.objects": 1}
        assert _objects(conn, permanent) == [("samples", f"{permanent}/small.wav", str(permanent))]
        assert _objects(conn, anonymous) == [("samples", f"{anonymous}/big.wav", str(anonymous))]
        assert conn.execute("select 1 from auth.users where id = %s", (anonymous,)).fetchone() == (1,)
        # the big file is still the anonymous user's, bytes included
        assert (
            b"".join(store.download("samples", f"{anonymous}/big.wav", caller=Caller.user(anonymous)))
            == WAV * 20
        )


def test_the_job_refuses_a_payload_for_another_account(settings: Settings) -> None:
    from workers.export.context import NotAllowed

    payload = {
        "merge_id": str(uuid.uuid4()),
        "anonymous_id": str(uuid.uuid4()),
        "permanent_id": str(uuid.uuid4()),
    }
    ctx = FakeJobContext(settings, settings.database_url, uuid.uuid4(), kind="account_merge_files")
    with pytest.raises(NotAllowed):
        run_account_merge_files(ctx, payload)


def test_the_job_refuses_a_malformed_payload(settings: Settings) -> None:
    from workers.export.context import InvalidPayload

    ctx = FakeJobContext(settings, settings.database_url, None, kind="account_merge_files")
    base = {
        "merge_id": str(uuid.uuid4()),
        "anonymous_id": str(uuid.uuid4()),
        "permanent_id": str(uuid.uuid4()),
    }
    for payload in (
        {k: v for k, v in base.items() if k != "merge_id"},
        {**base, "anonymous_id": "not-a-uuid"},
        {**base, "objects": "samples/x.wav"},
        {**base, "objects": [{"bucket": "samples", "from": "a"}]},
    ):
        with pytest.raises(InvalidPayload):
            run_account_merge_files(ctx, payload)


def test_worker_steps_refuse_an_unknown_merge_and_change_nothing(db: psycopg.Connection[Any]) -> None:
    before = db.execute("select count(*) from public.audit_log").fetchone()
    for statement, params in (
        ("select private.merge_adopt_object(%s, 'samples', 'a', 'b')", (uuid.uuid4(),)),
        ("select private.account_merge_finish(%s, '{}')", (uuid.uuid4(),)),
    ):
        with pytest.raises(psycopg.Error) as caught, act_as(db, None, "service_role") as cur:
            cur.execute(statement, params)
        assert caught.value.sqlstate == "PT404" and "unknown account merge" in str(caught.value)
    assert db.execute("select count(*) from public.audit_log").fetchone() == before
    for role in ("anon", "authenticated"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, create_user(db), role) as cur:
            cur.execute("select private.account_merge_finish(%s, '{}')", (uuid.uuid4(),))
