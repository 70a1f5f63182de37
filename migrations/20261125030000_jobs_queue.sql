-- jobs: the job queue. Adds public.job_kinds, public.jobs and the service-role
-- queue functions private.job_enqueue/claim/complete/fail/heartbeat/release/retry.
-- Why: exports, erasure, thumbnails, cleanups and AI calls run in workers. The
-- queue is Postgres (DESIGN principle 1): claims use `for update skip locked`
-- and a lease (locked_by, locked_until), so workers scale out and a worker
-- killed with SIGKILL loses nothing: its lease expires and another worker takes
-- the job. A failed job is retried with exponential backoff up to its kind's
-- max_attempts, then parked as 'dead' (kept, re-queueable), never dropped.
-- Job rows are in the realtime publication so a frontend sees its export finish.

-- == tables ==
create table public.job_kinds (
  kind text primary key check (kind ~ '^[a-z][a-z0-9_]{1,39}$'),
  description text not null default '',
  max_attempts integer not null default 5
    constraint job_kinds_max_attempts_positive check (max_attempts between 1 and 100),
  backoff_base interval not null default interval '10 seconds'
    constraint job_kinds_backoff_base_positive check (backoff_base > interval '0'),
  backoff_max interval not null default interval '1 hour'
    constraint job_kinds_backoff_max_not_below_base check (backoff_max >= backoff_base),
  user_enqueueable boolean not null default false,
  plan_limit_column text
    constraint job_kinds_plan_limit_column_format check (plan_limit_column ~ '^[a-z][a-z0-9_]{1,62}$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint job_kinds_user_kinds_have_a_limit check (not user_enqueueable or plan_limit_column is not null)
);

create trigger job_kinds_set_updated_at before update on public.job_kinds
  for each row execute function private.set_updated_at();

insert into public.job_kinds (kind, description, max_attempts, backoff_base, user_enqueueable, plan_limit_column)
values
  ('export', 'Archive of everything a user owns (data rights).', 5, interval '30 seconds', true, 'exports_per_day'),
  ('erasure', 'Erase an account and everything it owns.', 10, interval '30 seconds', false, null),
  ('thumbnail', 'WebP thumbnails of an uploaded image.', 3, interval '10 seconds', true, 'thumbnails_per_day'),
  ('room_export', 'Room canvas export to PDF and Markdown.', 3, interval '30 seconds', true, 'exports_per_day'),
  ('cleanup', 'Run cleanup tasks by name (payload {"tasks": [...]}).', 3, interval '1 minute', false, null),
  ('ai_request', 'A queued AI provider request.', 3, interval '5 seconds', false, null),
  ('metrics', 'Telemetry rollups (cron: every 6 hours).', 3, interval '1 minute', false, null),
  ('usage_report', 'Weekly usage summary stored as the job result.', 3, interval '1 minute', false, null),
  ('echo', 'Diagnostics: returns its payload; may sleep or fail on request.', 3, interval '1 second', false, null);

create table public.jobs (
  id uuid primary key default gen_random_uuid(),
  kind text not null references public.job_kinds (kind),
  payload jsonb not null default '{}'
    constraint jobs_payload_is_object check (jsonb_typeof(payload) = 'object')
    constraint jobs_payload_size check (pg_column_size(payload) <= 65536),
  owner_id uuid references auth.users (id) on delete cascade,
  priority integer not null default 0 constraint jobs_priority_range check (priority between -100 and 100),
  run_after timestamptz not null default now(),
  attempts integer not null default 0 constraint jobs_attempts_nonnegative check (attempts >= 0),
  max_attempts integer not null default 5 constraint jobs_max_attempts_positive check (max_attempts >= 1),
  status text not null default 'queued'
    constraint jobs_status_known check (status in ('queued', 'running', 'succeeded', 'failed', 'dead')),
  locked_by text,
  locked_until timestamptz,
  last_error text constraint jobs_last_error_length check (length(last_error) <= 4000),
  result jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  constraint jobs_running_has_lease check (
    (status = 'running') = (locked_by is not null and locked_until is not null)
  ),
  constraint jobs_finished_iff_terminal check (
    (status in ('succeeded', 'failed', 'dead')) = (finished_at is not null)
  )
);
-- Claim order: the next queued job by priority then due time.
create index jobs_queued_idx on public.jobs (priority desc, run_after, id) where status = 'queued';
-- Expired leases are found through this one.
create index jobs_running_lease_idx on public.jobs (locked_until) where status = 'running';
create index jobs_owner_id_created_at_idx on public.jobs (owner_id, created_at desc);
create index jobs_kind_idx on public.jobs (kind);
-- cleanup_jobs: finished jobs by age.
create index jobs_finished_at_idx on public.jobs (finished_at) where finished_at is not null;

create trigger jobs_set_updated_at before update on public.jobs
  for each row execute function private.set_updated_at();

-- Wake sleeping workers (LISTEN backline_jobs) when a job becomes claimable.
-- The payload is the kind; identical notifications in one transaction are
-- collapsed by Postgres, so a bulk enqueue sends one per kind.
create function private.jobs_notify() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if new.status = 'queued' and new.run_after <= now() then
    perform pg_notify('backline_jobs', new.kind);
  end if;
  return null;
end;
$$;
revoke execute on function private.jobs_notify() from public;

create trigger jobs_notify_insert after insert on public.jobs
  for each row execute function private.jobs_notify();
create trigger jobs_notify_requeue after update of status on public.jobs
  for each row when (new.status = 'queued' and old.status is distinct from 'queued')
  execute function private.jobs_notify();

-- == functions (schema private: not exposed) ==
create function private.job_enqueue(
  p_kind text, p_payload jsonb, p_owner uuid default null,
  p_run_after timestamptz default now(), p_priority integer default 0
) returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_max integer;
  v_id uuid;
begin
  select k.max_attempts into v_max from public.job_kinds k where k.kind = p_kind;
  if not found then
    raise exception 'unknown job kind: %', p_kind
      using errcode = '22023', hint = 'Kinds are rows of public.job_kinds.';
  end if;
  if p_payload is null or jsonb_typeof(p_payload) <> 'object' then
    raise exception 'job payload must be a JSON object'
      using errcode = '22023', hint = 'Pass {} when the job needs no input.';
  end if;
  insert into public.jobs (kind, payload, owner_id, run_after, priority, max_attempts)
  values (p_kind, p_payload, p_owner, coalesce(p_run_after, now()), coalesce(p_priority, 0), v_max)
  returning id into v_id;
  return v_id;
end;
$$;

-- Expired leases first: a job whose worker died goes back to the queue (or is
-- parked as dead when it already used all its attempts). Then the claim.
create function private.job_claim(p_worker text, p_kinds text[], p_limit integer, p_lease interval)
returns setof public.jobs
language plpgsql security definer set search_path = ''
as $$
begin
  if p_worker is null or length(p_worker) not between 1 and 200 then
    raise exception 'worker id must be 1-200 characters' using errcode = '22023';
  end if;
  if p_limit is null or p_limit not between 1 and 1000 then
    raise exception 'claim limit must be between 1 and 1000, got %', p_limit using errcode = '22023';
  end if;
  if p_lease is null or p_lease < interval '1 second' or p_lease > interval '1 day' then
    raise exception 'lease must be between 1 second and 1 day, got %', p_lease using errcode = '22023';
  end if;

  with expired as (
    select j.id from public.jobs j
     where j.status = 'running' and j.locked_until < now()
     order by j.locked_until
     limit 100
     for update skip locked
  )
  update public.jobs j
     set status = case when j.attempts >= j.max_attempts then 'dead' else 'queued' end,
         finished_at = case when j.attempts >= j.max_attempts then now() end,
         last_error = format('lease expired: worker %s stopped heartbeating (attempt %s of %s)',
                             j.locked_by, j.attempts, j.max_attempts),
         locked_by = null, locked_until = null
    from expired e
   where j.id = e.id;

  return query
  with next as (
    select j.id from public.jobs j
     where j.status = 'queued' and j.run_after <= now()
       and (p_kinds is null or cardinality(p_kinds) = 0 or j.kind = any (p_kinds))
     order by j.priority desc, j.run_after, j.id
     limit p_limit
     for update skip locked
  )
  update public.jobs j
     set status = 'running', locked_by = p_worker, locked_until = now() + p_lease,
         attempts = j.attempts + 1
    from next n
   where j.id = n.id
  returning j.*;
end;
$$;

-- Claim one given job (`backline cron run` runs the job it just enqueued
-- itself). Returns no row when the job is not queued or another worker has it.
create function private.job_claim_id(p_id uuid, p_worker text, p_lease interval)
returns setof public.jobs
language plpgsql security definer set search_path = ''
as $$
begin
  if p_lease is null or p_lease < interval '1 second' or p_lease > interval '1 day' then
    raise exception 'lease must be between 1 second and 1 day, got %', p_lease using errcode = '22023';
  end if;
  return query
  with one as (
    select j.id from public.jobs j where j.id = p_id and j.status = 'queued' for update skip locked
  )
  update public.jobs j
     set status = 'running', locked_by = p_worker, locked_until = now() + p_lease,
         attempts = j.attempts + 1
    from one o
   where j.id = o.id
  returning j.*;
end;
$$;

-- The caller must hold the lease; anything else means the lease was lost
-- (expired and taken by another worker): 55000, and nothing changes.
create function private.job_lease_lost(p_id uuid, p_worker text) returns void
language plpgsql set search_path = ''
as $$
declare
  v record;
begin
  select j.status, j.locked_by into v from public.jobs j where j.id = p_id;
  if not found then
    raise exception 'job % does not exist', p_id using errcode = 'P0002';
  end if;
  raise exception 'job % is not running under worker % (status %, locked by %)',
    p_id, p_worker, v.status, coalesce(v.locked_by, 'nobody')
    using errcode = '55000', hint = 'The lease expired and the job was re-queued or taken by another worker.';
end;
$$;

create function private.job_complete(p_id uuid, p_worker text, p_result jsonb default null)
returns timestamptz
language plpgsql security definer set search_path = ''
as $$
declare
  v_at timestamptz;
begin
  update public.jobs j
     set status = 'succeeded', result = p_result, finished_at = now(),
         locked_by = null, locked_until = null
   where j.id = p_id and j.status = 'running' and j.locked_by = p_worker
  returning j.finished_at into v_at;
  if not found then
    perform private.job_lease_lost(p_id, p_worker);
  end if;
  return v_at;
end;
$$;

-- Exponential backoff: base * 2^(attempts-1), capped at the kind's backoff_max.
-- p_retry = false parks the job as 'failed' at once (input that can never work).
create function private.job_fail(p_id uuid, p_worker text, p_error text, p_retry boolean default true)
returns text
language plpgsql security definer set search_path = ''
as $$
declare
  v_status text;
begin
  update public.jobs j
     set status = case when not coalesce(p_retry, true) then 'failed'
                       when j.attempts >= j.max_attempts then 'dead'
                       else 'queued' end,
         run_after = case when coalesce(p_retry, true) and j.attempts < j.max_attempts
                          then now() + least(k.backoff_max,
                                             k.backoff_base * power(2, least(j.attempts - 1, 30)))
                          else j.run_after end,
         finished_at = case when not coalesce(p_retry, true) or j.attempts >= j.max_attempts
                            then now() end,
         last_error = left(coalesce(nullif(p_error, ''), 'unknown error'), 4000),
         locked_by = null, locked_until = null
    from public.job_kinds k
   where j.id = p_id and j.status = 'running' and j.locked_by = p_worker and k.kind = j.kind
  returning j.status into v_status;
  if not found then
    perform private.job_lease_lost(p_id, p_worker);
  end if;
  return v_status;
end;
$$;

create function private.job_heartbeat(p_id uuid, p_worker text, p_lease interval)
returns timestamptz
language plpgsql security definer set search_path = ''
as $$
declare
  v_until timestamptz;
begin
  if p_lease is null or p_lease < interval '1 second' or p_lease > interval '1 day' then
    raise exception 'lease must be between 1 second and 1 day, got %', p_lease using errcode = '22023';
  end if;
  update public.jobs j set locked_until = now() + p_lease
   where j.id = p_id and j.status = 'running' and j.locked_by = p_worker
  returning j.locked_until into v_until;
  if not found then
    perform private.job_lease_lost(p_id, p_worker);
  end if;
  return v_until;
end;
$$;

-- A worker stopping (SIGTERM) hands a job it could not finish back to the
-- queue; the interrupted attempt does not count.
create function private.job_release(p_id uuid, p_worker text)
returns text
language plpgsql security definer set search_path = ''
as $$
begin
  update public.jobs j
     set status = 'queued', attempts = greatest(j.attempts - 1, 0), run_after = now(),
         locked_by = null, locked_until = null
   where j.id = p_id and j.status = 'running' and j.locked_by = p_worker;
  if not found then
    perform private.job_lease_lost(p_id, p_worker);
  end if;
  return 'queued';
end;
$$;

-- Operators re-queue a parked job (`backline jobs retry ID`): a fresh set of attempts.
create function private.job_retry(p_id uuid)
returns text
language plpgsql security definer set search_path = ''
as $$
declare
  v_status text;
begin
  select j.status into v_status from public.jobs j where j.id = p_id for update;
  if not found then
    raise exception 'job % does not exist', p_id using errcode = 'P0002';
  end if;
  if v_status not in ('dead', 'failed') then
    raise exception 'job % is %, only dead or failed jobs can be retried', p_id, v_status
      using errcode = '55000', hint = 'Queued and running jobs are already on their way.';
  end if;
  update public.jobs j
     set status = 'queued', attempts = 0, run_after = now(), finished_at = null, result = null
   where j.id = p_id;
  return 'queued';
end;
$$;

revoke execute on function private.job_enqueue(text, jsonb, uuid, timestamptz, integer) from public, anon, authenticated;
revoke execute on function private.job_claim(text, text[], integer, interval) from public, anon, authenticated;
revoke execute on function private.job_claim_id(uuid, text, interval) from public, anon, authenticated;
revoke execute on function private.job_lease_lost(uuid, text) from public, anon, authenticated;
revoke execute on function private.job_complete(uuid, text, jsonb) from public, anon, authenticated;
revoke execute on function private.job_fail(uuid, text, text, boolean) from public, anon, authenticated;
revoke execute on function private.job_heartbeat(uuid, text, interval) from public, anon, authenticated;
revoke execute on function private.job_release(uuid, text) from public, anon, authenticated;
revoke execute on function private.job_retry(uuid) from public, anon, authenticated;
grant execute on function private.job_enqueue(text, jsonb, uuid, timestamptz, integer) to service_role;
grant execute on function private.job_claim(text, text[], integer, interval) to service_role;
grant execute on function private.job_claim_id(uuid, text, interval) to service_role;
grant execute on function private.job_lease_lost(uuid, text) to service_role;
grant execute on function private.job_complete(uuid, text, jsonb) to service_role;
grant execute on function private.job_fail(uuid, text, text, boolean) to service_role;
grant execute on function private.job_heartbeat(uuid, text, interval) to service_role;
grant execute on function private.job_release(uuid, text) to service_role;
grant execute on function private.job_retry(uuid) to service_role;

-- == RPC wrappers for workers without a database URL ==
-- PostgREST exposes only `public`: these invoker wrappers let a worker holding
-- the service key call the queue over /rest/v1/rpc/<name> with the same
-- argument names. Executable by service_role only.
create function public.job_enqueue(
  p_kind text, p_payload jsonb, p_owner uuid default null,
  p_run_after timestamptz default now(), p_priority integer default 0
) returns uuid
language sql set search_path = ''
as $$ select private.job_enqueue(p_kind, p_payload, p_owner, p_run_after, p_priority) $$;

create function public.job_claim(p_worker text, p_kinds text[], p_limit integer, p_lease interval)
returns setof public.jobs
language sql set search_path = ''
as $$ select * from private.job_claim(p_worker, p_kinds, p_limit, p_lease) $$;

create function public.job_claim_id(p_id uuid, p_worker text, p_lease interval)
returns setof public.jobs
language sql set search_path = ''
as $$ select * from private.job_claim_id(p_id, p_worker, p_lease) $$;

create function public.job_complete(p_id uuid, p_worker text, p_result jsonb default null)
returns timestamptz
language sql set search_path = ''
as $$ select private.job_complete(p_id, p_worker, p_result) $$;

create function public.job_fail(p_id uuid, p_worker text, p_error text, p_retry boolean default true)
returns text
language sql set search_path = ''
as $$ select private.job_fail(p_id, p_worker, p_error, p_retry) $$;

create function public.job_heartbeat(p_id uuid, p_worker text, p_lease interval)
returns timestamptz
language sql set search_path = ''
as $$ select private.job_heartbeat(p_id, p_worker, p_lease) $$;

create function public.job_release(p_id uuid, p_worker text)
returns text
language sql set search_path = ''
as $$ select private.job_release(p_id, p_worker) $$;

create function public.job_retry(p_id uuid)
returns text
language sql set search_path = ''
as $$ select private.job_retry(p_id) $$;

revoke execute on function public.job_enqueue(text, jsonb, uuid, timestamptz, integer) from public, anon, authenticated;
revoke execute on function public.job_claim(text, text[], integer, interval) from public, anon, authenticated;
revoke execute on function public.job_claim_id(uuid, text, interval) from public, anon, authenticated;
revoke execute on function public.job_complete(uuid, text, jsonb) from public, anon, authenticated;
revoke execute on function public.job_fail(uuid, text, text, boolean) from public, anon, authenticated;
revoke execute on function public.job_heartbeat(uuid, text, interval) from public, anon, authenticated;
revoke execute on function public.job_release(uuid, text) from public, anon, authenticated;
revoke execute on function public.job_retry(uuid) from public, anon, authenticated;
grant execute on function public.job_enqueue(text, jsonb, uuid, timestamptz, integer) to service_role;
grant execute on function public.job_claim(text, text[], integer, interval) to service_role;
grant execute on function public.job_claim_id(uuid, text, interval) to service_role;
grant execute on function public.job_complete(uuid, text, jsonb) to service_role;
grant execute on function public.job_fail(uuid, text, text, boolean) to service_role;
grant execute on function public.job_heartbeat(uuid, text, interval) to service_role;
grant execute on function public.job_release(uuid, text) to service_role;
grant execute on function public.job_retry(uuid) to service_role;

-- == grants and row level security ==
grant select on public.job_kinds to anon, authenticated;
grant select, insert, update, delete on public.job_kinds to service_role;
alter table public.job_kinds enable row level security;

create policy "everyone reads job kinds" on public.job_kinds
  for select to anon, authenticated using (true);

-- Users read their own jobs (and see them change over Realtime). Enqueueing
-- is added by the next migration; claiming is service-role only.
grant select on public.jobs to authenticated;
grant select, insert, update, delete on public.jobs to service_role;
alter table public.jobs enable row level security;

create policy "users read their own jobs" on public.jobs
  for select to authenticated using (owner_id = (select auth.uid()));

alter publication supabase_realtime add table public.jobs;

-- == comments ==
comment on table public.job_kinds is
  'What kinds of background jobs exist, their retry policy and whether users may enqueue them.';
comment on column public.job_kinds.max_attempts is 'Attempts before a failing job is parked as dead.';
comment on column public.job_kinds.backoff_base is
  'Delay before the first retry; each further retry doubles it, up to backoff_max.';
comment on column public.job_kinds.user_enqueueable is
  'True when signed-in users may enqueue this kind for themselves (rpc enqueue_job).';
comment on column public.job_kinds.plan_limit_column is
  'Column of public.plans holding how many jobs of this kind a user may enqueue per 24 hours.';
comment on table public.jobs is
  'Background jobs. Users read their own (subscribe with Realtime to see status change); workers '
  'claim them with a lease. status: queued -> running -> succeeded | queued (retry) | dead | failed.';
comment on column public.jobs.payload is 'Input of the job, a JSON object (max 64 kB). Meaning depends on kind.';
comment on column public.jobs.run_after is 'Not claimed before this time (retries are pushed back by the backoff).';
comment on column public.jobs.attempts is 'Attempts started so far, including the running one.';
comment on column public.jobs.status is
  'queued, running, succeeded, failed (will not be retried), dead (all attempts used; an operator may retry).';
comment on column public.jobs.locked_by is 'Worker holding the lease while running.';
comment on column public.jobs.locked_until is 'Lease end; a running job past it is taken over by another worker.';
comment on column public.jobs.last_error is 'Message of the last failed attempt.';
comment on column public.jobs.result is 'What the job produced (e.g. {"url": ...} for an export), set on success.';
comment on function private.job_claim(text, text[], integer, interval) is
  'Claim up to p_limit due jobs of p_kinds (all kinds when null/empty) for p_lease; re-queues expired leases first.';
comment on function private.job_fail(uuid, text, text, boolean) is
  'Record a failed attempt: retry after exponential backoff, dead after max_attempts, failed at once when p_retry is false.';
