-- privacy: telemetry events (workflow-insights). Adds public.telemetry_event_types,
-- public.telemetry_events, plans.telemetry_events_per_hour and rpc ingest_telemetry(events).
-- Why: apps send usage events in batches; the database validates them
-- (known names, sizes, at most 100 per call and a per-plan hourly cap per
-- user) and refuses them without consent. Users can read what was collected
-- about them; it is exported with their data and erased with their account.

-- == plan limits ==
alter table public.plans add column telemetry_events_per_hour integer not null default 1000
  check (telemetry_events_per_hour >= 0);
update public.plans set telemetry_events_per_hour = 1000 where id = 'free';
update public.plans set telemetry_events_per_hour = 10000 where id = 'pro';
comment on column public.plans.telemetry_events_per_hour is
  'Telemetry events a user may send per sliding hour (ingest_telemetry answers 429 beyond).';

-- == tables ==
create table public.telemetry_event_types (
  name text primary key check (name ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,3}$'),
  description text not null check (length(description) between 1 and 300),
  created_at timestamptz not null default now()
);

insert into public.telemetry_event_types (name, description) values
  ('app.opened', 'The app was opened or brought to the foreground.'),
  ('app.closed', 'The app was closed or hidden.'),
  ('feature.used', 'A feature was used; props.feature names it.'),
  ('document.created', 'A document was created locally.'),
  ('document.synced', 'Local documents were synced with the cloud.'),
  ('room.joined', 'The user joined a collaboration room.'),
  ('ai.requested', 'An AI generation was requested.'),
  ('export.requested', 'A data or canvas export was requested.'),
  ('error.shown', 'An error message was shown; props.code names it.'),
  ('workflow.step_completed', 'A workflow step was completed; props.step names it.');

create table public.telemetry_events (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null references public.telemetry_event_types (name),
  occurred_at timestamptz not null,
  received_at timestamptz not null default now(),
  props jsonb not null default '{}' check (jsonb_typeof(props) = 'object')
);
create index telemetry_events_user_id_occurred_at_idx on public.telemetry_events (user_id, occurred_at);
create index telemetry_events_name_idx on public.telemetry_events (name);
create index telemetry_events_received_at_idx on public.telemetry_events (received_at);

-- == functions (schema private: not exposed) ==
create function private.telemetry_ingest(p_events jsonb)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_limit integer;
  v_count integer;
  v_event jsonb;
  v_bad text;
  v_take record;
  max_per_call constant integer := 100;
  max_batch_bytes constant integer := 256 * 1024;
  max_props_bytes constant integer := 4096;
