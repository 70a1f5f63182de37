-- library: user-owned documents (loops, songs, folders, items ...).
-- Why: the apps' data, stored as JSON bodies validated per kind, with
-- visibility, a version that increments on every change (sync base versions),
-- tombstone deletes (sync must see deletions), fork lineage and counters, and
-- full-text search over title and body text. Owners have full control of
-- their rows; everyone else sees only public, live documents. Counters,
-- version, owner and lineage are never writable by API roles (column grants);
-- the database maintains them.

-- == tables ==
create table public.documents (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  kind text not null references public.document_kinds (id),
  title text not null default '' constraint documents_title_length check (length(title) <= 200),
  body jsonb not null default '{}',
  visibility text not null default 'private'
    constraint documents_visibility_valid check (visibility in ('private', 'unlisted', 'public')),
  version integer not null default 1 constraint documents_version_positive check (version >= 1),
  deleted_at timestamptz,
  forked_from uuid references public.documents (id) on delete set null,
  fork_count integer not null default 0 constraint documents_fork_count_nonnegative check (fork_count >= 0),
  view_count bigint not null default 0 constraint documents_view_count_nonnegative check (view_count >= 0),
  local_id text constraint documents_local_id_length check (length(local_id) between 1 and 200),
  change_xid xid8 not null default pg_current_xact_id(),
  search tsvector generated always as (
    setweight(to_tsvector('simple'::regconfig, title), 'A')
    || setweight(jsonb_to_tsvector('simple'::regconfig, body, '["string"]'::jsonb), 'B')
  ) stored,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index documents_owner_id_created_at_idx on public.documents (owner_id, created_at desc, id desc);
create index documents_owner_id_kind_live_idx on public.documents (owner_id, kind) where deleted_at is null;
create index documents_owner_id_change_xid_idx on public.documents (owner_id, change_xid, id);
create unique index documents_owner_kind_local_id_key on public.documents (owner_id, kind, local_id)
  where local_id is not null;
create index documents_kind_idx on public.documents (kind);
create index documents_forked_from_idx on public.documents (forked_from);
create index documents_public_newest_idx on public.documents (kind, created_at desc, id desc)
  where visibility = 'public' and deleted_at is null;
create index documents_public_forks_idx on public.documents (kind, fork_count desc, id desc)
  where visibility = 'public' and deleted_at is null;
create index documents_public_views_idx on public.documents (kind, view_count desc, id desc)
  where visibility = 'public' and deleted_at is null;
create index documents_search_idx on public.documents using gin (search);

-- == functions (schema private: not exposed) ==

-- Before a row is written: validate the body per kind, keep version,
-- change_xid (sync cursor) and updated_at in step. Counter-only updates
-- (views, forks) change neither version nor change_xid.
create function private.documents_before_write() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_allow_public boolean;
begin
  if tg_op = 'INSERT' then
    perform private.validate_document(new.kind, new.body);
    new.version := 1;
    new.change_xid := pg_current_xact_id();
    new.created_at := coalesce(new.created_at, now());
    new.updated_at := now();
  else
    if new.owner_id is distinct from old.owner_id or new.kind is distinct from old.kind then
      raise exception 'a document''s owner and kind never change' using errcode = '42501',
        hint = 'Create a new document instead (or fork it).';
    end if;
    if (new.title, new.body, new.visibility, new.deleted_at)
       is not distinct from (old.title, old.body, old.visibility, old.deleted_at) then
      new.version := old.version;
      new.change_xid := old.change_xid;
      new.updated_at := old.updated_at;
      return new;
    end if;
    if new.body is distinct from old.body then
      perform private.validate_document(new.kind, new.body);
    end if;
    new.version := old.version + 1;
    new.change_xid := pg_current_xact_id();
    new.updated_at := now();
  end if;
  if new.visibility = 'public' and (tg_op = 'INSERT' or old.visibility <> 'public') then
    select k.allow_public into v_allow_public from public.document_kinds k where k.id = new.kind;
    if not coalesce(v_allow_public, false) then
      raise exception 'documents of kind % cannot be public', new.kind using errcode = '22023',
        hint = 'Use visibility private or unlisted (share links) for this kind.';
    end if;
  end if;
  return new;
end;
$$;
revoke execute on function private.documents_before_write() from public;

create trigger documents_before_write before insert or update on public.documents
  for each row execute function private.documents_before_write();

-- The live-document limit of (user, kind) on the user's plan.
create function private.document_limit(p_owner uuid, p_kind text) returns integer
language plpgsql stable security definer set search_path = ''
as $$
begin
  if current_setting('role', true) in ('anon', 'authenticated') and p_owner is distinct from (select auth.uid()) then
    raise exception 'document_limit: not your user id' using errcode = '42501';
  end if;
  return (select coalesce(kl.max_documents, pl.documents_per_kind)
            from public.profiles p
            join public.plans pl on pl.id = p.plan
            left join public.document_kind_limits kl on kl.kind = p_kind and kl.plan = p.plan
           where p.id = p_owner);
end;
$$;
revoke execute on function private.document_limit(uuid, text) from public;
grant execute on function private.document_limit(uuid, text) to authenticated, service_role;

-- After each insert statement: no (user, kind) may exceed its plan limit.
-- One check per statement (bulk imports stay cheap); a per-(user, kind)
-- advisory lock plus a fresh snapshot make concurrent inserts exact.
create function private.documents_check_limits() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  r record;
  v_limit integer;
  v_live integer;
begin
  for r in select n.owner_id, n.kind from new_rows n where n.deleted_at is null group by 1, 2 order by 1, 2 loop
    perform pg_advisory_xact_lock(hashtextextended('backline.documents:' || r.owner_id || ':' || r.kind, 0));
    v_limit := private.document_limit(r.owner_id, r.kind);
    select count(*) into v_live from public.documents d
     where d.owner_id = r.owner_id and d.kind = r.kind and d.deleted_at is null;
    if v_limit is not null and v_live > v_limit then
      raise exception 'plan limit reached: at most % documents of kind % (you would have %)', v_limit, r.kind, v_live
        using errcode = 'PT403', hint = 'Delete some documents of this kind or upgrade your plan.';
    end if;
  end loop;
  return null;
end;
$$;
revoke execute on function private.documents_check_limits() from public;

create trigger documents_check_limits after insert on public.documents
  referencing new table as new_rows
  for each statement execute function private.documents_check_limits();

-- The same limit when a tombstoned document comes back (PATCH deleted_at,
-- sync_push, resolve_conflict): clearing deleted_at must not exceed the cap.
create function private.documents_check_limits_on_revive() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  r record;
  v_limit integer;
  v_live integer;
begin
  for r in select n.owner_id, n.kind from new_rows n join old_rows o on o.id = n.id
            where o.deleted_at is not null and n.deleted_at is null
            group by 1, 2 order by 1, 2 loop
    perform pg_advisory_xact_lock(hashtextextended('backline.documents:' || r.owner_id || ':' || r.kind, 0));
    v_limit := private.document_limit(r.owner_id, r.kind);
    select count(*) into v_live from public.documents d
     where d.owner_id = r.owner_id and d.kind = r.kind and d.deleted_at is null;
    if v_limit is not null and v_live > v_limit then
      raise exception 'plan limit reached: at most % documents of kind % (you would have %)', v_limit, r.kind, v_live
        using errcode = 'PT403', hint = 'Delete some documents of this kind or upgrade your plan.';
    end if;
  end loop;
  return null;
end;
$$;
revoke execute on function private.documents_check_limits_on_revive() from public;

create trigger documents_check_limits_on_revive after update on public.documents
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.documents_check_limits_on_revive();

-- == RPCs (public, security invoker) ==
create function public.delete_document(p_id uuid) returns public.documents
language plpgsql set search_path = ''
as $$
declare
  d public.documents;
begin
  update public.documents set deleted_at = now()
   where id = p_id and owner_id = (select auth.uid()) and deleted_at is null
  returning * into d;
  if not found then
    raise exception 'document % not found in your library (or already deleted)', p_id
      using errcode = 'PT404', hint = 'Only the owner can delete a document.';
  end if;
  return d;
end;
$$;
revoke execute on function public.delete_document(uuid) from public, anon;
grant execute on function public.delete_document(uuid) to authenticated, service_role;

create function public.link_document_file(p_document_id uuid, p_bucket_id text, p_object_name text)
returns public.file_links
language plpgsql set search_path = ''
as $$
declare
  l public.file_links;
begin
  if not exists (select 1 from public.documents d
                  where d.id = p_document_id and d.owner_id = (select auth.uid())) then
    raise exception 'document % not found in your library', p_document_id
      using errcode = 'PT404', hint = 'Only the owner can link files to a document.';
  end if;
  insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id)
  values ((select auth.uid()), p_bucket_id, p_object_name, 'document', p_document_id)
  on conflict (bucket_id, object_name, ref_kind, ref_id) do nothing;
  select * into l from public.file_links f
   where f.bucket_id = p_bucket_id and f.object_name = p_object_name
     and f.ref_kind = 'document' and f.ref_id = p_document_id;
  return l;
