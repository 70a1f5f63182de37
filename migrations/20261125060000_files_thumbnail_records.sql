-- files: join image records and the thumbnail jobs.
-- Why: the rooms/files module records every completed upload to `images` in
-- private.image_uploads; the workers module queues a thumbnail job for it.
-- Thumbnails (<name>.thumbNNN.webp) are themselves objects in `images`: they
-- must not become image records, and storing the last of them marks the
-- original's record done.

create or replace function private.record_image_upload() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_owner uuid;
  v_source text;
begin
  if tg_op = 'DELETE' then
    delete from private.image_uploads where object_id = old.id;
    return null;
  end if;
  -- Only completed uploads: the Storage API's permission test may carry
  -- {mimetype, contentLength} but never size.
  if new.bucket_id <> 'images' or not coalesce(new.metadata ? 'size', false)
     or (tg_op = 'UPDATE' and old.metadata is not distinct from new.metadata) then
    return null;
  end if;
  if new.name ~ '\.thumb[0-9]+\.webp$' then
    v_source := regexp_replace(new.name, '\.thumb[0-9]+\.webp$', '');
    update private.image_uploads u
       set thumbnails_done_at = now()
     where u.bucket_id = new.bucket_id and u.object_name = v_source
       and exists (select 1 from storage.objects o
                    where o.bucket_id = new.bucket_id and o.name = v_source || '.thumb150.webp')
       and exists (select 1 from storage.objects o
                    where o.bucket_id = new.bucket_id and o.name = v_source || '.thumb300.webp');
    return null;
  end if;
  v_owner := private.object_owner(new.owner_id);
  if v_owner is not null and not exists (select 1 from auth.users u where u.id = v_owner) then
    v_owner := null;
  end if;
  insert into private.image_uploads (object_id, bucket_id, object_name, owner_id, mimetype, size)
  values (new.id, new.bucket_id, new.name, v_owner, new.metadata ->> 'mimetype', private.object_size(new.metadata))
  on conflict (object_id) do update set
    object_name = excluded.object_name, owner_id = excluded.owner_id, mimetype = excluded.mimetype,
    size = excluded.size, uploaded_at = now(), thumbnails_done_at = null, attempts = 0, last_error = null;
  return null;
end;
$$;
revoke execute on function private.record_image_upload() from public;

comment on function private.record_image_upload() is
  'Trigger on storage.objects: records completed uploads to images; a stored thumbnail pair marks its original done.';
