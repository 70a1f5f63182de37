-- files: the storage buckets and their size and type limits.
-- Why: the music sketchpad uploads audio samples, the collection tracker and
-- the ideas canvas images, everyone an avatar; workers write exports. The
-- Storage API enforces file_size_limit and allowed_mime_types on upload
-- (the database cannot see the bytes); per-user quotas are enforced in SQL
-- (files_quota). Re-applying updates the limits of existing buckets.
-- exports has no size limit: only workers (service role) write there, a pro
-- user's archive can exceed any fixed cap, and the project's global upload
-- limit still applies.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) values
  ('avatars', 'avatars', true, 1048576, array['image/png', 'image/jpeg', 'image/webp', 'image/gif']),
  ('samples', 'samples', false, 5242880, array['audio/wav', 'audio/mpeg', 'audio/mp3']),
  ('images', 'images', false, 10485760, array['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/avif']),
  ('exports', 'exports', false, null,
   array['application/zip', 'application/json', 'application/pdf', 'text/markdown'])
on conflict (id) do update set
  public = excluded.public,
  file_size_limit = excluded.file_size_limit,
  allowed_mime_types = excluded.allowed_mime_types;
