-- jobs: cleanup tasks of the queue and of the foundation's rate limiter, and
-- the dispatcher every cleanup runs through.
-- Adds private.cleanup_jobs, private.cleanup_rate_limit_events,
-- private.list_cleanups() and private.run_cleanup() (+ service-role RPC wrappers).
-- Why: every module's cleanup is a function private.cleanup_<what>(p_batch_size,
-- p_dry_run) returning one line per item; the runner finds them in the
-- catalog and calls each in bounded batches, one short transaction per batch.
-- list_cleanups/run_cleanup do that discovery and call in SQL so the runner
-- works the same over a database URL and over RPC.

-- == functions (schema private: not exposed) ==
-- Succeeded jobs are kept 7 days (a frontend may still show the result);
-- failed and dead jobs 30 days (operators look into them).
create function private.cleanup_jobs(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql security definer set search_path = ''
as $$
begin
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'batch size must be positive' using errcode = '22023';
  end if;
  if p_dry_run then
    return query
      select format('job %s (%s, %s, finished %s)', j.id, j.kind, j.status, j.finished_at)
        from public.jobs j
       where (j.status = 'succeeded' and j.finished_at < now() - interval '7 days')
          or (j.status in ('failed', 'dead') and j.finished_at < now() - interval '30 days')
       order by j.finished_at
       limit p_batch_size;
    return;
  end if;
  return query
    with victims as (
      select j.id from public.jobs j
       where (j.status = 'succeeded' and j.finished_at < now() - interval '7 days')
          or (j.status in ('failed', 'dead') and j.finished_at < now() - interval '30 days')
       order by j.finished_at
       limit p_batch_size
       for update skip locked
    ), gone as (
      delete from public.jobs j using victims v where j.id = v.id
      returning j.id, j.kind, j.status, j.finished_at
    )
    select format('job %s (%s, %s, finished %s)', g.id, g.kind, g.status, g.finished_at) from gone g;
end;
$$;

-- The batched form of private.rate_limit_purge: counted requests older than
-- 2 days (longer than any limiter window in use: 24 hours for jobs).
create function private.cleanup_rate_limit_events(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql security definer set search_path = ''
as $$
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
  return query
    with victims as (
      select e.id from private.rate_limit_events e
       where e.at < clock_timestamp() - interval '2 days'
       order by e.at
       limit p_batch_size
       for update skip locked
    ), gone as (
      delete from private.rate_limit_events e using victims v where e.id = v.id
      returning e.id, e.key, e.at
    )
    select format('rate limit event %s (%s at %s)', g.id, g.key, g.at) from gone g;
end;
$$;

revoke execute on function private.cleanup_jobs(integer, boolean) from public, anon, authenticated;
revoke execute on function private.cleanup_rate_limit_events(integer, boolean) from public, anon, authenticated;
grant execute on function private.cleanup_jobs(integer, boolean) to service_role;
grant execute on function private.cleanup_rate_limit_events(integer, boolean) to service_role;

-- Every cleanup task in the catalog: private.cleanup_<task>(integer, boolean)
-- returning table (item text). The task name is the part after cleanup_.
create function private.list_cleanups()
returns table (task text, function_name text, description text)
language sql stable set search_path = ''
as $$
  select substr(p.proname, length('cleanup_') + 1), 'private.' || p.proname,
         coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'private'
     and p.proname like 'cleanup\_%'
     and p.pronargs = 2
     and p.proargtypes[0] = 'pg_catalog.int4'::pg_catalog.regtype
     and p.proargtypes[1] = 'pg_catalog.bool'::pg_catalog.regtype
     and p.proretset
     and pg_catalog.pg_get_function_result(p.oid) = 'TABLE(item text)'
   order by p.proname
$$;

-- One batch of one task, as the caller (the service role or an operator).
create function private.run_cleanup(p_task text, p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql set search_path = ''
as $$
declare
  v_function text;
begin
  select c.function_name into v_function from private.list_cleanups() c where c.task = p_task;
  if v_function is null then
    raise exception 'no cleanup task named %', p_task
      using errcode = 'P0002', hint = 'Tasks are the private.cleanup_* functions; see list_cleanups().';
  end if;
  return query execute format('select t.item from private.%I($1, $2) t', 'cleanup_' || p_task)
    using p_batch_size, coalesce(p_dry_run, false);
end;
$$;

revoke execute on function private.list_cleanups() from public, anon, authenticated;
revoke execute on function private.run_cleanup(text, integer, boolean) from public, anon, authenticated;
grant execute on function private.list_cleanups() to service_role;
grant execute on function private.run_cleanup(text, integer, boolean) to service_role;

-- == RPC wrappers (service role only; for workers without a database URL) ==
create function public.list_cleanups()
returns table (task text, function_name text, description text)
language sql stable set search_path = ''
as $$ select * from private.list_cleanups() $$;

create function public.run_cleanup(p_task text, p_batch_size integer, p_dry_run boolean)
returns table (item text)
language sql set search_path = ''
as $$ select * from private.run_cleanup(p_task, p_batch_size, p_dry_run) $$;

revoke execute on function public.list_cleanups() from public, anon, authenticated;
revoke execute on function public.run_cleanup(text, integer, boolean) from public, anon, authenticated;
grant execute on function public.list_cleanups() to service_role;
grant execute on function public.run_cleanup(text, integer, boolean) to service_role;

-- == comments ==
comment on function private.cleanup_jobs(integer, boolean) is
  'Finished jobs past retention: succeeded after 7 days, failed and dead after 30 days.';
comment on function private.cleanup_rate_limit_events(integer, boolean) is
  'Rate limiter rows older than 2 days (keys nobody used since).';
comment on function private.list_cleanups() is 'Every private.cleanup_<task>(p_batch_size, p_dry_run) function.';
comment on function private.run_cleanup(text, integer, boolean) is
  'Run one batch of one cleanup task; returns the items deleted (or, dry run, that would be).';
