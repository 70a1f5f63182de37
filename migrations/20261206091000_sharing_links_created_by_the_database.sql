-- sharing: share links are created by the database only. Adds
-- private.create_share_link(); public.create_share_link() becomes its wrapper;
-- clients lose INSERT on public.share_links.
-- Why: token_hash, expires_at and owner_id are columns the database maintains.
-- With a client INSERT grant (needed while create_share_link ran as the
-- caller) a user could store a link whose token they chose instead of the
-- unguessable one the server draws. The link rules stay exactly as before:
-- only the owner of a live document shares it, expiry 1-3650 days or none.

-- == functions (schema private: not exposed) ==
create function private.create_share_link(p_document_id uuid, p_expires_in_days integer)
returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_token text;
  v_id uuid;
  v_expires_at timestamptz;
begin
  if (select auth.uid()) is null then
    raise exception 'sharing needs a signed-in user' using errcode = '42501';
  end if;
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
revoke execute on function private.create_share_link(uuid, integer) from public, anon, authenticated, service_role;
grant execute on function private.create_share_link(uuid, integer) to authenticated;

-- Same signature, result and ACL: `supabase.rpc('create_share_link', ...)` is unchanged.
create or replace function public.create_share_link(p_document_id uuid, p_expires_in_days integer default null)
returns jsonb
language sql volatile set search_path = ''
as $$ select private.create_share_link(p_document_id, p_expires_in_days) $$;

-- == grants and row level security ==
revoke insert on table public.share_links from anon, authenticated;
drop policy "owners share their own documents" on public.share_links;

-- == comments ==
comment on function public.create_share_link(uuid, integer) is
  'Create a share link for your document; returns {id, token, expires_at}. Keep the token: it is not stored. '
  'The only way to create a link: share_links takes no client INSERT. 404 (PT404) when the document is not in your library.';
