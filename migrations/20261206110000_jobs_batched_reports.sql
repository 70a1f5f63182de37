-- jobs: batched completion and failure (issue #16). Adds
-- private.job_complete_many and private.job_fail_many, and their service-role
-- RPC wrappers public.job_complete_many / public.job_fail_many.
-- Why: a worker used to record every finished job with its own statement and
-- round trip (one claim, then eight completes per eight jobs). Now one
-- statement records many finished jobs, each with its own result or error.
-- Every guarantee of job_complete/job_fail holds per job, not per batch: a job
-- is recorded only while p_worker still holds its lease (status running,
-- locked_by = p_worker); a job whose lease was lost is left unchanged and
-- simply missing from the answer, while the others of the batch are recorded.
-- So a succeeded result is written exactly once, retries keep their
-- exponential backoff (same formula as private.job_fail), and dead letters
-- happen at max_attempts. Bad input (no worker, arrays of different lengths,
-- null or repeated ids, more than 1000 jobs) is refused with 22023 (HTTP 400)
-- and changes nothing.

-- == functions (schema private: not exposed) ==
-- Argument checks shared by both; called by their owner only (no API role executes it).
create function private.job_check_batch(p_worker text, p_ids uuid[], p_values_length integer, p_what text)
returns void
language plpgsql immutable set search_path = ''
as $$
begin
  if p_worker is null or length(p_worker) not between 1 and 200 then
    raise exception 'worker id must be 1-200 characters'
      using errcode = '22023', hint = 'Pass the id the worker claimed its jobs with.';
  end if;
  if p_ids is null then
    raise exception 'job ids must be an array, got null'
      using errcode = '22023', hint = 'Pass an empty array when there is nothing to report.';
  end if;
  if cardinality(p_ids) > 1000 then
    raise exception 'at most 1000 jobs per call, got %', cardinality(p_ids)
      using errcode = '22023', hint = 'Report in smaller batches.';
  end if;
  if p_values_length is distinct from cardinality(p_ids) then
    raise exception '% must have one entry per job id: % ids, % %',
      p_what, cardinality(p_ids), coalesce(p_values_length, 0), p_what
      using errcode = '22023', hint = 'Entry i belongs to job id i (use null for "none").';
  end if;
  if array_position(p_ids, null) is not null then
    raise exception 'job ids must not be null (position %)', array_position(p_ids, null)
      using errcode = '22023', hint = 'Pass the ids of the jobs this worker claimed.';
  end if;
  if (select count(distinct i) from unnest(p_ids) i) <> cardinality(p_ids) then
    raise exception 'a job id appears more than once in one call'
      using errcode = '22023', hint = 'Report each job once.';
  end if;
end;
$$;

-- Record many successes. Returns the ids recorded (those p_worker still held);
-- an id not returned had lost its lease and was not changed.
create function private.job_complete_many(p_worker text, p_ids uuid[], p_results jsonb[] default null)
returns setof uuid
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.job_check_batch(p_worker, p_ids,
    case when p_results is null then cardinality(p_ids) else cardinality(p_results) end, 'results');
  return query
  with given as (
    select g.id, g.result
      from unnest(p_ids, coalesce(p_results, array_fill(null::jsonb, array[cardinality(p_ids)])))
           as g(id, result)
  )
  update public.jobs j
     set status = 'succeeded', result = g.result, finished_at = now(),
         locked_by = null, locked_until = null
    from given g
   where j.id = g.id and j.status = 'running' and j.locked_by = p_worker
  returning j.id;
end;
$$;

-- Record many failed attempts: per job a message and whether retrying can help.
-- Returns (id, new status) of the jobs recorded: queued (retry after
-- base * 2^(attempts-1), capped at backoff_max), dead (all attempts used) or
-- failed (p_retry false). An id not returned had lost its lease: unchanged.
create function private.job_fail_many(
  p_worker text, p_ids uuid[], p_errors text[], p_retry boolean[] default null
) returns table (id uuid, status text)
language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform private.job_check_batch(p_worker, p_ids, cardinality(p_errors), 'errors');
  if p_retry is not null and cardinality(p_retry) <> cardinality(p_ids) then
    raise exception 'retry flags must have one entry per job id: % ids, % flags',
      cardinality(p_ids), cardinality(p_retry)
      using errcode = '22023', hint = 'Pass null to retry every job that has attempts left.';
  end if;
  return query
  with given as (
    select g.id, g.error, coalesce(g.retry, true) as retry
      from unnest(p_ids, p_errors, coalesce(p_retry, array_fill(true, array[cardinality(p_ids)])))
           as g(id, error, retry)
  )
  update public.jobs j
     set status = case when not g.retry then 'failed'
                       when j.attempts >= j.max_attempts then 'dead'
                       else 'queued' end,
         run_after = case when g.retry and j.attempts < j.max_attempts
                          then now() + least(k.backoff_max,
                                             k.backoff_base * power(2, least(j.attempts - 1, 30)))
                          else j.run_after end,
         finished_at = case when not g.retry or j.attempts >= j.max_attempts then now() end,
         last_error = left(coalesce(nullif(g.error, ''), 'unknown error'), 4000),
         locked_by = null, locked_until = null
    from given g, public.job_kinds k
   where j.id = g.id and j.status = 'running' and j.locked_by = p_worker and k.kind = j.kind
  returning j.id, j.status;
end;
$$;

revoke execute on function private.job_check_batch(text, uuid[], integer, text)
  from public, anon, authenticated, service_role;
revoke execute on function private.job_complete_many(text, uuid[], jsonb[])
  from public, anon, authenticated, service_role;
revoke execute on function private.job_fail_many(text, uuid[], text[], boolean[])
  from public, anon, authenticated, service_role;
grant execute on function private.job_complete_many(text, uuid[], jsonb[]) to service_role;
grant execute on function private.job_fail_many(text, uuid[], text[], boolean[]) to service_role;

-- == RPC wrappers for workers without a database URL ==
-- Same argument names over /rest/v1/rpc/job_complete_many and /job_fail_many
-- (JSON arrays for the array arguments). Executable by service_role only.
create function public.job_complete_many(p_worker text, p_ids uuid[], p_results jsonb[] default null)
returns setof uuid
language sql set search_path = ''
as $$ select * from private.job_complete_many(p_worker, p_ids, p_results) $$;

create function public.job_fail_many(
  p_worker text, p_ids uuid[], p_errors text[], p_retry boolean[] default null
) returns table (id uuid, status text)
language sql set search_path = ''
as $$ select f.id, f.status from private.job_fail_many(p_worker, p_ids, p_errors, p_retry) f $$;

revoke execute on function public.job_complete_many(text, uuid[], jsonb[])
  from public, anon, authenticated, service_role;
revoke execute on function public.job_fail_many(text, uuid[], text[], boolean[])
  from public, anon, authenticated, service_role;
grant execute on function public.job_complete_many(text, uuid[], jsonb[]) to service_role;
grant execute on function public.job_fail_many(text, uuid[], text[], boolean[]) to service_role;

-- == comments ==
comment on function private.job_complete_many(text, uuid[], jsonb[]) is
  'Record many successes in one statement (result i for id i); returns the ids recorded. '
  'A job whose lease p_worker lost is left unchanged and not returned.';
comment on function private.job_fail_many(text, uuid[], text[], boolean[]) is
  'Record many failed attempts in one statement (error i, retry flag i for id i); returns (id, status) '
  'of those recorded: queued with backoff, dead after max_attempts, failed when retry is false.';
comment on function public.job_complete_many(text, uuid[], jsonb[]) is
  'Service role only: RPC form of private.job_complete_many for workers without a database URL.';
comment on function public.job_fail_many(text, uuid[], text[], boolean[]) is
  'Service role only: RPC form of private.job_fail_many for workers without a database URL.';
