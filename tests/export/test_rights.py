"""Export and erasure cover every user-owned table the catalog knows, and every file of the user.

The list of user-owned tables is derived from the catalog (every foreign key
to auth.users). POPULATE must know how to give each of them a row for a user:
a module adding such a table without test data here makes these tests fail.

A user's rows are those that reference them: rows they own (foreign key `on
delete cascade`: erased with the account) and rows they authored in shared
things (`on delete set null`: they stay, unattributed). The rooms seed covers
both: a room the user owns (a guest they invited edits it) and someone
else's room where the user writes elements, a connection and a chat message.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.export.conftest import FakeJobContext
from tests.helpers import act_as, create_user
from tests.rooms.conftest import create_room, invite_and_join
from workers.errors import BacklineError
from workers.export.catalog import referencing_rows, user_tables
from workers.export.jobs import run_erasure, run_export
from workers.export.rights import erase_user, export_to_file
from workers.platform.factory import Adapters
from workers.platform.local_storage import LocalStorage
from workers.platform.storage import SERVICE, Caller


@dataclass
class Seeded:
    """A populated user, the other accounts their seed created, and the rooms it built."""

    uid: uuid.UUID
    helpers: list[uuid.UUID] = field(default_factory=list)
    own_room: uuid.UUID | None = None
    shared_room: uuid.UUID | None = None


Populate = Callable[[psycopg.Connection, Seeded], None]


def _audit(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute("select private.audit(%s, 'test.event', '{\"n\": 1}')", (seed.uid,))


def _file_link(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute(
        "insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id)"
        " values (%s, 'images', %s, 'profile', %s)",
        (seed.uid, f"{seed.uid}/avatar.png", seed.uid),
    )


def _upload_scans(conn: psycopg.Connection, seed: Seeded) -> None:
    """public.upload_scans is written by the storage trigger for the user's completed uploads
    (populate_user uploaded two; the worker's thumbnail has no owner): check, insert nothing."""
    names = [
        r[0]
        for r in conn.execute(
            "select object_name from public.upload_scans where owner_id = %s order by 1", (seed.uid,)
        )
    ]
    assert names == [f"{seed.uid}/avatar.png", f"{seed.uid}/trips/one.jpg"]


def _consent(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute("insert into public.privacy_consents (user_id, telemetry) values (%s, true)", (seed.uid,))


def _telemetry(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute(
        "insert into public.telemetry_events (user_id, name, occurred_at, props)"
        " values (%s, 'app.opened', now(), '{\"v\": 1}'), (%s, 'feature.used', now(), '{}')",
        (seed.uid, seed.uid),
    )


def _job(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute("select private.job_enqueue('export', '{}'::jsonb, %s)", (seed.uid,))


def _billing_customer(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute(
        "insert into public.billing_customers (customer_id, user_id, linked_by_event) values (%s, %s, %s)",
        (f"cus_{seed.uid.hex}", seed.uid, f"evt_{seed.uid.hex}"),
    )


def _billing_subscription(conn: psycopg.Connection, seed: Seeded) -> None:
    uid = seed.uid
    conn.execute(
        "insert into public.billing_subscriptions (subscription_id, customer_id, user_id, status, plan_id,"
        " state_source, state_at, state_event_id)"
        " values (%s, %s, %s, 'active', 'pro', 'subscription', now(), %s)",
        (f"sub_{uid.hex}", f"cus_{uid.hex}", uid, f"evt_{uid.hex}"),
    )


def _billing_event(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute(
        "insert into private.billing_events (event_id, type, stripe_created_at, user_id, outcome)"
        " values (%s, 'customer.subscription.updated', now(), %s, 'applied')",
        (f"evt_{seed.uid.hex}", seed.uid),
    )


def _image_records(conn: psycopg.Connection, seed: Seeded) -> None:
    """private.image_uploads is written by the storage trigger for the user's completed uploads to
    `images` (populate_user uploaded two; the worker's thumbnail has no owner): check, insert nothing."""
    names = [
        r[0]
        for r in conn.execute(
            "select object_name from private.image_uploads where owner_id = %s order by 1", (seed.uid,)
        )
    ]
    assert names == [f"{seed.uid}/avatar.png", f"{seed.uid}/trips/one.jpg"]


TEMPLATE_ELEMENTS = json.dumps(
    [
        {"key": "a", "kind": "note", "x": 0, "y": 0, "data": {"text": "Mine"}},
        {"key": "b", "kind": "note", "x": 300, "y": 0, "data": {"text": "Also mine"}},
    ]
)
TEMPLATE_CONNECTIONS = json.dumps([{"from": "a", "to": "b", "label": "then"}])
MY_QUESTION = "What should we try first?"


def _rooms(conn: psycopg.Connection, seed: Seeded) -> None:
    """Every rooms table, written through the API path (act_as, RPCs) like the frontend would.

    Owned (cascade): the user's template, room and membership. Authored (set
    null): the invite the user created and the guest's membership it produced
    (invited_by), elements and connections the user created, in their room and
    in the host's room, and the user's chat message in the host's room.
    """
    uid = seed.uid
    host, guest = create_user(conn), create_user(conn)
    seed.helpers += [host, guest]
    with act_as(conn, uid, rollback=False) as cur:
        template = cur.execute(
            "insert into public.room_templates (name, elements, connections) values ('My flow', %s, %s)"
            " returning id",
            (TEMPLATE_ELEMENTS, TEMPLATE_CONNECTIONS),
        ).fetchone()[0]
    own = create_room(conn, uid, "My room")
    with act_as(conn, uid, rollback=False) as cur:
        mine = [r[0] for r in cur.execute("select * from public.apply_template(%s, %s)", (own, template))]
    invite_and_join(conn, own, uid, guest, "editor")
    with act_as(conn, guest, rollback=False) as cur:
        # The guest moves the user's element (updated_by = guest) and adds their own.
        cur.execute("update public.room_elements set x = x + 10 where id = %s", (mine[0],))
        cur.execute(
            "insert into public.room_elements (room_id, kind, data) values (%s, 'note', %s)",
            (own, '{"text": "Guest"}'),
        )
    shared = create_room(conn, host, "Host's room")
    invite_and_join(conn, shared, host, uid, "editor")
    with act_as(conn, host, rollback=False) as cur:
        host_note = cur.execute(
            "insert into public.room_elements (room_id, kind, data) values (%s, 'note', %s) returning id",
            (shared, '{"text": "Host"}'),
        ).fetchone()[0]
    with act_as(conn, uid, rollback=False) as cur:
        note, chat = (
            cur.execute(
                "insert into public.room_elements (room_id, kind, x, y, data) values (%s, %s, %s, 0, %s)"
                " returning id",
                (shared, kind, x, data),
            ).fetchone()[0]
            for kind, x, data in (("note", 300, '{"text": "My idea"}'), ("chat", 600, '{"title": "AI"}'))
        )
        cur.execute(
            "insert into public.room_element_connections (room_id, from_element_id, to_element_id)"
            " values (%s, %s, %s)",
            (shared, note, host_note),
        )
        cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content)"
            " values (%s, %s, 'user', %s)",
            (shared, chat, MY_QUESTION),
        )
    with act_as(conn, None, "service_role", rollback=False) as cur:
        cur.execute(
            "insert into public.room_chat_messages (room_id, element_id, role, content)"
            " values (%s, %s, 'assistant', 'Start small.')",
            (shared, chat),
        )
    seed.own_room, seed.shared_room = own, shared


def _ai_key(conn: psycopg.Connection, seed: Seeded) -> None:
    key_id = conn.execute(
        "insert into public.ai_keys (user_id, provider, last4) values (%s, 'openai', 'abcd') returning id",
        (seed.uid,),
    ).fetchone()[0]
    conn.execute(
        "insert into private.ai_key_secrets (key_id, master_key_id, wrapped_dek, ciphertext)"
        " values (%s, 'k', '\\x01', '\\x02')",
        (key_id,),
    )


def _ai_usage(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute(
        "insert into public.ai_usage (user_id, provider, model, status) values (%s, 'openai', 'm', 'ok')",
        (seed.uid,),
    )


def _ai_request(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute(
        "insert into public.ai_requests (user_id, provider, model, messages)"
        ' values (%s, \'openai\', \'m\', \'[{"role": "user", "content": "hi"}]\')',
        (seed.uid,),
    )


def _ai_budget(conn: psycopg.Connection, seed: Seeded) -> None:
    conn.execute(
        "insert into private.ai_budget_months (user_id, month) values (%s, date '2026-11-01')", (seed.uid,)
    )


def _library(conn: psycopg.Connection, seed: Seeded) -> None:
    """Every library table through the API path: documents, a share link, a sync conflict and its
    push receipts, an encrypted backup (owned: cascade), and an abuse report the user filed about
    another account's public loop (authored: set null)."""
    uid = seed.uid
    author = create_user(conn)
    seed.helpers.append(author)
    loop = {"name": "Riff", "bars": 4, "color": "#FFAA00", "chords": ["C"], "icons": []}
    with act_as(conn, author, rollback=False) as cur:
        public_loop = cur.execute(
            "insert into public.documents (kind, body, visibility)"
            " values ('loop', %s, 'public') returning id",
            (json.dumps(loop),),
        ).fetchone()[0]
    doc = str(uuid.uuid4())
    with act_as(conn, uid, rollback=False) as cur:
        for change in (
            {"change_id": "c1", "id": doc, "kind": "loop", "body": loop},
            {"change_id": "c2", "id": doc, "base_version": 1, "title": "v2"},
            {"change_id": "c3", "id": doc, "base_version": 1, "title": "stale"},  # a conflict
        ):
            cur.execute("select public.sync_push(%s)", (json.dumps([change]),))
        cur.execute("select public.create_share_link(%s, 7)", (doc,))
        cur.execute(
            "select public.upload_backup('Y2lwaGVy', 'bm9uY2Vub25jZQ==', %s, 0)", ('{"algorithm": "scrypt"}',)
        )
        cur.execute(
            "insert into public.abuse_reports (document_id, reporter_id, reason) values (%s, %s, 'spam')",
            (public_loop, uid),
        )


def _moderation(conn: psycopg.Connection, seed: Seeded) -> None:
    """A report against the user's public item, resolved with a ban: a notification for them and
    their publishing ban (the report itself belongs to its reporter)."""
    reporter = create_user(conn)
    seed.helpers.append(reporter)
    with act_as(conn, seed.uid, rollback=False) as cur:
        item = cur.execute(
            "insert into public.documents (kind, body, visibility) values ('item', %s, 'public')"
            " returning id",
            (json.dumps({"name": "reported"}),),
        ).fetchone()[0]
    with act_as(conn, reporter, rollback=False) as cur:
        cur.execute(
            "insert into public.abuse_reports (document_id, reporter_id, reason) values (%s, %s, 'spam')",
            (item, reporter),
        )
    report = conn.execute("select id from public.abuse_reports where document_id = %s", (item,)).fetchone()
    with act_as(conn, None, "service_role", rollback=False) as cur:
        cur.execute(
            "select public.moderation_resolve_report(%s, 'ban', 'spam ring', 'mod')",
            (report[0] if report else None,),
        )


POPULATE: dict[str, Populate] = {
    "public.billing_customers": _billing_customer,
    "public.billing_subscriptions": _billing_subscription,
    "private.billing_events": _billing_event,
    "public.jobs": _job,
    "public.profiles": lambda conn, seed: None,  # created by the auth.users trigger
    "public.audit_log": _audit,
    "public.file_links": _file_link,
    "public.upload_scans": _upload_scans,
    "public.privacy_consents": _consent,
    "public.telemetry_events": _telemetry,
    # Internal bookkeeping, exported like any row about the user (docs/data-rights.md).
    "private.image_uploads": _image_records,
    # One scenario fills all rooms tables (they depend on each other); it runs once.
    "public.rooms": _rooms,
    "public.room_members": _rooms,
    "public.room_invites": _rooms,
    "public.room_templates": _rooms,
    "public.room_elements": _rooms,
    "public.room_element_connections": _rooms,
    "public.room_chat_messages": _rooms,
    # AI proxy: key metadata (the encrypted secret has no user column and is never exported),
    # usage, queued requests (their insert enqueues an ai_request job), budget months.
    "public.ai_keys": _ai_key,
    "public.ai_usage": _ai_usage,
    "public.ai_requests": _ai_request,
    "private.ai_budget_months": _ai_budget,
    # One scenario fills all library tables; it runs once.
    "public.documents": _library,
    "public.share_links": _library,
    "public.sync_conflicts": _library,
    "public.sync_receipts": _library,
    "public.backups": _library,
    "public.abuse_reports": _library,
    # Moderation (run last by populate_user).
    "public.notifications": _moderation,
    "private.publishing_bans": _moderation,
}


def populate_user(url: str, storage: LocalStorage, **kwargs: object) -> Seeded:
    with psycopg.connect(url) as conn:
        seed = Seeded(create_user(conn, **kwargs))
    uid = seed.uid
    me = Caller.user(uid)
    storage.upload("images", f"{uid}/avatar.png", b"\x89PNG fake", content_type="image/png", caller=me)
    storage.upload("images", f"{uid}/trips/one.jpg", b"jpeg" * 1000, content_type="image/jpeg", caller=me)
    # Written by a worker (no owner), but in the user's folder: still theirs.
    storage.upload("images", f"{uid}/trips/one.jpg.thumb150.webp", b"webp", content_type="image/webp")
    done: list[Populate] = []
    with psycopg.connect(url) as conn:
        # moderation last: its ban refuses the share links the library scenario creates
        for table in sorted(user_tables(conn), key=lambda t: POPULATE.get(t.qualified) is _moderation):
            populate = POPULATE[table.qualified]
            if populate not in done:
                populate(conn, seed)
                done.append(populate)
    return seed


def _table(zf: zipfile.ZipFile, qualified: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(zf.read(f"tables/{qualified}.json"))
    return rows


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
    seed = populate_user(rights_url, storage, email="me@example.test", display_name="Me")
    other = populate_user(rights_url, storage)
    uid = seed.uid
    # No other account may show up: the other user, their helpers, and the accounts in this user's rooms.
    strangers = [str(u) for u in (other.uid, *other.helpers, *seed.helpers)]
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
                rows = _table(zf, table.qualified)
                expected = conn.execute(table.count_rows(), {"uid": uid}).fetchone()[0]
                assert expected >= 1, table.qualified
                assert len(rows) == expected, table.qualified
                text = json.dumps(rows)
                assert not [s for s in strangers if s in text], table.qualified
        assert {
            f"files/images/{uid}/avatar.png",
            f"files/images/{uid}/trips/one.jpg",
            f"files/images/{uid}/trips/one.jpg.thumb150.webp",
        } <= names
        assert not any(s in n for n in names for s in strangers)
        assert zf.read(f"files/images/{uid}/trips/one.jpg") == b"jpeg" * 1000
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["user_id"] == str(uid) and len(manifest["files"]) == 3
        assert "replaced by null" in manifest["note"]

        # Internal bookkeeping about the user is exported too: the records of their image uploads.
        assert sorted(r["object_name"] for r in _table(zf, "private.image_uploads")) == [
            f"{uid}/avatar.png",
            f"{uid}/trips/one.jpg",
        ]
        # Rooms: the user's own room and template, not the host's room they only joined.
        assert [r["title"] for r in _table(zf, "public.rooms")] == ["My room"]
        assert [r["name"] for r in _table(zf, "public.room_templates")] == ["My flow"]
        members = {(r["room_id"], r["role"]): r for r in _table(zf, "public.room_members")}
        assert set(members) == {
            (str(seed.own_room), "owner"),
            (str(seed.shared_room), "editor"),
            (str(seed.own_room), "editor"),
        }
        # Their membership in the host's room: who invited them is another account, so null.
        assert members[(str(seed.shared_room), "editor")]["invited_by"] is None
        # The guest they invited: the user's action (invited_by) without the guest's id.
        guest_row = members[(str(seed.own_room), "editor")]
        assert guest_row["invited_by"] == str(uid) and guest_row["user_id"] is None
        assert [r["created_by"] for r in _table(zf, "public.room_invites")] == [str(uid)]
        # Elements they created in both rooms; the one the guest moved keeps the move, not the guest.
        elements = {
            r["data"].get("text") or r["data"].get("title"): r for r in _table(zf, "public.room_elements")
        }
        assert set(elements) == {"Mine", "Also mine", "My idea", "AI"}
        assert elements["Mine"]["x"] == 10 and elements["Mine"]["updated_by"] is None
        assert elements["Mine"]["created_by"] == str(uid) and elements["Also mine"]["updated_by"] == str(uid)
        assert {r["room_id"] for r in _table(zf, "public.room_element_connections")} == {
            str(seed.own_room),
            str(seed.shared_room),
        }
        # Their chat message in someone else's room; the AI's answer is not theirs.
        assert [r["content"] for r in _table(zf, "public.room_chat_messages")] == [MY_QUESTION]
    assert summary.files == 3 and summary.file_bytes == 4000 + 9 + 4
    assert len(steps) == 1 + len(summary.rows) + 3


def test_export_job_writes_to_the_exports_bucket_with_an_expiring_url_and_audit(
    rights_url: str, adapters: Adapters, make_ctx: Callable[..., FakeJobContext]
):
    storage = adapters.storage
    assert isinstance(storage, LocalStorage)
    uid = populate_user(rights_url, storage).uid
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
    stranger = populate_user(rights_url, storage).uid
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
    seed = populate_user(rights_url, storage, email="gone@example.test")
    other = populate_user(rights_url, storage).uid
    uid = seed.uid
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
        # Owned: the user's room goes with everything in it, the guest's element too.
        assert conn.execute(
            "select (select count(*) from public.rooms where id = %(r)s)"
            " + (select count(*) from public.room_elements where room_id = %(r)s)"
            " + (select count(*) from public.room_invites where room_id = %(r)s)",
            {"r": seed.own_room},
        ).fetchone() == (0,)
        # Authored in the host's room: kept for the room, no longer attributed to anyone.
        assert conn.execute(
            "select count(*) filter (where created_by is null), count(*) from public.room_elements"
            " where room_id = %s",
            (seed.shared_room,),
        ).fetchone() == (2, 3)
        assert conn.execute(
            "select author_id, content from public.room_chat_messages where room_id = %s and role = 'user'",
            (seed.shared_room,),
        ).fetchall() == [(None, MY_QUESTION)]
        assert conn.execute(
            "select count(*) from public.room_element_connections where room_id = %s and created_by is null",
            (seed.shared_room,),
        ).fetchone() == (1,)
        assert conn.execute(
            "select count(*) from public.room_members where room_id = %s", (seed.shared_room,)
        ).fetchone() == (1,)
        assert conn.execute(
            "select count(*) from auth.users where id = any(%s)", (seed.helpers,)
        ).fetchone() == (len(seed.helpers),)
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
    uid = populate_user(rights_url, storage).uid
    storage.remove("images", [f"{uid}/avatar.png"], caller=SERVICE)  # as if a crashed run got this far
    result = erase_user(rights_url, adapters, uid)
    assert result.objects_removed == 2
    with psycopg.connect(rights_url) as conn:
        assert referencing_rows(conn, uid) == {}
