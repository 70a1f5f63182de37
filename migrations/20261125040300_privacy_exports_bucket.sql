-- privacy: the exports bucket. Data exports and room canvas exports are written
-- by workers to exports/<user id>/...; the user reads (and may delete) their own.
-- Why: a signed URL from the export job is the usual way in, but the files
-- are also listable by their owner; no API role may upload here.

-- The bucket itself is created by files_buckets (020700).

create policy "users read their own exports" on storage.objects
  for select to authenticated
  using (bucket_id = 'exports' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy "users delete their own exports" on storage.objects
  for delete to authenticated
  using (bucket_id = 'exports' and (storage.foldername(name))[1] = (select auth.uid())::text);
