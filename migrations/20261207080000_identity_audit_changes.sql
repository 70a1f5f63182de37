-- identity: an audit trail of every row change on user-owned tables.
-- Adds public.audit_changes (one row per inserted, updated or deleted row),
-- private.audit_settings (the retention), private.audit_actor(),
-- private.audit_trigger_body(regclass) and private.audit_attach(regclass)
-- (generate and attach one table's audit trigger function,
-- private.audit_<schema>_<table>()), private.audit_forget_user() (erasure),
-- private.cleanup_audit_changes() (retention), and attaches the triggers to
-- every table that has a foreign key to auth.users (the catalog rule of export
-- and erasure, workers/export/catalog.py).
--
-- Why (issue #14, collection tracker: "track all data access and
-- modifications"): audit_log holds about eight kinds of security events; a
-- user or an operator could not tell who changed a row and when. Now every
-- insert, update and delete on a user-owned table leaves: table, row id
-- (primary key as text), whose row it is (the table's owner column), the actor
-- (auth.uid() and the role: authenticated, anon, service_role, or the database
-- user of a worker/operator), the action and, for updates, the NAMES of the
-- changed columns. Never a value: no secret, ciphertext, body or file byte is
-- copied (values are compared inside the trigger and thrown away).
--
-- Cost: inserts and deletes are recorded by statement-level AFTER triggers
-- with transition tables (one INSERT ... SELECT per statement, however many
-- rows: a 10,000-document import is one), updates by a row-level AFTER
-- trigger with one INSERT ... VALUES: updates come one row per statement
-- (PATCH, sync_push, counters), where a row trigger costs less than pairing
-- the old and new transition rows by key (measured: about 80 versus 100
-- microseconds per audited update). The function is generated once per table
-- when it is attached, as static SQL naming the table's key, owner and columns
-- (`new.title is distinct from old.title`, ...): no dynamic SQL at run time and
-- no row-to-jsonb conversion, which measured twice as costly. The price: a
-- column added later is compared only once the table is attached again
-- (`select private.audit_attach('public.x')` in the migration that adds it);
-- tests/audit/test_audit.py::test_every_owned_table_is_audited fails until
-- then, as it does for a new owned table without the triggers.
-- Generated columns (documents.search) are derived, not changed by anyone,
-- and are not compared.
--
-- No foreign keys on audit_changes: rows must outlive the rows and accounts
-- they describe, an FK check per audited row would cost a lookup on every
-- write, and rows written while an account's data cascades away would violate
-- it. Erasure instead clears the account's id (user_id and actor_id set to
-- null) through a trigger on auth.users, and deletes written by that cascade
-- are recorded without an owner.
-- Not audited (see the triggers section): audit_log and sync_receipts.
-- Row caps: none; only the database writes here (triggers), bounded by the
-- writes of the audited tables, which are capped, and by the retention.

-- == tables ==
create table public.audit_changes (
  id bigint generated always as identity primary key,
  table_name text not null,
  row_id text,
  user_id uuid,
  actor_id uuid,
  actor text not null,
  action text not null constraint audit_changes_action_valid check (action in ('insert', 'update', 'delete')),
  columns text[],
  created_at timestamptz not null default now()
);
create index audit_changes_user_id_idx on public.audit_changes (user_id, id desc);

create table private.audit_settings (
  id boolean primary key default true constraint audit_settings_single_row check (id),
  retention_days integer not null default 365
    constraint audit_settings_retention_days_range check (retention_days between 1 and 36500),
  updated_at timestamptz not null default now()
);
insert into private.audit_settings (id) values (true);

-- == functions (schema private: not exposed) ==

-- Who is acting: the API role of the request (PostgREST's SET ROLE, unchanged
-- inside security definer functions) or, outside the API, the database user
-- (a worker, the CLI, a migration).
create function private.audit_actor() returns text
language sql stable set search_path = ''
as $$ select coalesce(nullif(nullif(current_setting('role', true), 'none'), ''), session_user::text) $$;
revoke execute on function private.audit_actor() from public, anon, authenticated, service_role;

-- The body of one table's audit trigger function: static SQL naming the
-- table's key, owner column and columns. The owner column is the table's
-- foreign key to auth.users (owner_id, user_id or id first, else the first by
-- name); the key is the primary key. Null when the table has neither.
create function private.audit_trigger_body(p_table regclass) returns text
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
begin
  if tg_op = 'UPDATE' then
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action, columns)
    values (%1$L, %2$s, new.%3$I, (select auth.uid()), private.audit_actor(), 'update',
            array_remove(array[%4$s]::text[], null));
  elsif tg_op = 'INSERT' then
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action)
    select %1$L, %5$s, n.%3$I, (select auth.uid()), private.audit_actor(), 'insert' from new_rows n;
  else
    -- an owner whose account is being erased (the cascade) is not recorded
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action)
    select %1$L, %6$s, u.id, (select auth.uid()), private.audit_actor(), 'delete'
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
revoke execute on function private.audit_trigger_body(regclass) from public, anon, authenticated, service_role;

