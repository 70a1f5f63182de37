-- materialized_view_in_api (WARN)
-- Detects materialized views in an exposed schema that anon or authenticated
-- may select from. A materialized view has no row level security at all:
-- whoever may select it sees every row it stored.
select
    'materialized_view_in_api' as name,
    'WARN' as level,
    n.nspname || '.' || c.relname as object,
    'Materialized view ' || n.nspname || '.' || c.relname
        || ' is readable through the Data API and has no row level security,'
        || ' so every row it holds is visible to ' || array_to_string(readers.roles, ' and ')
        || '.' as detail,
    'Move it to a non-exposed schema, or revoke select from anon and authenticated'
        || ' and serve it through a function that filters rows.' as remediation
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join lateral (
    select array_agg(r.rolname order by r.rolname) as roles
    from (values ('anon'), ('authenticated')) as r (rolname)
    where pg_catalog.has_any_column_privilege(r.rolname, c.oid, 'SELECT')
) as readers
where c.relkind = 'm'
    and n.nspname = any(%(exposed)s::text[])
    and readers.roles is not null
    and not exists (
        select 1 from pg_catalog.pg_depend d
        where d.classid = 'pg_catalog.pg_class'::regclass
            and d.objid = c.oid
            and d.deptype = 'e'
    )