begin
  if v_uid is null then
    raise exception 'sign in to send telemetry' using errcode = '42501',
      hint = 'Call ingest_telemetry with a user''s token.';
  end if;
  if not exists (select 1 from public.privacy_consents c where c.user_id = v_uid and c.telemetry) then
    raise exception 'telemetry consent not given' using errcode = '42501',
      hint = 'Ask the user, then call set_privacy_consent(telemetry => true).';
  end if;
  if p_events is null or jsonb_typeof(p_events) <> 'array' then
    raise exception 'events must be a JSON array' using errcode = '22023',
      hint = 'Send [{"name": "app.opened", "at": "2026-11-25T10:00:00Z", "props": {}}].';
  end if;
  v_count := jsonb_array_length(p_events);
  if v_count = 0 or v_count > max_per_call then
    raise exception 'a batch holds 1 to % events, got %', max_per_call, v_count using errcode = '22023',
      hint = 'Split the batch.';
  end if;
  if octet_length(p_events::text) > max_batch_bytes then
    raise exception 'telemetry batch too large: % bytes (max %)', octet_length(p_events::text), max_batch_bytes
      using errcode = '22023', hint = 'Send smaller batches.';
  end if;

  for v_event in select e from jsonb_array_elements(p_events) e loop
    v_bad := case
      when jsonb_typeof(v_event) <> 'object' then 'each event must be an object'
      when (select count(*) from jsonb_object_keys(v_event) k where k not in ('name', 'at', 'props')) > 0
        then 'unknown event field (allowed: name, at, props)'
      when jsonb_typeof(v_event -> 'name') is distinct from 'string' then 'event name missing'
      when not exists (select 1 from public.telemetry_event_types t where t.name = v_event ->> 'name')
        then format('unknown event name %s', v_event ->> 'name')
      when v_event ? 'props' and jsonb_typeof(v_event -> 'props') <> 'object' then 'props must be an object'
      when octet_length(coalesce(v_event -> 'props', '{}')::text) > max_props_bytes
        then format('props of %s exceed %s bytes', v_event ->> 'name', max_props_bytes)
      when v_event ? 'at' and jsonb_typeof(v_event -> 'at') <> 'string' then 'at must be an ISO timestamp'
    end;
    if v_bad is null and v_event ? 'at' then
      begin
        if (v_event ->> 'at')::timestamptz not between now() - interval '7 days' and now() + interval '5 minutes' then
          v_bad := 'at must be within the last 7 days';
        end if;
      exception when others then
        v_bad := 'at must be an ISO timestamp';
      end;
    end if;
    if v_bad is not null then
      raise exception 'invalid telemetry event: %', v_bad using errcode = '22023',
        hint = 'Known names are in table telemetry_event_types; nothing of this batch was stored.';
    end if;
  end loop;

  select p.telemetry_events_per_hour into v_limit
    from public.profiles pr join public.plans p on p.id = pr.plan
   where pr.id = v_uid;
  select * into v_take
    from private.rate_limit_take('telemetry:' || v_uid::text, coalesce(v_limit, 0), interval '1 hour', v_count);
  if not v_take.allowed then
    raise sqlstate 'PT429' using
      message = format('telemetry limit reached: at most %s events per hour', coalesce(v_limit, 0)),
      detail = format('retry_after_seconds=%s', v_take.retry_after_seconds),
      hint = format('Retry after %s seconds.', v_take.retry_after_seconds);
  end if;

  insert into public.telemetry_events (user_id, name, occurred_at, props)
  select v_uid, e ->> 'name', coalesce((e ->> 'at')::timestamptz, now()), coalesce(e -> 'props', '{}')
    from jsonb_array_elements(p_events) e;
  return v_count;
end;
$$;
revoke execute on function private.telemetry_ingest(jsonb) from public, anon;
grant execute on function private.telemetry_ingest(jsonb) to authenticated;

create function public.ingest_telemetry(events jsonb)
returns integer
language sql
set search_path = ''
as $$ select private.telemetry_ingest(events) $$;
revoke execute on function public.ingest_telemetry(jsonb) from public, anon;
grant execute on function public.ingest_telemetry(jsonb) to authenticated;

-- == grants and row level security ==
grant select on public.telemetry_event_types to anon, authenticated;
grant select, insert, update, delete on public.telemetry_event_types to service_role;
alter table public.telemetry_event_types enable row level security;
create policy "everyone reads the known telemetry events" on public.telemetry_event_types
  for select to anon, authenticated using (true);

grant select on public.telemetry_events to authenticated;
grant select, insert, delete on public.telemetry_events to service_role;
alter table public.telemetry_events enable row level security;
create policy "users read the telemetry collected about them" on public.telemetry_events
  for select to authenticated using (user_id = (select auth.uid()));

-- == comments ==
comment on table public.telemetry_event_types is 'The event names ingest_telemetry() accepts.';
comment on table public.telemetry_events is
  'Usage events a user sent with consent. Users read their own; kept 90 days (private.cleanup_telemetry).';
comment on column public.telemetry_events.occurred_at is 'When the event happened on the device (the event''s "at").';
comment on column public.telemetry_events.props is 'Event properties, a JSON object up to 4 KB.';
comment on function public.ingest_telemetry(jsonb) is
  'Store a batch of 1-100 events [{name, at?, props?}] for the signed-in user. Needs consent '
  '(42501 otherwise); invalid events reject the whole batch (22023); over the hourly cap: HTTP 429. '
  'Returns the number stored.';
