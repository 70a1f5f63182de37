-- jobs: a job handed back on shutdown keeps its place in the queue (issue #18).
-- Redefines private.job_release (latest definition: migration
-- 20261125030000_jobs_queue.sql) without `run_after = now()`.
-- Why: `backline workers run` hands running jobs back on SIGTERM after the
-- drain time. Setting run_after to now() sent the oldest job to the back of the
-- queue (job_claim orders by priority, run_after, id), behind every job enqueued
-- while it ran. Now it keeps its original run_after (its enqueue time, or the
-- retry time its backoff chose) and is claimed before newer jobs. The attempt
-- is still not counted. `create or replace` keeps its privileges (service_role).

-- == functions ==
create or replace function private.job_release(p_id uuid, p_worker text)
returns text
language plpgsql security definer set search_path = ''
as $$
begin
  update public.jobs j
     set status = 'queued', attempts = greatest(j.attempts - 1, 0),
         locked_by = null, locked_until = null
   where j.id = p_id and j.status = 'running' and j.locked_by = p_worker;
  if not found then
    perform private.job_lease_lost(p_id, p_worker);
  end if;
  return 'queued';
end;
$$;

-- == comments ==
comment on function private.job_release(uuid, text) is
  'Worker shutdown: hand a running job back (attempt not counted), keeping its run_after so it keeps its place.';