end;
$$;
revoke execute on function public.link_document_file(uuid, text, text) from public, anon;
grant execute on function public.link_document_file(uuid, text, text) to authenticated, service_role;

-- == grants and row level security ==
grant select on public.documents to anon, authenticated;
grant insert (id, owner_id, kind, title, body, visibility, local_id) on public.documents to authenticated;
grant update (title, body, visibility, deleted_at) on public.documents to authenticated;
grant select, insert, update, delete on public.documents to service_role;
alter table public.documents enable row level security;

-- One select policy per role (no multiple permissive policies to evaluate per row).
create policy "users read their own and public documents" on public.documents
  for select to authenticated
  using (owner_id = (select auth.uid()) or (visibility = 'public' and deleted_at is null));
create policy "anonymous visitors read public documents" on public.documents
  for select to anon using (visibility = 'public' and deleted_at is null);
create policy "users create their own documents" on public.documents
  for insert to authenticated with check (owner_id = (select auth.uid()));
create policy "owners update their documents" on public.documents
  for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));

-- == comments ==
comment on table public.documents is
  'Documents of a registered kind owned by a user. Owners read/write their own; everyone reads public live ones. '
  'Delete = set deleted_at (tombstone, or rpc delete_document); rows are removed after the retention period.';
comment on column public.documents.body is 'JSON body, validated by the kind''s validator and size limit.';
comment on column public.documents.visibility is
  'private (owner only), unlisted (owner + share links), public (explore, profile; kind must allow it).';
comment on column public.documents.version is 'Starts at 1, +1 on every change of title/body/visibility/deleted_at.';
comment on column public.documents.deleted_at is 'Tombstone: set to delete; sync_pull reports it.';
comment on column public.documents.forked_from is 'The document this one was forked from (null if original or source gone).';
comment on column public.documents.fork_count is 'How many forks were made of this document (maintained by fork_document).';
comment on column public.documents.view_count is 'How many times this document was opened through a share link.';
comment on column public.documents.local_id is 'The id the document had in the browser''s local library (import_local).';
comment on column public.documents.change_xid is 'Internal: transaction of the last change (sync cursor).';
comment on column public.documents.search is 'Full-text vector of title (A) and body strings (B); query with websearch_to_tsquery(''simple'', ...).';
comment on function public.delete_document(uuid) is 'Tombstone-delete one of your documents.';
comment on function public.link_document_file(uuid, text, text) is
  'Record that your document uses a stored file (public.file_links, ref_kind document), so orphan cleanup keeps it.';
