-- files: links from app rows (documents, room elements, profiles) to storage objects.
-- Why: a stored file is kept only while something refers to it. Every module
-- that points at a file records the link here; cleanup treats an object with
-- no link (older than a grace period) as orphaned. The link names the object
-- by (bucket_id, object_name) and the referring row by (ref_kind, ref_id);
-- ref_id carries no foreign key so every module can use one table.

-- == tables ==
create table public.file_links (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  bucket_id text not null references storage.buckets (id) on delete cascade,
  object_name text not null check (length(object_name) between 1 and 1024),
  ref_kind text not null check (ref_kind ~ '^[a-z][a-z_]{1,40}$'),
  ref_id uuid not null,
  created_at timestamptz not null default now(),
  constraint file_links_one_link_per_ref unique (bucket_id, object_name, ref_kind, ref_id)
);
create index file_links_owner_id_idx on public.file_links (owner_id);
create index file_links_ref_idx on public.file_links (ref_kind, ref_id);

-- == grants and row level security ==
grant select, insert, delete on public.file_links to authenticated;
grant select, insert, update, delete on public.file_links to service_role;
alter table public.file_links enable row level security;

create policy "users read their own file links" on public.file_links
  for select to authenticated using (owner_id = (select auth.uid()));
create policy "users link their own files" on public.file_links
  for insert to authenticated
  with check (
    owner_id = (select auth.uid())
    and exists (
      select 1 from storage.objects o
       where o.bucket_id = file_links.bucket_id
         and o.name = file_links.object_name
         and o.owner_id = (select auth.uid())::text
    )
  );
create policy "users unlink their own files" on public.file_links
  for delete to authenticated using (owner_id = (select auth.uid()));

-- == comments ==
comment on table public.file_links is
  'Which app row uses which stored file. Insert a link when a document/element/profile starts '
  'using an object you uploaded; objects without links are removed by the orphan cleanup.';
comment on column public.file_links.object_name is 'The object path inside the bucket (storage.objects.name).';
comment on column public.file_links.ref_kind is 'What refers to the file: document, room_element, profile, ...';
comment on column public.file_links.ref_id is 'Id of the referring row (no foreign key: any module may link).';