-- (Re)generate a table's audit function private.audit_<schema>_<table>() and
-- attach its three triggers (migrations only; again after adding columns).
create function private.audit_attach(p_table regclass) returns void
language plpgsql set search_path = ''
as $$
declare
  v_body text := private.audit_trigger_body(p_table);
  v_function text;
  v_event text;
begin
  if v_body is null then
    raise exception 'audit_attach: % needs a primary key and a foreign key to auth.users', p_table
      using errcode = '22023';
  end if;
  select format('audit_%s_%s', n.nspname, c.relname) into v_function
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = p_table;
  execute format('create or replace function private.%I() returns trigger'
                 ' language plpgsql security definer set search_path = %L as %L',
                 v_function, '', v_body);
  execute format('revoke execute on function private.%I() from public, anon, authenticated, service_role',
                 v_function);
  execute format('comment on function private.%I() is %L', v_function,
                 'Audit trigger of ' || p_table::text || ' (generated by private.audit_attach).');
  foreach v_event in array array['insert', 'update', 'delete'] loop
    if not exists (select 1 from pg_catalog.pg_trigger t
                    where t.tgrelid = p_table and t.tgname = 'audit_changes_after_' || v_event) then
      execute format(
        'create trigger %I after %s on %s %s execute function private.%I()',
        'audit_changes_after_' || v_event, v_event, p_table,
        case v_event when 'insert' then 'referencing new table as new_rows for each statement'
                     when 'update' then 'for each row'
                     else 'referencing old table as old_rows for each statement' end,
        v_function);
    end if;
  end loop;
end;
$$;
revoke execute on function private.audit_attach(regclass) from public, anon, authenticated, service_role;

-- Erasure: an erased account's id leaves its trail (the entries stay,
-- unattributed), through the user_id index. Changes the account made to other
-- users' rows keep its id in actor_id (readable by operators only, naming an
-- account that no longer exists) until the retention removes them: finding
-- them would need an actor_id index, a cost on every audited write.
create function private.audit_forget_user() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update public.audit_changes
     set user_id = null, actor_id = case when actor_id = old.id then null else actor_id end
   where user_id = old.id;
  return null;
end;
$$;
revoke execute on function private.audit_forget_user() from public, anon, authenticated, service_role;

create trigger audit_forget_user after delete on auth.users
  for each row execute function private.audit_forget_user();

