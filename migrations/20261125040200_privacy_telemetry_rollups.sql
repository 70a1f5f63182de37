-- privacy: daily telemetry rollups and retention. Adds private.telemetry_daily,
-- private.telemetry_rollup_daily(days) and private.cleanup_telemetry(batch, dry_run).
-- Why: the metrics cron (every 6 hours) keeps per-day counts that hold no
-- personal data and survive the 90-day retention of raw events; the
-- privacy cleanup deletes raw events past retention in bounded batches.

-- == tables ==
create table private.telemetry_daily (
  day date not null,
  name text not null,
  events bigint not null check (events >= 0),
  users bigint not null check (users >= 0),
  updated_at timestamptz not null default now(),
  primary key (day, name)
);
comment on table private.telemetry_daily is
  'Events and distinct users per event name per UTC day. Aggregates only: no user ids.';

-- == functions (schema private: not exposed) ==
create function private.telemetry_rollup_daily(p_days integer default 2)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_rows integer;
begin
  if p_days is null or p_days < 1 or p_days > 366 then
    raise exception 'p_days must be 1-366, got %', p_days using errcode = '22023';
  end if;
  -- Recompute whole days (idempotent): today so far and the p_days - 1 before it.
  with days as (
    select (current_date - g)::date as day from generate_series(0, p_days - 1) g
  ), counted as (
    select (e.occurred_at at time zone 'utc')::date as day, e.name,
           count(*) as events, count(distinct e.user_id) as users
      from public.telemetry_events e
     where e.occurred_at >= ((current_date - (p_days - 1))::timestamp at time zone 'utc')
     group by 1, 2
  ), upserted as (
    insert into private.telemetry_daily as d (day, name, events, users)
    select c.day, c.name, c.events, c.users from counted c join days using (day)
    on conflict (day, name) do update
      set events = excluded.events, users = excluded.users, updated_at = now()
    returning 1
  )
  select count(*) into v_rows from upserted;
  return v_rows;
end;
$$;
revoke execute on function private.telemetry_rollup_daily(integer) from public, anon, authenticated;
grant execute on function private.telemetry_rollup_daily(integer) to service_role;
comment on function private.telemetry_rollup_daily(integer) is
  'Metrics cron: recompute private.telemetry_daily for the last p_days UTC days. Returns rows written.';

create function private.cleanup_telemetry(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'p_batch_size must be positive' using errcode = '22023';
  end if;
  if coalesce(p_dry_run, true) then
    return query
      select format('telemetry event %s (%s, received %s)', e.id, e.name, e.received_at)
        from public.telemetry_events e
       where e.received_at < now() - interval '90 days'
       order by e.received_at limit p_batch_size;
    return;
  end if;
  return query
    with gone as (
      delete from public.telemetry_events e
       where e.id in (select x.id from public.telemetry_events x
                       where x.received_at < now() - interval '90 days'
                       order by x.received_at limit p_batch_size)
      returning e.id, e.name, e.received_at
    )
    select format('telemetry event %s (%s, received %s)', g.id, g.name, g.received_at) from gone g;
end;
$$;
revoke execute on function private.cleanup_telemetry(integer, boolean) from public, anon, authenticated;
grant execute on function private.cleanup_telemetry(integer, boolean) to service_role;
comment on function private.cleanup_telemetry(integer, boolean) is
  'Privacy cleanup: delete (dry run: list) at most p_batch_size telemetry events received over 90 days ago.';
