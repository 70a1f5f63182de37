-- realtime_key_reveals_hidden_rows (ERROR)
-- Detects tables in the supabase_realtime publication (when it publishes
-- deletes) whose DELETE events could tell a subscriber what RLS hides.
-- Realtime sends a table's DELETE events to every subscriber of the table
-- without checking RLS, carrying the old row's replica-identity key: the
-- primary key (REPLICA IDENTITY DEFAULT), the chosen index (USING INDEX), or
-- every column (FULL). So the key must be a surrogate: every key column a
-- uuid that the database generates at random (its default calls
-- gen_random_uuid() or uuid_generate_v4()) and that is part of no foreign key.
-- A composite (room_id, user_id), an owner id, a bigint sequence or a natural
-- key all tell strangers whose rows changed, or how many there are.
-- REPLICA IDENTITY NOTHING (or DEFAULT without a primary key) sends no key.
with published as (
    select distinct c.oid, n.nspname, c.relname, c.relreplident
    from pg_catalog.pg_publication p
    join pg_catalog.pg_publication_tables pt on pt.pubname = p.pubname
    join pg_catalog.pg_namespace n on n.nspname = pt.schemaname
    join pg_catalog.pg_class c on c.relnamespace = n.oid and c.relname = pt.tablename
    where p.pubname = 'supabase_realtime'
        and p.pubdelete
),
key_columns as (
    select pub.oid, a.attname, a.atttypid, a.attnum
    from published pub
    join pg_catalog.pg_index i on i.indrelid = pub.oid
        and (
            (pub.relreplident = 'd' and i.indisprimary)
            or (pub.relreplident = 'i' and i.indisreplident)
        )
    cross join lateral pg_catalog.unnest(i.indkey::pg_catalog.int2[]) with ordinality as k (attnum, ord)
    join pg_catalog.pg_attribute a on a.attrelid = pub.oid and a.attnum = k.attnum
    where k.ord <= i.indnkeyatts
),
bad_columns as (
    select
        kc.oid,
        kc.attnum,
        pg_catalog.quote_ident(kc.attname) || ' (' || pg_catalog.concat_ws(', ',
            case when kc.atttypid <> 'pg_catalog.uuid'::pg_catalog.regtype
                then pg_catalog.format_type(kc.atttypid, null) || ', not uuid' end,
            case when fk.conname is not null then 'in foreign key ' || fk.conname end,
            case when kc.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype and not coalesce(
                    pg_catalog.pg_get_expr(d.adbin, d.adrelid) ~ '(gen_random_uuid|uuid_generate_v4)\(', false)
                then 'no random default' end
        ) || ')' as why
    from key_columns kc
    left join pg_catalog.pg_attrdef d on d.adrelid = kc.oid and d.adnum = kc.attnum
    left join lateral (
        select pg_catalog.min(con.conname::text) as conname
        from pg_catalog.pg_constraint con
        where con.conrelid = kc.oid and con.contype = 'f' and kc.attnum = any(con.conkey)
    ) as fk on true
    where kc.atttypid <> 'pg_catalog.uuid'::pg_catalog.regtype
        or fk.conname is not null
        or not coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid) ~ '(gen_random_uuid|uuid_generate_v4)\(', false)
),
findings as (
    select pub.nspname, pub.relname,
        'its replica identity is FULL: every column of a deleted row' as what
    from published pub
    where pub.relreplident = 'f'
    union all
    select pub.nspname, pub.relname,
        'its replica-identity key has ' || pg_catalog.string_agg(b.why, ', ' order by b.attnum) as what
    from published pub
    join bad_columns b on b.oid = pub.oid
    where pub.relreplident in ('d', 'i')
    group by pub.nspname, pub.relname
)
select
    'realtime_key_reveals_hidden_rows' as name,
    'ERROR' as level,
    f.nspname || '.' || f.relname as object,
    'Table ' || f.nspname || '.' || f.relname || ' is in the supabase_realtime publication and '
        || f.what || '. Realtime sends DELETE events to every subscriber without RLS, with that key,'
        || ' so strangers learn about rows they cannot read.' as detail,
    'Give the table a surrogate key (id uuid not null default gen_random_uuid(), no foreign key) and make'
        || ' it the primary key or "alter table ' || f.nspname || '.' || f.relname
        || ' replica identity using index <its unique index>"; or remove the table from the publication.'
        as remediation
from findings f
