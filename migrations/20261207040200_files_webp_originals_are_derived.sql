-- files: a re-encoded WebP original (<name>.full.webp) is a derived file, like a thumbnail.
-- Redefines private.queue_thumbnail() (latest definition:
-- 20261206091200_files_thumbnails_only_from_the_storage_api) and
-- private.record_image_upload() (latest definition:
-- 20261125021000_files_image_uploads).
-- Why (issue #13 item 6): the thumbnail job now also stores the original
-- re-encoded to WebP at quality 80 when that is smaller. Written by the
-- worker into the images bucket, it would otherwise be recorded as a new
-- image and queue thumbnails of itself. Derived names are
-- <name>.thumbNNN.webp and <name>.full.webp; only a stored thumbnail pair
-- marks its original done, as before.

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
  if new.bucket_id <> 'images' or new.metadata is null or new.name ~ '\.(thumb[0-9]+|full)\.webp$'
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
  if new.name ~ '\.full\.webp$' then
    return null;  -- the re-encoded original: derived, not a record
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

comment on function private.record_image_upload() is
  'Trigger on storage.objects: records completed uploads to images; a stored thumbnail pair marks its original '
  'done; derived files (<name>.thumbNNN.webp, <name>.full.webp) are not records.';
