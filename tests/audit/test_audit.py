"""The audit trail of row changes (issue #14): every owned table is audited, entries name
columns but never values, users read their own trail (RLS, both directions), operators read
all through the CLI, and the retention cleanup removes old entries only."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, backline, create_user, keep_as, one_line_error

Conn = psycopg.Connection[Any]
CANARY = "secret-canary-5d1e"
ITEM = json.dumps({"name": CANARY})

# Tables with a foreign key to auth.users whose audit triggers are missing, disabled, or
# run a function generated before the table's columns changed (the guard's query). Tables in
# private.audit_update_exemptions have no update trigger (machine bookkeeping), only the two others.
UNAUDITED = """
select distinct k.conrelid::regclass::text
  from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
 where k.contype = 'f' and k.confrelid = 'auth.users'::regclass and cardinality(k.conkey) = 1
   and n.nspname <> 'auth' and c.relkind = 'r'
   and k.conrelid not in ('public.audit_log'::regclass, 'public.sync_receipts'::regclass)
   and (select count(*) from pg_trigger t join pg_proc p on p.oid = t.tgfoid
         where t.tgrelid = k.conrelid and t.tgenabled <> 'D'
           and t.tgname in ('audit_changes_after_insert', 'audit_changes_after_update',
                            'audit_changes_after_delete')
           and p.pronamespace = 'private'::regnamespace
           and p.prosrc = private.audit_trigger_body(k.conrelid))
       <> case when exists (select 1 from private.audit_update_exemptions e where e.table_name = k.conrelid)
               then 2 else 3 end
