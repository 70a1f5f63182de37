"""`backline db check`: every lint fires on a broken object and stays quiet on its fixed twin.

Each test builds its objects inside the `db` fixture's transaction (rolled back
afterwards) and runs the real lints through `run_checks`.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from workers.check import Finding, run_checks
from workers.check.runner import DEFAULT_EXPOSED, LEVELS, has_errors, load_lints

Conn = psycopg.Connection[Any]


def found(db: Conn, name: str, exposed: tuple[str, ...] = DEFAULT_EXPOSED) -> dict[str, Finding]:
    """Findings of lint `name`, keyed by object."""
    return {f.object: f for f in run_checks(db, exposed) if f.name == name}


def fires(db: Conn, name: str, obj: str, level: str = "ERROR") -> Finding:
    hits = found(db, name)
    assert obj in hits, f"{name} did not report {obj}; it reported {sorted(hits)}"
    assert hits[obj].level == level
    return hits[obj]


def quiet(db: Conn, name: str, obj: str) -> None:
    hits = found(db, name)
    assert obj not in hits, f"{name} wrongly reported {obj}: {hits[obj].detail}"


@pytest.fixture(autouse=True)
def explicit_grants_only(db: Conn) -> None:
    """Probe objects get only the grants each test gives them, in both platform flavours.

    With the legacy default privileges every probe table would start out granted
    to all API roles; each test here builds its case with explicit grants, so
    the defaults are switched off inside the test's (rolled back) transaction.
    """
    for kind in ("tables", "sequences", "functions"):
        db.execute(
            f"alter default privileges for role current_user in schema public"
            f" revoke all on {kind} from anon, authenticated, service_role"
        )


def show(findings: list[Finding]) -> str:
    return "\n".join(f"{f.level} {f.name} {f.object}: {f.detail}" for f in findings)


# -- the lint files and the runner ------------------------------------------------


def test_lint_files_are_well_formed() -> None:
    lints = load_lints()
    assert len(lints) >= 12
    for file_name, query in lints:
        assert re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", file_name), file_name
        assert query.lstrip().startswith("--"), f"{file_name} needs a header comment"
        # psycopg reads every % as a placeholder: only the two parameters may appear
        stray = re.sub(r"%\((exposed|platform)\)s", "", query)
        assert "%" not in stray, f"{file_name} has a literal % (use regex or starts_with)"
    assert len({name for name, _ in lints}) == len(lints)


def test_runner_leaves_the_callers_transaction_as_it_was(db: Conn) -> None:
    db.execute("create table public.chk_keep (id int primary key)")
    db.execute("set local search_path = public, extensions")
    run_checks(db)
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert db.execute("show search_path").fetchone() == ("public, extensions",)
    assert db.execute("select to_regclass('public.chk_keep') is not null").fetchone() == (True,)


def test_findings_are_sorted_error_first_and_serialise(db: Conn) -> None:
    db.execute("create table public.chk_open (id int primary key)")  # ERROR
    db.execute("create table public.chk_dup (id int primary key)")
    db.execute("create index chk_dup_a on public.chk_dup (id)")  # WARN
    findings = run_checks(db)
    levels = [LEVELS.index(f.level) for f in findings]
    assert levels == sorted(levels)
    assert has_errors(findings)
    assert not has_errors([f for f in findings if f.level != "ERROR"])
    assert set(findings[0].as_dict()) == {"name", "level", "object", "detail", "remediation"}


def test_the_migrated_schema_has_no_errors(db: Conn) -> None:
    findings = run_checks(db)
    print(show(findings))
    errors = [f for f in findings if f.level == "ERROR"]
    assert not errors, "db check finds errors in our own migrations:\n" + show(errors)


# -- 1. rls_disabled_in_exposed_schema ---------------------------------------------


def test_table_without_rls_in_exposed_schema(db: Conn) -> None:
    db.execute("create table public.chk_open (id int primary key)")
    f = fires(db, "rls_disabled_in_exposed_schema", "public.chk_open")
    assert "public.chk_open" in f.detail
    db.execute("alter table public.chk_open enable row level security")
    quiet(db, "rls_disabled_in_exposed_schema", "public.chk_open")


def test_exposed_schemas_are_a_parameter(db: Conn) -> None:
    db.execute("create schema chk_api")
    db.execute("create table chk_api.things (id int primary key)")
    assert "chk_api.things" not in found(db, "rls_disabled_in_exposed_schema")
    hits = found(db, "rls_disabled_in_exposed_schema", exposed=("public", "chk_api"))
    assert "chk_api.things" in hits


# -- 2. rls_enabled_no_policy --------------------------------------------------------


def test_granted_table_with_rls_but_no_policy(db: Conn) -> None:
    db.execute("create table public.chk_nopol (id int primary key)")
    db.execute("alter table public.chk_nopol enable row level security")
    quiet(db, "rls_enabled_no_policy", "public.chk_nopol")  # granted to no API role
    db.execute("grant select on public.chk_nopol to authenticated")
    fires(db, "rls_enabled_no_policy", "public.chk_nopol")
    db.execute("create policy chk_read on public.chk_nopol for select to authenticated using (true)")
    quiet(db, "rls_enabled_no_policy", "public.chk_nopol")


def test_column_grant_counts_as_reachable(db: Conn) -> None:
    db.execute("create table public.chk_nopol (id int primary key, note text)")
    db.execute("alter table public.chk_nopol enable row level security")
    db.execute("grant update (note) on public.chk_nopol to anon")
    fires(db, "rls_enabled_no_policy", "public.chk_nopol")


# -- 3. security_definer_search_path_mutable --------------------------------------


def test_definer_function_without_search_path(db: Conn) -> None:
    db.execute(
        "create function private.chk_definer(n int) returns int language sql"
        " security definer as $$ select n $$"
    )
    obj = "private.chk_definer(n integer)"
    fires(db, "security_definer_search_path_mutable", obj)
    db.execute("alter function private.chk_definer(int) set search_path = ''")
    quiet(db, "security_definer_search_path_mutable", obj)


def test_invoker_function_and_platform_schemas_are_not_checked(db: Conn) -> None:
    db.execute("create function private.chk_invoker() returns int language sql as $$ select 1 $$")
    db.execute(
        "create function auth.chk_platform() returns int language sql security definer as $$ select 1 $$"
    )
    hits = found(db, "security_definer_search_path_mutable")
    assert "private.chk_invoker()" not in hits
    assert "auth.chk_platform()" not in hits


# -- 4. security_definer_function_exposed / 5. anon_security_definer_function_executable


def test_definer_function_in_exposed_schema(db: Conn) -> None:
    db.execute(
        "create function public.chk_rpc() returns int language sql"
        " security definer set search_path = '' as $$ select 1 $$"
    )
    fires(db, "security_definer_function_exposed", "public.chk_rpc()")
    db.execute("alter function public.chk_rpc() set schema private")
    quiet(db, "security_definer_function_exposed", "public.chk_rpc()")
    quiet(db, "security_definer_function_exposed", "private.chk_rpc()")


def test_definer_trigger_function_is_not_an_rpc(db: Conn) -> None:
    db.execute(
        "create function public.chk_trg() returns trigger language plpgsql"
        " security definer set search_path = '' as $$ begin return new; end $$"
    )
    quiet(db, "security_definer_function_exposed", "public.chk_trg()")
    quiet(db, "anon_security_definer_function_executable", "public.chk_trg()")


def test_definer_function_executable_by_anon(db: Conn) -> None:
    db.execute(
        "create function public.chk_rpc() returns int language sql"
        " security definer set search_path = '' as $$ select 1 $$"
    )
    db.execute("grant execute on function public.chk_rpc() to anon")
    f = fires(db, "anon_security_definer_function_executable", "public.chk_rpc()")
    assert "revoke execute on function public.chk_rpc() from public, anon" in f.remediation
    db.execute("revoke execute on function public.chk_rpc() from public, anon")
    quiet(db, "anon_security_definer_function_executable", "public.chk_rpc()")
    # still a definer function in an exposed schema
    fires(db, "security_definer_function_exposed", "public.chk_rpc()")


def test_execute_through_public_counts_for_anon(db: Conn) -> None:
    db.execute(
        "create function public.chk_rpc() returns int language sql"
        " security definer set search_path = '' as $$ select 1 $$"
    )
    db.execute("revoke execute on function public.chk_rpc() from anon")
    db.execute("grant execute on function public.chk_rpc() to public")
    fires(db, "anon_security_definer_function_executable", "public.chk_rpc()")


# -- 6. auth_rls_initplan ------------------------------------------------------------

BARE = [
    "owner_id = auth.uid()",
    "(auth.jwt() ->> 'role') = 'admin'",
    "auth.role() = 'authenticated'",
    "auth.email() is not null",
    "current_setting('request.jwt.claims', true) is not null",
    "owner_id = (select auth.uid()) or owner_id = auth.uid()",  # one wrapped, one not
    "exists (select 1 from public.chk_notes n where n.owner_id = auth.uid())",
]
WRAPPED = [
    "owner_id = (select auth.uid())",
    "(select auth.jwt() ->> 'role') = 'admin'",
    "(select auth.role()) = 'authenticated'",
    "(select current_setting('request.jwt.claims', true)::jsonb) is not null",
    "owner_id in (select private.chk_mine())",
]


@pytest.fixture
def notes(db: Conn) -> str:
    db.execute("create table public.chk_notes (id int primary key, owner_id uuid)")
    db.execute("alter table public.chk_notes enable row level security")
    db.execute("grant select, insert on public.chk_notes to authenticated")
    db.execute(
        "create function private.chk_mine() returns setof uuid language sql stable"
        " security definer set search_path = '' as $$ select (select auth.uid()) $$"
    )
    return "public.chk_notes"


@pytest.mark.parametrize("expr", BARE)
def test_bare_auth_call_in_policy(db: Conn, notes: str, expr: str) -> None:
    db.execute(f"create policy chk_pol on {notes} for select to authenticated using ({expr})")
    fires(db, "auth_rls_initplan", f"{notes}: chk_pol")


@pytest.mark.parametrize("expr", BARE[:2])
def test_bare_auth_call_in_with_check(db: Conn, notes: str, expr: str) -> None:
    db.execute(f"create policy chk_pol on {notes} for insert to authenticated with check ({expr})")
    fires(db, "auth_rls_initplan", f"{notes}: chk_pol")


@pytest.mark.parametrize("expr", WRAPPED)
def test_wrapped_auth_call_in_policy(db: Conn, notes: str, expr: str) -> None:
    db.execute(f"create policy chk_pol on {notes} for select to authenticated using ({expr})")
    db.execute(f"create policy chk_ins on {notes} for insert to authenticated with check ({expr})")
    quiet(db, "auth_rls_initplan", f"{notes}: chk_pol")
    quiet(db, "auth_rls_initplan", f"{notes}: chk_ins")


def test_auth_call_detection_ignores_the_callers_search_path(db: Conn, notes: str) -> None:
    db.execute(f"create policy chk_pol on {notes} for select to authenticated using (owner_id = auth.uid())")
    db.execute("set local search_path = auth, public")
    fires(db, "auth_rls_initplan", f"{notes}: chk_pol")


def test_bare_auth_call_on_storage_objects(db: Conn) -> None:
    db.execute(
        "create policy chk_storage on storage.objects for select to authenticated"
        " using (owner_id = auth.uid()::text)"
    )
    f = fires(db, "auth_rls_initplan", "storage.objects: chk_storage")
    assert "auth.uid()" in f.detail
    db.execute("drop policy chk_storage on storage.objects")
    db.execute(
        "create policy chk_storage on storage.objects for select to authenticated"
        " using (owner_id = (select auth.uid())::text)"
    )
    quiet(db, "auth_rls_initplan", "storage.objects: chk_storage")


# -- 7. unindexed_foreign_keys -------------------------------------------------------


def test_foreign_key_without_index(db: Conn) -> None:
    db.execute("create table public.chk_parent (id int primary key)")
    db.execute(
        "create table public.chk_child (id int primary key, parent_id int references public.chk_parent (id))"
    )
    obj = "public.chk_child: chk_child_parent_id_fkey"
    f = fires(db, "unindexed_foreign_keys", obj)
    assert "parent_id" in f.remediation
    db.execute("create index on public.chk_child (parent_id, id)")  # leading column is enough
    quiet(db, "unindexed_foreign_keys", obj)


def test_composite_foreign_key_needs_its_columns_leading(db: Conn) -> None:
    db.execute("create table private.chk_parent (a int, b int, primary key (a, b))")
    db.execute(
        "create table private.chk_child (a int, b int, c int,"
        " constraint chk_child_ab_fkey foreign key (a, b) references private.chk_parent)"
    )
    obj = "private.chk_child: chk_child_ab_fkey"
    db.execute("create index on private.chk_child (c, a, b)")  # FK columns not leading
    fires(db, "unindexed_foreign_keys", obj)
    db.execute("create index on private.chk_child (b, a, c)")  # any order of the FK columns
    quiet(db, "unindexed_foreign_keys", obj)


def test_foreign_key_to_auth_users(db: Conn) -> None:
    db.execute("create table public.chk_owned (id int primary key, user_id uuid references auth.users)")
    fires(db, "unindexed_foreign_keys", "public.chk_owned: chk_owned_user_id_fkey")


# -- 8. security_definer_view / materialized_view_in_api ---------------------------


def test_view_that_bypasses_rls(db: Conn) -> None:
    db.execute("create table public.chk_base (id int primary key)")
    db.execute("create view public.chk_view as select id from public.chk_base")
    fires(db, "security_definer_view", "public.chk_view")
    db.execute("alter view public.chk_view set (security_invoker = true)")
    quiet(db, "security_definer_view", "public.chk_view")


def test_view_outside_exposed_schemas_is_fine(db: Conn) -> None:
    db.execute("create view private.chk_view as select 1 as one")
    quiet(db, "security_definer_view", "private.chk_view")


def test_materialized_view_readable_by_api_roles(db: Conn) -> None:
    db.execute("create materialized view public.chk_mv as select 1 as one")
    quiet(db, "materialized_view_in_api", "public.chk_mv")
    db.execute("grant select on public.chk_mv to authenticated")
    fires(db, "materialized_view_in_api", "public.chk_mv", level="WARN")
    db.execute("revoke select on public.chk_mv from authenticated")
    quiet(db, "materialized_view_in_api", "public.chk_mv")


# -- 9. auth_users_exposed -----------------------------------------------------------


def test_privileges_on_auth_users(db: Conn) -> None:
    quiet(db, "auth_users_exposed", "auth.users")
    db.execute("grant select (id, email) on auth.users to authenticated")
    f = fires(db, "auth_users_exposed", "auth.users")
    assert "authenticated" in f.detail and "SELECT" in f.detail
    db.execute("revoke select (id, email) on auth.users from authenticated")
    quiet(db, "auth_users_exposed", "auth.users")
    db.execute("grant update on auth.users to anon")
    fires(db, "auth_users_exposed", "auth.users")


def test_view_over_auth_users(db: Conn) -> None:
    db.execute(
        "create view public.chk_users with (security_invoker = true) as select id, email from auth.users"
    )
    quiet(db, "auth_users_exposed", "public.chk_users")  # nobody may read it
    db.execute("grant select on public.chk_users to anon")
    fires(db, "auth_users_exposed", "public.chk_users")
    db.execute("revoke select on public.chk_users from anon")
    quiet(db, "auth_users_exposed", "public.chk_users")


def test_view_over_a_view_over_auth_users(db: Conn) -> None:
    db.execute("create view private.chk_emails as select id, email from auth.users")
    db.execute(
        "create view public.chk_emails with (security_invoker = true) as select email from private.chk_emails"
    )
    db.execute("grant select on public.chk_emails to authenticated")
    fires(db, "auth_users_exposed", "public.chk_emails")


# -- 10. dead_policy -----------------------------------------------------------------


@pytest.fixture
def posts(db: Conn) -> str:
    db.execute("create table public.chk_posts (id int primary key, body text)")
    db.execute("alter table public.chk_posts enable row level security")
    return "public.chk_posts"


def test_policy_for_a_role_without_the_privilege(db: Conn, posts: str) -> None:
    db.execute(f"create policy chk_read on {posts} for select to anon using (true)")
    f = fires(db, "dead_policy", f"{posts}: chk_read", level="WARN")
    assert "anon" in f.detail and "SELECT" in f.detail
    db.execute(f"grant select on {posts} to anon")
    quiet(db, "dead_policy", f"{posts}: chk_read")


def test_policy_for_two_roles_reports_the_one_lacking(db: Conn, posts: str) -> None:
    db.execute(f"create policy chk_read on {posts} for select to anon, authenticated using (true)")
    db.execute(f"grant select on {posts} to authenticated")
    f = fires(db, "dead_policy", f"{posts}: chk_read", level="WARN")
    assert "anon" in f.detail and "authenticated" not in f.detail.split("holds")[0]


def test_public_policy_is_dead_only_if_no_api_role_holds_it(db: Conn, posts: str) -> None:
    db.execute(f"create policy chk_edit on {posts} for update using (true)")
    fires(db, "dead_policy", f"{posts}: chk_edit", level="WARN")
    db.execute(f"grant update (body) on {posts} to authenticated")  # a column grant is enough
    quiet(db, "dead_policy", f"{posts}: chk_edit")


def test_public_policy_outside_the_api_is_not_judged(db: Conn) -> None:
    db.execute("create table private.chk_internal (id int primary key)")
    db.execute("alter table private.chk_internal enable row level security")
    db.execute("create policy chk_p on private.chk_internal for select using (true)")
    quiet(db, "dead_policy", "private.chk_internal: chk_p")
    db.execute("create policy chk_anon on private.chk_internal for select to anon using (true)")
    fires(db, "dead_policy", "private.chk_internal: chk_anon", level="WARN")


def test_policy_for_all_needs_any_privilege(db: Conn, posts: str) -> None:
    db.execute(f"create policy chk_all on {posts} for all to authenticated using (true)")
    fires(db, "dead_policy", f"{posts}: chk_all", level="WARN")
    db.execute(f"grant delete on {posts} to authenticated")
    quiet(db, "dead_policy", f"{posts}: chk_all")


# -- 11. anon_write_without_policy -------------------------------------------------


def test_anon_write_grant_without_policy(db: Conn, posts: str) -> None:
    db.execute(f"grant select, insert on {posts} to anon")
    db.execute(f"create policy chk_read on {posts} for select to anon using (true)")
    f = fires(db, "anon_write_without_policy", posts)
    assert "INSERT" in f.detail
    db.execute(f"create policy chk_add on {posts} for insert to anon with check (true)")
    quiet(db, "anon_write_without_policy", posts)


def test_policy_for_all_to_public_covers_anon_writes(db: Conn, posts: str) -> None:
    db.execute(f"grant delete on {posts} to anon")
    fires(db, "anon_write_without_policy", posts)
    db.execute(f"create policy chk_all on {posts} for all using (true)")
    quiet(db, "anon_write_without_policy", posts)


def test_policy_for_authenticated_does_not_cover_anon(db: Conn, posts: str) -> None:
    db.execute(f"grant update on {posts} to anon")
    db.execute(f"create policy chk_edit on {posts} for update to authenticated using (true)")
    fires(db, "anon_write_without_policy", posts)


def test_legacy_default_privileges_are_reported_until_revoked(db: Conn) -> None:
    """`supabase start`'s default privileges grant a new table ALL; the idiom takes it back."""
    db.execute(
        "alter default privileges for role current_user in schema public"
        " grant all on tables to anon, authenticated, service_role"
    )
    db.execute("create table public.chk_legacy (id int primary key, owner uuid)")
    db.execute("alter table public.chk_legacy enable row level security")
    db.execute("create policy chk_read on public.chk_legacy for select to anon, authenticated using (true)")
    f = fires(db, "anon_write_without_policy", "public.chk_legacy")
    assert "INSERT" in f.detail or "UPDATE" in f.detail or "DELETE" in f.detail
    db.execute("revoke all on table public.chk_legacy from anon, authenticated, service_role")
    db.execute("grant select on table public.chk_legacy to anon, authenticated")
    quiet(db, "anon_write_without_policy", "public.chk_legacy")


