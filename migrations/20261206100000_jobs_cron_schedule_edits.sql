-- jobs: schedules follow their edits (issue #18).
-- Adds private.cron_next_after (the cron expression evaluator of
-- workers/cron/expr.py, in SQL), a trigger that recomputes
-- private.cron_schedules.next_run_at whenever a schedule's expression or its
-- enabled flag changes, and private.cron_set_schedule (+ a service-role RPC
-- wrapper) behind `backline cron set NAME EXPR`.
-- Why: next_run_at was computed by the workers only while it was null, so
-- `update private.cron_schedules set schedule = '* * * * *'` kept the old next
-- run (days away) and nothing fired; `backline cron list` showed the new
-- expression beside the stale time. Now the database computes the next run in
-- the same statement as the edit, so an edit to "every minute" fires within the
-- minute, a bad expression is refused (SQLSTATE 22023, nothing changed), a
-- disabled schedule has no next run (and cron_fire already refuses disabled
-- rows), and re-enabling it starts from now instead of firing a stale run.
-- The workers still compute times in Python for each fire; both evaluators are
-- tested against each other (tests/cron/test_cron_edits.py).

-- == functions ==
-- One field of a 5-field expression: `*`, n, a-b, */n, a-b/n, a/n, lists, names.
create function private.cron_parse_field(
  p_text text, p_what text, p_low integer, p_high integer, p_names text[] default '{}', p_name_base integer default 0
) returns integer[]
language plpgsql immutable set search_path = ''
as $$
declare
  v_part text;
  v_base text;
  v_step_text text;
  v_step integer;
  v_start integer;
  v_end integer;
  v_bounds integer[];
  v_piece text;
  v_value integer;
  v_values integer[] := '{}';
begin
  foreach v_part in array string_to_array(p_text, ',') loop
    if v_part = '' then
      raise exception 'cron %: empty list item in %', p_what, quote_literal(p_text)
        using errcode = '22023', hint = 'Use 5 fields: minute hour day-of-month month day-of-week (UTC).';
    end if;
    v_base := split_part(v_part, '/', 1);
    v_step_text := nullif(substr(v_part, length(v_base) + 2), '');
    v_step := 1;
    if v_step_text is not null then  -- as in Python, a trailing '/' alone means no step
      if v_step_text !~ '^[0-9]{1,9}$' or v_step_text::integer = 0 then
        raise exception 'cron %: bad step %', p_what, quote_literal(v_step_text)
          using errcode = '22023', hint = 'A step is a positive number: */5, 1-30/2.';
      end if;
      v_step := v_step_text::integer;
    end if;
    v_bounds := '{}';
    if v_base = '*' then
      v_start := p_low;
      v_end := p_high;
    else
      foreach v_piece in array case when position('-' in v_base) > 0
                                    then array[split_part(v_base, '-', 1), substr(v_base, position('-' in v_base) + 1)]
                                    else array[v_base] end loop
        v_value := array_position(p_names, lower(v_piece));
        if v_value is not null then
          v_value := v_value - 1 + p_name_base;
        elsif v_piece ~ '^[0-9]{1,9}$' then
          v_value := v_piece::integer;
        else
          raise exception 'cron %: % is not a number', p_what, quote_literal(v_piece)
            using errcode = '22023', hint = 'Use 5 fields: minute hour day-of-month month day-of-week (UTC).';
        end if;
        if v_value not between p_low and p_high then
          raise exception 'cron %: % is outside %-%', p_what, v_value, p_low, p_high
            using errcode = '22023', hint = 'Use 5 fields: minute hour day-of-month month day-of-week (UTC).';
        end if;
        v_bounds := v_bounds || v_value;
      end loop;
      v_start := v_bounds[1];
      if cardinality(v_bounds) = 2 then
        v_end := v_bounds[2];
        if v_start > v_end then
          raise exception 'cron %: range % runs backwards', p_what, quote_literal(v_base)
            using errcode = '22023', hint = 'Write ranges low-high.';
        end if;
      elsif v_step_text is not null then
        v_end := p_high;
      else
        v_end := v_start;
      end if;
    end if;
    v_values := v_values || array(select generate_series(v_start, v_end, v_step));
  end loop;
  return array(select distinct v from unnest(v_values) v order by v);
end;
$$;

-- The first matching minute strictly after p_after (UTC), as workers.cron.expr.CronExpr.next_after.
-- Raises 22023 for an expression that does not parse or never fires (within 5 years).
create function private.cron_next_after(p_schedule text, p_after timestamptz)
returns timestamptz
language plpgsql stable set search_path = ''
as $$
declare
  v_text text := btrim(coalesce(p_schedule, ''));
  v_parts text[];
  v_minutes integer[];
  v_hours integer[];
  v_days integer[];
  v_months integer[];
  v_weekdays integer[];
  v_days_restricted boolean;
  v_weekdays_restricted boolean;
  v_start timestamp;
  v_day timestamp;
  v_dom boolean;
  v_dow boolean;
  v_hour integer;
  v_minute integer;
  v_candidate timestamp;
begin
  v_text := case lower(v_text)
    when '@hourly' then '0 * * * *' when '@daily' then '0 0 * * *' when '@midnight' then '0 0 * * *'
    when '@weekly' then '0 0 * * 0' when '@monthly' then '0 0 1 * *' when '@yearly' then '0 0 1 1 *'
    when '@annually' then '0 0 1 1 *' else v_text end;
  v_parts := case when v_text = '' then '{}'::text[] else regexp_split_to_array(v_text, '\s+') end;
  if cardinality(v_parts) <> 5 then
    raise exception 'cron expression % needs 5 fields (minute hour day-of-month month day-of-week), got %',
      quote_literal(coalesce(p_schedule, '')), cardinality(v_parts)
      using errcode = '22023', hint = 'For example */5 * * * * (every five minutes, UTC).';
  end if;
  if p_after is null then
    raise exception 'a start time is required' using errcode = '22023';
  end if;
  v_minutes := private.cron_parse_field(v_parts[1], 'minute', 0, 59);
  v_hours := private.cron_parse_field(v_parts[2], 'hour', 0, 23);
  v_days := private.cron_parse_field(v_parts[3], 'day of month', 1, 31);
  v_months := private.cron_parse_field(v_parts[4], 'month', 1, 12,
    '{jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec}', 1);
  v_weekdays := array(select distinct d % 7 from unnest(private.cron_parse_field(v_parts[5], 'day of week', 0, 7,
    '{sun,mon,tue,wed,thu,fri,sat}', 0)) d);
  v_days_restricted := v_parts[3] <> '*';
  v_weekdays_restricted := v_parts[5] <> '*';

  v_start := date_trunc('minute', p_after at time zone 'UTC') + interval '1 minute';
  v_day := date_trunc('day', v_start);
  for i in 1 .. 366 * 5 loop
    if extract(month from v_day)::integer = any (v_months) then
      v_dom := extract(day from v_day)::integer = any (v_days);
      v_dow := extract(dow from v_day)::integer = any (v_weekdays);
      if (v_days_restricted and v_weekdays_restricted and (v_dom or v_dow))
         or (not (v_days_restricted and v_weekdays_restricted) and v_dom and v_dow) then
        foreach v_hour in array v_hours loop
          foreach v_minute in array v_minutes loop
            v_candidate := v_day + make_interval(hours => v_hour, mins => v_minute);
            if v_candidate >= v_start then
              return v_candidate at time zone 'UTC';
            end if;
          end loop;
        end loop;
      end if;
    end if;
    v_day := v_day + interval '1 day';
  end loop;
  raise exception 'cron expression % never fires', quote_literal(p_schedule)
    using errcode = '22023', hint = 'Check the day of month against the month (e.g. 30 2 never exists).';
end;
$$;

-- The trigger: a new or edited expression gets its next run now; disabling clears it,
-- re-enabling starts from now (a run missed while disabled is not fired late).
create function private.cron_schedules_follow_edits()
returns trigger
language plpgsql set search_path = ''
as $$
begin
  if not new.enabled then
    -- Still validate the expression: a disabled schedule must be valid when enabled later.
    perform private.cron_next_after(new.schedule, now());
    new.next_run_at := null;
  elsif tg_op = 'INSERT' then
    new.next_run_at := coalesce(new.next_run_at, private.cron_next_after(new.schedule, now()));
  else
    new.next_run_at := private.cron_next_after(new.schedule, now());
  end if;
  return new;
end;
$$;

create trigger cron_schedules_follow_edits_on_insert before insert on private.cron_schedules
  for each row execute function private.cron_schedules_follow_edits();
create trigger cron_schedules_follow_edits_on_update before update of schedule, enabled on private.cron_schedules
  for each row when (old.schedule is distinct from new.schedule or old.enabled is distinct from new.enabled)
  execute function private.cron_schedules_follow_edits();

-- `backline cron set NAME EXPR [--enable|--disable]`: change a schedule; returns the row as
-- private.cron_list does (next_run_at recomputed by the trigger).
create function private.cron_set_schedule(p_name text, p_schedule text, p_enabled boolean default null)
returns setof private.cron_schedules
language plpgsql security definer set search_path = ''
as $$
begin
  if p_schedule is null and p_enabled is null then
    raise exception 'nothing to change: give an expression and/or enabled' using errcode = '22023';
  end if;
  return query
    update private.cron_schedules s
       set schedule = coalesce(btrim(p_schedule), s.schedule), enabled = coalesce(p_enabled, s.enabled)
     where s.name = p_name
    returning s.*;
  if not found then
    raise exception 'no cron schedule named %', coalesce(p_name, 'null')
      using errcode = 'PT404', hint = 'List them with `backline cron list`.';
  end if;
end;
$$;

create function public.cron_set_schedule(p_name text, p_schedule text, p_enabled boolean default null)
returns table (name text, schedule text, job_kind text, payload jsonb, description text, enabled boolean,
               next_run_at timestamptz, last_run_at timestamptz, last_job_id uuid)
language sql set search_path = ''
as $$
  select s.name, s.schedule, s.job_kind, s.payload, s.description, s.enabled,
         s.next_run_at, s.last_run_at, s.last_job_id
    from private.cron_set_schedule(p_name, p_schedule, p_enabled) s
$$;

-- == grants ==
revoke execute on function private.cron_parse_field(text, text, integer, integer, text[], integer)
  from public, anon, authenticated, service_role;
revoke execute on function private.cron_next_after(text, timestamptz) from public, anon, authenticated, service_role;
grant execute on function private.cron_next_after(text, timestamptz) to service_role;
revoke execute on function private.cron_schedules_follow_edits() from public, anon, authenticated, service_role;
revoke execute on function private.cron_set_schedule(text, text, boolean) from public, anon, authenticated, service_role;
grant execute on function private.cron_set_schedule(text, text, boolean) to service_role;
revoke execute on function public.cron_set_schedule(text, text, boolean) from public, anon, authenticated, service_role;
grant execute on function public.cron_set_schedule(text, text, boolean) to service_role;

-- Schedules no worker has seen yet get their next run now (enabled ones), disabled ones none.
update private.cron_schedules s set next_run_at = private.cron_next_after(s.schedule, now())
 where s.enabled and s.next_run_at is null;
update private.cron_schedules s set next_run_at = null where not s.enabled;

-- == comments ==
comment on function private.cron_next_after(text, timestamptz) is
  'First minute matching a 5-field cron expression (UTC) strictly after the given time; 22023 if invalid or never.';
comment on function private.cron_set_schedule(text, text, boolean) is
  '`backline cron set`: change a schedule''s expression and/or enabled flag; next_run_at follows at once.';
comment on function public.cron_set_schedule(text, text, boolean) is
  'Service role RPC: change a cron schedule (see private.cron_set_schedule).';
comment on column private.cron_schedules.next_run_at is
  'When the next run is due. Recomputed by the database whenever schedule or enabled changes (null while disabled); advanced by the workers at each fire.';
