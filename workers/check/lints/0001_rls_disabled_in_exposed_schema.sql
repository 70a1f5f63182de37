-- rls_disabled_in_exposed_schema (ERROR)
-- Detects tables in an exposed schema (reachable through the Data API) whose
-- row level security is off. Without RLS every privilege granted to anon or
-- authenticated applies to every row: anyone holding the public anon key can
-- read or change all of it. Tables owned by extensions are skipped.
select
    'rls_disabled_in_exposed_schema' as name,
    'ERROR' as level,
    n.nspname || '.' || c.relname as object,
    'Table ' || n.nspname || '.' || c.relname
        || ' is reachable through the Data API but row level security is off,'
        || ' so every row is open to whatever anon and authenticated were granted.' as detail,
    'Run "alter table ' || n.nspname || '.' || c.relname
        || ' enable row level security" and add policies for the access the app needs.' as remediation
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p')
    and n.nspname = any(%(exposed)s::text[])
    and not c.relrowsecurity
    and not exists (
        select 1 from pg_catalog.pg_depend d
        where d.classid = 'pg_catalog.pg_class'::regclass
            and d.objid = c.oid
            and d.deptype = 'e'
    )
