-- Jobs functions pass `supabase db lint --level warning` (issue #15 item 5).
--   private.run_cleanup       returns the cleanup's rows through a FOR ... IN
--                             EXECUTE loop into its OUT column `item` instead of
--                             RETURN QUERY EXECUTE: the same rows in the same
--                             order, but plpgsql_check can see `item` is set
--                             ("OUT variable "item" is maybe unmodified").
--                             From 20261206090100_security_http_statuses.sql.
--   private.cron_parse_field  its '{}' initialiser cast to integer[] explicitly
--                             ("target type is different type than source type").
--                             From 20261206100000_jobs_cron_schedule_edits.sql.
-- Otherwise the latest definitions unchanged; `create or replace` keeps grants.

create or replace function private.run_cleanup(p_task text, p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql set search_path = ''
as $$
declare
  v_function text;
begin
  select c.function_name into v_function from private.list_cleanups() c where c.task = p_task;
  if v_function is null then
    raise exception 'no cleanup task named %', p_task
      using errcode = 'PT404', hint = 'Tasks are the private.cleanup_* functions; see list_cleanups().';
  end if;
  -- Row by row into the OUT column, so plpgsql_check sees `item` set (with
  -- `return query execute` it cannot, and warns that it may be unmodified).
  for item in execute format('select t.item from private.%I($1, $2) t', 'cleanup_' || p_task)
    using p_batch_size, coalesce(p_dry_run, false)
  loop
    return next;
  end loop;
end;
$$;

create or replace function private.cron_parse_field(
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
  v_values integer[] := '{}'::integer[];
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
