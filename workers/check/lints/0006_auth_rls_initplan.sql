-- auth_rls_initplan (ERROR)
-- Detects policies whose USING or WITH CHECK expression calls auth.uid(),
-- auth.jwt(), auth.role(), auth.email() or current_setting(...) directly
-- instead of as "(select auth.uid())". A bare call is evaluated once per row;
-- wrapped in a scalar subquery Postgres evaluates it once per statement (an
-- initplan), which is orders of magnitude faster on large tables.
-- Scope: policies in our own schemas plus storage and realtime, where our
-- migrations add policies on storage.objects and realtime.messages.
-- The expressions are read with pg_get_expr, which qualifies names according
-- to search_path: the runner sets search_path to '' so auth.* calls always
-- print as "auth.uid()" and a wrapped call prints as "( SELECT auth.uid() ...".
with policy as (
    select
        n.nspname,
        c.relname,
        p.polname,
        pg_catalog.concat_ws(
            ' ',
            pg_catalog.pg_get_expr(p.polqual, p.polrelid),
            pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
        ) as expr
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
bare as (
    -- drop every wrapped call; whatever call remains is evaluated per row
    select
        policy.*,
        pg_catalog.regexp_replace(
            policy.expr,
            'select\s+\(*\s*(auth\.(uid|jwt|role|email)\(\)|current_setting\()',
            'select ',
            'gi'
        ) as unwrapped
    from policy
)
select
    'auth_rls_initplan' as name,
    'ERROR' as level,
    bare.nspname || '.' || bare.relname || ': ' || bare.polname as object,
    'Policy "' || bare.polname || '" on ' || bare.nspname || '.' || bare.relname
        || ' calls ' || calls.names
        || ' without wrapping it in a subquery, so Postgres evaluates it again for every row.' as detail,
    'Wrap each call in a subquery, e.g. "(select auth.uid())" instead of "auth.uid()",'
        || ' so it runs once per query.' as remediation
from bare
cross join lateral (
    select pg_catalog.string_agg(distinct
        case when m.call[1] ~* '^current_setting' then 'current_setting(...)' else m.call[1] end,
        ' and ') as names
    from pg_catalog.regexp_matches(
        bare.unwrapped, '(\mauth\.(?:uid|jwt|role|email)\(\)|\mcurrent_setting\()', 'gi'
    ) as m (call)
) as calls
where calls.names is not null
