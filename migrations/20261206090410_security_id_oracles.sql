-- security: answers that do not tell whether someone else's id exists.
-- Redefines public.sync_push (from 20261125010200_library_sync.sql),
-- private.fork_document (from 20261125010500_library_sharing.sql) and
-- private.ai_key_store (from 20261125050000_ai_keys.sql); create or replace
-- keeps their grants. Adds no objects.
--
-- Why: an RPC taking an id must answer a stranger who names someone else's
-- row exactly as it answers an id nobody uses, and must change nothing of the
-- other user's. Before:
--   sync_push, an update (base_version set) of a document not in your library:
--     an unused id was silently CREATED, someone else's id was rejected with
--     23505 naming documents_pkey: which ids exist, for the price of a push.
--   fork_document with a share token: for someone else's private document a
--     wrong token answered "share link not found", for an unknown id
--     "document not found or not shared with you".
--   ai_key_store with p_id of an existing key: 23505 naming ai_keys_pkey.
--
-- What ids mean now (docs/library.md, "Sync"):
--   sync_push: documents ids are chosen by the client (local-first: a document
--   has its id before it is ever synced), so they cannot be namespaced per
--   user and a CREATE (base_version null) of an id that is taken must fail.
--   It fails with one answer, 23505 "document id ... cannot be used for a new
--   document", whoever holds the id; nothing is created or changed. An UPDATE
--   or DELETE of a document that is not in your library (someone else's, or no
--   document at all) is answered the same for both: update -> rejected PT404
--   "document ... is not in your library" (it no longer creates the document:
--   send base_version null to create), delete -> applied, "already absent".
--   What a create still reveals is that a random 122-bit id is taken, which
--   only someone who already knows the id can ask and which names no owner,
--   kind or content; server-chosen ids would remove it and break offline
--   creation, so clients keep choosing (uuid v4).
--   fork_document: without a share link every document that is neither public
--   nor yours answers PT404 "not found or not shared with you", as before;
--   with a share link the token is checked first in both cases, so its errors
--   depend on the token only.
--   ai_key_store: ids are chosen by the AI proxy (uuid4; the key's ciphertext
--   is bound to it), never by the user (schema private is not exposed by the
--   Data API). A taken id gets one answer whoever holds it; as for documents,
--   a create with a chosen id cannot answer "taken" like "free".
-- Other RPCs that take an id already answered someone else's id and an unknown
-- id the same (owner filter in the statement, one message), proven by
-- tests/security/test_reference_checks.py: delete_document,
-- link_document_file, create_share_link, revoke_share_link, resolve_conflict,
-- transfer_room_ownership, create_room_invite, private.ai_key_secret.

-- == sync_push ==
create or replace function public.sync_push(p_changes jsonb, p_strategy text default 'server_wins')
returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  c jsonb;
  v_change_id text;
  v_id uuid;
  v_op text;
  v_base integer;
  v_prior jsonb;
  v_result jsonb;
  v_results jsonb[] := '{}';
  d public.documents;
  v_conflict uuid;
  v_receipts jsonb;
  v_dups text[];
  v_dup_results jsonb := '{}';
  v_new_ids text[] := '{}';
  v_new_results jsonb[] := '{}';
