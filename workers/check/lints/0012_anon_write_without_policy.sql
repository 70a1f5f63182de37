-- anon_write_without_policy (ERROR)
-- Detects INSERT, UPDATE or DELETE granted to anon (on the table, on a
-- column, or through PUBLIC) on a table in an exposed schema where no
-- permissive policy lets anon do that command (a policy for anon, for a role
-- anon belongs to, or for PUBLIC, with that command or ALL). With row level
-- security off the grant lets anyone write every row; with it on the grant is
-- a stray write permission for unauthenticated callers that no rule uses.
select
    'anon_write_without_policy' as name,
    'ERROR' as level,
    n.nspname || '.' || c.relname as object,
    'Role anon (anyone with the public API key) holds ' || cmd.priv || ' on '
        || n.nspname || '.' || c.relname || ' but no policy allows anon to ' || cmd.verb
        || case when c.relrowsecurity then ', so the grant is a stray write permission.'
            else ' and row level security is off, so anyone can ' || cmd.verb || ' any row.'
        end as detail,
    'Run "revoke ' || pg_catalog.lower(cmd.priv) || ' on ' || n.nspname || '.' || c.relname
        || ' from anon" (and from public), or add a policy for anon that decides which rows it may '
        || cmd.verb || '.' as remediation
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join (values
    ('INSERT', 'a', 'insert'),
    ('UPDATE', 'w', 'update'),
    ('DELETE', 'd', 'delete')
) as cmd (priv, polcmd, verb)
where c.relkind in ('r', 'p')
    and n.nspname = any(%(exposed)s::text[])
    and case cmd.priv
        when 'DELETE' then pg_catalog.has_table_privilege('anon', c.oid, 'DELETE')
        else pg_catalog.has_any_column_privilege('anon', c.oid, cmd.priv)
    end
    and not exists (
        select 1 from pg_catalog.pg_policy p
        where p.polrelid = c.oid
            and p.polpermissive
            and p.polcmd in (cmd.polcmd::"char", '*'::"char")
            and exists (
                select 1 from pg_catalog.unnest(p.polroles) as pr (roleid)
                where pr.roleid = 0 or pg_catalog.pg_has_role('anon', pr.roleid, 'MEMBER')
            )
    )
    and not exists (
        select 1 from pg_catalog.pg_depend d
        where d.classid = 'pg_catalog.pg_class'::regclass
            and d.objid = c.oid
            and d.deptype = 'e'
    )
