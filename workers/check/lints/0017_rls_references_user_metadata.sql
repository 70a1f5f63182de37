-- rls_references_user_metadata (WARN)
-- Detects policies (in our own schemas, storage and realtime) whose USING or
-- WITH CHECK expression mentions user_metadata or raw_user_meta_data.
-- Users edit their own user metadata (supabase.auth.updateUser({ data })),
-- so a rule like "auth.jwt() -> 'user_metadata' ->> 'role' = 'admin'" lets
-- anyone grant themselves access. Roles and plans belong in tables written by
-- SECURITY DEFINER functions, or in app_metadata. Text match, so a column of
-- ours with that name would also match; rename it rather than silence this.
select
    'rls_references_user_metadata' as name,
    'WARN' as level,
    n.nspname || '.' || c.relname || ': ' || p.polname as object,
    'Policy "' || p.polname || '" on ' || n.nspname || '.' || c.relname
        || ' reads user metadata, which every user can change for themselves,'
        || ' so it cannot be trusted to grant access.' as detail,
    'Base the policy on a table of roles written by a SECURITY DEFINER function'
        || ' (or on app_metadata), never on user_metadata.' as remediation
from pg_catalog.pg_policy p
join pg_catalog.pg_class c on c.oid = p.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where (
        n.nspname in ('storage', 'realtime')
        or (
            n.nspname <> all(%(platform)s::text[])
            and n.nspname !~ '^pg_'
            and n.nspname <> 'information_schema'
        )
    )
    and pg_catalog.concat_ws(
        ' ',
        pg_catalog.pg_get_expr(p.polqual, p.polrelid),
        pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
    ) ~* '(user_metadata|raw_user_meta_data)'
