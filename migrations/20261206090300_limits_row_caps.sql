-- limits: per-user, per-plan row caps on every table a user can write to.
-- Adds public.plan_row_caps (the caps per plan, readable by everyone),
-- private.row_cap_tables (which tables are capped, counted by which column),
-- private.row_caps_enforce and the triggers that call it on every capped
-- table.
--
-- Why (issue #12): rooms, chat messages (100 kB each), templates (256 kB),
-- share links, sync conflicts, sync receipts, ... had no per-user cap, and one
-- bulk POST of 300 rows costs one rate-limit slot, so a free or anonymous
-- account could grow them without bound. Every row counts now:
--   * an AFTER INSERT ... FOR EACH STATEMENT trigger reads the statement's
--     transition table, so every inserted row is counted and a multi-row
--     insert that crosses the cap fails whole (the 301st row over a cap of 300
--     fails the statement); checking once per statement and owner keeps a
--     5000-change sync_push from recounting 5000 times;
--   * an AFTER UPDATE OF <owner column> row trigger checks the new owner when
--     a row changes hands (transfer_room_ownership);
--   * writers of one (table, owner) are serialised by a transaction-scoped
--     advisory lock taken before counting; in READ COMMITTED (PostgREST) the
--     count then sees every committed row, so two concurrent requests cannot
--     both take the last slot.
-- Who "the user" is: the owner/creator column named in private.row_cap_tables.
-- Rows the database inserts on a user's behalf count for that user and are
-- refused the same way, never dropped silently: sync_push reports a conflict
-- it could not keep as a rejected change (status 'rejected', code PT403, the
-- message), so the client keeps its change and pushes it again later, and a
-- push whose receipts do not fit fails whole with PT403 (nothing applied).
-- Refusal: SQLSTATE PT403 (HTTP 403 through PostgREST), like the per-kind
-- document limit, with a message naming the limit and a hint saying what to
-- delete or that upgrading raises it.
-- Anonymous users (auth.users.is_anonymous) get max_rows_anonymous of their
-- plan when set. A plan without its own row for a table gets the free plan's
-- row. Downgrading keeps existing rows; only new ones are refused.
--
-- Tables that can be written through the API and have NO row cap here, and why:
--   documents         per-kind live-document limit already (document_kind_limits,
--                     plans.documents_per_kind, PT403); left as it is.
--   room_elements     capped per room by plans.room_elements_max (room owner's
--                     plan), and rooms are capped per owner: bounded per account.
--   backups           pruned to plans.backup_versions_kept on every upload.
--   jobs              every user-enqueueable kind has a per-row daily limit
--                     (job_kinds.plan_limit_column) and finished jobs are deleted
--                     after 7/30 days: bounded by rate x retention.
--   telemetry_events  ingest_telemetry counts every event against
--                     plans.telemetry_events_per_hour and events are deleted after
--                     90 days (rolled up daily): bounded by rate x retention.
--   privacy_consents, profiles  one row per user (primary key user id).
--   ai_usage          ledger rows written by the AI proxy, one per admitted
--                     request: bounded by plans.ai_requests_per_window and the
--                     monthly budget; kept as the cost record.
--   audit_log         written only by the database (private.audit) for actions
--                     that are themselves capped or rate limited.
--   plans, document_kinds, document_kind_limits, job_kinds, ai_prices,
--   telemetry_event_types, plan_row_caps, billing_*  written by operators or
--                     the service role only.

-- == tables ==
-- Which tables are capped and how their rows are counted (schema private: the
-- SQL fragments here are executed, so only migrations write this table).
create table private.row_cap_tables (
  table_name text primary key constraint row_cap_tables_name_format check (table_name ~ '^[a-z][a-z0-9_]{1,62}$'),
  owner_column text not null constraint row_cap_tables_owner_column_format
    check (owner_column ~ '^[a-z][a-z0-9_]{1,62}$'),
  counted_rows text constraint row_cap_tables_counted_rows_length check (length(counted_rows) <= 200),
  noun text not null constraint row_cap_tables_noun_length check (length(noun) between 1 and 60),
  hint text not null constraint row_cap_tables_hint_length check (length(hint) between 1 and 300)
);

create table public.plan_row_caps (
  table_name text not null references private.row_cap_tables (table_name) on delete cascade,
  plan text not null references public.plans (id) on delete cascade,
  max_rows integer not null constraint plan_row_caps_max_rows_nonnegative check (max_rows >= 0),
  max_rows_anonymous integer
    constraint plan_row_caps_max_rows_anonymous_nonnegative check (max_rows_anonymous >= 0),
  primary key (table_name, plan)
);
create index plan_row_caps_plan_idx on public.plan_row_caps (plan);

-- == seed: the capped tables and the caps per plan ==
insert into private.row_cap_tables (table_name, owner_column, counted_rows, noun, hint) values
  ('rooms', 'owner_id', null, 'rooms',
   'Delete rooms you no longer need, or upgrade your plan.'),
  ('room_members', 'user_id', null, 'room memberships',
   'Leave rooms you no longer use, or upgrade your plan.'),
  ('room_invites', 'created_by', null, 'room invites',
   'Revoke invites you no longer need (expired and used-up ones are removed by the daily cleanup), or upgrade your plan.'),
  ('room_element_connections', 'created_by', null, 'element connections',
   'Delete connections you no longer need, or upgrade your plan.'),
  ('room_chat_messages', 'author_id', 'role = ''user''', 'chat messages',
   'Delete chat elements or rooms you no longer need (their messages go with them), or upgrade your plan.'),
  ('room_templates', 'owner_id', null, 'room templates',
   'Delete templates you no longer need, or upgrade your plan.'),
  ('share_links', 'owner_id', null, 'share links',
   'Revoke links you no longer need (revoked and expired links are deleted 7 days later), or upgrade your plan.'),
  ('sync_conflicts', 'owner_id', null, 'sync conflicts',
   'Resolve open conflicts with resolve_conflict (resolved ones are deleted 30 days later), or upgrade your plan.'),
  ('sync_receipts', 'owner_id', null, 'sync push receipts',
   'Every pushed change keeps a receipt for 30 days: push again when older ones have expired, or upgrade your plan.'),
  ('file_links', 'owner_id', 'ref_kind <> ''room_element''', 'file links',
   'Remove links to files you no longer use, or upgrade your plan.'),
  ('abuse_reports', 'reporter_id', 'status = ''open''', 'open abuse reports',
   'Wait until moderators have reviewed your open reports.'),
  ('ai_requests', 'user_id', null, 'AI requests',
   'Delete AI requests you no longer need, or upgrade your plan.'),
  ('ai_keys', 'user_id', null, 'AI keys',
   'Delete keys you no longer use, or upgrade your plan.');

-- (table, free, free anonymous, pro)
insert into public.plan_row_caps (table_name, plan, max_rows, max_rows_anonymous)
select c.table_name, p.plan, case p.plan when 'free' then c.free else c.pro end,
       case p.plan when 'free' then c.anonymous end
  from (values
    ('rooms', 20, 3, 1000),
    ('room_members', 200, 20, 5000),
    ('room_invites', 200, 20, 5000),
    ('room_element_connections', 5000, 500, 50000),
    ('room_chat_messages', 5000, 500, 100000),
    ('room_templates', 50, 5, 1000),
    ('share_links', 500, 50, 20000),
    ('sync_conflicts', 2000, 200, 50000),
    ('sync_receipts', 20000, 5000, 200000),
    ('file_links', 2000, 200, 100000),
    ('abuse_reports', 50, 10, 100),
    ('ai_requests', 1000, 100, 20000),
    ('ai_keys', 10, 3, 50)
  ) as c(table_name, free, anonymous, pro)
  cross join (values ('free'), ('pro')) as p(plan)
 where exists (select 1 from public.plans pl where pl.id = p.plan);

-- == functions (schema private: not exposed) ==
-- The cap of (table, owner) now; refuses with PT403 when the owner holds more
-- rows than it. Called by the triggers below after the rows are written, so
-- the count includes them. The advisory lock serialises every writer of this
-- (table, owner) until its transaction ends; the count runs after it, in a
-- fresh READ COMMITTED snapshot, so it sees what a concurrent writer committed.
create function private.row_caps_enforce(p_table text, p_owner uuid) returns void
language plpgsql volatile security definer set search_path = ''
as $$
declare
  t private.row_cap_tables;
  v_plan text;
  v_anonymous boolean;
  v_max integer;
  v_count bigint;
begin
  if p_owner is null then
    return;
  end if;
  select * into t from private.row_cap_tables c where c.table_name = p_table;
  if not found then
    return;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('backline.row_caps:' || p_table || ':' || p_owner, 0));
  select coalesce(p.plan, 'free'), coalesce(u.is_anonymous, false) into v_plan, v_anonymous
    from auth.users u left join public.profiles p on p.id = u.id
   where u.id = p_owner;
  if not found then
    v_plan := 'free';
    v_anonymous := false;
  end if;
  select case when v_anonymous then coalesce(c.max_rows_anonymous, c.max_rows) else c.max_rows end
    into v_max
    from public.plan_row_caps c
   where c.table_name = p_table and c.plan in (v_plan, 'free')
   order by (c.plan = v_plan) desc
   limit 1;
  if v_max is null then
    return;  -- no row for this plan nor for free: not capped
  end if;
  execute format('select count(*) from (select 1 from public.%I x where x.%I = $1 and (%s) limit $2) n',
                 t.table_name, t.owner_column, coalesce(t.counted_rows, 'true'))
    into v_count using p_owner, v_max + 1;
  if v_count > v_max then
    execute format('select count(*) from public.%I x where x.%I = $1 and (%s)',
                   t.table_name, t.owner_column, coalesce(t.counted_rows, 'true'))
      into v_count using p_owner;
    if v_anonymous then
      raise exception 'plan limit reached: at most % % for an anonymous user (this would make %)',
        v_max, t.noun, v_count
        using errcode = 'PT403',
              hint = 'Create an account (anonymous users have lower limits). ' || t.hint;
    end if;
    raise exception 'plan limit reached: at most % % per user on the % plan (this would make %)',
      v_max, t.noun, v_plan, v_count
      using errcode = 'PT403', hint = t.hint;
  end if;
