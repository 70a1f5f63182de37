-- anon_security_definer_function_executable (ERROR)
-- Detects SECURITY DEFINER functions in an exposed schema that anon may
-- execute (directly or through the default EXECUTE grant to PUBLIC). Anyone
-- holding the public anon key, signed in or not, can then run a privileged
-- operation through /rest/v1/rpc/<name>. Trigger functions and functions
-- owned by extensions are skipped.
select
    'anon_security_definer_function_executable' as name,
    'ERROR' as level,
    n.nspname || '.' || p.proname
        || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' as object,
    'Function ' || n.nspname || '.' || p.proname
        || ' is SECURITY DEFINER and executable by anon, so anyone with the public API key'
        || ' can call it without signing in and it bypasses row level security.' as detail,
    'Run "revoke execute on function ' || n.nspname || '.' || p.proname
        || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ') from public, anon"'
        || ' and grant it only to the roles that need it.' as remediation
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef
    and n.nspname = any(%(exposed)s::text[])
    and p.prorettype not in ('pg_catalog.trigger'::regtype, 'pg_catalog.event_trigger'::regtype)
    and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE')
    and not exists (
        select 1 from pg_catalog.pg_depend d
        where d.classid = 'pg_catalog.pg_proc'::regclass
            and d.objid = p.oid
            and d.deptype = 'e'
    )