"""


def trail(db: Conn, row_id: object) -> list[tuple[Any, ...]]:
    return db.execute(
        "select table_name, action, user_id, actor_id, actor, columns from public.audit_changes"
        " where row_id = %s order by id",
        (str(row_id),),
    ).fetchall()


def test_every_owned_table_is_audited(db: Conn) -> None:
    assert db.execute(UNAUDITED).fetchall() == [], (
        "add `select private.audit_attach('<table>')` to its migration"
    )


def test_the_guard_sees_a_new_owned_table_without_the_trigger(db: Conn) -> None:
    db.execute(
        "create table public.audit_guard_probe (id uuid primary key, user_id uuid references auth.users)"
    )
    assert db.execute(UNAUDITED).fetchall() == [("audit_guard_probe",)]
    db.execute("select private.audit_attach('public.audit_guard_probe')")
    assert db.execute(UNAUDITED).fetchall() == []
    db.execute("alter table public.audit_guard_probe add column note text")  # not compared yet
    assert db.execute(UNAUDITED).fetchall() == [("audit_guard_probe",)]
    db.execute("select private.audit_attach('public.audit_guard_probe')")  # again: compared now
    assert db.execute(UNAUDITED).fetchall() == []
    db.execute("update public.audit_guard_probe set note = 'x'")  # (no rows: no entry)
    db.execute("insert into public.audit_guard_probe (id) values (gen_random_uuid())")
    db.execute("update public.audit_guard_probe set note = 'x'")
    assert db.execute(
        "select columns from public.audit_changes where table_name = 'public.audit_guard_probe'"
        " and action = 'update'"
    ).fetchall() == [(["note"],)]
    db.execute("alter table public.audit_guard_probe disable trigger audit_changes_after_update")
    assert db.execute(UNAUDITED).fetchall() == [("audit_guard_probe",)]


def test_attach_refuses_a_table_without_owner_or_key(db: Conn) -> None:
    db.execute("create table public.audit_probe_nokey (user_id uuid references auth.users)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="primary key"):
        db.execute("select private.audit_attach('public.audit_probe_nokey')")


def test_insert_update_delete_are_recorded_with_column_names_only(db: Conn) -> None:
    owner = create_user(db)
    with keep_as(db, owner) as cur:
        doc = cur.execute(
            "insert into public.documents (kind, title, body) values ('item', %s, %s) returning id",
            (CANARY, ITEM),
        ).fetchone()[0]  # type: ignore[index]
        cur.execute("update public.documents set title = 'renamed', body = %s where id = %s", (ITEM, doc))
        cur.execute("update public.documents set title = title where id = %s", (doc,))  # nothing changes
        cur.execute(
            "update public.documents set title = 'x' where id = %s and false", (doc,)
        )  # no row: no entry
    db.execute("delete from public.documents where id = %s", (doc,))  # an operator, outside the API
    rows = trail(db, doc)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("public.documents", "insert", owner, owner, "authenticated"),
        ("public.documents", "update", owner, owner, "authenticated"),
        ("public.documents", "update", owner, owner, "authenticated"),
        ("public.documents", "delete", owner, None, "postgres"),
    ]
    assert {"title", "version"} <= set(rows[1][5]) and "body" not in rows[1][5]  # same body: not changed
    # `search` is kept by a trigger from the title and notes (per-kind text-search setting):
    # it changes with the title and is named like any other changed column.
    assert "search" in rows[1][5]
    assert rows[2][5] == []
    everything = db.execute(
        "select string_agg(to_jsonb(a)::text, '|') from public.audit_changes a"
    ).fetchone()
    assert everything is not None and CANARY not in everything[0]


def test_each_change_names_whoever_made_it_even_within_one_transaction(db: Conn) -> None:
    """The trigger reads the actor afresh on every call (migration 20261207110000 computes it
    in assignments compiled once per transaction): two users and an operator changing rows in
    one transaction are each named, and Supabase's older `request.jwt.claim.sub` setting wins
    over the claims' "sub" exactly as in auth.uid()."""
    owner, other = create_user(db), create_user(db)
    doc = db.execute(
        "insert into public.documents (owner_id, kind, title, body)"
        " values (%s, 'item', 'a', %s) returning id",
        (owner, ITEM),
    ).fetchone()[0]  # type: ignore[index]
    with keep_as(db, owner) as cur:
        cur.execute("update public.documents set title = 'b' where id = %s", (doc,))
    with keep_as(db, None, "service_role") as cur:
        cur.execute("update public.documents set title = 'e' where id = %s", (doc,))
    with keep_as(db, other) as cur:  # the older setting names the owner: auth.uid() (and RLS) say owner
        cur.execute("select set_config('request.jwt.claim.sub', %s, true)", (str(owner),))
        cur.execute("update public.documents set title = 'c' where id = %s", (doc,))
        cur.execute("select set_config('request.jwt.claim.sub', '', true)")
    db.execute("update public.documents set title = 'd' where id = %s", (doc,))
    rows = [(r[1], r[3], r[4], r[5] and "title" in r[5]) for r in trail(db, doc)]
    assert rows == [
        ("insert", None, "postgres", None),
        ("update", owner, "authenticated", True),
        ("update", None, "service_role", True),
        ("update", owner, "authenticated", True),
        ("update", None, "postgres", True),
    ]


def test_secrets_and_ciphertexts_never_reach_the_trail(db: Conn) -> None:
    owner = create_user(db)
    db.execute(
        "insert into public.backups (owner_id, version, ciphertext, nonce, kdf) values"
        " (%s, 1, %s::bytea, '12345678'::bytea, '{}')",
        (owner, CANARY),
    )
    db.execute("update public.backups set ciphertext = %s::bytea where owner_id = %s", (CANARY + "2", owner))
    rows = db.execute(
        "select action, columns from public.audit_changes"
        " where table_name = 'public.backups' and user_id = %s order by id",
        (owner,),
    ).fetchall()
    assert [r[0] for r in rows] == ["insert", "update"] and rows[0][1] is None
    assert "ciphertext" in rows[1][1]
    dump = db.execute("select string_agg(to_jsonb(a)::text, '|') from public.audit_changes a").fetchone()
    assert dump is not None and CANARY not in dump[0] and CANARY.encode().hex() not in dump[0]


