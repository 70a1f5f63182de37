-- library: fork_count counts a user's first fork of a document only.
-- Why: fork + delete_document in a loop raised fork_count without bound
-- (tombstones free the plan slot), which rigs explore's most_forked order.

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
