-- Platform layer, part 2: the Supabase Storage tables and helpers.
--
-- On Supabase the Storage API server owns the `storage` schema and creates
-- these objects with its own migrations (supabase/storage,
-- migrations/tenant/). We recreate the part our migrations and workers use,
-- with the same names, columns, types and semantics:
--   storage.buckets, storage.objects  (rows only: the bytes are in the
--     Storage backend; locally, in a directory managed by the local transport)
--   storage.foldername(), storage.filename(), storage.extension()
--   storage.protect_delete(): direct SQL DELETE is refused unless the
--     transaction sets `storage.allow_delete_query` to 'true', because removing
--     a row without its bytes orphans the file.
--   storage.update_updated_at_column(): objects.updated_at on every update.
-- Left out: multipart uploads, analytics/vector buckets, search and listing
-- functions, which only the Storage API server uses.
--
-- Ownership: `owner` (uuid) is deprecated on Supabase and kept for
-- compatibility; the Storage API writes the uploader's JWT `sub` into
-- `owner_id` (text). Policies and quota triggers use owner_id.

-- ---------------------------------------------------------------------------
-- Types
-- ---------------------------------------------------------------------------

do $$
begin
  if not exists (
    select from pg_catalog.pg_type t
    join pg_catalog.pg_namespace n on n.oid = t.typnamespace
    where n.nspname = 'storage' and t.typname = 'buckettype'
  ) then
    create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
  end if;
end $$;

-- ---------------------------------------------------------------------------
-- storage.buckets
-- ---------------------------------------------------------------------------

create table if not exists storage.buckets (
  id text not null,
  name text not null,
  owner uuid,
  created_at timestamp with time zone default now(),
  updated_at timestamp with time zone default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  owner_id text,
  type storage.buckettype not null default 'STANDARD',
  constraint buckets_pkey primary key (id)
);

create unique index if not exists bname on storage.buckets using btree (name);

comment on table storage.buckets is
  'Storage: one row per bucket. public = readable without a token; file_size_limit (bytes) and allowed_mime_types are enforced by the Storage API on upload, not by the database.';
comment on column storage.buckets.owner is
  'Field is deprecated, use owner_id instead';
comment on column storage.buckets.file_size_limit is
  'Storage: maximum size of one object in bytes (NULL: the project''s global limit).';
comment on column storage.buckets.allowed_mime_types is
  'Storage: accepted MIME types, wildcards like image/* allowed (NULL: any).';

-- ---------------------------------------------------------------------------
-- storage.objects
-- ---------------------------------------------------------------------------

create table if not exists storage.objects (
  id uuid not null default gen_random_uuid(),
  bucket_id text,
  name text,
  owner uuid,
  created_at timestamp with time zone default now(),
  updated_at timestamp with time zone default now(),
  last_accessed_at timestamp with time zone default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  owner_id text,
  user_metadata jsonb,
  constraint objects_pkey primary key (id),
  constraint "objects_bucketId_fkey" foreign key (bucket_id)
    references storage.buckets (id)
);

-- One object per path in a bucket (the Storage API upserts on it).
create unique index if not exists bucketid_objname
  on storage.objects using btree (bucket_id, name);
create index if not exists name_prefix_search
  on storage.objects using btree (name text_pattern_ops);

comment on table storage.objects is
  'Storage: one row per stored file. name is the path inside the bucket (folders separated by /); metadata holds size, mimetype, eTag, ... once the upload completed; owner_id is the uploader''s user id.';
comment on column storage.objects.owner is
  'Field is deprecated, use owner_id instead';
comment on column storage.objects.name is
  'Storage: the object path inside its bucket, e.g. <user id>/avatars/me.png.';
comment on column storage.objects.metadata is
  'Storage: set by the Storage API after the bytes are stored: size (bytes), mimetype, cacheControl, eTag, lastModified, contentLength, httpStatusCode.';
comment on column storage.objects.owner_id is
  'Storage: the uploader''s JWT sub (a user id as text); NULL for uploads with the service key.';

-- ---------------------------------------------------------------------------
-- Path helpers (immutable; usable in policies)
-- ---------------------------------------------------------------------------

-- 'a/b/c.png' -> {a,b}; 'c.png' -> {}.
create or replace function storage.foldername(name text)
returns text[]
language sql
immutable
as $$
  select (string_to_array($1, '/'))[1 : array_length(string_to_array($1, '/'), 1) - 1]
$$;

-- 'a/b/c.png' -> 'c.png'.
create or replace function storage.filename(name text)
returns text
language sql
immutable
as $$
  select (string_to_array($1, '/'))[array_length(string_to_array($1, '/'), 1)]
$$;

-- 'a/b/c.tar.gz' -> 'gz'. As on Supabase, a file name without a dot is
-- returned whole ('a/README' -> 'README').
create or replace function storage.extension(name text)
returns text
language sql
immutable
as $$
  select reverse(split_part(
    reverse((string_to_array($1, '/'))[array_length(string_to_array($1, '/'), 1)]),
    '.', 1
  ))
$$;

comment on function storage.foldername(text) is
  'Storage: the folders of an object path, e.g. storage.foldername(''u1/photos/a.png'') = {u1,photos}. Policies use (storage.foldername(name))[1] = (select auth.uid())::text.';
comment on function storage.filename(text) is
  'Storage: the file name of an object path, e.g. storage.filename(''u1/photos/a.png'') = ''a.png''.';
comment on function storage.extension(text) is
  'Storage: the extension of an object path, e.g. storage.extension(''u1/photos/a.png'') = ''png''.';

-- ---------------------------------------------------------------------------
-- updated_at
-- ---------------------------------------------------------------------------

create or replace function storage.update_updated_at_column()
returns trigger
language plpgsql
as $$
begin
  new.updated_at = now();
  return new;
end
$$;

create or replace trigger update_objects_updated_at
  before update on storage.objects
  for each row execute function storage.update_updated_at_column();

-- ---------------------------------------------------------------------------
-- Direct deletes are refused
-- ---------------------------------------------------------------------------

create or replace function storage.protect_delete()
returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using hint = 'This prevents accidental data loss from orphaned objects.',
            errcode = '42501';
  end if;
  return null;
end
$$;

comment on function storage.protect_delete() is
  'Storage: refuses DELETE on storage tables unless set_config(''storage.allow_delete_query'', ''true'', true) was called in the transaction (the Storage API does so after removing the bytes).';

-- Statement-level, like Supabase: it fires even when no row matches.
create or replace trigger protect_buckets_delete
  before delete on storage.buckets
  for each statement execute function storage.protect_delete();

create or replace trigger protect_objects_delete
  before delete on storage.objects
  for each statement execute function storage.protect_delete();

-- ---------------------------------------------------------------------------
-- Row level security and privileges, as on Supabase
-- ---------------------------------------------------------------------------

-- RLS on, no policies: migrations add the policies that decide who may
-- upload, read and delete.
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

-- Supabase grants every privilege on storage tables to the API roles (its
-- default privileges in schema storage) and lets RLS decide.
grant all on table storage.buckets to anon, authenticated, service_role;
grant all on table storage.objects to anon, authenticated, service_role;
