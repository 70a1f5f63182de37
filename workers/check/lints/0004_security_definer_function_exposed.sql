-- security_definer_function_exposed (ERROR)
-- Detects SECURITY DEFINER functions in an exposed schema. The Data API
-- publishes every function there as /rest/v1/rpc/<name>, and a definer
-- function bypasses row level security on everything it touches. Our rule:
-- definer helpers live in a non-exposed schema (private) and exposed RPCs are
-- SECURITY INVOKER wrappers. Trigger functions are skipped (they cannot be
-- called directly), as are functions owned by extensions.
select
    'security_definer_function_exposed' as name,
    'ERROR' as level,
    n.nspname || '.' || p.proname
        || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' as object,
    'Function ' || n.nspname || '.' || p.proname
        || ' is SECURITY DEFINER in a schema the Data API exposes, so it can be called'
        || ' as an RPC and bypasses row level security on every table it touches.' as detail,
    'Move it to the private schema (and call it from a SECURITY INVOKER function'
        || ' if clients need it), or make it SECURITY INVOKER.' as remediation
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef
    and n.nspname = any(%(exposed)s::text[])
    and p.prorettype not in ('pg_catalog.trigger'::regtype, 'pg_catalog.event_trigger'::regtype)
    and not exists (
        select 1 from pg_catalog.pg_depend d
        where d.classid = 'pg_catalog.pg_proc'::regclass
            and d.objid = p.oid
            and d.deptype = 'e'
    )
