-- multiple_permissive_policies (WARN)
-- Detects tables in our own schemas with more than one permissive policy for
-- the same API role (anon or authenticated, counting policies for PUBLIC and
-- for roles they belong to) and the same command. Postgres evaluates every
-- one of them for each row and ORs the results; one policy with the
-- conditions joined by "or" is faster and easier to review.
with policy_use as (
    select
        n.nspname,
        c.relname,
        r.rolname,
        cmd.priv,
        p.polname
    from pg_catalog.pg_policy p
    join pg_catalog.pg_class c on c.oid = p.polrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    cross join (values
        ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')
    ) as cmd (priv, polcmd)
    join pg_catalog.pg_roles r on r.rolname in ('anon', 'authenticated')
    where p.polpermissive
        and p.polcmd in (cmd.polcmd::"char", '*'::"char")
        and exists (
            select 1 from pg_catalog.unnest(p.polroles) as pr (roleid)
            where pr.roleid = 0 or pg_catalog.pg_has_role(r.oid, pr.roleid, 'MEMBER')
        )
        and n.nspname <> all(%(platform)s::text[])
        and n.nspname !~ '^pg_'
        and n.nspname <> 'information_schema'
)
select
    'multiple_permissive_policies' as name,
    'WARN' as level,
    policy_use.nspname || '.' || policy_use.relname as object,
    'Table ' || policy_use.nspname || '.' || policy_use.relname || ' has '
        || pg_catalog.count(*) || ' permissive policies for ' || policy_use.rolname || ' on '
        || policy_use.priv || ' ('
        || pg_catalog.string_agg('"' || policy_use.polname || '"', ', ' order by policy_use.polname)
        || '), and Postgres evaluates all of them for every row.' as detail,
    'Merge them into one policy per role and command, joining the conditions with "or".'
        as remediation
from policy_use
group by policy_use.nspname, policy_use.relname, policy_use.rolname, policy_use.priv
having pg_catalog.count(*) > 1
