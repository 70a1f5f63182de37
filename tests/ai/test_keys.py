"""Key storage: round trip, never readable by any API role, expiry, delete, rotation, ownership."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.ai.conftest import MASTER_A, MASTER_B, Proxy
from tests.helpers import act_as, keep_as
from workers.ai.keys import KeyDecryptError, MasterKeys, Sealed
from workers.ai.rotate import rotate_master_key

SECRET_KEY = "sk-test-abcdefghijklmnop1234"


def store(proxy: Proxy, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = proxy.http.post(
        "/v1/keys", json={"provider": "openai", "key": SECRET_KEY, **body}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def generate(proxy: Proxy, headers: dict[str, str], key_id: str, provider: str = "openai") -> Any:
    return proxy.http.post(
        "/v1/generate",
        headers=headers,
        json={
            "provider": provider,
            "model": "gpt-4o-mini",
            "key_id": key_id,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )


def test_key_round_trip_lists_metadata_only_and_reaches_provider(proxy: Proxy) -> None:
    _, h = proxy.user()
    row = store(proxy, h, label="mine")
    assert row["last4"] == "1234" and row["label"] == "mine" and "key" not in row
    listed = proxy.http.get("/v1/keys", headers=h).json()["keys"]
    assert [k["id"] for k in listed] == [row["id"]]
    assert SECRET_KEY not in str(listed)
    # Stored bytes are not the plaintext.
    (blob,) = proxy.sql("select ciphertext from private.ai_key_secrets where key_id = %s", (row["id"],))[0]
    assert SECRET_KEY.encode() not in bytes(blob)
    resp = generate(proxy, h, row["id"])
    assert resp.status_code == 200, resp.text
    assert proxy.fake.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET_KEY}"


def test_secret_table_unreadable_by_every_api_role(db: psycopg.Connection[Any], make_user: Any) -> None:
    uid = make_user()
    for role in ("anon", "authenticated", "service_role"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid, role) as cur:
            cur.execute("select * from private.ai_key_secrets")
    # The definer read function is for the proxy's own role only: no API role may call it
    # (tests/security/test_private_helpers.py covers it in detail).
    for role in ("anon", "authenticated", "service_role"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, uid, role) as cur:
            cur.execute("select * from private.ai_key_secret(gen_random_uuid(), %s)", (uid,))


def test_metadata_rls_owner_only(db: psycopg.Connection[Any], make_user: Any) -> None:
    owner, stranger = make_user(), make_user()
    with keep_as(db, owner) as cur:
        cur.execute("select private.ai_key_store('openai', 'l', 'abcd', null, 'a', '\\x00', '\\x00')")
        (key_id,) = cur.fetchone() or (None,)
        cur.execute("select count(*) from public.ai_keys")
        assert cur.fetchone() == (1,)
        with act_as(db, stranger) as c2:
            c2.execute("select count(*) from public.ai_keys")
            assert c2.fetchone() == (0,)
            c2.execute("delete from public.ai_keys where id = %s", (key_id,))
            assert c2.rowcount == 0
    # The proxy (its own role) reads a key only for the user who owns it.
    with pytest.raises(psycopg.Error) as refused, db.transaction(force_rollback=True):
        db.execute("select * from private.ai_key_secret(%s, %s)", (key_id, stranger))
    assert refused.value.sqlstate == "PT404"
    with db.transaction(force_rollback=True):
        row = db.execute("select provider from private.ai_key_secret(%s, %s)", (key_id, owner)).fetchone()
        assert row == ("openai",)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, None, "anon") as cur:
        cur.execute("select * from public.ai_keys")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(db, owner) as cur:
        cur.execute(
            "insert into public.ai_keys (user_id, provider, last4) values (%s, 'openai', 'x')", (owner,)
        )


def test_user_cannot_use_or_delete_another_users_key(proxy: Proxy) -> None:
    owner, h_owner = proxy.user()
    other, h_other = proxy.user()
    row = store(proxy, h_owner)
    n = len(proxy.fake.requests)
    resp = generate(proxy, h_other, row["id"])
    assert resp.status_code == 404 and "not found, not yours, or expired" in resp.json()["error"]["message"]
    # A key of the wrong provider is refused too.
    resp = generate(proxy, h_owner, row["id"], provider="anthropic")
    assert resp.status_code == 400 and f"key {row['id']} is a openai key" in resp.json()["error"]["message"]
    assert len(proxy.fake.requests) == n
    # Key lookup and admission share one transaction: a refused key took no slot and left no row.
    for uid in (owner, other):
        assert proxy.sql("select count(*) from public.ai_usage where user_id = %s", (uid,)) == [(0,)]
        events = "select count(*) from private.rate_limit_events where key = %s"
        assert proxy.sql(events, (f"ai:{uid}",)) == [(0,)]
    assert proxy.http.delete(f"/v1/keys/{row['id']}", headers=h_other).status_code == 404
    assert proxy.http.delete(f"/v1/keys/{row['id']}", headers=h_owner).status_code == 204
    assert proxy.http.get("/v1/keys", headers=h_owner).json()["keys"] == []
    assert proxy.sql("select count(*) from private.ai_key_secrets")[0][0] == 0


def test_expired_key_unusable_and_cleaned_up(proxy: Proxy) -> None:
    _, h = proxy.user()
    row = store(proxy, h, expires_in_hours=1)
    assert row["expires_at"] is not None
    proxy.sql(
        "update public.ai_keys set expires_at = now() - interval '1 second' where id = %s", (row["id"],)
    )
    assert generate(proxy, h, row["id"]).status_code == 404
    assert proxy.http.get("/v1/keys", headers=h).json()["keys"] == []
    dry = proxy.sql("select * from private.cleanup_ai_keys(10, true)")
    assert len(dry) == 1 and row["id"] in dry[0][0]
    assert proxy.sql("select count(*) from public.ai_keys")[0][0] == 1
    done = proxy.sql("select * from private.cleanup_ai_keys(10, false)")
    assert len(done) == 1
    assert proxy.sql("select count(*) from public.ai_keys")[0][0] == 0
    assert proxy.sql("select count(*) from private.ai_key_secrets")[0][0] == 0


def test_bad_key_input_rejected_and_nothing_stored(proxy: Proxy) -> None:
    _, h = proxy.user()
    for body in (
        {"provider": "nope", "key": "x"},
        {"provider": "openai"},
        {"provider": "openai", "key": "sk-1234567890", "expires_in_hours": -1},
        {"provider": "openai", "key": "k" * 5000},
    ):
        assert proxy.http.post("/v1/keys", json=body, headers=h).status_code == 400
    assert proxy.sql("select count(*) from public.ai_keys")[0][0] == 0


def test_rotation_rewraps_every_key_and_keeps_them_usable(proxy_factory: Any) -> None:
    proxy = proxy_factory()
    _, h = proxy.user()
    ids = [store(proxy, h)["id"] for _ in range(3)]
    both = MasterKeys.parse(f"{MASTER_A},{MASTER_B}", "b")
    count = rotate_master_key(proxy.db_url, both, batch_size=2)
    assert count == 3
    kids = {r[0] for r in proxy.sql("select master_key_id from private.ai_key_secrets")}
    assert kids == {"b"}
    # A proxy that only knows the new master key can still use every key.
    only_b = proxy_factory(ai_master_keys=MASTER_B)
    for key_id in ids:
        assert generate(only_b, h, key_id).status_code == 200
    # The old master key alone can no longer open them.
    (kid, wrapped, ct) = proxy.sql(
        "select master_key_id, wrapped_dek, ciphertext from private.ai_key_secrets limit 1"
    )[0]
    with pytest.raises(KeyDecryptError):
        MasterKeys.parse(MASTER_A).open(Sealed(kid, bytes(wrapped), bytes(ct)), b"x")


def test_envelope_binds_row_identity() -> None:
    keys = MasterKeys.parse(MASTER_A)
    sealed = keys.seal("secret-value", b"row-1")
    assert keys.open(sealed, b"row-1") == "secret-value"
    with pytest.raises(KeyDecryptError):
        keys.open(sealed, b"row-2")