# -- 12. optional WARN lints ---------------------------------------------------------


def test_extension_in_exposed_schema(db: Conn) -> None:
    row = db.execute(
        "select name from pg_available_extensions where installed_version is null"
        " and name in ('isn', 'seg', 'cube', 'ltree', 'hstore', 'fuzzystrmatch', 'tablefunc')"
        " order by name limit 1"
    ).fetchone()
    if row is None:
        pytest.skip("no spare contrib extension on this server")
    ext = str(row[0])
    db.execute(f'create extension "{ext}" with schema public')
    fires(db, "extension_in_exposed_schema", ext, level="WARN")
    db.execute(f'alter extension "{ext}" set schema private')
    quiet(db, "extension_in_exposed_schema", ext)


def test_multiple_permissive_policies(db: Conn, posts: str) -> None:
    db.execute(f"grant select on {posts} to authenticated")
    db.execute(f"create policy chk_a on {posts} for select to authenticated using (id > 0)")
    db.execute(f"create policy chk_b on {posts} for select using (id < 0)")  # PUBLIC counts
    f = fires(db, "multiple_permissive_policies", posts, level="WARN")
    assert "chk_a" in f.detail and "chk_b" in f.detail
    db.execute(f"drop policy chk_b on {posts}")
    quiet(db, "multiple_permissive_policies", posts)


