-- privacy: the exports bucket's limits, reconciled after files and privacy merged.
-- Why: files_buckets (020700) creates `exports` first, so the privacy
-- migration's insert (040300, on conflict do nothing) never applied its
-- limits: room canvas exports as Markdown were refused (415, text/markdown
-- not allowed) and a data export larger than 500 MB (a pro plan stores up to
-- 10 GB) could not be stored at the end of a long job. Only workers (service
-- role) write here, so a per-bucket size limit protects nothing; the hosted
-- project's global upload limit still applies.

update storage.buckets
   set file_size_limit = null,
       allowed_mime_types = array['application/zip', 'application/json', 'application/pdf', 'text/markdown']
 where id = 'exports';
