-- jobs: cron schedule definitions and their exactly-once firing state.
-- Adds private.cron_schedules and private.cron_fire / cron_set_next /
-- cron_run_now (+ service-role RPC wrappers).
-- Why: schedules live in one place (this table: name, 5-field cron
-- expression in UTC, job kind, payload). Several `backline workers run`
-- processes may tick at once; firing is a compare-and-set on next_run_at in
-- the same transaction as the enqueue, so each due run becomes exactly one
-- job. Cron expressions are parsed by the workers (workers/cron), which pass
-- the next due time in; the database only keeps state.

-- == tables ==
create table private.cron_schedules (
  name text primary key check (name ~ '^[a-z][a-z0-9-]{1,39}$'),
  schedule text not null check (length(schedule) between 9 and 100),
  job_kind text not null references public.job_kinds (kind),
  payload jsonb not null default '{}' check (jsonb_typeof(payload) = 'object'),
  description text not null default '',
  enabled boolean not null default true,
  next_run_at timestamptz,
  last_run_at timestamptz,
  last_job_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index cron_schedules_job_kind_idx on private.cron_schedules (job_kind);

create trigger cron_schedules_set_updated_at before update on private.cron_schedules
  for each row execute function private.set_updated_at();

insert into private.cron_schedules (name, schedule, job_kind, payload, description) values
  ('privacy-cleanup', '0 2 * * *', 'cleanup', '{"tasks": "all", "exclude": ["orphaned_files", "jobs"]}',
   'Every retention cleanup: expired links and invites, inactive anonymous users, tombstones, telemetry, ...'),
  ('orphaned-files', '0 2 * * *', 'cleanup', '{"tasks": ["orphaned_files"]}',
   'Storage objects nothing refers to, older than the grace period.'),
  ('metrics', '0 */6 * * *', 'metrics', '{}', 'Telemetry rollups.'),
  ('usage-report', '0 3 * * 1', 'usage_report', '{}', 'Weekly usage summary (Mondays 03:00 UTC).'),
  ('jobs-cleanup', '30 3 * * *', 'cleanup', '{"tasks": ["jobs", "rate_limit_events"]}',
   'Finished jobs past their retention and stale rate limiter rows.');

-- == functions (schema private: not exposed) ==
-- Fire the run due at p_due: advance next_run_at to p_next and enqueue the
-- job, only if nobody else did (next_run_at still equals p_due, and it is due).
create function private.cron_fire(p_name text, p_due timestamptz, p_next timestamptz)
returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_schedule private.cron_schedules;
  v_job uuid;
begin
  if p_next is null or p_due is null or p_next <= p_due then
    raise exception 'next run must be after the due run' using errcode = '22023';
  end if;
  update private.cron_schedules s
     set next_run_at = p_next, last_run_at = now()
   where s.name = p_name and s.enabled and s.next_run_at = p_due and p_due <= now()
  returning s.* into v_schedule;
  if not found then
    return null;
  end if;
  v_job := private.job_enqueue(v_schedule.job_kind,
                               v_schedule.payload || jsonb_build_object('schedule', p_name));
  update private.cron_schedules s set last_job_id = v_job where s.name = p_name;
  return v_job;
end;
$$;

-- Set next_run_at when it is still p_expected (null on first start, or after
-- the expression changed). Returns whether this caller set it.
create function private.cron_set_next(p_name text, p_expected timestamptz, p_next timestamptz)
returns boolean
language plpgsql security definer set search_path = ''
as $$
begin
  update private.cron_schedules s set next_run_at = p_next
   where s.name = p_name and s.next_run_at is not distinct from p_expected;
  return found;
end;
$$;

-- `backline cron run NAME`: enqueue the schedule's job for the caller to claim
-- by id and run at once (next_run_at unchanged). It is due only a minute later
-- so a running worker fleet does not grab it first; if the caller dies before
-- claiming it, a worker runs it then: nothing is lost.
create function private.cron_run_now(p_name text)
returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_schedule private.cron_schedules;
  v_job uuid;
begin
  select * into v_schedule from private.cron_schedules s where s.name = p_name;
  if not found then
    raise exception 'no cron schedule named %', p_name
      using errcode = 'P0002', hint = 'List them with `backline cron list`.';
  end if;
  v_job := private.job_enqueue(v_schedule.job_kind,
                               v_schedule.payload || jsonb_build_object('schedule', p_name, 'manual', true),
                               null, now() + interval '1 minute', 10);
  update private.cron_schedules s set last_run_at = now(), last_job_id = v_job where s.name = p_name;
  return v_job;
end;
$$;

create function private.cron_list()
returns setof private.cron_schedules
language sql stable security definer set search_path = ''
as $$ select * from private.cron_schedules order by name $$;

revoke execute on function private.cron_fire(text, timestamptz, timestamptz) from public, anon, authenticated;
revoke execute on function private.cron_set_next(text, timestamptz, timestamptz) from public, anon, authenticated;
revoke execute on function private.cron_run_now(text) from public, anon, authenticated;
revoke execute on function private.cron_list() from public, anon, authenticated;
grant execute on function private.cron_fire(text, timestamptz, timestamptz) to service_role;
grant execute on function private.cron_set_next(text, timestamptz, timestamptz) to service_role;
grant execute on function private.cron_run_now(text) to service_role;
grant execute on function private.cron_list() to service_role;

-- == RPC wrappers (service role only; for workers without a database URL) ==
create function public.cron_fire(p_name text, p_due timestamptz, p_next timestamptz)
returns uuid
language sql set search_path = ''
as $$ select private.cron_fire(p_name, p_due, p_next) $$;

create function public.cron_set_next(p_name text, p_expected timestamptz, p_next timestamptz)
returns boolean
language sql set search_path = ''
as $$ select private.cron_set_next(p_name, p_expected, p_next) $$;

create function public.cron_run_now(p_name text)
returns uuid
language sql set search_path = ''
as $$ select private.cron_run_now(p_name) $$;

create function public.cron_list()
returns table (name text, schedule text, job_kind text, payload jsonb, description text, enabled boolean,
               next_run_at timestamptz, last_run_at timestamptz, last_job_id uuid)
language sql stable set search_path = ''
as $$
  select s.name, s.schedule, s.job_kind, s.payload, s.description, s.enabled,
         s.next_run_at, s.last_run_at, s.last_job_id
    from private.cron_list() s
$$;

revoke execute on function public.cron_fire(text, timestamptz, timestamptz) from public, anon, authenticated;
revoke execute on function public.cron_set_next(text, timestamptz, timestamptz) from public, anon, authenticated;
revoke execute on function public.cron_run_now(text) from public, anon, authenticated;
revoke execute on function public.cron_list() from public, anon, authenticated;
grant execute on function public.cron_fire(text, timestamptz, timestamptz) to service_role;
grant execute on function public.cron_set_next(text, timestamptz, timestamptz) to service_role;
grant execute on function public.cron_run_now(text) to service_role;
grant execute on function public.cron_list() to service_role;

-- == grants and row level security ==
grant select, insert, update, delete on private.cron_schedules to service_role;
alter table private.cron_schedules enable row level security;

-- == comments ==
comment on table private.cron_schedules is
  'Cron schedules (UTC, 5-field expressions). Each due run is enqueued exactly once as a job of job_kind.';
comment on column private.cron_schedules.next_run_at is
  'When the next run is due; set by the workers from the expression. Null until a worker first sees it.';
