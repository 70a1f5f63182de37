"""The Supabase transports send the documented Storage / Auth admin requests through the official SDKs.

A local HTTP server records what storage3 and supabase_auth really send;
paths follow the Storage API (`/storage/v1/object/<bucket>/<path>`,
`/object/list/<bucket>`, `/object/sign/<bucket>/<path>`, DELETE
`/object/<bucket>` with `prefixes`) and the Auth admin API
(`GET /auth/v1/admin/users`, `DELETE /auth/v1/admin/users/<id>`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.platform_adapters.fake_supabase import FakeSupabase, Recorded, fake_supabase, json_reply
from workers.platform.auth_admin import AuthAdminError
from workers.platform.factory import make_adapters, transport_for
from workers.platform.storage import Caller, StorageError
from workers.platform.supabase_auth import SupabaseAuthAdmin
from workers.platform.supabase_storage import SupabaseStorage
from workers.settings import Settings

KEY = "service-role-key-for-tests"


@pytest.fixture
def fake() -> Iterator[FakeSupabase]:
    with fake_supabase() as server:
        yield server


@pytest.fixture
def storage(fake: FakeSupabase) -> Iterator[SupabaseStorage]:
    s = SupabaseStorage(fake.url, KEY)
    yield s
    s.close()


def only(fake: FakeSupabase) -> Recorded:
    assert len(fake.requests) == 1, fake.requests
    return fake.requests[0]


def test_upload_posts_multipart_to_the_object_path_with_the_service_key(fake: FakeSupabase, storage):
    fake.route(
        "POST", "/storage/v1/object/", lambda r: json_reply(200, {"Key": "images/u1/a b.png", "Id": "x"})
    )
    result = storage.upload("images", "u1/a b.png", b"\x89PNG-bytes", content_type="image/png", upsert=True)
    req = only(fake)
    assert (req.method, req.path) == ("POST", "/storage/v1/object/images/u1/a b.png")
    assert req.headers["authorization"] == f"Bearer {KEY}" and req.headers["apikey"] == KEY
    assert req.headers["x-upsert"] == "true"
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="cacheControl"\r\n\r\n3600' in req.body
    assert b'name="file"; filename="a b.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG-bytes' in req.body
    assert result.size == 10


def test_upload_error_bodies_become_storage_errors(fake: FakeSupabase, storage):
    fake.route(
        "POST",
        "/storage/v1/object/",
        lambda r: json_reply(
            400,
            {
                "statusCode": "413",
                "error": "Payload too large",
                "message": "The object exceeded the maximum allowed size",
            },
        ),
    )
    with pytest.raises(StorageError) as err:
        storage.upload("images", "u1/big.png", b"x", content_type="image/png")
    assert (err.value.status, err.value.code) == (413, "Payload too large")
    assert fake.requests[0].headers["x-upsert"] == "false"


def test_user_calls_send_the_user_token(fake: FakeSupabase, storage):
    fake.route("POST", "/storage/v1/object/list/", lambda r: json_reply(200, []))
    storage.list("images", "u1", caller=Caller.user(uuid.uuid4(), access_token="user.jwt.token"))
    assert only(fake).headers["authorization"] == "Bearer user.jwt.token"
    with pytest.raises(StorageError):
        storage.list("images", "u1", caller=Caller.user(uuid.uuid4()))


def test_list_posts_the_search_body(fake: FakeSupabase, storage):
    entries = [
        {"name": "sub", "id": None, "metadata": None},
        {
            "name": "a.png",
            "id": "1c6e...",
            "metadata": {"size": 12, "mimetype": "image/png"},
            "updated_at": "2026-11-25T00:00:00Z",
            "created_at": "2026-11-25T00:00:00Z",
        },
    ]
    fake.route("POST", "/storage/v1/object/list/images", lambda r: json_reply(200, entries))
    out = storage.list("images", "u1", limit=10, offset=5)
    req = only(fake)
    assert (req.method, req.path) == ("POST", "/storage/v1/object/list/images")
    assert req.json() == {
        "limit": 10,
        "offset": 5,
        "sortBy": {"column": "name", "order": "asc"},
        "prefix": "u1",
    }
    assert [(e.name, e.is_folder, e.size) for e in out] == [("sub", True, 0), ("a.png", False, 12)]


def test_download_streams_the_object(fake: FakeSupabase, storage):
    payload = bytes(range(256)) * 1000
    fake.route("GET", "/storage/v1/object/images/", lambda r: (200, {"content-type": "image/png"}, payload))
    assert b"".join(storage.download("images", "u1/a.png")) == payload
    req = only(fake)
    assert (req.method, req.path) == ("GET", "/storage/v1/object/images/u1/a.png")
    assert req.headers["authorization"] == f"Bearer {KEY}"
    fake.route(
        "GET",
        "/storage/v1/object/images/",
        lambda r: json_reply(400, {"statusCode": "404", "error": "not_found", "message": "Object not found"}),
    )
    with pytest.raises(StorageError) as err:
        list(storage.download("images", "u1/missing.png"))
    assert (err.value.status, err.value.message) == (404, "Object not found")


def test_remove_deletes_prefixes(fake: FakeSupabase, storage):
    fake.route("DELETE", "/storage/v1/object/images", lambda r: json_reply(200, [{"name": "u1/a.png"}]))
    assert storage.remove("images", ["u1/a.png", "u1/b.png"]) == ["u1/a.png"]
    req = only(fake)
    assert (req.method, req.path) == ("DELETE", "/storage/v1/object/images")
    assert req.json() == {"prefixes": ["u1/a.png", "u1/b.png"]}
    assert storage.remove("images", []) == []
    assert len(fake.requests) == 1


def test_signed_url_posts_expires_in(fake: FakeSupabase, storage):
    fake.route(
        "POST",
        "/storage/v1/object/sign/",
        lambda r: json_reply(200, {"signedURL": "/object/sign/exports/u1/x.zip?token=abc"}),
    )
    url = storage.signed_url("exports", "u1/x.zip", 600)
    req = only(fake)
    assert (req.method, req.path) == ("POST", "/storage/v1/object/sign/exports/u1/x.zip")
    assert req.json() == {"expiresIn": "600"}
    assert url == f"{fake.url}/storage/v1/object/sign/exports/u1/x.zip?token=abc"


def test_auth_admin_lists_and_deletes_users(fake: FakeSupabase):
    uid = uuid.uuid4()
    user = {
        "id": str(uid),
        "aud": "authenticated",
        "role": "authenticated",
        "email": "a@example.test",
        "app_metadata": {},
        "user_metadata": {},
        "created_at": "2026-11-25T00:00:00Z",
        "is_anonymous": False,
    }
    fake.route(
        "GET", "/auth/v1/admin/users", lambda r: json_reply(200, {"users": [user], "aud": "authenticated"})
    )
    fake.route("DELETE", "/auth/v1/admin/users/", lambda r: json_reply(200, {}))
    auth = SupabaseAuthAdmin(fake.url, KEY)
    users = auth.list_users(page=2, per_page=10)
    assert [(u.id, u.email, u.is_anonymous) for u in users] == [(uid, "a@example.test", False)]
    listed = fake.requests[0]
    assert (listed.method, listed.path) == ("GET", "/auth/v1/admin/users")
    assert listed.query == {"page": ["2"], "per_page": ["10"]}
    assert listed.headers["authorization"] == f"Bearer {KEY}" and listed.headers["apikey"] == KEY
    auth.delete_user(uid)
    deleted = fake.requests[1]
    assert (deleted.method, deleted.path) == ("DELETE", f"/auth/v1/admin/users/{uid}")
    assert deleted.json() == {"should_soft_delete": False}
    fake.route(
        "DELETE",
        "/auth/v1/admin/users/",
        lambda r: json_reply(404, {"code": 404, "error_code": "user_not_found", "msg": "User not found"}),
    )
    with pytest.raises(AuthAdminError) as err:
        auth.delete_user(uid)
    assert err.value.status == 404
    auth.close()


def test_factory_chooses_the_transport_by_configuration(fake: FakeSupabase, tmp_path):
    local = Settings(DATABASE_URL="postgresql://u@127.0.0.1:1/x", BACKLINE_DATA_DIR=str(tmp_path))
    assert transport_for(local) == "local"
    hosted = Settings(SUPABASE_URL=fake.url, SUPABASE_SERVICE_ROLE_KEY=KEY)
    assert transport_for(hosted) == "supabase"
    adapters = make_adapters(hosted)
    assert isinstance(adapters.storage, SupabaseStorage) and isinstance(adapters.auth, SupabaseAuthAdmin)
    adapters.close()
    forced = Settings(
        SUPABASE_URL=fake.url,
        SUPABASE_SERVICE_ROLE_KEY=KEY,
        BACKLINE_PLATFORM_TRANSPORT="local",
        DATABASE_URL="postgresql://u@127.0.0.1:1/x",
        BACKLINE_DATA_DIR=str(tmp_path),
    )
    assert make_adapters(forced).transport == "local"
    from workers.errors import BacklineError

    with pytest.raises(BacklineError):
        transport_for(Settings(BACKLINE_PLATFORM_TRANSPORT="supabase"))
