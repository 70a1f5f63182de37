"""The local storage transport follows the Storage API's upload path, RLS and delete rules."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.platform_adapters.conftest import SECRET, committed_user
from workers.platform.local_storage import LocalStorage, verify_signed_url
from workers.platform.storage import SERVICE, Caller, StorageError


def row(url: str, bucket: str, name: str) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select owner_id, metadata from storage.objects where bucket_id = %s and name = %s",
            (bucket, name),
        ).fetchone()


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_upload_writes_bytes_then_row_with_owner_and_metadata(local_storage: LocalStorage, storage_url: str):
    uid = committed_user(storage_url)
    result = local_storage.upload(
        "docs", f"{uid}/notes/a.txt", b"hello world", content_type="text/plain", caller=Caller.user(uid)
    )
    assert result.size == 11
    assert (local_storage.root / "docs" / str(uid) / "notes" / "a.txt").read_bytes() == b"hello world"
    owner, metadata = row(storage_url, "docs", f"{uid}/notes/a.txt")
    assert owner == str(uid)
    assert metadata["size"] == 11 and metadata["contentLength"] == 11
    assert metadata["mimetype"] == "text/plain"
    assert metadata["eTag"] == '"5eb63bbbe01eeed093cb22bb8f5acdc3"'
    assert metadata["cacheControl"] == "max-age=3600" and metadata["httpStatusCode"] == 200
    assert "lastModified" in metadata
    assert (
        b"".join(local_storage.download("docs", f"{uid}/notes/a.txt", caller=Caller.user(uid)))
        == b"hello world"
    )


def test_rls_decides_the_permission_test_and_nothing_is_written(
    local_storage: LocalStorage, storage_url: str
):
    owner = committed_user(storage_url)
    stranger = committed_user(storage_url)
    with pytest.raises(StorageError) as err:
        local_storage.upload(
            "docs", f"{owner}/x.txt", b"x", content_type="text/plain", caller=Caller.user(stranger)
        )
    assert err.value.status == 403 and "row-level security" in err.value.message
    anon = Caller(None, "anon")
    with pytest.raises(StorageError) as err:
        local_storage.upload("docs", f"{owner}/x.txt", b"x", content_type="text/plain", caller=anon)
    assert err.value.status == 403
    assert row(storage_url, "docs", f"{owner}/x.txt") is None
    assert files_under(local_storage.root) == []
    # The service role bypasses RLS, as on Supabase; its uploads have no owner.
    local_storage.upload("docs", f"{owner}/x.txt", b"x", content_type="text/plain", caller=SERVICE)
    assert row(storage_url, "docs", f"{owner}/x.txt")[0] is None


def test_bucket_size_and_mime_limits_are_enforced_like_the_storage_api(
    local_storage: LocalStorage, storage_url: str
):
    uid = committed_user(storage_url)
    me = Caller.user(uid)
    with pytest.raises(StorageError) as err:
        local_storage.upload(
            "docs", f"{uid}/big.txt", iter([b"a" * 600, b"b" * 600]), content_type="text/plain", caller=me
        )
    assert (err.value.status, err.value.code) == (413, "Payload too large")
    assert err.value.message == "The object exceeded the maximum allowed size"
    with pytest.raises(StorageError) as err:
        local_storage.upload("docs", f"{uid}/a.pdf", b"%PDF", content_type="application/pdf", caller=me)
    assert (err.value.status, err.value.code) == (415, "InvalidMimeType")
    assert err.value.message == "mime type application/pdf is not supported"
    local_storage.upload("docs", f"{uid}/ok.png", b"png", content_type="image/png", caller=me)
    assert files_under(local_storage.root) == [f"docs/{uid}/ok.png"]


def test_a_failing_row_step_removes_the_bytes_and_keeps_the_old_object(
    local_storage: LocalStorage, storage_url: str
):
    uid = committed_user(storage_url)
    me = Caller.user(uid)
    local_storage.upload("docs", f"{uid}/f.txt", b"old", content_type="text/plain", caller=me)
    with pytest.raises(StorageError) as err:
        local_storage.upload("docs", f"{uid}/q.txt", b"q" * 950, content_type="text/plain", caller=me)
    assert (err.value.status, err.value.message) == (403, "storage quota exceeded")
    assert row(storage_url, "docs", f"{uid}/q.txt") is None
    with pytest.raises(StorageError):
        local_storage.upload(
            "docs", f"{uid}/f.txt", b"n" * 950, content_type="text/plain", caller=me, upsert=True
        )
    assert files_under(local_storage.root) == [f"docs/{uid}/f.txt"]
    assert b"".join(local_storage.download("docs", f"{uid}/f.txt", caller=me)) == b"old"
    assert row(storage_url, "docs", f"{uid}/f.txt")[1]["size"] == 3


def test_duplicate_without_upsert_is_409_and_upsert_replaces(local_storage: LocalStorage, storage_url: str):
    uid = committed_user(storage_url)
    me = Caller.user(uid)
    local_storage.upload("docs", f"{uid}/d.txt", b"one", content_type="text/plain", caller=me)
    with pytest.raises(StorageError) as err:
        local_storage.upload("docs", f"{uid}/d.txt", b"two", content_type="text/plain", caller=me)
    assert (err.value.status, err.value.code) == (409, "Duplicate")
    local_storage.upload("docs", f"{uid}/d.txt", b"three", content_type="text/plain", caller=me, upsert=True)
    assert b"".join(local_storage.download("docs", f"{uid}/d.txt", caller=me)) == b"three"


def test_missing_bucket_and_bad_keys(local_storage: LocalStorage, storage_url: str):
    with pytest.raises(StorageError) as err:
        local_storage.upload("nope", "a.txt", b"x", content_type="text/plain")
    assert (err.value.status, err.value.message) == (404, "Bucket not found")
    for bad in ("../escape.txt", "a//b.txt", "/abs.txt", "a/./b", ""):
        with pytest.raises(StorageError) as err:
            local_storage.upload("docs", bad, b"x", content_type="text/plain")
        assert err.value.code == "InvalidKey"
    assert files_under(local_storage.root) == []


def test_download_list_and_signed_url_respect_rls(local_storage: LocalStorage, storage_url: str):
    uid = committed_user(storage_url)
    stranger = Caller.user(committed_user(storage_url))
    me = Caller.user(uid)
    for name in ("a.txt", "sub/b.txt", "sub/deeper/c.txt"):
        local_storage.upload("docs", f"{uid}/{name}", name.encode(), content_type="text/plain", caller=me)
    with pytest.raises(StorageError) as err:
        list(local_storage.download("docs", f"{uid}/a.txt", caller=stranger))
    assert err.value.status == 404
    top = local_storage.list("docs", str(uid), caller=me)
    assert [(e.name, e.is_folder) for e in top] == [("a.txt", False), ("sub", True)]
    assert top[0].size == 5
    assert [e.name for e in local_storage.list("docs", f"{uid}/sub", caller=me)] == ["b.txt", "deeper"]
    assert local_storage.list("docs", str(uid), caller=stranger) == []
    assert [e.name for e in local_storage.list("docs", str(uid), caller=me, limit=1, offset=1)] == ["sub"]
    with pytest.raises(StorageError):
        local_storage.signed_url("docs", f"{uid}/a.txt", 60, caller=stranger)
    url = local_storage.signed_url("docs", f"{uid}/sub/b.txt", 60, caller=me)
    assert url.startswith("http://127.0.0.1:54321/storage/v1/object/sign/docs/")
    assert verify_signed_url(url, SECRET) == ("docs", f"{uid}/sub/b.txt")
    with pytest.raises(StorageError) as err:
        verify_signed_url(url.replace("b.txt", "a.txt"), SECRET)
    assert err.value.code == "InvalidSignature"
    with pytest.raises(StorageError):
        verify_signed_url(url, "another-secret-of-at-least-32-characters")


def test_signed_url_expires(local_storage: LocalStorage, storage_url: str):
    local_storage.upload("docs", "shared/e.txt", b"e", content_type="text/plain")
    url = local_storage.signed_url("docs", "shared/e.txt", 1)
    assert local_storage.verify_signed_url(url) == ("docs", "shared/e.txt")
    time.sleep(2.1)
    with pytest.raises(StorageError) as err:
        local_storage.verify_signed_url(url)
    assert (err.value.code, err.value.message) == ("ExpiredToken", "The provided token has expired.")


def test_remove_deletes_rows_and_bytes_together_as_the_caller(local_storage: LocalStorage, storage_url: str):
    uid = committed_user(storage_url)
    me = Caller.user(uid)
    stranger = Caller.user(committed_user(storage_url))
    local_storage.upload("docs", f"{uid}/r/1.txt", b"1", content_type="text/plain", caller=me)
    local_storage.upload("docs", f"{uid}/r/2.txt", b"2", content_type="text/plain", caller=me)
    assert local_storage.remove("docs", [f"{uid}/r/1.txt"], caller=stranger) == []
    assert len(files_under(local_storage.root)) == 2
    removed = local_storage.remove("docs", [f"{uid}/r/1.txt", f"{uid}/r/2.txt", f"{uid}/none"], caller=me)
    assert sorted(removed) == [f"{uid}/r/1.txt", f"{uid}/r/2.txt"]
    assert files_under(local_storage.root) == []
    assert row(storage_url, "docs", f"{uid}/r/1.txt") is None
    # The database still refuses a direct delete without the Storage API's setting.
    local_storage.upload("docs", f"{uid}/keep.txt", b"k", content_type="text/plain", caller=me)
    with psycopg.connect(storage_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("delete from storage.objects where bucket_id = 'docs'")


def test_upload_streams_file_objects(local_storage: LocalStorage, storage_url: str, tmp_path: Path):
    source = tmp_path / "src.txt"
    source.write_bytes(b"z" * 800)
    with open(source, "rb") as f:
        result = local_storage.upload("docs", "shared/z.txt", f, content_type="text/plain")
    assert result.size == 800
    assert sum(len(c) for c in local_storage.download("docs", "shared/z.txt")) == 800
