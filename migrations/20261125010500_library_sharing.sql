-- library: sharing (share links, open_share, public profiles, explore, forks, abuse reports).
-- Why: the music sketchpad shares a loop by link (with expiry, revocable),
-- counts views, shows public profiles and an explore page, lets others fork
-- with lineage; anyone signed in can report a public document, only the
-- service role reads reports. Share tokens carry 244 random bits (two v4
-- uuids) and only their sha256 is stored, so a database leak reveals no link.

-- == tables ==
create table public.share_links (
  id uuid primary key default gen_random_uuid(),
  document_id uuid not null references public.documents (id) on delete cascade,
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  token_hash bytea not null constraint share_links_token_hash_key unique,
  expires_at timestamptz,
  revoked_at timestamptz,
  open_count bigint not null default 0,
  last_opened_at timestamptz,
  created_at timestamptz not null default now()
);
create index share_links_document_id_idx on public.share_links (document_id);
create index share_links_owner_id_idx on public.share_links (owner_id);
create index share_links_expires_at_idx on public.share_links (expires_at);

create table public.abuse_reports (
  id uuid primary key default gen_random_uuid(),
  document_id uuid not null references public.documents (id) on delete cascade,
  reporter_id uuid default auth.uid() references auth.users (id) on delete set null,
  reason text not null constraint abuse_reports_reason_valid
    check (reason in ('spam', 'harassment', 'illegal', 'copyright', 'other')),
  details text not null default '' constraint abuse_reports_details_length check (length(details) <= 2000),
  status text not null default 'open' constraint abuse_reports_status_valid check (status in ('open', 'reviewed', 'dismissed')),
  created_at timestamptz not null default now(),
  constraint abuse_reports_one_per_reporter unique (document_id, reporter_id)
);
create index abuse_reports_reporter_id_idx on public.abuse_reports (reporter_id);
create index abuse_reports_status_idx on public.abuse_reports (status, created_at);

-- == functions (schema private: not exposed) ==
create function private.share_token_hash(p_token text) returns bytea
language sql immutable set search_path = ''
as $$ select sha256(convert_to(coalesce(p_token, ''), 'UTF8')) $$;
revoke execute on function private.share_token_hash(text) from public;
grant execute on function private.share_token_hash(text) to anon, authenticated, service_role;

-- Resolve a token to its live link, or raise the reason it does not work.
create function private.share_link_for(p_token text) returns public.share_links
language plpgsql stable security definer set search_path = ''
as $$
declare
  l public.share_links;
begin
  select * into l from public.share_links s where s.token_hash = private.share_token_hash(p_token);
  if not found then
    raise exception 'share link not found' using errcode = 'PT404',
      hint = 'Check that the whole link was copied; it may also have been deleted.';
  end if;
  if l.revoked_at is not null then
    raise exception 'share link was revoked on %', to_char(l.revoked_at, 'YYYY-MM-DD') using errcode = 'PT410',
      hint = 'Ask the owner for a new link.';
  end if;
  if l.expires_at is not null and l.expires_at <= now() then
    raise exception 'share link expired on %', to_char(l.expires_at, 'YYYY-MM-DD') using errcode = 'PT410',
      hint = 'Ask the owner for a new link.';
  end if;
  if exists (select 1 from public.documents d where d.id = l.document_id and d.deleted_at is not null) then
    raise exception 'the shared document was deleted' using errcode = 'PT410';
  end if;
  return l;
end;
$$;
revoke execute on function private.share_link_for(text) from public;
grant execute on function private.share_link_for(text) to service_role;

create function private.public_owner(p_owner uuid) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select jsonb_build_object('id', p.id, 'username', p.username, 'display_name', p.display_name,
                            'avatar_url', p.avatar_url, 'bio', p.bio)
    from public.profiles p where p.id = p_owner
$$;
revoke execute on function private.public_owner(uuid) from public;
grant execute on function private.public_owner(uuid) to anon, authenticated, service_role;

