-- files: who may upload, read, overwrite and delete objects.
-- Why: frontends talk to the Storage API directly, which runs these policies
-- as the caller. Rules:
--   avatars/samples/images: a user writes, reads and deletes only under
--     <bucket>/<their uid>/...; nobody lists another user's folder (avatars
--     are still downloadable by anyone through the public URL, which skips RLS).
--   images/rooms/<room id>/...: members read; owner and editors upload; only
--     the uploader overwrites or deletes.
--   exports/<uid>/...: the user reads (downloads) their exports; only workers
--     (service role) write.
-- Overwrite (upsert) needs insert + update + select; delete needs select + delete.

-- == functions (schema private: not exposed) ==
-- 'rooms/<uuid>/<file...>' -> the room id; any other path -> null (never raises).
create function private.room_id_of_object(p_name text) returns uuid
language sql immutable set search_path = ''
as $$
  select case
    when p_name ~ '^rooms/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/[^/]'
    then split_part(p_name, '/', 2)::uuid
  end
$$;
revoke execute on function private.room_id_of_object(text) from public;
grant execute on function private.room_id_of_object(text) to authenticated, service_role;

comment on function private.room_id_of_object(text) is
  'Storage: the room id of an object path rooms/<room id>/..., else null.';

-- == row level security on storage.objects ==

create policy "users and room members read their files" on storage.objects
  for select to authenticated
  using (
    (bucket_id in ('avatars', 'samples', 'images', 'exports')
     and (storage.foldername(name))[1] = (select auth.uid())::text)
    or (bucket_id = 'images' and private.room_id_of_object(name) in (select private.my_room_ids()))
  );

create policy "users upload to their folder and editors to their rooms" on storage.objects
  for insert to authenticated
  with check (
    (bucket_id in ('avatars', 'samples', 'images')
     and (storage.foldername(name))[1] = (select auth.uid())::text)
    or (bucket_id = 'images' and private.room_id_of_object(name) in (select private.my_editable_room_ids()))
  );

create policy "uploaders overwrite their own files" on storage.objects
  for update to authenticated
  using (
    owner_id = (select auth.uid())::text
    and ((bucket_id in ('avatars', 'samples', 'images')
          and (storage.foldername(name))[1] = (select auth.uid())::text)
         or (bucket_id = 'images' and private.room_id_of_object(name) in (select private.my_editable_room_ids())))
  )
  with check (
    (bucket_id in ('avatars', 'samples', 'images')
     and (storage.foldername(name))[1] = (select auth.uid())::text)
    or (bucket_id = 'images' and private.room_id_of_object(name) in (select private.my_editable_room_ids()))
  );

create policy "uploaders delete their own files" on storage.objects
  for delete to authenticated
  using (
    bucket_id in ('avatars', 'samples', 'images')
    and owner_id = (select auth.uid())::text
    and ((storage.foldername(name))[1] = (select auth.uid())::text
         or (bucket_id = 'images' and private.room_id_of_object(name) is not null))
  );
