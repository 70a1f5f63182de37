-- security_definer_search_path_mutable (ERROR)
-- Detects SECURITY DEFINER functions in our own schemas (not the platform
-- schemas, not pg_*, not owned by an extension) that do not pin search_path
-- with "set search_path = ...". Such a function runs with its owner's rights
-- but resolves unqualified names through the caller's search_path, so a caller
-- who can create objects in a schema on that path can make it run their code.
select
    'security_definer_search_path_mutable' as name,
    'ERROR' as level,
    n.nspname || '.' || p.proname
        || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' as object,
    'Function ' || n.nspname || '.' || p.proname
        || ' runs with its owner''s rights (SECURITY DEFINER) but takes its search_path'
        || ' from the caller, who could redirect the names it uses to their own objects.' as detail,
    'Add "set search_path = ''''" to the function and schema-qualify every name'
        || ' in its body (public.table, auth.uid()).' as remediation
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef
    and n.nspname <> all(%(platform)s::text[])
    and n.nspname !~ '^pg_'
    and n.nspname <> 'information_schema'
    and not exists (
        select 1 from pg_catalog.unnest(p.proconfig) as cfg (setting)
        where pg_catalog.starts_with(cfg.setting, 'search_path=')
    )
    and not exists (
        select 1 from pg_catalog.pg_depend d
        where d.classid = 'pg_catalog.pg_proc'::regclass
            and d.objid = p.oid
            and d.deptype = 'e'
    )
