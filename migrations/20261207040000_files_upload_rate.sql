-- files: at most N uploads per user per sliding hour (plans.uploads_per_hour).
-- Adds public.plans.uploads_per_hour (free 20, as the music sketchpad asks;
-- pro 500) and the trigger private.storage_objects_upload_rate() on
-- storage.objects.
-- Why (issue #13 item 1): uploads were limited only by size and quota, so a
-- client could upload (and overwrite) files without bound, each one also
-- queueing a thumbnail and a scan job.
--
-- Counted by the shared limiter (private.rate_limit_take, key
-- 'upload:<user id>', window 1 hour) where the Storage API completes an
-- upload: its step 3, the privileged upsert (role service_role or its
-- superuser, auth.uid() null) that sets owner_id to the uploader and
-- metadata.size. An overwrite (upsert) is an upload too: each completed
-- upload gets a new `version`. Service writes without an owner (thumbnails,
-- exports, quarantine copies by the workers) are not uploads of a user.
-- The count is taken inside step 3's transaction on purpose: an upload
-- refused later in that statement (quota) stores nothing and so is not an
-- upload; a refused one is not counted either.
-- Step 1 (the caller's rolled-back permission test) only checks the window,
-- so a client past the limit is refused before its bytes are sent.
-- Refusals raise 42501: the Storage API returns the message (statusCode 403);
-- any other SQLSTATE would reach the client as an opaque 500.

-- == plans ==
alter table public.plans add column uploads_per_hour integer not null default 20
  constraint plans_uploads_per_hour_nonnegative check (uploads_per_hour >= 0);
update public.plans set uploads_per_hour = 20 where id = 'free';
update public.plans set uploads_per_hour = 500 where id = 'pro';
comment on column public.plans.uploads_per_hour is
  'Completed file uploads (and overwrites) a user may make per sliding hour, counted by the shared limiter.';

-- == functions (schema private: not exposed) ==
-- AFTER INSERT OR UPDATE on storage.objects. Definer: reads the plan and the
-- limiter's private table whichever role uploads.
create function private.storage_objects_upload_rate() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_owner uuid := private.object_owner(new.owner_id);
  v_client boolean := coalesce(current_setting('role', true), 'none') in ('anon', 'authenticated');
  v_plan public.plans;
  v_key text;
  v_used integer;
  v_oldest timestamptz;
  v_retry integer;
  v_take record;
begin
  if v_owner is null then
    return null;  -- a service write (worker output): not a user's upload
  end if;
  if v_client then
    -- Step 1 (or direct SQL as a client): check only; the completed upload is what counts.
    if v_owner is distinct from (select auth.uid()) then
      return null;  -- the client guard refuses this write with its own message
    end if;
  elsif not coalesce(new.metadata ? 'size', false)
        or (tg_op = 'UPDATE' and new.version is not distinct from old.version) then
    return null;  -- not a completed upload (a metadata edit, a move by the platform)
  end if;
  select pl.* into v_plan from public.plans pl
   where pl.id = coalesce((select p.plan from public.profiles p where p.id = v_owner), 'free');
  v_key := 'upload:' || v_owner::text;
  if v_client then
    select count(*)::integer, min(e.at) into v_used, v_oldest
      from private.rate_limit_events e where e.key = v_key and e.at > clock_timestamp() - interval '1 hour';
    if v_used < v_plan.uploads_per_hour then
      return null;
    end if;
    v_retry := greatest(1, ceil(extract(epoch from (v_oldest + interval '1 hour' - clock_timestamp())))::integer);
  else
    select t.allowed, t.retry_after_seconds into v_take
      from private.rate_limit_take(v_key, v_plan.uploads_per_hour, interval '1 hour') t;
    if v_take.allowed then
      return null;
    end if;
    v_retry := v_take.retry_after_seconds;
  end if;
  raise exception 'upload rate limit exceeded: at most % uploads per hour on the % plan; retry in % seconds (%)',
    v_plan.uploads_per_hour, v_plan.id, v_retry, new.bucket_id || '/' || new.name
    using errcode = '42501',
          detail = format('retry_after_seconds=%s', v_retry),
          hint = format('Wait %s seconds before uploading again, or upgrade your plan.', v_retry);
end;
$$;
revoke execute on function private.storage_objects_upload_rate() from public, anon, authenticated, service_role;

create trigger backline_objects_upload_rate after insert or update on storage.objects
  for each row execute function private.storage_objects_upload_rate();

comment on function private.storage_objects_upload_rate() is
  'Trigger on storage.objects: counts each completed upload (the Storage API''s privileged step, owner set, new '
  'version) against plans.uploads_per_hour with the shared limiter (key upload:<uid>, sliding hour); the '
  'caller''s permission test only checks the window. Over the limit: 42501 with the retry time.';
