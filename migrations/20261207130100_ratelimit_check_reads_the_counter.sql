-- ratelimit: the read-only window check reads the per-key counter first.
-- Why: private.rate_limit_check is what the API hook runs for a read when
-- the meter session is not available (a READ ONLY transaction cannot take a
-- slot), and it counted the key's events in the window on every read, so its
-- cost grew with the window like rate_limit_take's did.
--
-- The counter (private.rate_limit_counts, 20261207130000) holds every event
-- row of the key, expired ones not yet deleted included, so it is never
-- below the number in the window: when it is under the limit the window is
-- too, and the request passes without counting. Only a key whose counter is
-- at or over the limit (or has no counter row yet) is counted exactly, as
-- before, so the check refuses exactly what it refused.
--
-- Redefines private.rate_limit_check (latest: 20261125010300); signature,
-- volatility, grants and comment are unchanged.

create or replace function private.rate_limit_check(p_key text, p_limit integer, p_window interval) returns void
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_used integer;
  v_oldest timestamptz;
  v_retry integer;
begin
  if (select c.used from private.rate_limit_counts c where c.key = p_key) < p_limit then
    return;
  end if;
  select count(*)::integer, min(e.at) into v_used, v_oldest
    from private.rate_limit_events e where e.key = p_key and e.at > clock_timestamp() - p_window;
  if v_used >= p_limit then
    v_retry := greatest(1, ceil(extract(epoch from (v_oldest + p_window - clock_timestamp())))::integer);
    raise sqlstate 'PT429' using
      message = format('rate limit exceeded: at most %s per %s; retry in %s seconds', p_limit, p_window, v_retry),
      detail = format('retry_after_seconds=%s', v_retry),
      hint = format('Retry after %s seconds.', v_retry);
  end if;
end;
$$;
