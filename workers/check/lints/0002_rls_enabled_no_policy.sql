-- rls_enabled_no_policy (ERROR)
-- Detects tables in an exposed schema with row level security on, no policy
-- at all, and some privilege granted to anon or authenticated (directly, via
-- PUBLIC, or on a column). The grant says the table is meant to be reached
-- through the Data API, but with no policy every request sees nothing and
-- every write fails: a forgotten policy. Tables that grant nothing to anon and
-- authenticated are service-role only and need no policy, so they are skipped.
select
    'rls_enabled_no_policy' as name,
    'ERROR' as level,
    n.nspname || '.' || c.relname as object,
    'Table ' || n.nspname || '.' || c.relname
        || ' is granted to ' || array_to_string(granted.roles, ' and ')
        || ' and has row level security on but no policy, so every API request'
        || ' on it returns nothing or fails.' as detail,
    'Add the policies the granted roles need, or revoke all privileges from anon'
        || ' and authenticated if only the service role should use the table.' as remediation
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join lateral (
    select array_agg(r.rolname order by r.rolname) as roles
    from (values ('anon'), ('authenticated')) as r (rolname)
    where pg_catalog.has_table_privilege(
            r.rolname, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
        or pg_catalog.has_any_column_privilege(
            r.rolname, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
) as granted
where c.relkind in ('r', 'p')
    and n.nspname = any(%(exposed)s::text[])
    and c.relrowsecurity
    and granted.roles is not null
    and not exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid)
    and not exists (
        select 1 from pg_catalog.pg_depend d
        where d.classid = 'pg_catalog.pg_class'::regclass
            and d.objid = c.oid
            and d.deptype = 'e'
    )