def test_duplicate_index(db: Conn) -> None:
    db.execute("create table public.chk_dup (id int primary key, a int, b int)")
    db.execute("create index chk_dup_a1 on public.chk_dup (a)")
    db.execute("create index chk_dup_ab on public.chk_dup (a, b)")
    quiet(db, "duplicate_index", "public.chk_dup")
    db.execute("create index chk_dup_a2 on public.chk_dup (a)")
    f = fires(db, "duplicate_index", "public.chk_dup", level="WARN")
    assert "chk_dup_a1" in f.detail and "chk_dup_a2" in f.detail
    db.execute("drop index public.chk_dup_a2")
    quiet(db, "duplicate_index", "public.chk_dup")


def test_policy_on_table_without_rls(db: Conn) -> None:
    db.execute("create table private.chk_private (id int primary key)")
    db.execute("create policy chk_p on private.chk_private for select using (true)")
    fires(db, "policy_exists_rls_disabled", "private.chk_private", level="WARN")
    db.execute("alter table private.chk_private enable row level security")
    quiet(db, "policy_exists_rls_disabled", "private.chk_private")


def test_policy_trusting_user_metadata(db: Conn, posts: str) -> None:
    db.execute(
        f"create policy chk_admin on {posts} for select to authenticated"
        " using (((select auth.jwt()) -> 'user_metadata' ->> 'role') = 'admin')"
    )
    fires(db, "rls_references_user_metadata", f"{posts}: chk_admin", level="WARN")
    db.execute(f"drop policy chk_admin on {posts}")
    db.execute(
        f"create policy chk_admin on {posts} for select to authenticated"
        " using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin')"
    )
    quiet(db, "rls_references_user_metadata", f"{posts}: chk_admin")
