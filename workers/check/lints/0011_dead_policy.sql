-- dead_policy (WARN)
-- Detects policies for anon or authenticated (or for PUBLIC) whose command
-- the role holds no privilege for on the table, e.g. "for select to anon"
-- while anon has no SELECT. Privileges are checked before policies, so such a
-- policy never applies and the request fails with 42501 permission denied.
-- Hosted Supabase no longer grants new tables to the API roles, so a policy
-- without its GRANT is a common migration bug. A policy for PUBLIC is
-- reported only on tables the API serves (exposed schemas, storage,
-- realtime) and only when neither anon nor authenticated holds the
-- privilege; a policy for ALL only when the role holds none of the four.
-- Column grants count (a role with "grant update (title)" may update).
with policy as (
    select
        p.polname,
        p.polroles,
        c.oid as relid,
        n.nspname,
        c.relname,
        case p.polcmd
            when 'r' then array['SELECT']
            when 'a' then array['INSERT']
            when 'w' then array['UPDATE']
            when 'd' then array['DELETE']
            else array['SELECT', 'INSERT', 'UPDATE', 'DELETE']
        end as privs,
        case p.polcmd
            when 'r' then 'SELECT'
            when 'a' then 'INSERT'
            when 'w' then 'UPDATE'
            when 'd' then 'DELETE'
            else 'SELECT, INSERT, UPDATE or DELETE'
        end as command,
        p.polcmd = '*' as for_all,
        0::oid = any(p.polroles) as to_public,
        n.nspname = any(%(exposed)s::text[]) or n.nspname in ('storage', 'realtime') as served
    from pg_catalog.pg_policy p
    join pg_catalog.pg_class c on c.oid = p.polrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('storage', 'realtime')
        or (
            n.nspname <> all(%(platform)s::text[])
            and n.nspname !~ '^pg_'
            and n.nspname <> 'information_schema'
        )
),
target as (
    -- one row per (policy, API role it names), with whether that role holds the privilege
    select
        policy.*,
        r.rolname,
        exists (
            select 1 from pg_catalog.unnest(policy.privs) as pr (priv)
            where case pr.priv
                when 'DELETE' then pg_catalog.has_table_privilege(r.rolname, policy.relid, 'DELETE')
                else pg_catalog.has_any_column_privilege(r.rolname, policy.relid, pr.priv)
            end
        ) as held
    from policy
    join pg_catalog.pg_roles r
        on r.rolname in ('anon', 'authenticated')
        and ((policy.to_public and policy.served) or r.oid = any(policy.polroles))
)
select
    'dead_policy' as name,
    'WARN' as level,
    u.nspname || '.' || u.relname || ': ' || u.polname as object,
    'Policy "' || u.polname || '" on ' || u.nspname || '.' || u.relname
        || case
            when u.to_public then ' applies to everyone, but neither anon nor authenticated holds a '
            when u.n_lacking > 1 then ' applies to ' || u.lacking || ', which hold no '
            else ' applies to ' || u.lacking || ', which holds no '
        end
        || u.command || ' privilege on the table, so the policy never takes effect.' as detail,
    'Grant ' || case when u.for_all then 'the commands it is for' else u.command end
        || ' on ' || u.nspname || '.' || u.relname
        || ' to its roles in the same migration, or drop the policy.' as remediation
from (
    select
        target.nspname,
        target.relname,
        target.polname,
        target.command,
        target.for_all,
        target.to_public,
        pg_catalog.bool_or(target.held) as any_held,
        pg_catalog.string_agg(target.rolname, ' and ' order by target.rolname)
            filter (where not target.held) as lacking,
        pg_catalog.count(*) filter (where not target.held) as n_lacking
    from target
    group by
        target.nspname, target.relname, target.polname,
        target.command, target.for_all, target.to_public
) as u
where case when u.to_public then not u.any_held else u.n_lacking > 0 end