begin
  if v_uid is null then
    raise exception 'sync needs a signed-in user' using errcode = '42501', hint = 'Sign in (anonymously is fine).';
  end if;
  if p_strategy is null or p_strategy not in ('server_wins', 'client_wins', 'manual') then
    raise exception 'unknown conflict strategy: %', p_strategy using errcode = '22023',
      hint = 'Use server_wins (default), client_wins or manual.';
  end if;
  if jsonb_typeof(p_changes) is distinct from 'array' or jsonb_array_length(p_changes) > 5000 then
    raise exception 'changes must be a JSON array of at most 5000 changes' using errcode = '22023';
  end if;
  -- Results of change ids applied before (retries), in one query; ids repeated within this batch.
  select coalesce(jsonb_object_agg(r.change_id, r.result), '{}') into v_receipts
    from public.sync_receipts r
   where r.owner_id = v_uid and r.change_id in (select e ->> 'change_id' from jsonb_array_elements(p_changes) e);
  select coalesce(array_agg(x.id), '{}') into v_dups from (
    select e ->> 'change_id' as id from jsonb_array_elements(p_changes) e group by 1 having count(*) > 1) x;

  for c in select value from jsonb_array_elements(p_changes) loop
    v_change_id := c ->> 'change_id';
    v_result := jsonb_build_object('change_id', v_change_id, 'id', c ->> 'id');
    begin
      if v_change_id is null or length(v_change_id) not between 1 and 100 then
        raise exception 'change_id must be 1-100 characters' using errcode = '22023';
      end if;
      v_prior := coalesce(v_receipts -> v_change_id, v_dup_results -> v_change_id);
      if v_prior is not null then
        v_results := v_results || (v_prior || jsonb_build_object('duplicate', true));
        continue;
      end if;
      v_id := (c ->> 'id')::uuid;
      if v_id is null then
        raise exception 'every change needs the document id' using errcode = '22023';
      end if;
      v_op := coalesce(c ->> 'op', 'upsert');
      if v_op not in ('upsert', 'delete') then
        raise exception 'op must be upsert or delete, got %', v_op using errcode = '22023';
      end if;
      v_base := (c ->> 'base_version')::integer;

      -- Happy path first: one statement applies a change whose base version matches.
      if v_base is not null then
        update public.documents
           set title = case when v_op = 'delete' then title else coalesce(c ->> 'title', title) end,
               body = case when v_op = 'delete' then body else coalesce(c -> 'body', body) end,
               visibility = case when v_op = 'delete' then visibility else coalesce(c ->> 'visibility', visibility) end,
               deleted_at = case when v_op = 'delete' then coalesce(deleted_at, now()) else null end
         where id = v_id and owner_id = v_uid and version = v_base
        returning * into d;
      end if;
      if v_base is not null and found then
        v_result := v_result || jsonb_build_object('status', 'applied', 'version', d.version);
      else
        select * into d from public.documents where id = v_id and owner_id = v_uid for update;
        if not found then
          -- Not in the caller's library: someone else's id and an unused id get the same answer.
          if v_op = 'delete' then
            v_result := v_result || jsonb_build_object('status', 'applied', 'version', null, 'note', 'already absent');
          elsif v_base is not null then
            raise exception 'document % is not in your library', v_id using errcode = 'PT404',
              hint = 'base_version is for documents you synced before. To create a document send base_version null.';
          else
            begin
              insert into public.documents (id, owner_id, kind, title, body, visibility)
              values (v_id, v_uid, c ->> 'kind', coalesce(c ->> 'title', ''), coalesce(c -> 'body', '{}'),
                      coalesce(c ->> 'visibility', 'private'))
              returning * into d;
            exception when unique_violation then
              raise exception 'document id % cannot be used for a new document', v_id using errcode = '23505',
                hint = 'Generate a new random id (uuid v4) for every new document.';
            end;
            v_result := v_result || jsonb_build_object('status', 'applied', 'version', d.version);
          end if;
        else
          insert into public.sync_conflicts (owner_id, document_id, change_id, strategy, base_version,
            client_title, client_body, client_deleted, server_version, server_title, server_body, server_deleted,
            status, resolution, resolved_at)
          values (v_uid, v_id, v_change_id, p_strategy, v_base,
            c ->> 'title', c -> 'body', v_op = 'delete', d.version, d.title, d.body, d.deleted_at is not null,
            case when p_strategy = 'client_wins' then 'resolved' else 'open' end,
            case when p_strategy = 'client_wins' then 'client_wins' end,
            case when p_strategy = 'client_wins' then now() end)
          returning id into v_conflict;
          if p_strategy = 'client_wins' then
            update public.documents
               set title = case when v_op = 'delete' then title else coalesce(c ->> 'title', title) end,
                   body = case when v_op = 'delete' then body else coalesce(c -> 'body', body) end,
                   visibility = case when v_op = 'delete' then visibility else coalesce(c ->> 'visibility', visibility) end,
                   deleted_at = case when v_op = 'delete' then coalesce(deleted_at, now()) else null end
             where id = v_id
            returning * into d;
            v_result := v_result || jsonb_build_object('status', 'applied', 'version', d.version,
              'conflict_id', v_conflict, 'note', 'server copy kept in sync_conflicts');
          else
            v_result := v_result || jsonb_build_object(
              'status', case when p_strategy = 'manual' then 'needs_resolution' else 'conflict' end,
              'conflict_id', v_conflict,
              'server', jsonb_build_object('version', d.version, 'title', d.title, 'body', d.body,
                                           'visibility', d.visibility, 'deleted', d.deleted_at is not null));
          end if;
        end if;
      end if;
      v_new_ids := v_new_ids || v_change_id;
      v_new_results := v_new_results || v_result;
      if v_change_id = any (v_dups) then
        v_dup_results := v_dup_results || jsonb_build_object(v_change_id, v_result);
      end if;
    exception when others then
      v_result := v_result || jsonb_build_object('status', 'rejected', 'code', sqlstate, 'error', sqlerrm);
    end;
    v_results := v_results || v_result;
  end loop;
  -- Receipts in one statement. A concurrent retry of the same change id fails
  -- here on the primary key and its whole call rolls back: applied once.
  insert into public.sync_receipts (owner_id, change_id, result)
  select v_uid, t.id, t.result from unnest(v_new_ids, v_new_results) as t(id, result);
  return jsonb_build_object('results', to_jsonb(v_results));
