-- privacy: data-rights requests and thumbnail jobs. Adds rpc request_export(),
-- rpc request_account_deletion(), the definer helpers behind them and the
-- trigger that queues a thumbnail job for each image stored in `images`.
-- Depends on the jobs module (private.job_enqueue, public.enqueue_job).
-- Why: a signed-in user asks for their data or the deletion of their account
-- with one call; the work happens in the 'export' / 'erasure' job handlers
-- (workers/export/jobs.py). Both leave an audit entry.

-- == plan limits ==
-- A deletion request is inserted while the caller's role is authenticated, so
-- the jobs module's per-plan trigger counts it: it needs a limit column.
alter table public.plans add column erasure_requests_per_day integer not null default 3
  constraint plans_erasure_requests_per_day_nonnegative check (erasure_requests_per_day >= 0);
update public.plans set erasure_requests_per_day = 3 where id in ('free', 'pro');
comment on column public.plans.erasure_requests_per_day is
  'Account deletion requests a user may make per 24 hours (a pending request is reused, not counted).';
update public.job_kinds set plan_limit_column = 'erasure_requests_per_day' where kind = 'erasure';

-- == functions (schema private: not exposed) ==
create function private.data_rights_audit(p_action text, p_job_id uuid)
returns void
language plpgsql security definer set search_path = ''
as $$
begin
  if (select auth.uid()) is null then
    raise exception 'sign in first' using errcode = '42501';
  end if;
  if p_action not in ('export.requested', 'account.deletion_requested') then
    raise exception 'unknown data-rights action %', p_action using errcode = '22023';
  end if;
  perform private.audit((select auth.uid()), p_action, jsonb_build_object('job_id', p_job_id));
end;
$$;
revoke execute on function private.data_rights_audit(text, uuid) from public, anon;
grant execute on function private.data_rights_audit(text, uuid) to authenticated;

-- The erasure job is owned by the user (they see its status; the plan limit
-- counts it). Its handler detaches it (owner_id = null) before deleting the
-- account, so the job row outlives the account it erases.
create function private.request_account_deletion()
returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_id uuid;
begin
  if v_uid is null then
    raise exception 'sign in to delete your account' using errcode = '42501';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('backline.erasure:' || v_uid::text, 0));
  select j.id into v_id from public.jobs j
   where j.owner_id = v_uid and j.kind = 'erasure' and j.status in ('queued', 'running')
   limit 1;
  if v_id is not null then
    return v_id;  -- already requested: the same job
  end if;
  v_id := private.job_enqueue('erasure', jsonb_build_object('user_id', v_uid), v_uid);
  perform private.audit(v_uid, 'account.deletion_requested', jsonb_build_object('job_id', v_id));
  return v_id;
end;
$$;
revoke execute on function private.request_account_deletion() from public, anon;
grant execute on function private.request_account_deletion() to authenticated;

-- == rpc (exposed, security invoker) ==
-- Goes through enqueue_job: the jobs RLS policy and the plan's exports_per_day.
create function public.request_export()
returns uuid
language plpgsql set search_path = ''
as $$
declare
  v_id uuid;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to export your data' using errcode = '42501';
  end if;
  v_id := public.enqueue_job('export', '{}'::jsonb);
  perform private.data_rights_audit('export.requested', v_id);
  return v_id;
end;
$$;
revoke execute on function public.request_export() from public, anon;
grant execute on function public.request_export() to authenticated;

create function public.request_account_deletion()
returns uuid
language sql set search_path = ''
as $$ select private.request_account_deletion() $$;
revoke execute on function public.request_account_deletion() from public, anon;
grant execute on function public.request_account_deletion() to authenticated;

-- == thumbnails: queue a job when an image is stored ==
-- Fires on the Storage API's step 3 (the row gets its metadata); the step-1
-- permission test has no metadata and is rolled back anyway. Thumbnails
-- themselves (<name>.thumbNNN.webp) are skipped.
create function private.queue_thumbnail() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_owner uuid;
begin
  if new.bucket_id <> 'images' or new.metadata is null or new.name ~ '\.thumb[0-9]+\.webp$'
     or coalesce(new.metadata ->> 'mimetype', '') !~ '^image/' then
    return null;
  end if;
  if tg_op = 'UPDATE' and old.metadata is not distinct from new.metadata then
    return null;
  end if;
  select u.id into v_owner from auth.users u where u.id::text = new.owner_id;
  perform private.job_enqueue('thumbnail', jsonb_build_object('bucket', new.bucket_id, 'name', new.name), v_owner);
  return null;
end;
$$;
revoke execute on function private.queue_thumbnail() from public;

create trigger queue_thumbnail after insert or update of metadata on storage.objects
  for each row execute function private.queue_thumbnail();

-- == comments ==
comment on function public.request_export() is
  'Ask for an archive of all your data. Returns the export job id; when the job succeeds its result has '
  'a signed download URL (expires) and the path in bucket exports. Limited by your plan''s exports_per_day.';
comment on function public.request_account_deletion() is
  'Ask for your account and everything it owns (rows and files) to be erased. Returns the erasure job id '
  '(the same one while a request is pending). Irreversible once the job runs.';
