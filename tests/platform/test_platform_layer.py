"""The platform layer (supabase/platform/*.sql) behaves like hosted Supabase.

These tests pin the platform facts of DESIGN.md that our migrations and
workers rely on: the API roles and their privileges, the auth.* request
helpers, the storage path helpers and delete protection, the realtime
objects, and the default privileges for new `public` objects in both
flavours (legacy: ALL to the API roles; none: nothing without a GRANT).

Fixtures (tests/conftest.py): `db` is a superuser psycopg connection inside a
transaction rolled back after the test; `make_user` inserts an auth.users row.
`act_as` (tests/helpers.py) impersonates a request exactly like PostgREST.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import psycopg
import pytest
from psycopg import errors, sql

from tests.helpers import act_as

API_ROLES = ("anon", "authenticated", "service_role")

MakeUser = Callable[..., uuid.UUID]


def scalar(conn_or_cur: psycopg.Connection | psycopg.Cursor, query: str, params=None):
    row = conn_or_cur.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def make_bucket(db: psycopg.Connection, bucket_id: str | None = None) -> str:
    bucket_id = bucket_id or f"platform-test-{uuid.uuid4().hex[:12]}"
    db.execute("insert into storage.buckets (id, name) values (%s, %s)", (bucket_id, bucket_id))
    return bucket_id


def make_object(db: psycopg.Connection, bucket_id: str, name: str) -> uuid.UUID:
    return scalar(
        db,
        "insert into storage.objects (bucket_id, name) values (%s, %s) returning id",
        (bucket_id, name),
    )


# --------------------------------------------------------------------------
# Roles and schema privileges
# --------------------------------------------------------------------------


def test_api_roles_have_the_platform_attributes(db: psycopg.Connection) -> None:
    rows = db.execute(
        """
        select rolname, rolcanlogin, rolinherit, rolbypassrls
        from pg_catalog.pg_roles
        where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')
        """
    ).fetchall()
    roles = {name: (login, inherit, bypass) for name, login, inherit, bypass in rows}
    assert roles == {
        "anon": (False, False, False),
        "authenticated": (False, False, False),
        "service_role": (False, False, True),
        "authenticator": (True, False, False),
    }
    for role in API_ROLES:
        assert scalar(db, "select pg_has_role('authenticator', %s, 'member')", (role,))


@pytest.mark.parametrize("schema", ["public", "extensions", "auth", "storage", "realtime"])
@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_may_use_platform_schemas(db: psycopg.Connection, role: str, schema: str) -> None:
    assert scalar(db, "select has_schema_privilege(%s, %s, 'usage')", (role, schema))
    assert not scalar(db, "select has_schema_privilege(%s, %s, 'create')", (role, schema))


# --------------------------------------------------------------------------
# auth.uid() / auth.role() / auth.email() / auth.jwt()
# --------------------------------------------------------------------------


def test_auth_helpers_read_the_request_claims(db: psycopg.Connection) -> None:
    user_id = uuid.uuid4()
    with act_as(db, user_id, claims={"email": "ada@example.com", "is_anonymous": False}) as cur:
        uid, role, email, claims = cur.execute(
            "select auth.uid(), auth.role(), auth.email(), auth.jwt()"
        ).fetchone()
    assert uid == user_id
    assert role == "authenticated"
    assert email == "ada@example.com"
    assert claims["sub"] == str(user_id)
    assert claims["role"] == "authenticated"
    assert claims["is_anonymous"] is False


def test_auth_helpers_for_an_anon_request(db: psycopg.Connection) -> None:
    with act_as(db, None, role="anon") as cur:
        uid, role, claims = cur.execute("select auth.uid(), auth.role(), auth.jwt()").fetchone()
    assert uid is None
    assert role == "anon"
    assert claims["role"] == "anon"
    assert "sub" not in claims


def test_auth_helpers_are_null_without_claims(db: psycopg.Connection) -> None:
    assert db.execute("select auth.uid(), auth.role(), auth.email(), auth.jwt()").fetchone() == (
        None,
        None,
        None,
        None,
    )
    # After a request in this session its settings read '' (not NULL): the
    # helpers must still answer NULL.
    with act_as(db, uuid.uuid4()):
        pass
    assert db.execute("select auth.uid(), auth.role(), auth.jwt()").fetchone() == (None, None, None)


def test_auth_uid_honours_the_legacy_per_claim_setting(db: psycopg.Connection) -> None:
    legacy, current = uuid.uuid4(), uuid.uuid4()
    with db.transaction(force_rollback=True):
        db.execute("select set_config('request.jwt.claim.sub', %s, true)", (str(legacy),))
        db.execute("select set_config('request.jwt.claim.role', 'authenticated', true)")
        assert scalar(db, "select auth.uid()") == legacy
        assert scalar(db, "select auth.role()") == "authenticated"
        # The legacy setting wins over request.jwt.claims, as on Supabase.
        db.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(current), "role": "anon"}),),
        )
        assert scalar(db, "select auth.uid()") == legacy


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_may_call_the_auth_helpers(db: psycopg.Connection, role: str) -> None:
    for fn in ("auth.uid()", "auth.role()", "auth.email()", "auth.jwt()"):
        assert scalar(db, "select has_function_privilege(%s, %s, 'execute')", (role, fn))


# --------------------------------------------------------------------------
# auth.users
# --------------------------------------------------------------------------


def test_auth_users_has_the_supabase_columns(db: psycopg.Connection) -> None:
    columns = dict(
        db.execute(
            """
            select column_name, data_type
            from information_schema.columns
            where table_schema = 'auth' and table_name = 'users'
            """
        ).fetchall()
    )
    expected = {
        "id": "uuid",
        "instance_id": "uuid",
        "aud": "character varying",
        "role": "character varying",
        "email": "character varying",
        "encrypted_password": "character varying",
        "email_confirmed_at": "timestamp with time zone",
        "phone": "text",
        "phone_confirmed_at": "timestamp with time zone",
        "confirmed_at": "timestamp with time zone",
        "last_sign_in_at": "timestamp with time zone",
        "raw_app_meta_data": "jsonb",
        "raw_user_meta_data": "jsonb",
        "is_super_admin": "boolean",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
        "banned_until": "timestamp with time zone",
        "deleted_at": "timestamp with time zone",
        "is_sso_user": "boolean",
        "is_anonymous": "boolean",
    }
    for name, data_type in expected.items():
        assert columns.get(name) == data_type, name
    is_nullable, default = db.execute(
        """
        select is_nullable, column_default from information_schema.columns
        where table_schema = 'auth' and table_name = 'users' and column_name = 'is_anonymous'
        """
    ).fetchone()
    assert (is_nullable, default) == ("NO", "false")


def test_make_user_creates_a_user(db: psycopg.Connection, make_user: MakeUser) -> None:
    named = make_user(email="grace@example.com")
    anonymous = make_user(anonymous=True)
    rows = dict(
        db.execute(
            "select id, is_anonymous from auth.users where id = any(%s)", ([named, anonymous],)
        ).fetchall()
    )
    assert rows == {named: False, anonymous: True}


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_read_auth_users(db: psycopg.Connection, make_user: MakeUser, role: str) -> None:
    user_id = make_user(email=f"{uuid.uuid4().hex[:8]}@example.com")
    with (
        act_as(db, None if role == "anon" else user_id, role=role) as cur,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        cur.execute("select id from auth.users")


def test_service_role_may_read_auth_users(db: psycopg.Connection, make_user: MakeUser) -> None:
    user_id = make_user(email=f"{uuid.uuid4().hex[:8]}@example.com")
    with act_as(db, None, role="service_role") as cur:
        assert scalar(cur, "select count(*) from auth.users where id = %s", (user_id,)) == 1


def test_identities_follow_their_user(db: psycopg.Connection, make_user: MakeUser) -> None:
    user_id = make_user(email=f"{uuid.uuid4().hex[:8]}@example.com")
    db.execute(
        """
        insert into auth.identities (provider_id, user_id, identity_data, provider)
        values (%s, %s, %s, 'email')
        """,
        (str(user_id), user_id, json.dumps({"sub": str(user_id), "email": "Mixed@Example.COM"})),
    )
    email = scalar(db, "select email from auth.identities where user_id = %s", (user_id,))
    assert email == "mixed@example.com"
    db.execute("delete from auth.users where id = %s", (user_id,))
    assert scalar(db, "select count(*) from auth.identities where user_id = %s", (user_id,)) == 0


# --------------------------------------------------------------------------
# Row level security
# --------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["auth.users", "storage.buckets", "storage.objects", "realtime.messages"])
def test_platform_tables_have_rls_enabled(db: psycopg.Connection, table: str) -> None:
    assert scalar(db, "select relrowsecurity from pg_class where oid = %s::regclass", (table,))


def test_service_role_bypasses_rls(db: psycopg.Connection) -> None:
    db.execute("create table public.platform_rls_probe (id int primary key)")
    db.execute("alter table public.platform_rls_probe enable row level security")
    db.execute("grant select on public.platform_rls_probe to authenticated, service_role")
    db.execute("insert into public.platform_rls_probe values (1), (2)")
    with act_as(db, uuid.uuid4()) as cur:
        assert scalar(cur, "select count(*) from public.platform_rls_probe") == 0
    with act_as(db, None, role="service_role") as cur:
        assert scalar(cur, "select count(*) from public.platform_rls_probe") == 2


# --------------------------------------------------------------------------
# Default privileges for new public tables: the two flavours
# (BACKLINE_DEFAULT_PRIVILEGES; CI runs the suite in both)
# --------------------------------------------------------------------------


def _default_grants(db: psycopg.Connection) -> set[tuple[str, str, str]]:
    rows = db.execute(
        """
        select d.defaclobjtype::text, a.grantee::regrole::text, a.privilege_type
        from pg_default_acl d
        cross join lateral aclexplode(d.defaclacl) a
        left join pg_namespace n on n.oid = d.defaclnamespace
        where (n.nspname = 'public' or d.defaclnamespace = 0)
          and a.grantee in (select oid from pg_roles where rolname = any(%s))
        """,
        (list(API_ROLES),),
    ).fetchall()
    return {(str(t), str(g), str(p)) for t, g, p in rows}


def test_default_privileges_follow_the_configured_flavour(
    db: psycopg.Connection, default_privileges: str
) -> None:
    grants = _default_grants(db)
    if default_privileges == "none":
        assert grants == set()
        return
    # legacy: ALL on tables, sequences and functions for each API role, as the
    # supabase/postgres init scripts set it for the migrating role.
    for role in API_ROLES:
        for kind, privilege in (("r", "SELECT"), ("r", "UPDATE"), ("r", "TRUNCATE"),
                                ("S", "USAGE"), ("f", "EXECUTE")):
            assert (kind, role, privilege) in grants


@pytest.mark.parametrize("role", API_ROLES)
def test_new_public_table_grant_depends_on_the_flavour(
    db: psycopg.Connection, role: str, default_privileges: str
) -> None:
    db.execute("create table public.platform_grant_probe (id int primary key)")
    db.execute("insert into public.platform_grant_probe values (1)")
    user_id = None if role == "anon" else uuid.uuid4()
    if default_privileges == "legacy":
        # Everything is granted before any GRANT: this is what migrations must revoke.
        with act_as(db, user_id, role=role) as cur:
            assert scalar(cur, "select count(*) from public.platform_grant_probe") == 1
            cur.execute("update public.platform_grant_probe set id = 2")
        return
    with act_as(db, user_id, role=role) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select id from public.platform_grant_probe")
    db.execute(sql.SQL("grant select on public.platform_grant_probe to {}").format(sql.Identifier(role)))
    with act_as(db, user_id, role=role) as cur:
        # Reachable now; RLS is off on this probe table, so the row shows.
        assert scalar(cur, "select count(*) from public.platform_grant_probe") == 1


# --------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "folders", "filename", "extension"),
    [
        ("a/b/c.png", ["a", "b"], "c.png", "png"),
        ("c.png", [], "c.png", "png"),
        ("user/archive.tar.gz", ["user"], "archive.tar.gz", "gz"),
        ("user/README", ["user"], "README", "README"),
    ],
)
def test_storage_path_helpers(
    db: psycopg.Connection, path: str, folders: list[str], filename: str, extension: str
) -> None:
    row = db.execute(
        "select storage.foldername(%s), storage.filename(%s), storage.extension(%s)",
        (path, path, path),
    ).fetchone()
    assert row == (folders, filename, extension)


def test_storage_objects_derive_path_tokens_and_updated_at(db: psycopg.Connection) -> None:
    bucket_id = make_bucket(db)
    object_id = make_object(db, bucket_id, "u1/photos/a.png")
    assert scalar(db, "select path_tokens from storage.objects where id = %s", (object_id,)) == [
        "u1",
        "photos",
        "a.png",
    ]
    db.execute(
        "update storage.objects set updated_at = '2000-01-01', metadata = '{}' where id = %s",
        (object_id,),
    )
    assert scalar(db, "select updated_at > '2000-01-02' from storage.objects where id = %s", (object_id,))


def test_direct_delete_on_storage_objects_is_refused(db: psycopg.Connection) -> None:
    bucket_id = make_bucket(db)
    object_id = make_object(db, bucket_id, "u1/a.png")
    with db.transaction(force_rollback=True), pytest.raises(errors.InsufficientPrivilege) as refused:
        db.execute("delete from storage.objects where id = %s", (object_id,))
    assert "Direct deletion from storage tables is not allowed" in str(refused.value)
    # Statement-level, as on Supabase: refused even when no row matches.
    with db.transaction(force_rollback=True), pytest.raises(errors.InsufficientPrivilege):
        db.execute("delete from storage.objects where false")
    with db.transaction(force_rollback=True), pytest.raises(errors.InsufficientPrivilege):
        db.execute("delete from storage.buckets where id = %s", (bucket_id,))
    assert scalar(db, "select count(*) from storage.objects where id = %s", (object_id,)) == 1


def test_direct_delete_is_allowed_with_allow_delete_query(db: psycopg.Connection) -> None:
    bucket_id = make_bucket(db)
    object_id = make_object(db, bucket_id, "u1/a.png")
    with db.transaction(force_rollback=True):
        db.execute("select set_config('storage.allow_delete_query', 'true', true)")
        deleted = db.execute("delete from storage.objects where id = %s", (object_id,)).rowcount
        assert deleted == 1
        assert db.execute("delete from storage.buckets where id = %s", (bucket_id,)).rowcount == 1


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_have_storage_table_privileges(db: psycopg.Connection, role: str) -> None:
    for table in ("storage.buckets", "storage.objects"):
        for privilege in ("select", "insert", "update", "delete"):
            assert scalar(db, "select has_table_privilege(%s, %s, %s)", (role, table, privilege)), (
                table,
                privilege,
            )


# --------------------------------------------------------------------------
# Realtime
# --------------------------------------------------------------------------


def test_supabase_realtime_publication_exists(db: psycopg.Connection) -> None:
    assert scalar(db, "select count(*) from pg_publication where pubname = 'supabase_realtime'") == 1


def test_realtime_topic_reads_the_setting(db: psycopg.Connection) -> None:
    assert scalar(db, "select realtime.topic()") is None
    with db.transaction(force_rollback=True):
        db.execute("select set_config('realtime.topic', 'room:42', true)")
        assert scalar(db, "select realtime.topic()") == "room:42"


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_may_use_realtime_messages(db: psycopg.Connection, role: str) -> None:
    for privilege in ("select", "insert", "update"):
        assert scalar(db, "select has_table_privilege(%s, 'realtime.messages', %s)", (role, privilege))


def test_realtime_send_stores_a_broadcast(db: psycopg.Connection) -> None:
    topic = f"room:{uuid.uuid4()}"
    with db.transaction(force_rollback=True):
        db.execute("select realtime.send(%s, 'cursor', %s)", (json.dumps({"x": 1}), topic))
        assert scalar(db, "select realtime.topic()") == topic
        extension, event, private, payload, message_id = db.execute(
            "select extension, event, private, payload, id from realtime.messages where topic = %s",
            (topic,),
        ).fetchone()
    assert (extension, event, private) == ("broadcast", "cursor", True)
    assert payload == {"x": 1, "id": str(message_id)}
