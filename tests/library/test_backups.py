"""Encrypted backups: opaque bytes, optimistic versions, retention per plan, restore, owner only."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import sqlstate_of

KDF = json.dumps({"algorithm": "argon2id", "salt": "c2FsdA==", "m": 65536, "t": 3})
UPLOAD = "select public.upload_backup(%s, %s, %s, %s)"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def upload(db, user, data: bytes, if_version: int):
    with keep_as(db, user) as cur:
        return cur.execute(UPLOAD, (b64(data), b64(os.urandom(24)), KDF, if_version)).fetchone()[0]


def test_upload_versions_and_stale_upload_rejected(db, make_user):
    alice = make_user()
    assert upload(db, alice, b"v1-cipher", 0)["version"] == 1
    assert upload(db, alice, b"v2-cipher", 1)["version"] == 2
    with act_as(db, alice) as cur, pytest.raises(Exception) as exc:
        cur.execute(UPLOAD, (b64(b"stale"), b64(os.urandom(24)), KDF, 1))
    assert exc.value.sqlstate == "PT409" and "latest is 2" in str(exc.value)
    assert db.execute("select count(*) from public.backups where owner_id = %s", (alice,)).fetchone() == (2,)


def test_keeps_last_n_versions_per_plan_and_restores_older(db, make_user):
    alice = make_user()
    for v in range(5):
        upload(db, alice, f"cipher-{v + 1}".encode(), v)
    kept = db.execute(
        "select array_agg(version order by version) from public.backups where owner_id = %s", (alice,)
    ).fetchone()
    assert kept == ([3, 4, 5],)  # free plan keeps 3
    with keep_as(db, alice) as cur:
        res = cur.execute("select public.restore_backup(3, 5)").fetchone()[0]
        got = cur.execute("select public.get_backup(null)").fetchone()[0]
    assert res["version"] == 6
    assert base64.b64decode(got["ciphertext"]) == b"cipher-3" and got["restored_from"] == 3
    with act_as(db, alice) as cur:
        assert sqlstate_of(cur, "select public.get_backup(1)") == "PT404"


def test_size_limit_per_plan(db, make_user):
    alice = make_user()
    db.execute("update public.plans set backup_max_bytes = 10 where id = 'free'")
    with act_as(db, alice) as cur, pytest.raises(Exception) as exc:
        cur.execute(UPLOAD, (b64(b"x" * 11), b64(os.urandom(24)), KDF, 0))
    assert exc.value.sqlstate == "PT413" and "backup too large: 11 bytes" in str(exc.value)
    with act_as(db, alice) as cur:
        assert sqlstate_of(cur, UPLOAD, ("!!not base64!!", b64(os.urandom(24)), KDF, 0)) == "22023"
    assert db.execute("select count(*) from public.backups where owner_id = %s", (alice,)).fetchone() == (0,)


def test_only_owner_reads_backups(db, make_user):
    alice, bob = make_user(), make_user()
    upload(db, alice, b"secret", 0)
    with act_as(db, bob) as cur:
        assert cur.execute("select count(*) from public.backups").fetchone() == (0,)
        assert sqlstate_of(cur, "select public.get_backup(null)") == "PT404"
    with act_as(db, None, "anon") as cur:
        assert sqlstate_of(cur, "select public.get_backup(null)") == "42501"
