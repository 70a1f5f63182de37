-- files: a record of every completed upload to the images bucket.
-- Why: the workers make 150 px and 300 px WebP thumbnails of uploaded images.
-- An object gets metadata.size only when the Storage API completes the
-- upload (step 3, superuser upsert), so a trigger on that change records the
-- object here; an overwrite records it again (pending),
-- a delete removes the record. Workers claim pending rows
-- (thumbnails_done_at is null) with `for update skip locked`.
-- Thumbnails (<name>.thumbNNN.webp, written by the thumbnail job into the
-- same bucket) are not records: storing both of them marks the original done.

-- == tables ==
create table private.image_uploads (
  object_id uuid primary key,
  bucket_id text not null,
  object_name text not null,
  owner_id uuid references auth.users (id) on delete cascade,
  mimetype text,
  size bigint,
  uploaded_at timestamptz not null default now(),
  thumbnails_done_at timestamptz,
  attempts integer not null default 0,
  last_error text
);
create index image_uploads_pending_idx on private.image_uploads (uploaded_at) where thumbnails_done_at is null;
create index image_uploads_owner_id_idx on private.image_uploads (owner_id);
create index image_uploads_bucket_id_object_name_idx on private.image_uploads (bucket_id, object_name);

revoke all on private.image_uploads from public, anon, authenticated;
grant select, update, delete on private.image_uploads to service_role;
alter table private.image_uploads enable row level security;

-- == functions (schema private: not exposed) ==
create function private.record_image_upload() returns trigger
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

create trigger backline_objects_record_image_upload
  after insert or update of metadata or delete on storage.objects
  for each row execute function private.record_image_upload();

-- == comments ==
comment on table private.image_uploads is
  'Completed uploads to bucket images waiting for (or done with) 150/300 px WebP thumbnails. Workers only.';
comment on column private.image_uploads.thumbnails_done_at is 'Set by the thumbnail worker; null = pending.';
comment on function private.record_image_upload() is
  'Trigger on storage.objects: records completed uploads to images; a stored thumbnail pair marks its original done.';