create function private.open_share(p_token text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  l public.share_links;
  d public.documents;
begin
  l := private.share_link_for(p_token);
  update public.documents set view_count = view_count + 1 where id = l.document_id returning * into d;
  update public.share_links set open_count = open_count + 1, last_opened_at = now() where id = l.id;
  return jsonb_build_object(
    'document', jsonb_build_object('id', d.id, 'kind', d.kind, 'title', d.title, 'body', d.body,
      'visibility', d.visibility, 'version', d.version, 'forked_from', d.forked_from,
      'fork_count', d.fork_count, 'view_count', d.view_count, 'created_at', d.created_at,
      'updated_at', d.updated_at),
    'owner', private.public_owner(d.owner_id),
    'expires_at', l.expires_at);
end;
$$;
revoke execute on function private.open_share(text) from public;
grant execute on function private.open_share(text) to anon, authenticated, service_role;

create function private.fork_document(p_document_id uuid, p_share_token text, p_title text) returns public.documents
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  s public.documents;
  l public.share_links;
  f public.documents;
begin
  if v_uid is null then
    raise exception 'forking needs a signed-in user' using errcode = '42501', hint = 'Sign in (anonymously is fine).';
  end if;
  select * into s from public.documents d where d.id = p_document_id and d.deleted_at is null;
  if found and not (s.visibility = 'public' or s.owner_id = v_uid) then
    if p_share_token is null then
      s := null;
    else
      l := private.share_link_for(p_share_token);
      if l.document_id <> s.id then
        s := null;
      end if;
    end if;
  end if;
  if s.id is null then
    raise exception 'document % not found or not shared with you', p_document_id using errcode = 'PT404',
      hint = 'Only public documents, your own, or documents you have a share link for can be forked.';
  end if;
  insert into public.documents (owner_id, kind, title, body, visibility, forked_from)
  values (v_uid, s.kind, left(coalesce(p_title, s.title), 200), s.body, 'private', s.id)
  returning * into f;
  if not exists (select 1 from public.documents x
                  where x.forked_from = s.id and x.owner_id = v_uid and x.id <> f.id) then
    update public.documents set fork_count = fork_count + 1 where id = s.id;
  end if;
  return f;
end;
$$;
revoke execute on function private.fork_document(uuid, text, text) from public, anon;
grant execute on function private.fork_document(uuid, text, text) to authenticated, service_role;

-- == RPCs (public, security invoker) ==
create function public.create_share_link(p_document_id uuid, p_expires_in_days integer default null)
returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_token text;
  v_id uuid;
  v_expires_at timestamptz;
begin
  if p_expires_in_days is not null and p_expires_in_days not between 1 and 3650 then
    raise exception 'expires_in_days must be between 1 and 3650 (or null for no expiry)' using errcode = '22023';
  end if;
  if not exists (select 1 from public.documents d where d.id = p_document_id
                  and d.owner_id = (select auth.uid()) and d.deleted_at is null) then
    raise exception 'document % not found in your library', p_document_id using errcode = 'PT404',
      hint = 'Only the owner can share a document.';
  end if;
  v_token := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  insert into public.share_links (document_id, owner_id, token_hash, expires_at)
  values (p_document_id, (select auth.uid()), private.share_token_hash(v_token),
          now() + make_interval(days => p_expires_in_days))
  returning id, expires_at into v_id, v_expires_at;
  return jsonb_build_object('id', v_id, 'token', v_token, 'expires_at', v_expires_at);
end;
$$;
revoke execute on function public.create_share_link(uuid, integer) from public, anon;
grant execute on function public.create_share_link(uuid, integer) to authenticated;

create function public.revoke_share_link(p_id uuid) returns void
language plpgsql volatile set search_path = ''
as $$
begin
  update public.share_links set revoked_at = now()
   where id = p_id and owner_id = (select auth.uid()) and revoked_at is null;
  if not found then
    raise exception 'active share link % not found', p_id using errcode = 'PT404';
  end if;
end;
$$;
revoke execute on function public.revoke_share_link(uuid) from public, anon;
grant execute on function public.revoke_share_link(uuid) to authenticated;

create function public.open_share(p_token text) returns jsonb
language sql volatile set search_path = ''
as $$ select private.open_share(p_token) $$;
revoke execute on function public.open_share(text) from public;
grant execute on function public.open_share(text) to anon, authenticated, service_role;

create function public.fork_document(p_document_id uuid, p_share_token text default null, p_title text default null)
returns public.documents
language sql volatile set search_path = ''
as $$ select * from private.fork_document(p_document_id, p_share_token, p_title) $$;
revoke execute on function public.fork_document(uuid, text, text) from public, anon;
grant execute on function public.fork_document(uuid, text, text) to authenticated;

create function public.public_profile(p_username text, p_limit integer default 50) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_profile jsonb;
  v_owner uuid;
begin
  select p.id into v_owner from public.profiles p where p.username = lower(p_username)::extensions.citext;
  if v_owner is null then
    raise exception 'no user named %', p_username using errcode = 'PT404';
  end if;
  v_profile := private.public_owner(v_owner);
  return jsonb_build_object('profile', v_profile, 'documents', coalesce((
    select jsonb_agg(jsonb_build_object('id', d.id, 'kind', d.kind, 'title', d.title,
             'fork_count', d.fork_count, 'view_count', d.view_count, 'created_at', d.created_at)
             order by d.created_at desc, d.id desc)
      from (select * from public.documents d
             where d.owner_id = v_owner and d.visibility = 'public' and d.deleted_at is null
             order by d.created_at desc, d.id desc limit least(greatest(coalesce(p_limit, 50), 1), 200)) d), '[]'));
end;
$$;
revoke execute on function public.public_profile(text, integer) from public;
grant execute on function public.public_profile(text, integer) to anon, authenticated, service_role;

-- Keyset pagination: p_after is the `next` value of the previous page.
create function public.explore(
  p_kind text, p_sort text default 'newest', p_query text default null,
  p_after text default null, p_limit integer default 20
) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_tsq tsquery;
  v_after_n numeric;
  v_after_t timestamptz;
  v_after_id uuid;
  v_ids uuid[];
  v_items jsonb;
  v_count integer;
  v_last jsonb;
begin
  if p_sort is null or p_sort not in ('newest', 'most_forked', 'most_viewed') then
    raise exception 'sort must be newest, most_forked or most_viewed' using errcode = '22023';
  end if;
  if p_limit is null or p_limit not between 1 and 100 then
    raise exception 'limit must be between 1 and 100' using errcode = '22023';
  end if;
  if nullif(trim(p_query), '') is not null then
    v_tsq := websearch_to_tsquery('simple'::regconfig, p_query);
  end if;
  if p_after is not null then
    begin
      v_after_id := split_part(p_after, '|', 2)::uuid;
      if p_sort = 'newest' then
        v_after_t := split_part(p_after, '|', 1)::timestamptz;
      else
        v_after_n := split_part(p_after, '|', 1)::numeric;
      end if;
    exception when others then
      raise exception 'malformed explore cursor' using errcode = '22023',
        hint = 'Pass the `next` value of the previous page.';
    end;
  end if;

  -- One static query per sort order, so each walks its partial index in order.
  if p_sort = 'newest' then
    select array_agg(x.id order by x.created_at desc, x.id desc) into v_ids from (
      select d.id, d.created_at from public.documents d
       where d.kind = p_kind and d.visibility = 'public' and d.deleted_at is null
         and (v_tsq is null or d.search @@ v_tsq)
         and (p_after is null or (d.created_at, d.id) < (v_after_t, v_after_id))
       order by d.created_at desc, d.id desc limit p_limit + 1) x;
  elsif p_sort = 'most_forked' then
    select array_agg(x.id order by x.fork_count desc, x.id desc) into v_ids from (
      select d.id, d.fork_count from public.documents d
       where d.kind = p_kind and d.visibility = 'public' and d.deleted_at is null
         and (v_tsq is null or d.search @@ v_tsq)
         and (p_after is null or (d.fork_count, d.id) < (v_after_n::integer, v_after_id))
       order by d.fork_count desc, d.id desc limit p_limit + 1) x;
  else
    select array_agg(x.id order by x.view_count desc, x.id desc) into v_ids from (
      select d.id, d.view_count from public.documents d
       where d.kind = p_kind and d.visibility = 'public' and d.deleted_at is null
         and (v_tsq is null or d.search @@ v_tsq)
         and (p_after is null or (d.view_count, d.id) < (v_after_n::bigint, v_after_id))
       order by d.view_count desc, d.id desc limit p_limit + 1) x;
  end if;
  v_count := coalesce(array_length(v_ids, 1), 0);

  select coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'kind', d.kind, 'title', d.title, 'body', d.body,
           'owner', private.public_owner(d.owner_id), 'fork_count', d.fork_count, 'view_count', d.view_count,
           'forked_from', d.forked_from, 'created_at', d.created_at,
           'cursor', case p_sort when 'newest' then d.created_at::text when 'most_forked' then d.fork_count::text
                                 else d.view_count::text end || '|' || d.id) order by u.ord), '[]')
    into v_items
    from unnest(v_ids[1:p_limit]) with ordinality as u(id, ord)
    join public.documents d on d.id = u.id;

  v_last := v_items -> (jsonb_array_length(v_items) - 1);
  return jsonb_build_object('items', v_items, 'hasMore', v_count > p_limit,
                            'next', case when v_count > p_limit then v_last ->> 'cursor' end);
