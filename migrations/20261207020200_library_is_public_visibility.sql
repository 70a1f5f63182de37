-- library: a body's `isPublic` flag and the document's visibility are one fact.
--
-- Why (issue #13 item 2): the sketchpad publishes a loop or song by sending
-- `isPublic: true` in its body; Backline decides who can read a document by
-- the `visibility` column (RLS, explore, public profiles). Without a mapping
-- a "public" loop stayed private, or a loop made public through
-- `visibility` still said `isPublic: false` to the app.
--
-- The rule (for any kind whose body is an object with a boolean `isPublic`;
-- docs/library.md "isPublic and visibility"):
-- * insert, or an update that changes `isPublic`: isPublic decides. true ->
--   'public'; false -> 'private', except that an unlisted document stays
--   unlisted (unlisted is not public either);
-- * an update that changes only `visibility`: the body's isPublic is set to
--   (visibility = 'public');
-- * an update that changes both so that they disagree: refused (22023).
-- The kind's allow_public check runs after the mapping, as does RLS's WITH
-- CHECK, so every rule about who may publish sees the mapped visibility.
-- A fork starts private: fork_document copies the body with isPublic false.
--
-- Redefines private.documents_before_write (latest: 20261125010100_library_documents.sql)
-- and private.fork_document (latest: 20261206090410_security_id_oracles.sql).

create or replace function private.documents_before_write() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_allow_public boolean;
  v_flag boolean;
  v_old_flag boolean;
begin
  if jsonb_typeof(new.body) = 'object' and jsonb_typeof(new.body -> 'isPublic') = 'boolean' then
    v_flag := (new.body -> 'isPublic')::boolean;
  end if;
  if tg_op = 'INSERT' then
    perform private.validate_document(new.kind, new.body);
    if v_flag is not null then
      new.visibility := case when v_flag then 'public'
                             when new.visibility = 'public' then 'private' else new.visibility end;
    end if;
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
    if jsonb_typeof(old.body) = 'object' and jsonb_typeof(old.body -> 'isPublic') = 'boolean' then
      v_old_flag := (old.body -> 'isPublic')::boolean;
    end if;
    if v_flag is not null and v_flag is distinct from v_old_flag then
      if new.visibility is distinct from old.visibility and (new.visibility = 'public') <> v_flag then
        raise exception 'isPublic (%) and visibility (%) disagree', v_flag::text, new.visibility using errcode = '22023',
          hint = 'Change one of them: isPublic true means visibility public, false means private or unlisted.';
      end if;
      new.visibility := case when v_flag then 'public'
                             when new.visibility = 'public' then 'private' else new.visibility end;
    elsif v_flag is not null and new.visibility is distinct from old.visibility
          and (new.visibility = 'public') <> v_flag then
      new.body := jsonb_set(new.body, '{isPublic}', to_jsonb(new.visibility = 'public'));
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

-- Latest definition: 20261206090410_security_id_oracles.sql. Only the copied
-- body changed: a fork starts private, so its isPublic (if any) is false.
create or replace function private.fork_document(p_document_id uuid, p_share_token text, p_title text) returns public.documents
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
  -- Neither public nor yours, or no such live document: only a share link for
  -- exactly this id opens it. The token is checked in both cases, so its errors
  -- (not found, revoked, expired) never tell whether the document exists.
  if s.id is null or not (s.visibility = 'public' or s.owner_id = v_uid) then
    if p_share_token is null then
      s := null;
    else
      l := private.share_link_for(p_share_token);
      if l.document_id is distinct from p_document_id then
        s := null;
      end if;
    end if;
  end if;
  if s.id is null then
    raise exception 'document % not found or not shared with you', p_document_id using errcode = 'PT404',
      hint = 'Only public documents, your own, or documents you have a share link for can be forked.';
  end if;
  insert into public.documents (owner_id, kind, title, body, visibility, forked_from)
  values (v_uid, s.kind, left(coalesce(p_title, s.title), 200),
          case when jsonb_typeof(s.body -> 'isPublic') = 'boolean'
               then jsonb_set(s.body, '{isPublic}', 'false'::jsonb) else s.body end,
          'private', s.id)
  returning * into f;
  if not exists (select 1 from public.documents x
                  where x.forked_from = s.id and x.owner_id = v_uid and x.id <> f.id) then
    update public.documents set fork_count = fork_count + 1 where id = s.id;
  end if;
  return f;
end;
$$;

comment on column public.documents.visibility is
  'private (owner only), unlisted (owner + share links), public (explore, profile; kind must allow it). '
  'Follows the body''s boolean isPublic when it has one (docs/library.md).';
