-- policy_exists_rls_disabled (WARN)
-- Detects tables in our own schemas that have policies while row level
-- security is off. The policies do nothing until RLS is enabled, which is
-- almost always a forgotten "enable row level security". (In an exposed
-- schema rls_disabled_in_exposed_schema also reports the table as an ERROR.)
select
    'policy_exists_rls_disabled' as name,
    'WARN' as level,
    n.nspname || '.' || c.relname as object,
    'Table ' || n.nspname || '.' || c.relname || ' has policies ('
        || pg_catalog.string_agg('"' || p.polname || '"', ', ' order by p.polname)
        || ') but row level security is off, so none of them is enforced.' as detail,
    'Run "alter table ' || n.nspname || '.' || c.relname
        || ' enable row level security" in the migration that adds the policies.' as remediation
from pg_catalog.pg_policy p
join pg_catalog.pg_class c on c.oid = p.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where not c.relrowsecurity
    and n.nspname <> all(%(platform)s::text[])
    and n.nspname !~ '^pg_'
    and n.nspname <> 'information_schema'
group by n.nspname, c.relname
