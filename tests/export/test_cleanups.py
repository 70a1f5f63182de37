"""Python cleanups: inactive anonymous users (with their files) and orphaned storage objects."""

from __future__ import annotations

import uuid

import psycopg

from tests.helpers import create_user
from workers.cleanup.anonymous_users import cleanup_anonymous_users
from workers.cleanup.orphaned_files import cleanup_orphaned_files
from workers.export.catalog import referencing_rows
from workers.platform.factory import Adapters
from workers.platform.storage import Caller


def make(url: str, adapters: Adapters, *, anonymous: bool, inactive_days: int) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        uid = create_user(conn, anonymous=anonymous)
        conn.execute(
            "update auth.users set created_at = now() - make_interval(days => %s),"
            " last_sign_in_at = now() - make_interval(days => %s) where id = %s",
            (inactive_days + 10, inactive_days, uid),
        )
        conn.execute("insert into public.privacy_consents (user_id, telemetry) values (%s, true)", (uid,))
    adapters.storage.upload(
        "images", f"{uid}/a.png", b"png", content_type="image/png", caller=Caller.user(uid)
    )
    return uid


def users(url: str) -> set[uuid.UUID]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("select id from auth.users").fetchall()}


def test_only_inactive_anonymous_users_go_with_their_files(rights_url: str, adapters: Adapters):
    old_anon = [make(rights_url, adapters, anonymous=True, inactive_days=120) for _ in range(3)]
    recent_anon = make(rights_url, adapters, anonymous=True, inactive_days=10)
    old_named = make(rights_url, adapters, anonymous=False, inactive_days=400)
    dry = cleanup_anonymous_users(rights_url, adapters, 10, True)
    assert len(dry) == 3 and all("anonymous user" in line for line in dry)
    assert set(old_anon) <= users(rights_url)
    first = cleanup_anonymous_users(rights_url, adapters, 2, False)
    assert len(first) == 2 and all("1 files" in line for line in first)
    rest = cleanup_anonymous_users(rights_url, adapters, 10, False)
    assert len(rest) == 1
    assert cleanup_anonymous_users(rights_url, adapters, 10, False) == []
    left = users(rights_url)
    assert not set(old_anon) & left
    assert {recent_anon, old_named} <= left
    with psycopg.connect(rights_url) as conn:
        for uid in old_anon:
            assert referencing_rows(conn, uid) == {}
            assert (
                conn.execute(
                    "select count(*) from storage.objects where name like %s", (f"{uid}/%",)
                ).fetchone()[0]
                == 0
            )
        assert (
            conn.execute(
                "select count(*) from storage.objects where name like %s", (f"{old_named}/%",)
            ).fetchone()[0]
            == 1
        )
        assert (
            conn.execute(
                "select count(*) from public.audit_log where action = 'account.erased'"
                " and details ->> 'reason' = 'anonymous_inactive'"
            ).fetchone()[0]
            == 3
        )


def path_of(line: str) -> str:
    return line.split(" (created")[0].split(" ")[-1]


def _age(url: str, bucket: str, name: str, hours: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "update storage.objects set created_at = now() - make_interval(hours => %s)"
            " where bucket_id = %s and name = %s",
            (hours, bucket, name),
        )


def test_orphans_older_than_the_grace_period_go_linked_and_young_ones_stay(
    rights_url: str, adapters: Adapters
):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
    put = adapters.storage.upload
    for name in (
        "linked.png",
        "orphan.png",
        "young.png",
        "orphan.png.thumb150.webp",
        "linked.png.thumb150.webp",
        "gone.png.thumb300.webp",
    ):
        put(
            "images",
            f"{uid}/{name}",
            b"x",
            content_type="image/png" if name.endswith("png") else "image/webp",
        )
        if name != "young.png":
            _age(rights_url, "images", f"{uid}/{name}", 48)
    put("exports", f"{uid}/old.zip", b"zip", content_type="application/zip")
    put("exports", f"{uid}/new.zip", b"zip", content_type="application/zip")
    _age(rights_url, "exports", f"{uid}/old.zip", 24 * 8)
    with psycopg.connect(rights_url) as conn:
        conn.execute(
            "insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id)"
            " values (%s, 'images', %s, 'document', gen_random_uuid())",
            (uid, f"{uid}/linked.png"),
        )
    dry = cleanup_orphaned_files(rights_url, adapters, 100, True)
    expected = {f"images/{uid}/orphan.png", f"images/{uid}/gone.png.thumb300.webp", f"exports/{uid}/old.zip"}
    assert {path_of(line) for line in dry} == expected
    assert len(adapters.storage.list("images", str(uid))) == 6
    removed: list[str] = []
    runs = 0
    while batch := cleanup_orphaned_files(rights_url, adapters, 2, False):
        assert len(batch) <= 2
        removed += batch
        runs += 1
    # The thumbnail of a removed original becomes an orphan itself, on a later batch.
    assert {path_of(line) for line in removed} == expected | {f"images/{uid}/orphan.png.thumb150.webp"}
    assert runs == 2
    names = sorted(e.name for e in adapters.storage.list("images", str(uid)))
    assert names == ["linked.png", "linked.png.thumb150.webp", "young.png"]
    assert [e.name for e in adapters.storage.list("exports", str(uid))] == ["new.zip"]
    assert not (adapters.storage.root / "images" / str(uid) / "orphan.png").exists()


def test_runner_entries_take_periods_from_settings(rights_url: str, adapters: Adapters, settings):
    from dataclasses import dataclass

    from workers.cleanup import anonymous_users, orphaned_files

    @dataclass(frozen=True)
    class Ctx:  # the shape of the runner's CleanupContext
        settings: object
        database_url: str | None

    uid = make(rights_url, adapters, anonymous=True, inactive_days=40)
    ctx = Ctx(settings, rights_url)
    assert anonymous_users.cleanup_task(ctx, 10, True) == []
    short = Ctx(settings.model_copy(update={"anonymous_inactive_days": 30}), rights_url)
    assert len(anonymous_users.cleanup_task(short, 10, False)) == 1
    assert uid not in users(rights_url)
    assert orphaned_files.cleanup_task(ctx, 10, True) == []
