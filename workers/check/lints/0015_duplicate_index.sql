-- duplicate_index (WARN)
-- Detects tables in our own schemas with two or more indexes over the same
-- columns or expressions, with the same access method, operator classes and
-- predicate. Every copy slows each write and takes space; one is enough
-- (keep the one backing a primary key or unique constraint).
select
    'duplicate_index' as name,
    'WARN' as level,
    n.nspname || '.' || c.relname as object,
    'Table ' || n.nspname || '.' || c.relname || ' has identical indexes '
        || pg_catalog.string_agg(ic.relname, ', ' order by ic.relname)
        || ', which slow every write and add nothing.' as detail,
    'Drop all but one of them (keep the one that backs a constraint).' as remediation
from pg_catalog.pg_index i
join pg_catalog.pg_class ic on ic.oid = i.indexrelid
join pg_catalog.pg_class c on c.oid = i.indrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname <> all(%(platform)s::text[])
    and n.nspname !~ '^pg_'
    and n.nspname <> 'information_schema'
    and i.indisvalid
group by
    n.nspname,
    c.relname,
    i.indrelid,
    ic.relam,
    i.indkey::text,
    i.indnkeyatts,
    i.indclass::text,
    i.indcollation::text,
    i.indoption::text,
    pg_catalog.pg_get_expr(i.indexprs, i.indrelid),
    pg_catalog.pg_get_expr(i.indpred, i.indrelid)
having pg_catalog.count(*) > 1