def test_one_statement_many_rows_and_composite_keys(db: Conn) -> None:
    owner = create_user(db)
    db.execute(
        "insert into private.ai_budget_months (user_id, month)"
        " select %s, date '2026-01-01' + (g || ' months')::interval from generate_series(0, 2) g",
        (owner,),
    )
    # the spend counter's updates are bookkeeping (private.audit_update_exemptions): not recorded
    db.execute("update private.ai_budget_months set spent_usd = 1 where user_id = %s", (owner,))
    db.execute("delete from private.ai_budget_months where user_id = %s and month > '2026-01-01'", (owner,))
    rows = db.execute(
        "select action, row_id, columns from public.audit_changes"
        " where table_name = 'private.ai_budget_months' and user_id = %s order by action, row_id",
        (owner,),
    ).fetchall()
    months = [f"{owner}/2026-0{m}-01" for m in (1, 2, 3)]
    assert rows == [("delete", m, None) for m in months[1:]] + [("insert", m, None) for m in months]


def test_sync_receipts_are_not_audited_but_the_pushed_change_is(db: Conn) -> None:
    owner = create_user(db)
    with keep_as(db, owner) as cur:
        doc = cur.execute(
            "insert into public.documents (kind, title, body) values ('item', 't', %s) returning id", (ITEM,)
        ).fetchone()[0]  # type: ignore[index]
        out = cur.execute(
            "select public.sync_push(%s::jsonb)",
            (json.dumps([{"change_id": "c1", "id": str(doc), "base_version": 1, "title": "pushed"}]),),
        ).fetchone()[0]  # type: ignore[index]
    assert out["results"][0]["status"] == "applied"
    assert [r[1] for r in trail(db, doc)] == ["insert", "update"]
    assert db.execute(
        "select count(*) from public.audit_changes where table_name = 'public.sync_receipts'"
    ).fetchone() == (0,)


def test_users_read_their_own_trail_and_nobody_elses(db: Conn) -> None:
    owner, stranger = create_user(db), create_user(db)
    with keep_as(db, owner) as cur:
        doc = cur.execute(
            "insert into public.documents (kind, title, body) values ('item', 't', %s) returning id", (ITEM,)
        ).fetchone()[0]  # type: ignore[index]
    q = "select table_name, action, actor from public.audit_changes where row_id = %s"
    with act_as(db, owner) as cur:
        assert cur.execute(q, (str(doc),)).fetchall() == [("public.documents", "insert", "authenticated")]
    with act_as(db, stranger) as cur:
        assert cur.execute(q, (str(doc),)).fetchall() == []
        assert cur.execute(
            "select count(*) from public.audit_changes where user_id = %s", (owner,)
        ).fetchone() == (0,)
    with act_as(db, owner) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select actor_id from public.audit_changes")  # another user's id is never disclosed
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(q, (str(doc),))
    for statement in (
        "update public.audit_changes set action = 'insert'",
        "delete from public.audit_changes",
        "insert into public.audit_changes (table_name, actor, action) values ('x', 'y', 'insert')",
    ):
        with act_as(db, owner) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute(statement)
    with act_as(db, None, "service_role") as cur:
        assert cur.execute(
            "select actor_id from public.audit_changes where row_id = %s", (str(doc),)
        ).fetchone() == (owner,)


def test_share_link_opens_are_audited_for_the_owner(db: Conn) -> None:
    owner, viewer = create_user(db), create_user(db)
    with keep_as(db, owner) as cur:
        doc = cur.execute(
            "insert into public.documents (kind, title, body) values ('item', 't', %s) returning id", (ITEM,)
        ).fetchone()[0]  # type: ignore[index]
        link = cur.execute("select public.create_share_link(%s)", (doc,)).fetchone()[0]  # type: ignore[index]
    with keep_as(db, None, "anon") as cur:
        cur.execute("select public.open_share(%s)", (link["token"],))
    with keep_as(db, viewer) as cur:
        cur.execute("select public.open_share(%s)", (link["token"],))
    with act_as(db, owner) as cur:
        opens = cur.execute(
            "select details ->> 'by', details ->> 'share_link_id' from public.audit_log"
            " where action = 'share.opened' order by id"
        ).fetchall()
    assert opens == [("anon", link["id"]), ("authenticated", link["id"])]
    with act_as(db, viewer) as cur:
        assert cur.execute(
            "select count(*) from public.audit_log where action = 'share.opened'"
        ).fetchone() == (0,)


