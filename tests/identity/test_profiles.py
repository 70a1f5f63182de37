"""Profiles: created by trigger, public fields for everyone, private fields for the owner."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import act_as

PUBLIC_COLUMNS = "id, username, display_name, avatar_url, bio, is_anonymous"


def test_profile_created_for_email_and_anonymous_users(db, make_user):
    alice = make_user(email="alice@example.test", display_name="Alice")
    ghost = make_user(anonymous=True)
    rows = dict(
        db.execute(
            "select id, is_anonymous from public.profiles where id = any(%s)", ([alice, ghost],)
        ).fetchall()
    )
    assert rows == {alice: False, ghost: True}
    assert db.execute(
        "select display_name, plan, storage_used from public.profiles where id = %s", (alice,)
    ).fetchone() == ("Alice", "free", 0)


def test_everyone_reads_public_fields(db, make_user):
    alice = make_user()
    db.execute("update public.profiles set username = 'alice', bio = 'hi' where id = %s", (alice,))
    with act_as(db, None, "anon") as cur:
        assert cur.execute(
            f"select {PUBLIC_COLUMNS} from public.profiles where id = %s", (alice,)
        ).fetchone()[1:3] == ("alice", None)
    with act_as(db, make_user()) as cur:
        assert cur.execute("select bio from public.profiles where id = %s", (alice,)).fetchone() == ("hi",)


@pytest.mark.parametrize("column", ["plan", "storage_used"])
def test_private_fields_hidden_from_others(db, make_user, column):
    alice, bob = make_user(), make_user()
    with act_as(db, bob) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(f"select {column} from public.profiles where id = %s", (alice,))
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(f"select {column} from public.profiles where id = %s", (alice,))


def test_owner_reads_private_fields_through_rpc(db, make_user):
    alice, bob = make_user(), make_user()
    with act_as(db, alice) as cur:
        rows = cur.execute("select id, plan, storage_used from public.my_profile()").fetchall()
    assert rows == [(alice, "free", 0)]
    with act_as(db, bob) as cur:
        assert cur.execute("select id from public.my_profile()").fetchall() == [(bob,)]
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("select * from public.my_profile()")


def test_owner_updates_editable_fields_stranger_cannot(db, make_user):
    alice, bob = make_user(), make_user()
    with act_as(db, alice) as cur:
        cur.execute(
            "update public.profiles set display_name = 'Al', username = 'al_1' where id = %s", (alice,)
        )
        assert cur.rowcount == 1
        assert cur.execute("select username from public.profiles where id = %s", (alice,)).fetchone() == (
            "al_1",
        )
    with act_as(db, bob) as cur:
        cur.execute("update public.profiles set display_name = 'hacked' where id = %s", (alice,))
        assert cur.rowcount == 0
    assert db.execute("select display_name from public.profiles where id = %s", (alice,)).fetchone() == (
        None,
    )


@pytest.mark.parametrize("assignment", ["plan = 'pro'", "storage_used = 0", "is_anonymous = false"])
def test_owner_cannot_change_plan_or_counters(db, make_user, assignment):
    alice = make_user()
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(f"update public.profiles set {assignment} where id = %s", (alice,))


@pytest.mark.parametrize(
    "statement",
    [
        "insert into public.profiles (id) values (gen_random_uuid())",
        "delete from public.profiles",
    ],
)
def test_api_roles_cannot_insert_or_delete_profiles(db, make_user, statement):
    alice = make_user()
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute(statement)


@pytest.mark.parametrize("username", ["ab", "a" * 31, "Has Space", "dash-name", "émile"])
def test_username_rules_reject_bad_names(db, make_user, username):
    alice = make_user()
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.CheckViolation):
        cur.execute("update public.profiles set username = %s where id = %s", (username, alice))


def test_username_unique_case_insensitively(db, make_user):
    alice, bob = make_user(), make_user()
    db.execute("update public.profiles set username = 'same_name' where id = %s", (alice,))
    with act_as(db, bob) as cur, pytest.raises(psycopg.errors.UniqueViolation):
        cur.execute("update public.profiles set username = 'SAME_NAME' where id = %s", (bob,))


def test_anonymous_user_linking_identity_keeps_profile(db, make_user):
    ghost = make_user(anonymous=True)
    db.execute("update public.profiles set username = 'ghost', bio = 'my loops' where id = %s", (ghost,))
    created = db.execute("select created_at from public.profiles where id = %s", (ghost,)).fetchone()
    # What Supabase Auth does on linkIdentity / updateUser({email}) for an anonymous user.
    db.execute(
        "update auth.users set email = 'ghost@example.test', is_anonymous = false where id = %s", (ghost,)
    )
    assert db.execute(
        "select username, bio, is_anonymous, created_at from public.profiles where id = %s", (ghost,)
    ).fetchone() == ("ghost", "my loops", False, created[0])
    assert db.execute("select count(*) from public.profiles where id = %s", (ghost,)).fetchone() == (1,)


def test_username_stored_lower_case(db, make_user):
    alice = make_user()
    with act_as(db, alice) as cur:
        cur.execute("update public.profiles set username = 'Alice_B' where id = %s", (alice,))
        assert cur.execute(
            "select username::text from public.profiles where id = %s", (alice,)
        ).fetchone() == ("alice_b",)


def test_updated_at_maintained(db, make_user):
    alice = make_user()
    db.execute("update public.profiles set updated_at = now() - interval '1 day' where id = %s", (alice,))
    db.execute("update public.profiles set bio = 'new' where id = %s", (alice,))
    stale = db.execute(
        "select updated_at < now() - interval '1 hour' from public.profiles where id = %s", (alice,)
    ).fetchone()
    assert stale == (False,)


def test_deleting_auth_user_removes_profile(db, make_user):
    alice = make_user()
    db.execute("delete from auth.users where id = %s", (alice,))
    assert db.execute("select count(*) from public.profiles where id = %s", (alice,)).fetchone() == (0,)


def test_plans_readable_by_everyone_writable_by_none(db):
    with act_as(db, None, "anon") as cur:
        plans = dict(cur.execute("select id, storage_bytes from public.plans").fetchall())
    assert plans["free"] == 100 * 1024 * 1024
    assert "pro" in plans
    with act_as(db, None, "anon") as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cur.execute("update public.plans set storage_bytes = 0")


def test_act_as_committing_inside_a_transaction_restores_the_caller(db, make_user):
    from workers.db.impersonate import act_as as production_act_as

    alice = make_user()
    db.execute("select 1")  # an open transaction, as in a request handler
    with production_act_as(db, alice, rollback=False) as cur:
        assert cur.execute("select auth.uid(), current_user").fetchone() == (alice, "authenticated")
    assert db.execute("select current_user, auth.uid()").fetchone() == ("postgres", None)


def test_anon_cannot_enumerate_profiles_without_a_username(db, make_user):
    shy = make_user(full_name="Dana Q. Realname", avatar_url="https://example.test/dana.png")
    public = make_user()
    db.execute("update public.profiles set username = 'public_one' where id = %s", (public,))
    with act_as(db, None, "anon") as cur:
        ids = {r[0] for r in cur.execute("select id from public.profiles").fetchall()}
    assert public in ids and shy not in ids
    with act_as(db, shy) as cur:  # the owner still sees their own profile
        assert cur.execute("select display_name from public.profiles where id = %s", (shy,)).fetchone() == (
            "Dana Q. Realname",
        )
    with act_as(db, make_user()) as cur:  # a stranger does not
        assert cur.execute("select id from public.profiles where id = %s", (shy,)).fetchone() is None
