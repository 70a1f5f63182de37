"""Export and erasure over the Supabase transports: the same code, the SDKs' real requests.

A local HTTP server plays Storage and Auth: it serves object bytes, records
uploads and, like the real services, deletes the rows it owns (storage.objects
on remove, auth.users on admin delete) in the test database.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator

import psycopg
import pytest

from tests.helpers import create_user
from tests.platform_adapters.fake_supabase import FakeSupabase, Recorded, fake_supabase, json_reply
from workers.export.catalog import referencing_rows
from workers.export.rights import erase_user, export_to_bucket
from workers.platform.factory import make_adapters
from workers.platform.supabase_storage import SupabaseStorage
from workers.settings import Settings

KEY = "service-key-for-tests"


@pytest.fixture
def fake() -> Iterator[FakeSupabase]:
    with fake_supabase() as server:
        yield server


def test_export_and_erasure_through_the_sdks(rights_url: str, fake: FakeSupabase, tmp_path):
    with psycopg.connect(rights_url) as conn:
        uid = create_user(conn)
        conn.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata)"
            ' values (\'images\', %s, %s, \'{"size": 5, "mimetype": "image/png"}\')',
            (f"{uid}/a.png", str(uid)),
        )
    uploads: list[Recorded] = []

    def upload(r: Recorded) -> tuple[int, dict[str, str], bytes]:
        uploads.append(r)
        return json_reply(200, {"Key": r.path.removeprefix("/storage/v1/object/"), "Id": str(uuid.uuid4())})

    def remove(r: Recorded) -> tuple[int, dict[str, str], bytes]:
        bucket = r.path.rsplit("/", 1)[1]
        with psycopg.connect(rights_url) as conn:
            conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
            gone = conn.execute(
                "delete from storage.objects where bucket_id = %s and name = any(%s) returning name",
                (bucket, r.json()["prefixes"]),
            ).fetchall()
        return json_reply(200, [{"name": n} for (n,) in gone])

    def delete_user(r: Recorded) -> tuple[int, dict[str, str], bytes]:
        with psycopg.connect(rights_url) as conn:
            conn.execute("delete from auth.users where id = %s", (r.path.rsplit("/", 1)[1],))
        return json_reply(200, {})

    fake.route("GET", f"/storage/v1/object/images/{uid}/a.png", lambda r: (200, {}, b"PNG!!"))
    fake.route("POST", "/storage/v1/object/exports/", upload)
    fake.route(
        "POST",
        "/storage/v1/object/sign/exports/",
        lambda r: json_reply(200, {"signedURL": f"/object/sign/exports/x?token=t{r.json()['expiresIn']}"}),
    )
    fake.route("DELETE", "/storage/v1/object/", remove)
    fake.route("DELETE", "/auth/v1/admin/users/", delete_user)

    settings = Settings(
        DATABASE_URL=rights_url,
        SUPABASE_URL=fake.url,
        SUPABASE_SERVICE_ROLE_KEY=KEY,
        BACKLINE_DATA_DIR=str(tmp_path),
    )
    adapters = make_adapters(settings, rights_url)
    assert isinstance(adapters.storage, SupabaseStorage)
    result = export_to_bucket(rights_url, adapters, uid, url_ttl_seconds=600)
    assert result.url == f"{fake.url}/storage/v1/object/sign/exports/x?token=t600"
    [up] = uploads
    assert up.path == f"/storage/v1/object/exports/{result.path}" and up.headers["x-upsert"] == "true"
    body = up.body
    archive = body[body.index(b"PK\x03\x04") : body.rindex(b"\r\n--")]
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.read(f"files/images/{uid}/a.png") == b"PNG!!"
        assert json.loads(zf.read("account.json"))["id"] == str(uid)

    erased = erase_user(rights_url, adapters, uid)
    assert erased.objects_removed == 1
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert [(r.path, r.json()) for r in deletes] == [
        ("/storage/v1/object/images", {"prefixes": [f"{uid}/a.png"]}),
        (f"/auth/v1/admin/users/{uid}", {"should_soft_delete": False}),
    ]
    with psycopg.connect(rights_url) as conn:
        assert referencing_rows(conn, uid) == {}
    adapters.close()
