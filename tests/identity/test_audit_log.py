"""audit_log: append-only for every API role; users read only their own entries."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import act_as


def _entry(db, user, action="export.requested"):
    return db.execute("select private.audit(%s, %s, '{\"n\": 1}')", (user, action)).fetchone()[0]


def test_user_reads_own_entries_only(db, make_user):
    alice, bob = make_user(), make_user()
    mine = _entry(db, alice)
    _entry(db, bob)
    with act_as(db, alice) as cur:
        assert [r[0] for r in cur.execute("select id from public.audit_log").fetchall()] == [mine]
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select id from public.audit_log")


@pytest.mark.parametrize("role", ["authenticated", "service_role"])
@pytest.mark.parametrize(
    "statement",
    [
        "update public.audit_log set action = 'tampered'",
        "delete from public.audit_log",
    ],
)
def test_no_api_role_can_change_entries(db, make_user, role, statement):
    alice = make_user()
    _entry(db, alice)
    with act_as(db, alice, role) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(statement)


def test_even_the_owner_of_the_table_cannot_rewrite_history(db, make_user):
    alice = make_user()
    entry = _entry(db, alice)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        db.execute("update public.audit_log set details = '{}' where id = %s", (entry,))


def test_users_cannot_insert_or_call_audit(db, make_user):
    alice = make_user()
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("insert into public.audit_log (user_id, action) values (%s, 'fake.entry')", (alice,))
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select private.audit(%s, 'fake.entry')", (alice,))


def test_entries_survive_account_deletion_without_user_id(db, make_user):
    alice = make_user()
    entry = _entry(db, alice, "account.deleted")
    db.execute("delete from auth.users where id = %s", (alice,))
    assert db.execute("select user_id, action from public.audit_log where id = %s", (entry,)).fetchone() == (
        None,
        "account.deleted",
    )


def test_bad_action_rejected(db, make_user):
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("select private.audit(%s, 'Not A Name')", (make_user(),))
