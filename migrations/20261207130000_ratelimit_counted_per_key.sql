-- ratelimit: each take reads a per-key counter instead of counting the window.
-- Why: private.rate_limit_take runs on every Data API request (the
-- pre-request hook), every AI admission and every upload. It counted the
-- key's events in the window with count(*), so its cost grew with the
-- window: at 1,000 counted requests each take walked 1,000 index entries.
--
-- The event rows stay (they give the exact expiry times and the retry
-- time), so the window is still exact and sliding. New: the table
-- private.rate_limit_counts holds, per key, how many event rows the key has.
-- Every function that inserts or deletes events keeps it right in the same
-- transaction, by exactly the rows it inserted or deleted (delete ...
-- returning), and decrements are relative (used = used - n), so a take and
-- a cleanup deleting events of one key at once each lower it by their own:
--   - rate_limit_take: deletes the key's expired events, checks the cost
--     against the counter, inserts the events and raises the counter; takers
--     of one key still serialize on the same advisory lock;
--   - rate_limit_purge and cleanup_rate_limit_events (the cron cleanup):
--     lower the counters of the keys whose old events they delete and remove
--     the counters left at zero, so keys that go idle leave no row behind.
--
-- A key without a counter row is counted from its events on its next take
-- (under the key's lock), then kept. That is how the events already present
-- when this migration runs are counted: counting them here instead, under a
-- table lock, would not be exact, because takes arriving while the lock is
-- held run the previous definition once it is released (a call resolves its
-- function when it starts) and would insert and delete events uncounted.
--
-- Redefines private.rate_limit_take and private.rate_limit_purge (latest:
-- 20261125000500) and private.cleanup_rate_limit_events (latest:
-- 20261125030300); signatures, grants and comments are unchanged.

-- == tables ==
create table private.rate_limit_counts (
  key text primary key,
  used integer not null
);
revoke all on table private.rate_limit_counts from public, anon, authenticated, service_role;

comment on table private.rate_limit_counts is
  'How many rows of private.rate_limit_events each key has (expired ones included until deleted), kept by '
  'rate_limit_take, rate_limit_purge and cleanup_rate_limit_events; insert or delete events only through them. '
  'A key without a row is counted from its events on its next take.';
comment on column private.rate_limit_counts.used is
  'Number of event rows of this key; rows at zero (or below, which would be drift) are removed by the purge.';

-- == functions (schema private: not exposed) ==
create or replace function private.rate_limit_take(
  p_key text, p_limit integer, p_window interval, p_cost integer default 1
) returns table (allowed boolean, remaining integer, retry_after_seconds integer)
language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz;
  v_gone integer;
  v_had integer;
  v_used integer;
  v_oldest timestamptz;
begin
  if p_key is null or length(p_key) = 0 or length(p_key) > 200 then
    raise exception 'rate limit key must be 1-200 characters' using errcode = '22023';
  end if;
  if p_limit is null or p_limit < 0 or p_window is null or p_window <= interval '0'
     or p_cost is null or p_cost < 1 or p_cost > greatest(p_limit, 1) then
    raise exception 'rate limit needs limit >= 0, a positive window and 1 <= cost <= limit'
      using errcode = '22023';
  end if;

  perform pg_advisory_xact_lock(hashtextextended('backline.ratelimit:' || p_key, 0));
  v_now := clock_timestamp();
  with gone as (
    delete from private.rate_limit_events e where e.key = p_key and e.at <= v_now - p_window returning 1
  )
  select count(*)::integer into v_gone from gone;
  -- Read after the delete, in a new snapshot: a purge that deleted some of the same rows
  -- (this delete waited for it) has lowered the counter by them already.
  select c.used into v_had from private.rate_limit_counts c where c.key = p_key;
  if found then
    v_used := v_had - v_gone;
  else
    -- First take since the key's counter was removed (or since this migration): count once.
    select count(*)::integer into v_used from private.rate_limit_events e where e.key = p_key;
  end if;

  if v_used + p_cost > p_limit then
    if v_had is null then
      insert into private.rate_limit_counts (key, used) values (p_key, v_used);
    elsif v_gone > 0 then
      update private.rate_limit_counts c set used = c.used - v_gone where c.key = p_key;
    end if;
    -- Room opens when the (v_used + p_cost - p_limit)-th oldest counted request leaves the window.
    select e.at into v_oldest from private.rate_limit_events e
     where e.key = p_key order by e.at offset greatest(v_used + p_cost - p_limit - 1, 0) limit 1;
    return query select false, greatest(p_limit - v_used, 0),
      greatest(1, ceil(extract(epoch from (coalesce(v_oldest, v_now) + p_window - v_now)))::integer);
    return;
  end if;

  with counted as (
    insert into private.rate_limit_events (key, at)
      select p_key, v_now from generate_series(1, p_cost)
  )
  insert into private.rate_limit_counts as c (key, used) values (p_key, v_used + p_cost)
    on conflict (key) do update set used = c.used - v_gone + p_cost;
  return query select true, p_limit - v_used - p_cost, 0;
end;
$$;

create or replace function private.rate_limit_purge(p_older_than interval default interval '1 day')
returns bigint
language plpgsql security definer set search_path = ''
as $$
declare
  v_deleted bigint;
begin
  with gone as (
    delete from private.rate_limit_events e where e.at < clock_timestamp() - p_older_than returning e.key
  ), per_key as (
    select g.key, count(*)::integer as n from gone g group by g.key
  ), lowered as (
    update private.rate_limit_counts c set used = c.used - p.n from per_key p where c.key = p.key
  )
  select count(*) into v_deleted from gone;
  -- Keys left without events (idle ones, emptied above or by the limiter itself) keep no row.
  delete from private.rate_limit_counts c where c.used <= 0;
  return v_deleted;
end;
$$;

create or replace function private.cleanup_rate_limit_events(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql security definer set search_path = ''
as $$
declare
  v_items text[];
  v_emptied text[];
begin
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'batch size must be positive' using errcode = '22023';
  end if;
  if p_dry_run then
    return query
      select format('rate limit event %s (%s at %s)', e.id, e.key, e.at)
        from private.rate_limit_events e
       where e.at < clock_timestamp() - interval '2 days'
       order by e.at
       limit p_batch_size;
    return;
  end if;
  with victims as (
    select e.id from private.rate_limit_events e
     where e.at < clock_timestamp() - interval '2 days'
     order by e.at
     limit p_batch_size
     for update skip locked
  ), gone as (
    delete from private.rate_limit_events e using victims v where e.id = v.id
    returning e.id, e.key, e.at
  ), per_key as (
    select g.key, count(*)::integer as n from gone g group by g.key
  ), lowered as (
    update private.rate_limit_counts c set used = c.used - p.n from per_key p where c.key = p.key
    returning c.key, c.used
  )
  select array_agg(format('rate limit event %s (%s at %s)', g.id, g.key, g.at) order by g.at, g.id),
         (select array_agg(l.key) from lowered l where l.used <= 0)
    into v_items, v_emptied from gone g;
  -- Keys this batch left without events keep no row.
  delete from private.rate_limit_counts c where c.key = any(v_emptied) and c.used <= 0;
  return query select i from unnest(v_items) as i;
end;
$$;
