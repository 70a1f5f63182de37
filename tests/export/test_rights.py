"""Export and erasure cover every user-owned table the catalog knows, and every file of the user.

The list of user-owned tables is derived from the catalog (every foreign key
to auth.users). POPULATE must know how to give each of them a row for a user:
a module adding such a table without test data here makes these tests fail.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.export.conftest import FakeJobContext
from tests.helpers import create_user
from workers.errors import BacklineError
from workers.export.catalog import referencing_rows, user_tables
from workers.export.jobs import run_erasure, run_export
from workers.export.rights import erase_user, export_to_file
from workers.platform.factory import Adapters
from workers.platform.local_storage import LocalStorage
from workers.platform.storage import SERVICE, Caller

Populate = Callable[[psycopg.Connection, uuid.UUID], None]


def _audit(conn: psycopg.Connection, uid: uuid.UUID) -> None:
    conn.execute("select private.audit(%s, 'test.event', '{\"n\": 1}')", (uid,))


def _file_link(conn: psycopg.Connection, uid: uuid.UUID) -> None:
    conn.execute(
        "insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id)"
        " values (%s, 'images', %s, 'profile', %s)",
        (uid, f"{uid}/avatar.png", uid),
    )


def _consent(conn: psycopg.Connection, uid: uuid.UUID) -> None:
    conn.execute("insert into public.privacy_consents (user_id, telemetry) values (%s, true)", (uid,))


def _telemetry(conn: psycopg.Connection, uid: uuid.UUID) -> None:
    conn.execute(
        "insert into public.telemetry_events (user_id, name, occurred_at, props)"
        " values (%s, 'app.opened', now(), '{\"v\": 1}'), (%s, 'feature.used', now(), '{}')",
        (uid, uid),
    )


def _job(conn: psycopg.Connection, uid: uuid.UUID) -> None:
    conn.execute("select private.job_enqueue('export', '{}'::jsonb, %s)", (uid,))


def _billing_customer(conn: psycopg.Connection, uid: uuid.UUID) -> None:
    conn.execute(
        "insert into public.billing_customers (customer_id, user_id, linked_by_event) values (%s, %s, %s)",
        (f"cus_{uid.hex}", uid, f"evt_{uid.hex}"),
    )


def _billing_subscription(conn: psycopg.Connection, uid: uuid.UUID) -> None:
    conn.execute(
        "insert into public.billing_subscriptions (subscription_id, customer_id, user_id, status, plan_id,"
        " state_source, state_at, state_event_id)"
        " values (%s, %s, %s, 'active', 'pro', 'subscription', now(), %s)",
        (f"sub_{uid.hex}", f"cus_{uid.hex}", uid, f"evt_{uid.hex}"),
    )


def _billing_event(conn: psycopg.Connection, uid: uuid.UUID) -> None:
    conn.execute(
        "insert into private.billing_events (event_id, type, stripe_created_at, user_id, outcome)"
        " values (%s, 'customer.subscription.updated', now(), %s, 'applied')",
        (f"evt_{uid.hex}", uid),
    )


POPULATE: dict[str, Populate] = {
    "public.billing_customers": _billing_customer,
    "public.billing_subscriptions": _billing_subscription,
    "private.billing_events": _billing_event,
    "public.jobs": _job,
    "public.profiles": lambda conn, uid: None,  # created by the auth.users trigger
    "public.audit_log": _audit,
    "public.file_links": _file_link,
    "public.privacy_consents": _consent,
    "public.telemetry_events": _telemetry,
}


def populate_user(url: str, storage: LocalStorage, **kwargs: object) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        uid = create_user(conn, **kwargs)
    me = Caller.user(uid)
    storage.upload("images", f"{uid}/avatar.png", b"\x89PNG fake", content_type="image/png", caller=me)
    storage.upload("images", f"{uid}/trips/one.jpg", b"jpeg" * 1000, content_type="image/jpeg", caller=me)
    # Written by a worker (no owner), but in the user's folder: still theirs.
    storage.upload("images", f"{uid}/trips/one.jpg.thumb150.webp", b"webp", content_type="image/webp")
    with psycopg.connect(url) as conn:
        for table in user_tables(conn):
            POPULATE[table.qualified](conn, uid)
    return uid


def test_every_user_owned_table_is_known_to_these_tests(rights_url: str):
    with psycopg.connect(rights_url) as conn:
        tables = {t.qualified for t in user_tables(conn)}
    missing = tables - POPULATE.keys()
    assert not missing, f"user-owned tables without export/erasure test data: {sorted(missing)}"
    assert {"public.profiles", "public.audit_log", "public.telemetry_events"} <= tables


def test_export_archive_has_every_owned_row_and_file_and_nothing_of_others(
    rights_url: str, adapters: Adapters, tmp_path: Path
):
    storage = adapters.storage
    assert isinstance(storage, LocalStorage)
    uid = populate_user(rights_url, storage, email="me@example.test", display_name="Me")
    other = populate_user(rights_url, storage)
    out = tmp_path / "export.zip"
    steps: list[str] = []
    summary = export_to_file(rights_url, adapters, uid, out, advance=steps.append)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        account = json.loads(zf.read("account.json"))
        assert account["email"] == "me@example.test" and account["id"] == str(uid)
        assert "encrypted_password" not in account
        with psycopg.connect(rights_url) as conn:
            for table in user_tables(conn):
                rows = json.loads(zf.read(f"tables/{table.qualified}.json"))
                expected = conn.execute(table.count_rows(), {"uid": uid}).fetchone()[0]
                assert expected >= 1, table.qualified
                assert len(rows) == expected, table.qualified
                text = json.dumps(rows)
                assert str(other) not in text, table.qualified
        assert {
            f"files/images/{uid}/avatar.png",
            f"files/images/{uid}/trips/one.jpg",
            f"files/images/{uid}/trips/one.jpg.thumb150.webp",
        } <= names
        assert not any(str(other) in n for n in names)
        assert zf.read(f"files/images/{uid}/trips/one.jpg") == b"jpeg" * 1000
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["user_id"] == str(uid) and len(manifest["files"]) == 3
    assert summary.files == 3 and summary.file_bytes == 4000 + 9 + 4
    assert len(steps) == 1 + len(summary.rows) + 3


def test_export_job_writes_to_the_exports_bucket_with_an_expiring_url_and_audit(
    rights_url: str, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    storage = adapters.storage
    assert isinstance(storage, LocalStorage)
    uid = populate_user(rights_url, storage)
    ctx = make_ctx(uid)
    result = run_export(ctx, {})
    assert result is not None
    assert result["bucket"] == "exports" and result["path"].startswith(f"{uid}/")
    assert result["path"].endswith(".zip") and result["files"] == 3
    assert storage.verify_signed_url(result["url"]) == ("exports", result["path"])
    assert ctx.beats, "long exports heartbeat"
    data = b"".join(storage.download("exports", result["path"], caller=Caller.user(uid)))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert "tables/public.telemetry_events.json" in zf.namelist()
    stranger = populate_user(rights_url, storage)
    with pytest.raises(Exception, match="Object not found"):
        list(storage.download("exports", result["path"], caller=Caller.user(stranger)))
    with psycopg.connect(rights_url) as conn:
        action, details = conn.execute(
            "select action, details from public.audit_log where user_id = %s and action like 'export.%%'",
            (uid,),
        ).fetchone()
    assert action == "export.completed" and details["job_id"] == str(ctx.job_id)
    # A second export does not include the first one.
    second = run_export(make_ctx(uid), {"user_id": str(uid)})
    assert second is not None and second["files"] == 3


def test_export_of_a_missing_user_fails_clearly(rights_url: str, make_ctx: Callable[..., FakeJobContext]):
    with pytest.raises(BacklineError, match="not found"):
        run_export(make_ctx(uuid.uuid4()), {})
    with pytest.raises(ValueError, match="must be a uuid"):
        run_export(make_ctx(None), {"user_id": "nope"})


def test_erasure_leaves_nothing_referencing_the_user_and_keeps_others(
    rights_url: str, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    storage = adapters.storage
    assert isinstance(storage, LocalStorage)
    uid = populate_user(rights_url, storage, email="gone@example.test")
    other = populate_user(rights_url, storage)
    run_export(make_ctx(uid), {})  # the user's exports are erased too
    ctx = make_ctx(uid, kind="erasure")
    result = run_erasure(ctx, {})
    assert result is not None and result["objects_removed"] == 4
    with psycopg.connect(rights_url) as conn:
        assert referencing_rows(conn, uid) == {}
        for table in user_tables(conn):
            for column in table.columns:
                n = conn.execute(
                    f'select count(*) from {table.schema}."{table.table}" where "{column}" = %s', (uid,)
                ).fetchone()[0]
                assert n == 0, (table.qualified, column)
        assert (
            conn.execute(
                "select count(*) from storage.objects where owner_id = %s or name like %s",
                (str(uid), f"{uid}/%"),
            ).fetchone()[0]
            == 0
        )
        assert conn.execute("select count(*) from auth.users where id = %s", (uid,)).fetchone()[0] == 0
        # The other user is untouched.
        assert referencing_rows(conn, other) != {}
        assert (
            conn.execute(
                "select count(*) from storage.objects where name like %s", (f"{other}/%",)
            ).fetchone()[0]
            == 3
        )
        audit = conn.execute(
            "select user_id, details::text from public.audit_log where action = 'account.erased'"
        ).fetchall()
    assert len(audit) == 1 and audit[0][0] is None
    assert str(uid) not in audit[0][1] and "gone@example.test" not in audit[0][1]
    assert json.loads(audit[0][1])["job_id"] == str(ctx.job_id)
    assert not any(str(uid) in str(p) for p in storage.root.rglob("*"))
    assert any(str(other) in str(p) for p in storage.root.rglob("*"))
    with pytest.raises(BacklineError, match="not found"):
        erase_user(rights_url, adapters, uid)


def test_erasure_resumes_after_a_partial_run(rights_url: str, adapters: Adapters):
    storage = adapters.storage
    uid = populate_user(rights_url, storage)
    storage.remove("images", [f"{uid}/avatar.png"], caller=SERVICE)  # as if a crashed run got this far
    result = erase_user(rights_url, adapters, uid)
    assert result.objects_removed == 2
    with psycopg.connect(rights_url) as conn:
        assert referencing_rows(conn, uid) == {}
