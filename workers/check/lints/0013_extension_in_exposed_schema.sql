-- extension_in_exposed_schema (WARN)
-- Detects extensions installed in an exposed schema (plpgsql excepted). Their
-- functions, types and tables then appear in the Data API next to ours and
-- may be callable by anon. Extensions belong in the extensions schema.
select
    'extension_in_exposed_schema' as name,
    'WARN' as level,
    e.extname as object,
    'Extension ' || e.extname || ' is installed in the exposed schema ' || n.nspname
        || ', so its functions and tables show up in the Data API.' as detail,
    'Install it with "create extension ' || e.extname
        || ' with schema extensions" (or "alter extension ' || e.extname
        || ' set schema extensions").' as remediation
from pg_catalog.pg_extension e
join pg_catalog.pg_namespace n on n.oid = e.extnamespace
where e.extname <> 'plpgsql'
    and n.nspname = any(%(exposed)s::text[])
