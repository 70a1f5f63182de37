-- auth_users_exposed (ERROR)
-- Detects two ways auth.users (emails, phone numbers, metadata of every
-- user) leaks to API roles:
-- 1. anon or authenticated hold any privilege on auth.users, on the table or
--    on one of its columns (directly or through PUBLIC);
-- 2. a view or materialized view in an exposed schema reads auth.users,
--    directly or through other views, and anon or authenticated may select it.
-- Keep what the app may show in public.profiles instead.
with recursive reader (oid) as (
    -- views whose rewrite rule references auth.users
    select r.ev_class
    from pg_catalog.pg_depend d
    join pg_catalog.pg_rewrite r on r.oid = d.objid
    where d.classid = 'pg_catalog.pg_rewrite'::regclass
        and d.refclassid = 'pg_catalog.pg_class'::regclass
        and d.refobjid = pg_catalog.to_regclass('auth.users')
    union
    -- and views built on those views
    select r.ev_class
    from reader
    join pg_catalog.pg_depend d
        on d.refobjid = reader.oid
        and d.refclassid = 'pg_catalog.pg_class'::regclass
        and d.classid = 'pg_catalog.pg_rewrite'::regclass
    join pg_catalog.pg_rewrite r on r.oid = d.objid
    where r.ev_class <> reader.oid
)
select
    'auth_users_exposed' as name,
    'ERROR' as level,
    'auth.users' as object,
    'Role ' || r.rolname || ' holds ' || privs.names
        || ' on auth.users, which exposes every user''s email, phone and metadata'
        || ' through the API.' as detail,
    'Run "revoke all on auth.users from ' || r.rolname
        || '" (and any column grants) and expose what the app needs through public.profiles.' as remediation
from (values ('anon'), ('authenticated')) as r (rolname)
cross join lateral (
    select pg_catalog.string_agg(p.priv, ', ' order by p.ord) as names
    from (values
        ('SELECT', 1), ('INSERT', 2), ('UPDATE', 3), ('DELETE', 4),
        ('TRUNCATE', 5), ('REFERENCES', 6), ('TRIGGER', 7)
    ) as p (priv, ord)
    where pg_catalog.to_regclass('auth.users') is not null
        and (
            pg_catalog.has_table_privilege(r.rolname, pg_catalog.to_regclass('auth.users'), p.priv)
            or (
                p.priv in ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                and pg_catalog.has_any_column_privilege(
                    r.rolname, pg_catalog.to_regclass('auth.users'), p.priv)
            )
        )
) as privs
where privs.names is not null
union all
select
    'auth_users_exposed' as name,
    'ERROR' as level,
    n.nspname || '.' || c.relname as object,
    case c.relkind when 'm' then 'Materialized view ' else 'View ' end
        || n.nspname || '.' || c.relname
        || ' reads auth.users and is selectable by ' || array_to_string(readers.roles, ' and ')
        || ', which can expose every user''s email, phone and metadata.' as detail,
    'Revoke select on it from anon and authenticated, or move it out of the exposed'
        || ' schema and read public.profiles instead of auth.users.' as remediation
from reader
join pg_catalog.pg_class c on c.oid = reader.oid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join lateral (
    select array_agg(ro.rolname order by ro.rolname) as roles
    from (values ('anon'), ('authenticated')) as ro (rolname)
    where pg_catalog.has_any_column_privilege(ro.rolname, c.oid, 'SELECT')
) as readers
where c.relkind in ('v', 'm')
    and n.nspname = any(%(exposed)s::text[])
    and readers.roles is not null
