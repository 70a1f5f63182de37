-- library: full-text search in each kind's language (the collection tracker
-- searches items with English stemming).
--
-- Why (issue #13 item 2): the collection tracker searches items by name and
-- notes with `to_tsvector('english', ...)`: "guitar" must find "guitars".
-- documents.search was generated with the 'simple' configuration (no
-- stemming) for every kind. The configuration is now a per-kind setting,
-- public.document_kinds.text_search_config (default 'simple'; 'english' for
-- the tracker's item and folder kinds), and documents.search is built with
-- its kind's configuration:
-- * documents.search stops being a generated column (a generated column can
--   only read its own row) and becomes one the trigger
--   documents_search_vector maintains on insert and on every change of title
--   or body, through private.document_search_vector(config, title, body);
--   its GIN index documents_search_idx is unchanged and still serves
--   `search @@ <tsquery>` whatever configuration built the vector;
-- * changing a kind's text_search_config rebuilds the vectors of that kind's
--   documents (trigger document_kinds_search_config, one statement; plan it
--   like any bulk update on a big library);
-- * explore() builds its query with the kind's configuration; clients that
--   search the table directly use the kind's text_search_config as the
--   textSearch config (docs/library.md "Search").
-- Existing item and folder documents are re-indexed here.

-- == per-kind setting ==
alter table public.document_kinds
  add column text_search_config regconfig not null default 'simple'::regconfig;
update public.document_kinds set text_search_config = 'english'::regconfig where id in ('item', 'folder');

-- == the vector ==
create function private.document_search_vector(p_config regconfig, p_title text, p_body jsonb)
returns tsvector
language sql immutable parallel safe set search_path = ''
as $$ select setweight(to_tsvector(p_config, coalesce(p_title, '')), 'A')
          || setweight(jsonb_to_tsvector(p_config, coalesce(p_body, '{}'::jsonb), '["string"]'::jsonb), 'B') $$;
revoke execute on function private.document_search_vector(regconfig, text, jsonb)
  from public, anon, authenticated, service_role;

alter table public.documents alter column search drop expression;

create function private.documents_search_vector() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  new.search := private.document_search_vector(
    coalesce((select k.text_search_config from public.document_kinds k where k.id = new.kind), 'simple'::regconfig),
    new.title, new.body);
  return new;
end;
$$;
revoke execute on function private.documents_search_vector() from public, anon, authenticated, service_role;

-- Fires after documents_before_write (triggers run in name order), so it sees
-- the body that is stored. An update that sets only `search` does not fire it.
create trigger documents_search_vector before insert or update of title, body on public.documents
  for each row execute function private.documents_search_vector();

create function private.document_kinds_search_config() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update public.documents d
     set search = private.document_search_vector(new.text_search_config, d.title, d.body)
   where d.kind = new.id;
  return null;
end;
$$;
revoke execute on function private.document_kinds_search_config() from public, anon, authenticated, service_role;

create trigger document_kinds_search_config after update of text_search_config on public.document_kinds
  for each row when (new.text_search_config is distinct from old.text_search_config)
  execute function private.document_kinds_search_config();

-- Vectors of the kinds whose configuration changed above.
update public.documents d
   set search = private.document_search_vector(k.text_search_config, d.title, d.body)
  from public.document_kinds k
 where k.id = d.kind and k.text_search_config <> 'simple'::regconfig;

-- == explore: the kind's configuration ==
-- Latest definition: 20261125010500_library_sharing.sql. Only the tsquery's
-- configuration changed.
create or replace function public.explore(
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
    -- The kind's configuration, the one its documents' vectors were built with.
    v_tsq := websearch_to_tsquery(coalesce((select k.text_search_config from public.document_kinds k
                                             where k.id = p_kind), 'simple'::regconfig), p_query);
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

-- == comments ==
comment on column public.document_kinds.text_search_config is
  'Text-search configuration of this kind''s documents (simple: no stemming; english: "guitar" finds "guitars"). '
  'Search documents of the kind with this config. Changing it re-indexes the kind''s documents.';
comment on column public.documents.search is
  'Full-text vector of title (A) and body strings (B), built with the kind''s document_kinds.text_search_config; '
  'query with websearch_to_tsquery(<that config>, ...). Maintained by the database.';
comment on function private.document_search_vector(regconfig, text, jsonb) is
  'The documents.search vector: title (weight A) and every string in the body (B) in the given configuration.';
comment on function private.documents_search_vector() is
  'Trigger: documents.search from its kind''s text_search_config on insert and on a change of title or body.';
comment on function private.document_kinds_search_config() is
  'Trigger: rebuild the search vectors of a kind''s documents when its text_search_config changes.';