-- Retention: entries older than audit_settings.retention_days, oldest first.
create function private.cleanup_audit_changes(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql security definer set search_path = ''
as $$
declare
  v_cutoff timestamptz;
begin
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'batch size must be positive' using errcode = '22023';
  end if;
  select now() - make_interval(days => s.retention_days) into v_cutoff from private.audit_settings s;
  if p_dry_run then
    return query
      select format('audit change %s (%s %s, %s)', a.id, a.action, a.table_name, a.created_at)
        from public.audit_changes a where a.created_at < v_cutoff order by a.id limit p_batch_size;
    return;
  end if;
  return query
    with victims as (
      select a.id from public.audit_changes a where a.created_at < v_cutoff order by a.id
       limit p_batch_size for update skip locked
    ), gone as (
      delete from public.audit_changes a using victims v where a.id = v.id
      returning a.id, a.action, a.table_name, a.created_at
    )
    select format('audit change %s (%s %s, %s)', g.id, g.action, g.table_name, g.created_at) from gone g;
end;
$$;
revoke execute on function private.cleanup_audit_changes(integer, boolean) from public, anon, authenticated, service_role;
grant execute on function private.cleanup_audit_changes(integer, boolean) to service_role;

-- == triggers: every table with a foreign key to auth.users, except two ==
-- Not audited: public.audit_log (itself an audit record) and
-- public.sync_receipts (sync_push's idempotency ledger: one row per pushed
-- change id holding the result already returned to the client, written only
-- by sync_push in one statement per push; the change itself is recorded on
-- the documents row it touched, so a receipt entry would say nothing new and
-- would add a tenth to every push's cost).
do $$
declare
  t regclass;
begin
  for t in
    select distinct k.conrelid::regclass
      from pg_catalog.pg_constraint k
      join pg_catalog.pg_class c on c.oid = k.conrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where k.contype = 'f' and k.confrelid = 'auth.users'::regclass
       and pg_catalog.array_length(k.conkey, 1) = 1
       and n.nspname <> 'auth' and c.relkind = 'r'
       and k.conrelid not in ('public.audit_log'::regclass, 'public.sync_receipts'::regclass)
  loop
    perform private.audit_attach(t);
  end loop;
end;
$$;

-- == grants and row level security ==
revoke all on table public.audit_changes from anon, authenticated, service_role;
grant select (id, table_name, row_id, user_id, actor, action, columns, created_at)
  on public.audit_changes to authenticated;
grant select on public.audit_changes to service_role;
revoke all on sequence public.audit_changes_id_seq from anon, authenticated, service_role;
alter table public.audit_changes enable row level security;

-- Only user_id: an index on actor_id too would cost every audited write
-- (docs/audit.md); a change made to another user's row is in that user's trail.
create policy "users read the changes of their own rows" on public.audit_changes
  for select to authenticated using (user_id = (select auth.uid()));

revoke all on table private.audit_settings from anon, authenticated, service_role;
grant select, update (retention_days, updated_at) on private.audit_settings to service_role;

-- == comments ==
comment on table public.audit_changes is
  'Every insert, update and delete on user-owned tables (generated triggers, private.audit_attach): which row, '
  'whose, by whom, which columns. Never values. Users read the changes of their own rows; '
  'operators read all (service role, backline audit list). Deleted after private.audit_settings.retention_days.';
comment on column public.audit_changes.id is 'Increasing entry number (newest last).';
comment on column public.audit_changes.created_at is 'When the change was made (the transaction''s time).';
comment on column public.audit_changes.table_name is 'schema.table of the changed row.';
comment on column public.audit_changes.row_id is 'The row''s primary key as text (composite keys joined by /).';
comment on column public.audit_changes.user_id is
  'Whose row: the table''s owner column (owner_id, user_id, ...). Null when the account was erased.';
comment on column public.audit_changes.actor_id is
  'auth.uid() of the request that made the change (null for workers and operators). '
  'Not readable by users: another user''s id is never disclosed.';
comment on column public.audit_changes.actor is
  'The role that made the change: authenticated, anon, service_role, or the database user (postgres, ...).';
comment on column public.audit_changes.action is 'insert, update or delete.';
comment on column public.audit_changes.columns is 'update: the names of the columns whose value changed.';
comment on table private.audit_settings is 'One row: retention_days of public.audit_changes.';
comment on function private.audit_trigger_body(regclass) is
  'The generated body of a table''s audit trigger function (static SQL; null without key or owner).';
comment on function private.audit_attach(regclass) is
  'Generate a table''s audit trigger function and attach its triggers (migrations; again after adding columns).';
comment on function private.cleanup_audit_changes(integer, boolean) is
  'Audit changes older than private.audit_settings.retention_days (default 365).';
