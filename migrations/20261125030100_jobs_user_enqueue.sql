-- jobs: users enqueue their own export and thumbnail jobs. Adds
-- public.plans.thumbnails_per_day, the insert policy on public.jobs, the
-- per-plan daily limit trigger and rpc public.enqueue_job(kind, payload).
-- Why: a frontend asks for its data export or a thumbnail itself, without a
-- server. RLS lets a user insert only a job they own, of a kind marked
-- user_enqueueable; every other column keeps its default (column grants), so
-- a user cannot pick priority, attempts or status. The daily limit is the
-- plan column named by job_kinds.plan_limit_column, counted per user and kind
-- over 24 hours by the shared limiter (exact under concurrency; HTTP 429).

-- == plan limits ==
alter table public.plans add column thumbnails_per_day integer not null default 200
  constraint plans_thumbnails_per_day_nonnegative check (thumbnails_per_day >= 0);
update public.plans set thumbnails_per_day = 200 where id = 'free';
update public.plans set thumbnails_per_day = 5000 where id = 'pro';
comment on column public.plans.thumbnails_per_day is 'Thumbnail jobs a user may enqueue per 24 hours.';

-- == functions (schema private: not exposed) ==
create function private.job_kind_is_user_enqueueable(p_kind text) returns boolean
language sql stable security definer set search_path = ''
as $$ select coalesce((select k.user_enqueueable from public.job_kinds k where k.kind = p_kind), false) $$;
revoke execute on function private.job_kind_is_user_enqueueable(text) from public, anon;
grant execute on function private.job_kind_is_user_enqueueable(text) to authenticated, service_role;

-- Runs for inserts made during an API user's request (role authenticated or
-- anon), directly or through a definer RPC such as request_export(); never for
-- the service role or workers. Counts the job against the owner's plan when
-- its kind has a plan limit column (every user-enqueueable kind has one; an
-- erasure enqueued by request_account_deletion() has none and is not limited).
create function private.jobs_enforce_user_limit() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_column text;
  v_limit integer;
begin
  if current_setting('role', true) not in ('authenticated', 'anon') then
    return new;
  end if;
  select k.plan_limit_column into v_column from public.job_kinds k where k.kind = new.kind;
  if v_column is null or new.owner_id is null then
    return new;
  end if;
  select (to_jsonb(p) ->> v_column)::integer into v_limit
    from public.profiles pr join public.plans p on p.id = pr.plan
   where pr.id = new.owner_id;
  if v_limit is null then
    raise exception 'no daily limit for % jobs on this plan', new.kind
      using errcode = '42501', hint = 'The user needs a profile; the plan needs the column job_kinds.plan_limit_column names.';
  end if;
  perform private.rate_limit_enforce(
    format('jobs:%s:%s', new.kind, new.owner_id), v_limit, interval '24 hours', 1);
  return new;
end;
$$;
revoke execute on function private.jobs_enforce_user_limit() from public;

create trigger jobs_enforce_user_limit before insert on public.jobs
  for each row execute function private.jobs_enforce_user_limit();

-- == rpc (exposed, security invoker: goes through the policy and the trigger) ==
create function public.enqueue_job(kind text, payload jsonb default '{}')
returns uuid
language plpgsql set search_path = ''
as $$
declare
  v_id uuid;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to enqueue jobs' using errcode = '42501';
  end if;
  if not private.job_kind_is_user_enqueueable(kind) then
    raise exception 'job kind % cannot be enqueued by users', kind
      using errcode = '42501', hint = 'See public.job_kinds where user_enqueueable.';
  end if;
  insert into public.jobs (kind, payload, owner_id)
  values (kind, coalesce(payload, '{}'), (select auth.uid()))
  returning id into v_id;
  return v_id;
end;
$$;
revoke execute on function public.enqueue_job(text, jsonb) from public, anon;
grant execute on function public.enqueue_job(text, jsonb) to authenticated, service_role;

-- == grants and row level security ==
grant insert (kind, payload, owner_id) on public.jobs to authenticated;

create policy "users enqueue allowed jobs for themselves" on public.jobs
  for insert to authenticated
  with check (owner_id = (select auth.uid()) and private.job_kind_is_user_enqueueable(kind));

-- == comments ==
comment on function public.enqueue_job(text, jsonb) is
  'Enqueue a job for yourself: kind export, thumbnail or room_export (see job_kinds.user_enqueueable), '
  'limited per 24 hours by your plan (HTTP 429 past it). Returns the job id; watch public.jobs for its status.';
