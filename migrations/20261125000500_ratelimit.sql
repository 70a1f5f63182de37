-- ratelimit: one exact sliding-window limiter for every module.
-- Why: API requests (PostgREST pre-request hook), bulk imports and the AI
-- proxy all need "at most N per window per user", exact under concurrency.
-- A per-key transaction advisory lock serialises takers of the same key, so
-- 50 simultaneous requests at a limit of 10 let exactly 10 through.
-- Only definer functions (running as their owner) and service_role call it:
-- an API role could otherwise spend another user's window by naming its key.

-- == tables ==
create table private.rate_limit_events (
  key text not null,
  at timestamptz not null default clock_timestamp(),
  id bigint generated always as identity primary key
);
create index rate_limit_events_key_at_idx on private.rate_limit_events (key, at);

comment on table private.rate_limit_events is
  'One row per counted request in a sliding window; rows older than the window are pruned on use.';

-- == functions (schema private: not exposed) ==
create function private.rate_limit_take(
  p_key text, p_limit integer, p_window interval, p_cost integer default 1
) returns table (allowed boolean, remaining integer, retry_after_seconds integer)
language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz;
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
  delete from private.rate_limit_events e where e.key = p_key and e.at <= v_now - p_window;
  select count(*)::integer into v_used from private.rate_limit_events e where e.key = p_key;

  if v_used + p_cost > p_limit then
    -- Room opens when the (v_used + p_cost - p_limit)-th oldest counted request leaves the window.
    select e.at into v_oldest from private.rate_limit_events e
     where e.key = p_key order by e.at offset greatest(v_used + p_cost - p_limit - 1, 0) limit 1;
    return query select false, greatest(p_limit - v_used, 0),
      greatest(1, ceil(extract(epoch from (coalesce(v_oldest, v_now) + p_window - v_now)))::integer);
    return;
  end if;

  insert into private.rate_limit_events (key, at)
    select p_key, v_now from generate_series(1, p_cost);
  return query select true, p_limit - v_used - p_cost, 0;
end;
$$;
revoke execute on function private.rate_limit_take(text, integer, interval, integer) from public;
grant execute on function private.rate_limit_take(text, integer, interval, integer) to service_role;

create function private.rate_limit_enforce(
  p_key text, p_limit integer, p_window interval, p_cost integer default 1
) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  v record;
begin
  select * into v from private.rate_limit_take(p_key, p_limit, p_window, p_cost);
  if not v.allowed then
    -- PT429: PostgREST answers HTTP 429 with this message.
    raise sqlstate 'PT429' using
      message = format('rate limit exceeded: at most %s per %s; retry in %s seconds',
                       p_limit, p_window, v.retry_after_seconds),
      detail = format('retry_after_seconds=%s', v.retry_after_seconds),
      hint = format('Retry after %s seconds.', v.retry_after_seconds);
  end if;
end;
$$;
revoke execute on function private.rate_limit_enforce(text, integer, interval, integer) from public;
grant execute on function private.rate_limit_enforce(text, integer, interval, integer) to service_role;

create function private.rate_limit_purge(p_older_than interval default interval '1 day')
returns bigint
language sql security definer set search_path = ''
as $$
  with gone as (
    delete from private.rate_limit_events where at < clock_timestamp() - p_older_than returning 1
  )
  select count(*) from gone
$$;
revoke execute on function private.rate_limit_purge(interval) from public, anon, authenticated;
grant execute on function private.rate_limit_purge(interval) to service_role;

comment on function private.rate_limit_take(text, integer, interval, integer) is
  'Count p_cost requests against key if the sliding window allows it. Returns allowed, remaining, retry_after_seconds.';
comment on function private.rate_limit_enforce(text, integer, interval, integer) is
  'Like rate_limit_take but raises SQLSTATE PT429 (HTTP 429 through PostgREST) when over the limit.';