end;
$$;
revoke execute on function public.explore(text, text, text, text, integer) from public;
grant execute on function public.explore(text, text, text, text, integer) to anon, authenticated, service_role;

-- == grants and row level security ==
grant select (id, document_id, owner_id, expires_at, revoked_at, open_count, last_opened_at, created_at)
  on public.share_links to authenticated;
grant insert (document_id, owner_id, token_hash, expires_at) on public.share_links to authenticated;
grant update (revoked_at) on public.share_links to authenticated;
grant select, insert, update, delete on public.share_links to service_role;
alter table public.share_links enable row level security;

create policy "owners read their share links" on public.share_links
  for select to authenticated using (owner_id = (select auth.uid()));
create policy "owners share their own documents" on public.share_links
  for insert to authenticated
  with check (owner_id = (select auth.uid())
              and exists (select 1 from public.documents d
                           where d.id = share_links.document_id and d.owner_id = (select auth.uid())));
create policy "owners revoke their share links" on public.share_links
  for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));

grant insert (document_id, reporter_id, reason, details) on public.abuse_reports to authenticated;
grant select, insert, update, delete on public.abuse_reports to service_role;
alter table public.abuse_reports enable row level security;

create policy "signed-in users report public documents" on public.abuse_reports
  for insert to authenticated
  with check (reporter_id = (select auth.uid())
              and exists (select 1 from public.documents d where d.id = abuse_reports.document_id
                            and d.visibility = 'public' and d.deleted_at is null));

