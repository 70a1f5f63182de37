-- files: thumbnails are queued only for uploads the Storage API completed.
-- Redefines private.queue_thumbnail() (latest definition:
-- 20261125049000_privacy_data_rights_requests).
-- Why: the trigger queued a thumbnail job on every change of an image row's
-- metadata. A client writing storage.objects directly (as anon or
-- authenticated) could touch its own row's metadata in a loop and fill the job
-- queue, and the Storage API's own permission test (run as the caller, then
-- rolled back) fired it too. The real upload ends with the Storage API's
-- privileged upsert (service_role, or its superuser), which still queues the
-- job; writes made in a client role no longer do.

create or replace function private.queue_thumbnail() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_owner uuid;
begin
  -- The role in effect (SET ROLE by PostgREST or the Storage API), not the definer.
  if coalesce(current_setting('role', true), 'none') in ('anon', 'authenticated') then
    return null;
  end if;
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
