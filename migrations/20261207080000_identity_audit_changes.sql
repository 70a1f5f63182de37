-- identity: an audit trail of every row change on user-owned tables.
-- Adds public.audit_changes (one row per inserted, updated or deleted row),
-- private.audit_settings (the retention), private.audit_actor(),
-- private.audit_row_id(), the trigger function private.audit_row_changes(),
-- private.audit_attach(regclass) (attaches it to one table),
-- private.audit_forget_user() (erasure), private.cleanup_audit_changes()
-- (retention), and attaches the trigger to every table that has a foreign key
-- to auth.users (the catalog rule of export and erasure, workers/export/catalog.py).
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
-- Cost: one statement-level AFTER trigger per event with transition tables
-- (one INSERT ... SELECT per statement, no per-row trigger call, no dynamic
-- SQL at run time: the owner and key column names are trigger arguments fixed
-- when the trigger is attached). Measured with bench/sync.py --no-audit
-- against the default run (docs/benchmarks.md).
--
-- No foreign keys on audit_changes: rows must outlive the rows and accounts
-- they describe, an FK check per audited row would cost a lookup on every
-- write, and rows written while an account's data cascades away would violate
-- it. Erasure instead clears the account's id (user_id and actor_id set to
-- null) through a trigger on auth.users, and deletes written by that cascade
-- are recorded without an owner.
-- Row caps: none; only the database writes here (triggers), bounded by the
-- writes of the audited tables, which are capped, and by the retention.
-- A new owned table gets the trigger with `select private.audit_attach('public.x')`
-- in its migration; tests/audit/test_audit_guard.py fails until it has.

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
create index audit_changes_actor_id_idx on public.audit_changes (actor_id, id desc) where actor_id is not null;
create index audit_changes_table_name_idx on public.audit_changes (table_name, id desc);

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

-- A row's key as text: the value of the key column, or of the comma-separated
-- key columns joined by '/'.
create function private.audit_row_id(p_row jsonb, p_key text) returns text
language sql immutable set search_path = ''
as $$
  select case when strpos(p_key, ',') = 0 then p_row ->> p_key
              else (select string_agg(p_row ->> k.name, '/' order by k.ord)
                      from unnest(string_to_array(p_key, ',')) with ordinality as k(name, ord)) end
$$;
revoke execute on function private.audit_row_id(jsonb, text) from public, anon, authenticated, service_role;

-- The trigger: tg_argv[0] is the owner column, tg_argv[1] the key column(s).
create function private.audit_row_changes() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_owner text := tg_argv[0];
  v_key text := tg_argv[1];
  v_table text := tg_table_schema || '.' || tg_table_name;
  v_actor_id uuid := (select auth.uid());
  v_actor text := private.audit_actor();
begin
  if tg_op = 'INSERT' then
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action)
    select v_table, private.audit_row_id(r.j, v_key), (r.j ->> v_owner)::uuid, v_actor_id, v_actor, 'insert'
      from (select to_jsonb(n) as j from new_rows n) r;
  elsif tg_op = 'UPDATE' then
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action, columns)
    select v_table, n.k, (n.j ->> v_owner)::uuid, v_actor_id, v_actor, 'update',
           array(select e.key from jsonb_each(n.j) e where e.value is distinct from (o.j -> e.key) order by e.key)
      from (select to_jsonb(x) as j, private.audit_row_id(to_jsonb(x), v_key) as k from new_rows x) n
      join (select to_jsonb(x) as j, private.audit_row_id(to_jsonb(x), v_key) as k from old_rows x) o
        on o.k = n.k;
  else
    -- An owner whose account is being erased (the cascade) is not recorded.
    insert into public.audit_changes (table_name, row_id, user_id, actor_id, actor, action)
    select v_table, private.audit_row_id(r.j, v_key), u.id, v_actor_id, v_actor, 'delete'
      from (select to_jsonb(o) as j from old_rows o) r
      left join auth.users u on u.id = (r.j ->> v_owner)::uuid;
  end if;
  return null;
end;
$$;
revoke execute on function private.audit_row_changes() from public, anon, authenticated, service_role;

-- Attach the trigger to one table (migrations only). The owner column is the
-- table's foreign key to auth.users (owner_id, user_id or id first, else the
-- first by name); the key is the primary key.
create function private.audit_attach(p_table regclass) returns void
language plpgsql set search_path = ''
as $$
declare
  v_owner text;
  v_key text;
  v_event text;
begin
  select a.attname::text into v_owner
    from pg_catalog.pg_constraint k
    join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
   where k.conrelid = p_table and k.contype = 'f' and k.confrelid = 'auth.users'::regclass
     and pg_catalog.array_length(k.conkey, 1) = 1
   order by a.attname not in ('owner_id', 'user_id', 'id'), a.attname
   limit 1;
  select pg_catalog.string_agg(a.attname::text, ',' order by x.ord) into v_key
    from pg_catalog.pg_index i
    cross join lateral unnest(i.indkey::int2[]) with ordinality as x(attnum, ord)
    join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = x.attnum
   where i.indrelid = p_table and i.indisprimary;
  if v_owner is null or v_key is null then
    raise exception 'audit_attach: % needs a primary key and a foreign key to auth.users', p_table
      using errcode = '22023';
  end if;
  foreach v_event in array array['insert', 'update', 'delete'] loop
    execute format(
      'create trigger %I after %s on %s referencing %s for each statement'
      ' execute function private.audit_row_changes(%L, %L)',
      'audit_changes_after_' || v_event, v_event, p_table,
      case v_event when 'insert' then 'new table as new_rows'
                   when 'update' then 'old table as old_rows new table as new_rows'
                   else 'old table as old_rows' end,
      v_owner, v_key);
  end loop;
end;
$$;
revoke execute on function private.audit_attach(regclass) from public, anon, authenticated, service_role;

-- Erasure: an erased account's id leaves the trail (the entries stay, unattributed).
create function private.audit_forget_user() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update public.audit_changes set user_id = null where user_id = old.id;
  update public.audit_changes set actor_id = null where actor_id = old.id;
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

-- == triggers: every table with a foreign key to auth.users, except the audit tables ==
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
       and k.conrelid <> 'public.audit_log'::regclass
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

create policy "users read changes of their rows and their own changes" on public.audit_changes
  for select to authenticated
  using (user_id = (select auth.uid()) or actor_id = (select auth.uid()));

revoke all on table private.audit_settings from anon, authenticated, service_role;
grant select, update (retention_days, updated_at) on private.audit_settings to service_role;

-- == comments ==
comment on table public.audit_changes is
  'Every insert, update and delete on user-owned tables (trigger private.audit_row_changes): which row, '
  'whose, by whom, which columns. Never values. Users read changes of their rows and the changes they made; '
  'operators read all (service role, backline audit list). Deleted after private.audit_settings.retention_days.';
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
comment on function private.audit_row_changes() is
  'Statement-level AFTER trigger: one audit_changes row per changed row. Args: owner column, key column(s).';
comment on function private.audit_attach(regclass) is
  'Attach the audit triggers to a table with a primary key and a foreign key to auth.users (migrations).';
comment on function private.cleanup_audit_changes(integer, boolean) is
  'Audit changes older than private.audit_settings.retention_days (default 365).';