end;
$$;


-- == fork_document (the definer behind public.fork_document) ==
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
  values (v_uid, s.kind, left(coalesce(p_title, s.title), 200), s.body, 'private', s.id)
  returning * into f;
  if not exists (select 1 from public.documents x
                  where x.forked_from = s.id and x.owner_id = v_uid and x.id <> f.id) then
    update public.documents set fork_count = fork_count + 1 where id = s.id;
  end if;
  return f;
end;
$$;


-- == ai_key_store (AI proxy) ==
create or replace function private.ai_key_store(
  p_provider text, p_label text, p_last4 text, p_expires_at timestamptz,
  p_master_key_id text, p_wrapped_dek bytea, p_ciphertext bytea, p_id uuid default gen_random_uuid()
) returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
begin
  if v_uid is null then
    raise exception 'storing an AI key needs a signed-in user' using errcode = '42501';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'key expiry must be in the future' using errcode = '22023',
      hint = 'Give expires_in_hours > 0 or omit it to keep the key until deleted.';
  end if;
  if p_ciphertext is null or p_wrapped_dek is null or length(p_ciphertext) > 8192 then
    raise exception 'encrypted key missing or too large' using errcode = '22023';
  end if;
  if p_id is null then
    raise exception 'AI key id missing' using errcode = '22023',
      hint = 'Omit p_id (a random id is chosen) or pass a new random uuid.';
  end if;
  begin
    insert into public.ai_keys (id, user_id, provider, label, last4, expires_at)
      values (p_id, v_uid, p_provider, p_label, p_last4, p_expires_at);
  exception when unique_violation then
    -- The same answer whoever holds the id (you or someone else).
    raise exception 'AI key id % cannot be used for a new key', p_id using errcode = '23505',
      hint = 'Pass a new random uuid (the AI proxy generates one per key), or omit p_id.';
  end;
  insert into private.ai_key_secrets (key_id, master_key_id, wrapped_dek, ciphertext)
    values (p_id, p_master_key_id, p_wrapped_dek, p_ciphertext);
  return p_id;
end;
$$;


-- == comments ==
comment on function public.sync_push(jsonb, text) is
  'Apply [{change_id, id, kind, op: upsert|delete, base_version, title, body, visibility}] each atomically. '
  'A new document: base_version null and a new random id; an id that is taken is rejected (23505). '
  'An update of a document not in your library is rejected (PT404); a delete of one is applied (already absent). '
  'Strategy server_wins (default: conflict kept, server copy returned), client_wins (client applied, server copy kept), '
  'manual (conflict kept for resolve_conflict). Returns {results: [{change_id, id, status, version, conflict_id, server}]}.';
