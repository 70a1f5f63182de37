"""Moderation (issue #14): reports resolved by operators, takedowns with forks, publishing bans,
owner notifications and the audit trail, through act_as (as PostgREST) and the CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, backline, create_user, keep_as, one_line_error

Conn = psycopg.Connection[Any]
ITEM = json.dumps({"name": "thing"})


@contextmanager
def sqlstate(code: str, match: str = "") -> Iterator[None]:
    """The block raises a database error with this SQLSTATE (and message part)."""
    with pytest.raises(psycopg.Error) as err:
        yield
    assert err.value.sqlstate == code, (err.value.sqlstate, str(err.value))
    assert match in str(err.value)


def doc(
    db: Conn, owner: uuid.UUID, visibility: str = "public", forked_from: uuid.UUID | None = None
) -> uuid.UUID:
    row = db.execute(
        "insert into public.documents (owner_id, kind, title, body, visibility, forked_from)"
        " values (%s, 'item', 'a thing', %s, %s, %s) returning id",
        (owner, ITEM, visibility, forked_from),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def report(db: Conn, reporter: uuid.UUID, document: uuid.UUID, reason: str = "spam") -> uuid.UUID:
    """A report filed the way a frontend files it (PostgREST insert as the reporter)."""
    with keep_as(db, reporter) as cur:
        cur.execute(
            "insert into public.abuse_reports (document_id, reporter_id, reason) values (%s, %s, %s)",
            (document, reporter, reason),
        )
    row = db.execute(
        "select id from public.abuse_reports where document_id = %s and reporter_id = %s",
        (document, reporter),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def share(db: Conn, owner: uuid.UUID, document: uuid.UUID) -> str:
    with keep_as(db, owner) as cur:
        out = cur.execute("select public.create_share_link(%s)", (document,)).fetchone()
    assert out is not None
    return str(out[0]["token"])


def resolve(db: Conn, report_id: uuid.UUID, action: str, note: str | None = "breaks the rules") -> Any:
    with keep_as(db, None, "service_role") as cur:
        row = cur.execute(
            "select public.moderation_resolve_report(%s, %s, %s, 'mod-anna')", (report_id, action, note)
        ).fetchone()
    assert row is not None
    return row[0]


def visibility(db: Conn, document: uuid.UUID) -> str:
    row = db.execute("select visibility from public.documents where id = %s", (document,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def world(db: Conn) -> dict[str, Any]:
    owner, reporter, forker, other = (create_user(db) for _ in range(4))
    d = doc(db, owner)
    token = share(db, owner, d)
    with keep_as(db, forker) as cur:
        fork = cur.execute("select id from public.fork_document(%s)", (d,)).fetchone()[0]  # type: ignore[index]
        cur.execute("update public.documents set visibility = 'public' where id = %s", (fork,))
    with keep_as(db, other) as cur:
        private_fork = cur.execute("select id from public.fork_document(%s)", (d,)).fetchone()[0]  # type: ignore[index]
    fork_token = share(db, forker, fork)
    rid = report(db, reporter, d)
    second = report(db, other, d, "harassment")
    return {
        "owner": owner,
        "reporter": reporter,
        "forker": forker,
        "other": other,
        "doc": d,
        "token": token,
        "fork": fork,
        "private_fork": private_fork,
        "fork_token": fork_token,
        "report": rid,
        "second": second,
    }


def test_hide_takes_down_document_links_and_public_forks(db: Conn, world: dict[str, Any]) -> None:
    out = resolve(db, world["report"], "hide", "copyright claim 42")
    assert out["status"] == "hidden"
    assert set(out["documents_hidden"]) == {str(world["doc"]), str(world["fork"])}
    assert out["share_links_revoked"] == 2 and out["other_reports_closed"] == 1
    assert visibility(db, world["doc"]) == "private" and visibility(db, world["fork"]) == "private"
    # nobody but the owner reads it any more; the links answer 410
    with act_as(db, None, "anon") as cur:
        assert cur.execute("select 1 from public.documents where id = %s", (world["doc"],)).fetchone() is None
    for token in (world["token"], world["fork_token"]):
        with act_as(db, None, "anon") as cur, sqlstate("PT410", "revoked"):
            cur.execute("select public.open_share(%s)", (token,))
    with act_as(db, world["owner"]) as cur:
        assert cur.execute("select title from public.documents where id = %s", (world["doc"],)).fetchone()
    # the trail: who, when, why
    row = db.execute(
        "select status, resolved_by, resolution_note, resolved_at is not null"
        " from public.abuse_reports where id = %s",
        (world["report"],),
    ).fetchone()
    assert row == ("hidden", "mod-anna", "copyright claim 42", True)
    assert db.execute(
        "select status from public.abuse_reports where id = %s", (world["second"],)
    ).fetchone() == ("hidden",)
    entries = db.execute(
        "select user_id, details ->> 'moderator', details ->> 'reason' from public.audit_log"
        " where action = 'moderation.takedown' order by user_id"
    ).fetchall()
    assert sorted(e[0] for e in entries) == sorted([world["owner"], world["forker"]])
    assert {(e[1], e[2]) for e in entries} == {("mod-anna", "copyright claim 42")}


def test_taken_down_document_and_forks_cannot_be_republished_or_shared(
    db: Conn, world: dict[str, Any]
) -> None:
    resolve(db, world["report"], "hide")
    for user, document in (
        (world["owner"], world["doc"]),
        (world["forker"], world["fork"]),
        (world["other"], world["private_fork"]),  # a private fork is locked too
    ):
        with act_as(db, user) as cur, sqlstate("PT403", "taken down"):
            cur.execute("update public.documents set visibility = 'unlisted' where id = %s", (document,))
        with act_as(db, user) as cur, sqlstate("PT403", "taken down"):
            cur.execute("select public.create_share_link(%s)", (document,))
        with act_as(db, user) as cur:  # editing it privately is still the owner's right
            cur.execute("update public.documents set title = 'edited' where id = %s", (document,))
            assert cur.rowcount == 1
    # the owner's other documents are not affected by a hide
    other = doc(db, world["owner"], "private")
    with act_as(db, world["owner"]) as cur:
        cur.execute("update public.documents set visibility = 'public' where id = %s", (other,))
        assert cur.rowcount == 1


def test_ban_refuses_every_way_to_publish(db: Conn, world: dict[str, Any]) -> None:
    out = resolve(db, world["report"], "ban", "repeated spam")
    assert out["status"] == "banned" and out["owner_banned"]
    owner = world["owner"]
    mine = doc(db, create_user(db), "private")  # someone else's doc: unaffected by the ban
    fresh = db.execute(
        "insert into public.documents (owner_id, kind, title, body)"
        " values (%s, 'item', 'x', %s) returning id",
        (owner, ITEM),
    ).fetchone()[0]  # type: ignore[index]
    attempts = [
        ("update public.documents set visibility = 'public' where id = %s", (fresh,)),
        ("update public.documents set visibility = 'unlisted' where id = %s", (fresh,)),
        (
            "insert into public.documents (kind, title, body, visibility) values ('item', 'p', %s, 'public')",
            (ITEM,),
        ),
        ("select public.create_share_link(%s)", (fresh,)),
        (
            "select public.sync_push(%s::jsonb)",
            (json.dumps([{"change_id": "c1", "id": str(fresh), "base_version": 1, "visibility": "public"}]),),
        ),
        (
            "select public.import_local(%s::jsonb)",
            (
                json.dumps(
                    {
                        "item": [
                            {"local_id": "l1", "title": "t", "body": {"name": "n"}, "visibility": "public"}
                        ]
                    }
                ),
            ),
        ),
    ]
    for statement, params in attempts:
        with act_as(db, owner) as cur:
            try:
                cur.execute(statement, params)
                result = cur.fetchone()
            except psycopg.Error as exc:
                assert exc.sqlstate == "PT403" and "publishing is suspended" in str(exc)
                assert exc.diag.message_hint
                continue
            # sync_push reports a refused change instead of failing the request
            assert result is not None and "publishing is suspended" in json.dumps(result[0]), (
                statement,
                result,
            )
        assert visibility(db, fresh) == "private"
    # private work goes on; other users publish as before
    with act_as(db, owner) as cur:
        cur.execute(
            "insert into public.documents (kind, title, body) values ('item', 'private', %s)", (ITEM,)
        )
    with act_as(
        db, db.execute("select owner_id from public.documents where id = %s", (mine,)).fetchone()[0]
    ) as cur:  # type: ignore[index]
        cur.execute("update public.documents set visibility = 'public' where id = %s", (mine,))
        assert cur.rowcount == 1
    kinds = [
        r[0]
        for r in db.execute(
            "select kind from public.notifications where user_id = %s order by kind", (owner,)
        )
    ]
    assert kinds == ["moderation.ban", "moderation.takedown"]


def test_dismiss_changes_nothing_but_the_report(db: Conn, world: dict[str, Any]) -> None:
    out = resolve(db, world["report"], "dismiss", None)
    assert out["status"] == "dismissed" and out["documents_hidden"] == []
    assert visibility(db, world["doc"]) == "public"
    assert db.execute(
        "select status from public.abuse_reports where id = %s", (world["second"],)
    ).fetchone() == ("open",)
    assert db.execute(
        "select count(*) from public.notifications where user_id = %s", (world["owner"],)
    ).fetchone() == (0,)
    with act_as(db, None, "anon") as cur:
        assert cur.execute("select public.open_share(%s)", (world["token"],)).fetchone()


def test_notifications_are_owner_only_both_directions(db: Conn, world: dict[str, Any]) -> None:
    resolve(db, world["report"], "hide")
    q = "select kind, message from public.notifications"
    with act_as(db, world["owner"]) as cur:
        rows = cur.execute(q).fetchall()
        assert [r[0] for r in rows] == ["moderation.takedown"] and "breaks the rules" in rows[0][1]
        cur.execute("update public.notifications set read_at = now()")
        assert cur.rowcount == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute("update public.notifications set message = 'nothing happened'")
    with act_as(db, world["reporter"]) as cur:
        assert cur.execute(q).fetchall() == []
        cur.execute("update public.notifications set read_at = now()")
        assert cur.rowcount == 0
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(q)
    with act_as(db, world["owner"]) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(
            "insert into public.notifications (user_id, kind, message) values (%s, 'x.y', 'fake')",
            (world["owner"],),
        )


def test_only_the_service_role_moderates(db: Conn, world: dict[str, Any]) -> None:
    for user, role in (
        (world["owner"], "authenticated"),
        (world["reporter"], "authenticated"),
        (None, "anon"),
    ):
        for call in (
            "select public.moderation_reports()",
            f"select public.moderation_report('{world['report']}')",
            f"select public.moderation_resolve_report('{world['report']}', 'dismiss', null, 'me')",
        ):
            with act_as(db, user, role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
                cur.execute(call)
    with act_as(db, None, "service_role") as cur:
        listed = cur.execute("select public.moderation_reports('open', 100)").fetchone()[0]  # type: ignore[index]
        assert {r["id"] for r in listed} >= {str(world["report"]), str(world["second"])}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("{report}", "destroy", "x", "mod"), "22023", "action must be"),
        (("{report}", "hide", None, "mod"), "22023", "reason is required"),
        (("{report}", "hide", "   ", "mod"), "22023", "reason is required"),
        (("{report}", "dismiss", None, ""), "22023", "moderator"),
        (("{report}", "hide", "x" * 2001, "mod"), "22023", "at most 2000"),
        (("{unknown}", "dismiss", None, "mod"), "PT404", "not found"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    db: Conn, world: dict[str, Any], args: tuple[Any, ...], code: str, message: str
) -> None:
    values = [
        a.format(report=world["report"], unknown=uuid.uuid4()) if isinstance(a, str) else a for a in args
    ]
    with act_as(db, None, "service_role") as cur:
        with pytest.raises(psycopg.Error, match=message) as err:
            cur.execute("select public.moderation_resolve_report(%s::uuid, %s, %s, %s)", values)
        assert err.value.sqlstate == code
    assert visibility(db, world["doc"]) == "public"
    assert db.execute(
        "select status from public.abuse_reports where id = %s", (world["report"],)
    ).fetchone() == ("open",)


def test_a_report_is_resolved_once(db: Conn, world: dict[str, Any]) -> None:
    resolve(db, world["report"], "dismiss", None)
    with act_as(db, None, "service_role") as cur, sqlstate("PT409", "already resolved"):
        cur.execute("select public.moderation_resolve_report(%s, 'ban', 'x', 'mod')", (world["report"],))
    assert db.execute("select count(*) from private.publishing_bans").fetchone() == (0,)
    with act_as(db, None, "service_role") as cur, sqlstate("PT404", "not found"):
        cur.execute("select public.moderation_report(%s)", (uuid.uuid4(),))
    with act_as(db, None, "service_role") as cur, sqlstate("22023", "status must be"):
        cur.execute("select public.moderation_reports('weird')")


# == the CLI (committed data in a database of its own) ==


def _cli_world(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        owner, reporter = create_user(conn), create_user(conn)
        d = doc(conn, owner)
        rid = report(conn, reporter, d)
        conn.commit()
    return {"owner": owner, "doc": d, "report": rid}


def test_cli_lists_shows_and_resolves(clone_url: str) -> None:
    w = _cli_world(clone_url)
    env = {"DATABASE_URL": clone_url}
    listed = backline("reports", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [str(w["report"])]
    table = backline("reports", "list", env=env)
    assert table.returncode == 0 and str(w["report"]) in table.stdout
    shown = backline("reports", "show", str(w["report"]), "--json", env=env)
    assert shown.returncode == 0 and json.loads(shown.stdout)["document"]["id"] == str(w["doc"])
    done = backline(
        "reports",
        "resolve",
        str(w["report"]),
        "--action",
        "ban",
        "--reason",
        "spam ring",
        "--by",
        "ops",
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "banned"
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select banned_by, reason from private.publishing_bans where user_id = %s", (w["owner"],)
        ).fetchone() == ("ops", "spam ring")
        assert conn.execute(
            "select visibility from public.documents where id = %s", (w["doc"],)
        ).fetchone() == ("private",)
    assert json.loads(backline("reports", "list", "--json", env=env).stdout) == []
    again = backline("reports", "resolve", str(w["report"]), "--action", "dismiss", env=env)
    assert again.returncode == 1 and "already resolved" in one_line_error(again)


def test_cli_errors(clone_url: str) -> None:
    env = {"DATABASE_URL": clone_url}
    unknown = backline("reports", "show", str(uuid.uuid4()), env=env)
    assert unknown.returncode == 1 and "not found" in one_line_error(unknown)
    malformed = backline("reports", "show", "not-a-uuid", env=env)
    assert malformed.returncode == 2 and "uuid" in malformed.stderr
    bad_action = backline("reports", "resolve", str(uuid.uuid4()), "--action", "nuke", env=env)
    assert bad_action.returncode == 2
    no_reason = backline("reports", "resolve", str(uuid.uuid4()), "--action", "hide", env=env)
    assert no_reason.returncode == 2 and "reason" in no_reason.stderr
    bad_status = backline("reports", "list", "--status", "weird", env=env)
    assert bad_status.returncode == 2