-- == comments ==
comment on table public.share_links is
  'Links that open one document for anyone holding the token (rpc create_share_link / open_share / revoke_share_link). '
  'Only the token''s sha256 is stored; the token is shown once, at creation.';
comment on column public.share_links.expires_at is 'After this time open_share answers 410 (expired). Null: never expires.';
comment on column public.share_links.revoked_at is 'Set by revoke_share_link; open_share then answers 410 (revoked).';
comment on table public.abuse_reports is
  'Reports of public documents by signed-in users (insert only). Read and handled by operators (service role).';
comment on function public.create_share_link(uuid, integer) is
  'Create a share link for your document; returns {id, token, expires_at}. Keep the token: it is not stored.';
comment on function public.open_share(text) is
  'Open a shared document (anyone, anon too): {document, owner, expires_at}; counts one view. '
  'Errors: PT404 unknown token, PT410 expired/revoked/deleted.';
comment on function public.fork_document(uuid, text, text) is
  'Copy a public document (or one you have a share token for) into your library as private, with forked_from lineage.';
comment on function public.public_profile(text, integer) is 'A user''s public profile and newest public documents.';
comment on function public.explore(text, text, text, text, integer) is
  'Public documents of a kind: sort newest/most_forked/most_viewed, optional text search, keyset pages '
  '{items, hasMore, next}; pass next as p_after for the following page.';