def test_erasing_an_account_clears_its_id_from_the_trail(db: Conn) -> None:
    owner = create_user(db)
    with keep_as(db, owner) as cur:
        cur.execute("insert into public.documents (kind, title, body) values ('item', 't', %s)", (ITEM,))
    assert (
        db.execute("select count(*) from public.audit_changes where user_id = %s", (owner,)).fetchone()[0]
        >= 2
    )  # type: ignore[index]
    db.execute("delete from auth.users where id = %s", (owner,))
    assert db.execute(
        "select count(*) from public.audit_changes where user_id = %s or actor_id = %s", (owner, owner)
    ).fetchone() == (0,)
    assert (
        db.execute(
            "select count(*) from public.audit_changes where table_name = 'public.documents'"
            " and action = 'delete' and user_id is null and created_at = now()"
        ).fetchone()[0]
        >= 1
    )  # type: ignore[index]


def test_retention_cleanup_deletes_only_old_entries(db: Conn) -> None:
    owner = create_user(db)
    ids = [
        r[0]
        for r in db.execute(
            "select id from public.audit_changes where user_id = %s order by id", (owner,)
        ).fetchall()
    ]
    assert ids  # the profile row
    db.execute("update private.audit_settings set retention_days = 30")
    old = db.execute(
        "insert into public.audit_changes (table_name, row_id, actor, action, created_at)"
        " values ('public.documents', 'old', 'postgres', 'delete', now() - interval '31 days') returning id"
    ).fetchone()[0]  # type: ignore[index]
    with act_as(db, None, "service_role") as cur:
        dry = [r[0] for r in cur.execute("select item from public.run_cleanup('audit_changes', 1000, true)")]
    assert any(f"audit change {old} " in line for line in dry)
    assert db.execute("select count(*) from public.audit_changes where id = %s", (old,)).fetchone() == (1,)
    with keep_as(db, None, "service_role") as cur:
        gone = [
            r[0] for r in cur.execute("select item from public.run_cleanup('audit_changes', 1000, false)")
        ]
    assert gone == dry
    assert db.execute("select count(*) from public.audit_changes where id = %s", (old,)).fetchone() == (0,)
    assert db.execute("select count(*) from public.audit_changes where id = any(%s)", (ids,)).fetchone() == (
        len(ids),
    )
    with act_as(db, None, "service_role") as cur, pytest.raises(psycopg.errors.InvalidParameterValue):
        cur.execute("select * from public.run_cleanup('audit_changes', 0, false)")
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("update private.audit_settings set retention_days = 0")


# == the CLI ==


def test_cli_lists_the_trail_with_filters(clone_url: str) -> None:
    with psycopg.connect(clone_url) as conn:
        owner, other = create_user(conn), create_user(conn)
        with keep_as(conn, owner) as cur:
            doc = cur.execute(
                "insert into public.documents (kind, title, body) values ('item', 't', %s) returning id",
                (ITEM,),
            ).fetchone()[0]  # type: ignore[index]
            cur.execute("update public.documents set title = 'u' where id = %s", (doc,))
        conn.commit()
    env = {"DATABASE_URL": clone_url}
    out = backline("audit", "list", "--user", str(owner), "--table", "documents", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["action"], r["row_id"], r["actor_id"]) for r in rows] == [
        ("update", str(doc), str(owner)),
        ("insert", str(doc), str(owner)),
    ]
    assert "title" in rows[0]["columns"]
    others = json.loads(backline("audit", "list", "--user", str(other), "--json", env=env).stdout)
    assert {r["table_name"] for r in others} == {"public.profiles"}
    acted = json.loads(backline("audit", "list", "--actor", str(owner), "--json", env=env).stdout)
    assert {(r["table_name"], r["action"]) for r in acted} == {
        ("public.documents", "insert"),
        ("public.documents", "update"),
    }
    table = backline("audit", "list", "--action", "update", "--limit", "5", env=env)
    assert table.returncode == 0 and "public.documents" in table.stdout


