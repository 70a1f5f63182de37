-- audit: the generated audit trigger costs less per audited row (issue #14:
-- "keep the write overhead under 15% on the library's push benchmark").
--
-- Redefines private.audit_trigger_body(regclass) (latest definition:
-- 20261207080000) and regenerates every audited table's function with it.
-- What is recorded does not change: table, row id, owner, actor id, actor
-- role, action and, for updates, the names of the changed columns; never a
-- value.
--
-- Why it is cheaper (bench/sync.py --audit-overhead, docs/benchmarks.md):
-- - the changed-column list, the actor id and the actor role are PL/pgSQL
--   assignments, not expressions inside the INSERT. An assignment without a
--   table is a "simple expression": compiled once per transaction and then
--   evaluated directly, whereas every expression in an INSERT's VALUES is
--   compiled again each time the statement runs, i.e. for every audited row
--   (the 16-column comparison of documents alone cost about 5 microseconds a
--   row that way);
-- - the actor role is the expression of private.audit_actor() written out:
--   that function has a SET clause, so it could not be inlined and every call
--   (one per row, also for the rows of an insert or delete statement) saved
--   and restored search_path. Same expression, same result: the trigger
--   function's SECURITY DEFINER does not change the 'role' setting;
-- - auth.uid() is called directly (the planner inlines it: the platform's own
--   expression, request.jwt.claim.sub first, then the claims' "sub") instead
--   of as a sub-select, once per trigger call; for inserts and deletes, once
--   per statement as before.

create or replace function private.audit_trigger_body(p_table regclass) returns text
language plpgsql stable set search_path = ''
as $$
declare
  v_name text;
  v_owner text;
  v_key text[];
  v_compare text;
begin
  select n.nspname || '.' || c.relname into v_name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = p_table;
  select a.attname::text into v_owner
    from pg_catalog.pg_constraint k
    join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
   where k.conrelid = p_table and k.contype = 'f' and k.confrelid = 'auth.users'::regclass
     and pg_catalog.array_length(k.conkey, 1) = 1
   order by a.attname not in ('owner_id', 'user_id', 'id'), a.attname
   limit 1;
  select pg_catalog.array_agg(a.attname::text order by x.ord) into v_key
    from pg_catalog.pg_index i
    cross join lateral unnest(i.indkey::int2[]) with ordinality as x(attnum, ord)
    join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = x.attnum
   where i.indrelid = p_table and i.indisprimary;
  if v_owner is null or v_key is null then
    return null;
  end if;
  -- Types without an equality operator (json, ...) are compared as text.
  select pg_catalog.string_agg(
           case when exists (select 1 from pg_catalog.pg_operator o
                              where o.oprname = '=' and o.oprleft = a.atttypid and o.oprright = a.atttypid)
                  or exists (select 1 from pg_catalog.pg_type t
                              join pg_catalog.pg_operator o on o.oprname = '=' and o.oprleft = t.typelem
                                                            and o.oprright = t.typelem
                              where t.oid = a.atttypid and t.typelem <> 0)
                then format('case when new.%1$I is distinct from old.%1$I then %1$L end', a.attname)
                else format('case when new.%1$I::text is distinct from old.%1$I::text then %1$L end', a.attname) end,
           ', ' order by a.attnum) into v_compare
    from pg_catalog.pg_attribute a
   where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped and a.attgenerated = '';
  return format($body$
declare
  -- assignments are simple expressions, compiled once per transaction (see
  -- migration 20261207110000); v_actor is private.audit_actor() written out
  v_actor_id uuid := auth.uid();
  v_actor text := coalesce(nullif(nullif(current_setting('role', true), 'none'), ''), session_user::text);
  v_columns text[];
begin
  if tg_op = 'UPDATE' then
    v_columns := array_remove(array[%4$s]::text[], null);
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action, columns)
    values (%1$L, %2$s, new.%3$I, v_actor_id, v_actor, 'update', v_columns);
  elsif tg_op = 'INSERT' then
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action)
    select %1$L, %5$s, n.%3$I, v_actor_id, v_actor, 'insert' from new_rows n;
  else
    -- an owner whose account is being erased (the cascade) is not recorded
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action)
    select %1$L, %6$s, u.id, v_actor_id, v_actor, 'delete'
      from old_rows o left join auth.users u on u.id = o.%3$I;
  end if;
  return null;
end;
$body$,
    v_name,
    (select pg_catalog.string_agg(format('new.%I::text', k), ' || ''/'' || ') from unnest(v_key) k),
    v_owner,
    v_compare,
    (select pg_catalog.string_agg(format('n.%I::text', k), ' || ''/'' || ') from unnest(v_key) k),
    (select pg_catalog.string_agg(format('o.%I::text', k), ' || ''/'' || ') from unnest(v_key) k));
end;
$$;

-- Regenerate every audited table's function (audit_attach keeps the triggers
-- it finds and adds no update trigger to an exempt table).
do $$
declare
  t regclass;
begin
  for t in
    select distinct tg.tgrelid::regclass
      from pg_catalog.pg_trigger tg
     where tg.tgname in ('audit_changes_after_insert', 'audit_changes_after_update', 'audit_changes_after_delete')
  loop
    perform private.audit_attach(t);
  end loop;
end;
$$;
