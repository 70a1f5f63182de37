-- unindexed_foreign_keys (ERROR)
-- Detects foreign keys in our own schemas without a covering index: a valid
-- index on the referencing table whose leading columns are exactly the
-- foreign key's columns (in any order). Without one, every delete or key
-- update on the referenced table scans the whole referencing table, and
-- policies or joins filtering on the column (room_id, owner_id ...) scan too.
with fk as (
    select
        con.conname,
        con.conrelid,
        con.conkey,
        n.nspname,
        c.relname
    from pg_catalog.pg_constraint con
    join pg_catalog.pg_class c on c.oid = con.conrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where con.contype = 'f'
        and n.nspname <> all(%(platform)s::text[])
        and n.nspname !~ '^pg_'
        and n.nspname <> 'information_schema'
        and not exists (
            select 1 from pg_catalog.pg_depend d
            where d.classid = 'pg_catalog.pg_class'::regclass
                and d.objid = c.oid
                and d.deptype = 'e'
        )
)
select
    'unindexed_foreign_keys' as name,
    'ERROR' as level,
    fk.nspname || '.' || fk.relname || ': ' || fk.conname as object,
    'Foreign key ' || fk.conname || ' on ' || fk.nspname || '.' || fk.relname
        || ' (' || cols.names || ') has no index starting with those columns, so lookups'
        || ' and deletes through it scan the whole table.' as detail,
    'Add "create index on ' || fk.nspname || '.' || fk.relname || ' (' || cols.names
        || ')" in the same migration.' as remediation
from fk
cross join lateral (
    select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by k.ord) as names
    from pg_catalog.unnest(fk.conkey) with ordinality as k (attnum, ord)
    join pg_catalog.pg_attribute a on a.attrelid = fk.conrelid and a.attnum = k.attnum
) as cols
where not exists (
    select 1
    from pg_catalog.pg_index i
    cross join lateral (
        select pg_catalog.array_agg(ik.attnum) as attnums
        from pg_catalog.unnest(i.indkey) with ordinality as ik (attnum, ord)
        where ik.ord <= pg_catalog.cardinality(fk.conkey)
    ) as lead
    where i.indrelid = fk.conrelid
        and i.indisvalid
        and i.indnkeyatts >= pg_catalog.cardinality(fk.conkey)
        and lead.attnums @> fk.conkey
        and lead.attnums <@ fk.conkey
)