def test_cli_retention_and_errors(clone_url: str) -> None:
    env = {"DATABASE_URL": clone_url}
    assert backline("audit", "retention", env=env).stdout.strip() == "365"
    assert backline("audit", "retention", "90", env=env).returncode == 0
    assert json.loads(backline("audit", "retention", "--json", env=env).stdout) == {"retention_days": 90}
    bad = backline("audit", "retention", "0", env=env)
    assert bad.returncode == 2
    assert backline("audit", "retention", env=env).stdout.strip() == "90"  # unchanged
    bad_user = backline("audit", "list", "--user", "nobody", env=env)
    assert bad_user.returncode == 2 and "uuid" in bad_user.stderr
    bad_actor = backline("audit", "list", "--actor", "12", env=env)
    assert bad_actor.returncode == 2 and "--actor" in bad_actor.stderr
    bad_action = backline("audit", "list", "--action", "read", env=env)
    assert bad_action.returncode == 2
    unreachable = backline("audit", "list", env={"DATABASE_URL": "postgresql://x:y@127.0.0.1:1/none"})
    assert unreachable.returncode == 1 and one_line_error(unreachable)


def test_exports_are_audited_however_they_leave(clone_url: str, tmp_path: Any) -> None:
    """An operator's `users export --out FILE` is recorded like the bucket export (export.completed)."""
    with psycopg.connect(clone_url) as conn:
        owner, other = create_user(conn), create_user(conn)
        conn.commit()
    env = {"DATABASE_URL": clone_url, "BACKLINE_DATA_DIR": str(tmp_path / "data")}
    for args in (("--out", str(tmp_path / "me.zip")), ("--json",)):
        done = backline("users", "export", str(owner), *args, env=env)
        assert done.returncode == 0, done.stderr
    with psycopg.connect(clone_url) as conn:
        with act_as(conn, owner) as cur:
            entries = cur.execute(
                "select details ->> 'file', details ->> 'path' from public.audit_log"
                " where action = 'export.completed' order by id"
            ).fetchall()
        assert len(entries) == 2
        assert entries[0][0] == "me.zip" and entries[1][1].startswith(f"exports/{owner}/")
        with act_as(conn, other) as cur:
            assert cur.execute(
                "select count(*) from public.audit_log where action = 'export.completed'"
            ).fetchone() == (0,)


def test_machine_bookkeeping_updates_are_not_audited_but_inserts_are(db: Conn) -> None:
    user = create_user(db)
    exempt = {r[0] for r in db.execute("select table_name::text from private.audit_update_exemptions")}
    assert exempt == {"jobs", "ai_usage", "private.ai_budget_months", "ai_requests"}
    job = db.execute(
        "insert into public.jobs (kind, owner_id) values ('export', %s) returning id", (user,)
    ).fetchone()[0]
    assert [r[1] for r in trail(db, job)] == ["insert"]
    db.execute("update public.jobs set priority = 5 where id = %s", (job,))
    assert [r[1] for r in trail(db, job)] == ["insert"]
    # an audited table next to it still records its updates
    db.execute("update public.profiles set display_name = 'x' where id = %s", (user,))
    assert [r[1] for r in trail(db, user) if r[0] == "public.profiles"][-1] == "update"


def test_attach_leaves_the_update_trigger_out_on_an_exempt_table(db: Conn) -> None:
    db.execute(
        "create table public.audit_exempt_probe (id uuid primary key, user_id uuid references auth.users)"
    )
    db.execute("insert into private.audit_update_exemptions values ('public.audit_exempt_probe', 'probe')")
    db.execute("select private.audit_attach('public.audit_exempt_probe')")
    names = {
        r[0]
        for r in db.execute(
            "select tgname from pg_trigger"
            " where tgrelid = 'public.audit_exempt_probe'::regclass and not tgisinternal"
        )
    }
    assert names == {"audit_changes_after_insert", "audit_changes_after_delete"}
    assert db.execute(UNAUDITED).fetchall() == []
