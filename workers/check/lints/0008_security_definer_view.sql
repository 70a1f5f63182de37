-- security_definer_view (ERROR)
-- Detects views in an exposed schema that are not "security_invoker = true".
-- Such a view reads its tables with the rights of the view's owner (usually
-- postgres), so row level security of the underlying tables is skipped and
-- anyone allowed to select from the view sees every row. Views owned by
-- extensions are skipped.
select
    'security_definer_view' as name,
    'ERROR' as level,
    n.nspname || '.' || c.relname as object,
    'View ' || n.nspname || '.' || c.relname
        || ' reads its tables with its owner''s rights, so it bypasses their row level'
        || ' security and shows every row to anyone who may select from it.' as detail,
    'Recreate it "with (security_invoker = true)" or run "alter view '
        || n.nspname || '.' || c.relname || ' set (security_invoker = true)".' as remediation
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'v'
    and n.nspname = any(%(exposed)s::text[])
    and not exists (
        select 1 from pg_catalog.unnest(c.reloptions) as opt (setting)
        where opt.setting ~* '^security_invoker=(1|on|t|tr|tru|true|y|ye|yes)$'
    )
    and not exists (
        select 1 from pg_catalog.pg_depend d
        where d.classid = 'pg_catalog.pg_class'::regclass
            and d.objid = c.oid
            and d.deptype = 'e'
    )