end;
$$;
revoke execute on function private.row_caps_enforce(text, uuid) from public, anon, authenticated, service_role;

-- After every INSERT statement on a capped table: each owner of a counted new
-- row, in a fixed order (no deadlock between two multi-owner statements).
create function private.row_caps_after_insert() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  t private.row_cap_tables;
  v_owner uuid;
begin
  select * into t from private.row_cap_tables c where c.table_name = tg_table_name;
  if not found then
    return null;
  end if;
  for v_owner in execute format(
      'select distinct n.%I from new_rows n where n.%I is not null and (%s) order by 1',
      t.owner_column, t.owner_column, coalesce(t.counted_rows, 'true')) loop
    perform private.row_caps_enforce(t.table_name, v_owner);
  end loop;
  return null;
end;
$$;
revoke execute on function private.row_caps_after_insert() from public, anon, authenticated, service_role;

-- After a row changes owner: the new owner's cap (rooms handed over with
-- transfer_room_ownership; the service role re-assigning rows).
create function private.row_caps_after_owner_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  t private.row_cap_tables;
  v_owner uuid;
  v_counted boolean;
begin
  select * into t from private.row_cap_tables c where c.table_name = tg_table_name;
  if not found then
    return null;
  end if;
  execute format('select x.%I, (%s) from jsonb_populate_record(null::public.%I, $1) x',
                 t.owner_column, coalesce(t.counted_rows, 'true'), t.table_name)
    into v_owner, v_counted using to_jsonb(new);
  if v_owner is not null and v_counted then
    perform private.row_caps_enforce(t.table_name, v_owner);
  end if;
  return null;
