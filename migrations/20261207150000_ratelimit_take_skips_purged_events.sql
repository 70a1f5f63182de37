-- ratelimit: a take deletes only the events that left the window since the key's
-- previous take, instead of walking every old event of the key.
-- Why: private.rate_limit_take deleted `key = p_key and at <= cutoff`. Deleted rows
-- stay in the table and in its (key, at) index until vacuum, and that range starts
-- at the key's oldest entry, so every take walked all the entries its key's earlier
-- takes had deleted since the last vacuum; for a hot key (one busy user, a
-- service key, the AI benchmark's single client) the planner's generic plan even
-- chose a sequential scan of the whole table. A take's cost grew between two
-- vacuums: in three 6 s runs of AI admissions and settlements on one connection,
-- alternating with this change, the take's own time rose from 131 to 319 to
-- 517 us per call (server CPU per call 0.66, 0.84, 1.05 ms); with the change it
-- stayed at 52-54 us (0.55-0.58 ms) (docs/benchmarks.md, issue #17).
--
-- New: private.rate_limit_counts.purged_until, the cutoff of the key's last take
-- that deleted. Every event of the key at or before it has been deleted, so the
-- next take deletes `at > purged_until and at <= cutoff`: the index goes straight
-- to the first live entry. That holds because only takes insert events, each at
-- its own now, which is later than the cutoff it records, and takes of one key
-- serialize on the key's advisory lock. A take whose cutoff is earlier than
-- purged_until (a longer window than before, or the clock stepped back) and a
-- key without a counter row delete from the key's beginning, as before, and then
-- record their cutoff. The purge and the cleanup delete old events and leave
-- purged_until alone: deleting events never breaks what it promises.
-- The bound is read inside the delete (one statement, not a select before it):
-- bench/ratelimit_take.py, us per take before -> after: hot key 42.7-44.7 ->
-- 23.4-23.5, the other scenarios within 2 us. A refusal's retry time is read as
-- before.
--
-- Window, counter, refusals and retry times are unchanged
-- (tests/ratelimit/test_counts.py, tests/ratelimit/test_ratelimit.py).
-- Redefines private.rate_limit_take (latest: 20261207130000); signature, grants
-- and comment are unchanged.

-- == tables ==
alter table private.rate_limit_counts add column purged_until timestamptz;

comment on column private.rate_limit_counts.purged_until is
  'The cutoff (now - window) of the key''s last take that deleted expired events: no event of the key is at '
  'or before it, so the next take deletes only later ones. Null: delete from the key''s first event.';

-- == functions (schema private: not exposed) ==
create or replace function private.rate_limit_take(
  p_key text, p_limit integer, p_window interval, p_cost integer default 1
) returns table (allowed boolean, remaining integer, retry_after_seconds integer)
language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz;
  v_cutoff timestamptz;
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
  v_cutoff := v_now - p_window;
  -- From the key's last cutoff (only takes write it, under the lock this take holds), or
  -- from its first event when there is none or it is later than this take's cutoff.
  with gone as (
    delete from private.rate_limit_events e
     where e.key = p_key and e.at <= v_cutoff
       and e.at > coalesce((select c.purged_until from private.rate_limit_counts c
                             where c.key = p_key and c.purged_until <= v_cutoff), '-infinity')
    returning 1
  )
  select count(*)::integer into v_gone from gone;
  -- Read after the delete, in a new snapshot: a purge that deleted some of the same rows
  -- (this delete waited for it) has lowered the counter by them already.
  select c.used into v_had from private.rate_limit_counts c where c.key = p_key;
  if found then
    v_used := v_had - v_gone;
  else
    -- First take since the key's counter was removed: count once.
    select count(*)::integer into v_used from private.rate_limit_events e where e.key = p_key;
  end if;

  if v_used + p_cost > p_limit then
    if v_had is null then
      insert into private.rate_limit_counts (key, used, purged_until) values (p_key, v_used, v_cutoff);
    elsif v_gone > 0 then
      update private.rate_limit_counts c set used = c.used - v_gone, purged_until = v_cutoff
       where c.key = p_key;
    end if;
    -- Room opens when the (v_used + p_cost - p_limit)-th oldest counted request leaves the window.
    select e.at into v_oldest from private.rate_limit_events e
     where e.key = p_key
     order by e.at offset greatest(v_used + p_cost - p_limit - 1, 0) limit 1;
    return query select false, greatest(p_limit - v_used, 0),
      greatest(1, ceil(extract(epoch from (coalesce(v_oldest, v_now) + p_window - v_now)))::integer);
    return;
  end if;

  with counted as (
    insert into private.rate_limit_events (key, at)
      select p_key, v_now from generate_series(1, p_cost)
  )
  insert into private.rate_limit_counts as c (key, used, purged_until) values (p_key, v_used + p_cost, v_cutoff)
    on conflict (key) do update set used = c.used - v_gone + p_cost, purged_until = v_cutoff;
  return query select true, p_limit - v_used - p_cost, 0;
end;
$$;
