-- files: a client can own only its own storage objects, and cannot move the quota.
-- Why (issue #12): the storage.objects policies of files_storage_policies
-- checked the path but not owner_id, and the quota trigger of files_quota
-- counted whatever metadata.size a row carried. So a signed-in user writing
-- storage.objects with direct SQL could insert a row owned by someone else
-- (charging them bytes) or rewrite the size of their own object (zeroing their
-- usage while the bytes stay stored). The Storage API sets owner and size
-- itself, so this is defence in depth: the database must not rely on it.
--
-- What the real Storage API writes (supabase/storage: Uploader.canUpload and
-- completeUpload, StorageKnexDB.createObject/upsertObject):
--   step 1, as the caller (set_config('role', <JWT role>) and its claims),
--     rolled back: insert, or for an upsert insert ... on conflict (name,
--     bucket_id) do update, of bucket_id, name, version '1', owner_id = the
--     JWT sub, owner = the sub when it is a uuid, user_metadata and (current
--     versions) metadata = {mimetype, contentLength}; never metadata.size.
--     An overwrite probe thus replaces {size, ...} by {mimetype, contentLength}.
--   step 3, as service_role (the service key's claims, auth.uid() null):
--     upsert with owner_id/owner = the uploader and metadata {size, ...}.
-- So, for writes made as anon or authenticated (the role in effect, as
-- PostgREST and the Storage API set it; service_role, the migration owner and
-- workers are not affected):
--   1. the insert and update policies pin owner_id (and the deprecated uuid
--      column owner) to the caller in WITH CHECK;
--   2. a BEFORE trigger refuses, with 42501 and a message saying which rule,
--      an owner_id that is not the caller or differs from the row's, an owner
--      that is neither null nor the caller, and a metadata.size the row did
--      not already carry. It fires before the policies' WITH CHECK, so the
--      caller learns why instead of a bare row-level security error;
--   3. the quota trigger never gives bytes back on an update made by a
--      client: a shrinking overwrite probe is legitimate (so it cannot be
--      refused) but, committed by direct SQL, it would hide bytes that are
--      still stored. Growth is still counted and refused past the plan, so a
--      probe that cannot fit is refused before the bytes are sent. Usage can
--      thus only be lowered by the Storage API's privileged step or a delete
--      (which gives back at most what the row was charged).

-- == row level security on storage.objects: the owner is the caller ==

alter policy "users upload to their folder and editors to their rooms" on storage.objects
  with check (
    owner_id = (select auth.uid())::text
    and (owner is null or owner = (select auth.uid()))
    and ((bucket_id in ('avatars', 'samples', 'images')
          and (storage.foldername(name))[1] = (select auth.uid())::text)
         or (bucket_id = 'images' and private.room_id_of_object(name) in (select private.my_editable_room_ids())))
  );

alter policy "uploaders overwrite their own files" on storage.objects
  with check (
    owner_id = (select auth.uid())::text
    and (owner is null or owner = (select auth.uid()))
    and ((bucket_id in ('avatars', 'samples', 'images')
          and (storage.foldername(name))[1] = (select auth.uid())::text)
         or (bucket_id = 'images' and private.room_id_of_object(name) in (select private.my_editable_room_ids())))
  );

comment on policy "users upload to their folder and editors to their rooms" on storage.objects is
  'Upload: <bucket>/<your uid>/... in avatars, samples, images, or images/rooms/<room id>/... as its owner or '
  'an editor; owner_id (and owner) must be you, as the Storage API sets them from your token.';
comment on policy "uploaders overwrite their own files" on storage.objects is
  'Overwrite (upsert): only the uploader, only where they may upload; owner_id stays the uploader.';

-- == functions (schema private: not exposed) ==
-- BEFORE INSERT OR UPDATE, security invoker: it needs nothing but auth.uid().
create function private.storage_objects_client_guard() returns trigger
language plpgsql set search_path = ''
as $$
declare
  v_uid uuid;
begin
  if coalesce(current_setting('role', true), 'none') not in ('anon', 'authenticated') then
    return new;
  end if;
  v_uid := auth.uid();
  if new.owner_id is distinct from v_uid::text
     or (tg_op = 'UPDATE' and new.owner_id is distinct from old.owner_id) then
    raise exception 'storage object owner_id must be your own user id and cannot be changed: % in bucket %',
      new.name, new.bucket_id
      using errcode = '42501',
            hint = 'Upload through the Storage API, which sets owner_id from your token; do not set it yourself.';
  end if;
  if new.owner is not null and new.owner is distinct from v_uid then
    raise exception 'storage object owner must be your own user id: % in bucket %', new.name, new.bucket_id
      using errcode = '42501',
            hint = 'Upload through the Storage API, which sets owner from your token; do not set it yourself.';
  end if;
  if coalesce(new.metadata ? 'size', false)
     and (tg_op = 'INSERT' or (new.metadata -> 'size') is distinct from (old.metadata -> 'size')) then
    raise exception 'storage object metadata.size is set by the Storage API once the bytes are stored: % in bucket %',
      new.name, new.bucket_id
      using errcode = '42501',
            hint = 'Upload or overwrite the file through the Storage API; a client may declare only metadata.contentLength.';
  end if;
  return new;
end;
$$;
revoke execute on function private.storage_objects_client_guard() from public, anon, authenticated, service_role;

create trigger backline_objects_client_guard before insert or update on storage.objects
  for each row execute function private.storage_objects_client_guard();

comment on function private.storage_objects_client_guard() is
  'Trigger on storage.objects: for anon/authenticated writes, owner_id must be the caller and unchanged, owner '
  'null or the caller, metadata.size unchanged (only the Storage API''s privileged step sets it); else 42501.';

-- Latest definition: 20261125020900_files_quota.sql. Changed: an update made by
-- a client never lowers the row's counted size.
create or replace function private.storage_objects_quota() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_old_owner uuid;
  v_new_owner uuid;
  v_old_size bigint := 0;
  v_new_size bigint := 0;
begin
  if tg_op in ('UPDATE', 'DELETE') then
    v_old_owner := private.object_owner(old.owner_id);
    v_old_size := private.object_size(old.metadata);
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    v_new_owner := private.object_owner(new.owner_id);
    v_new_size := private.object_size(new.metadata);
  end if;
  -- A client's update (the Storage API's rolled-back probe, or direct SQL)
  -- may grow the count (checked against the plan) but never shrink it: only
  -- the privileged step that stored the bytes, or a delete, gives bytes back.
  if tg_op = 'UPDATE' and coalesce(current_setting('role', true), 'none') in ('anon', 'authenticated') then
    v_new_size := greatest(v_new_size, v_old_size);
  end if;
  if v_old_owner is not distinct from v_new_owner then
    perform private.storage_charge(v_new_owner, v_new_size - v_old_size, new.bucket_id || '/' || new.name);
  else
    perform private.storage_charge(v_old_owner, -v_old_size, old.bucket_id || '/' || old.name);
    perform private.storage_charge(v_new_owner, v_new_size, new.bucket_id || '/' || new.name);
  end if;
  return null;
end;
$$;

comment on function private.storage_objects_quota() is
  'Quota: keeps profiles.storage_used equal to the sum of metadata.size of the user''s objects as the Storage '
  'API''s privileged step wrote them; refuses (42501) an insert/overwrite that would exceed plans.storage_bytes. '
  'An update by anon/authenticated never lowers the count.';