end;
$$;
revoke execute on function private.row_caps_after_owner_change() from public, anon, authenticated, service_role;

-- == triggers: the same two on every table in private.row_cap_tables ==
do $$
declare
  t private.row_cap_tables;
begin
  for t in select * from private.row_cap_tables order by table_name loop
    execute format(
      'create trigger row_caps_after_insert after insert on public.%I '
      'referencing new table as new_rows for each statement '
      'execute function private.row_caps_after_insert()', t.table_name);
    execute format(
      'create trigger row_caps_after_owner_change after update of %I on public.%I '
      'for each row when (new.%I is distinct from old.%I) '
      'execute function private.row_caps_after_owner_change()',
      t.owner_column, t.table_name, t.owner_column, t.owner_column);
  end loop;
end;
$$;

-- == grants and row level security ==
revoke all on table private.row_cap_tables from public, anon, authenticated, service_role;

revoke all on table public.plan_row_caps from anon, authenticated, service_role;
grant select on table public.plan_row_caps to anon, authenticated, service_role;
grant insert, update, delete on table public.plan_row_caps to service_role;
alter table public.plan_row_caps enable row level security;

create policy "everyone reads plan row caps" on public.plan_row_caps
  for select to anon, authenticated using (true);

-- == comments ==
comment on table public.plan_row_caps is
  'Most rows one user may hold in a table, per plan (rooms, share links, sync conflicts, ...; see '
  'docs/limits.md). A plan without a row for a table gets the free plan''s. Over the cap an insert '
  'fails whole with SQLSTATE PT403 (HTTP 403) naming the limit. Readable by everyone; changed by operators.';
comment on column public.plan_row_caps.table_name is 'The capped table in schema public (rooms, share_links, ...).';
comment on column public.plan_row_caps.plan is 'The plan (public.plans.id) the cap applies to.';
comment on column public.plan_row_caps.max_rows is 'Most rows of this table one user on this plan may hold.';
comment on column public.plan_row_caps.max_rows_anonymous is
  'The cap for anonymous users on this plan; null means max_rows.';
comment on table private.row_cap_tables is
  'Tables with per-user row caps: the column naming the user, which rows count (SQL predicate, null = all), '
  'the noun and hint of the refusal. Triggers row_caps_after_insert / row_caps_after_owner_change enforce it.';
