-- Platform layer, part 3: the Supabase Realtime objects our SQL uses.
--
-- On Supabase the publication comes with the database image
-- (supabase/postgres) and the `realtime` schema is created by the Realtime
-- server's tenant migrations (supabase/realtime). We recreate:
--   publication supabase_realtime  Postgres Changes stream the tables a
--     migration adds to it (`alter publication supabase_realtime add table`),
--     filtered by the subscriber's RLS; created empty.
--   realtime.messages  one row per broadcast/presence message; RLS policies
--     on it authorize private channels (select = may receive, insert = may
--     send). On Supabase it is partitioned by day on inserted_at; a plain
--     table with the same columns and key is enough here.
--   realtime.topic()   the channel being authorized, inside those policies.
--   realtime.send(), realtime.broadcast_changes()  broadcast from SQL
--     (e.g. from a trigger) by inserting into realtime.messages.
-- Left out: realtime.subscription, apply_rls, list_changes and the other
-- functions only the Realtime server calls.

-- ---------------------------------------------------------------------------
-- Publication
-- ---------------------------------------------------------------------------

-- Publications are per database. With wal_level below 'logical' PostgreSQL
-- only warns; nothing streams until a Realtime server is attached.
do $$
begin
  if not exists (
    select from pg_catalog.pg_publication where pubname = 'supabase_realtime'
  ) then
    create publication supabase_realtime;
  end if;
end $$;

-- ---------------------------------------------------------------------------
-- realtime.messages
-- ---------------------------------------------------------------------------

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  constraint messages_pkey primary key (id, inserted_at)
);

create index if not exists messages_inserted_at_topic_index
  on realtime.messages using btree (inserted_at desc, topic)
  where ((extension = 'broadcast'::text) and (private is true));

comment on table realtime.messages is
  'Realtime: broadcast and presence messages. RLS policies on this table authorize private channels: a select policy lets a user join/receive, an insert policy lets them send. Inside a policy, realtime.topic() is the channel name and extension is ''broadcast'' or ''presence''.';
comment on column realtime.messages.topic is
  'Realtime: the channel name (topic) the message belongs to.';
comment on column realtime.messages.extension is
  'Realtime: ''broadcast'' or ''presence''.';

alter table realtime.messages enable row level security;

-- As on Supabase: the API roles may read, send and update; RLS decides.
grant select, insert, update on table realtime.messages
  to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- realtime.topic()
-- ---------------------------------------------------------------------------

create or replace function realtime.topic()
returns text
language sql
stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text
$$;

comment on function realtime.topic() is
  'Realtime: the channel (topic) being authorized; use it in policies on realtime.messages, e.g. realtime.topic() = ''room:'' || room_id.';

-- ---------------------------------------------------------------------------
-- Broadcast from the database
-- ---------------------------------------------------------------------------

-- Insert a broadcast message for `topic`. Like Supabase: the message gets an
-- id (also added to the payload unless it has one), realtime.topic() is set
-- for the insert's policies, and a failure is reported as a WARNING instead of
-- aborting the caller's transaction. Runs with the caller's privileges.
create or replace function realtime.send(
  payload jsonb,
  event text,
  topic text,
  private boolean default true
)
returns void
language plpgsql
as $$
declare
  message_id uuid := gen_random_uuid();
  final_payload jsonb;
begin
  begin
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(message_id));
    end if;
    perform set_config('realtime.topic', topic, true);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (message_id, final_payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
end
$$;

comment on function realtime.send(jsonb, text, text, boolean) is
  'Realtime: broadcast payload as event on channel topic (private channel by default). Never raises: a failure becomes a WARNING.';

-- Broadcast a row change from a row-level trigger:
--   perform realtime.broadcast_changes('room:' || new.room_id, tg_op, tg_op,
--     tg_table_name, tg_table_schema, new, old);
-- The payload is {old_record, record, operation, table, schema}.
create or replace function realtime.broadcast_changes(
  topic_name text,
  event_name text,
  operation text,
  table_name text,
  table_schema text,
  new record,
  old record,
  level text default 'ROW'
)
returns void
language plpgsql
as $$
declare
  row_data jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation in ('INSERT', 'UPDATE', 'DELETE') then
    row_data := jsonb_build_object(
      'old_record', old,
      'record', new,
      'operation', operation,
      'table', table_name,
      'schema', table_schema
    );
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %', operation;
  end if;
exception when others then
  raise exception 'Failed to process the row: %', sqlerrm;
end
$$;

comment on function realtime.broadcast_changes(text, text, text, text, text, record, record, text) is
  'Realtime: from a row trigger, broadcast {old_record, record, operation, table, schema} as event_name on the private channel topic_name.';
