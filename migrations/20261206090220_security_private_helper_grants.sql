-- security: private helpers executable only by the paths that need them.
-- Adds private.request_export() (security definer) and a new
-- private.ai_key_secret(p_key_id, p_user_id); redefines public.request_export()
-- (latest definition: 20261125049000_privacy_data_rights_requests) to call it;
-- drops private.ai_key_secret(uuid) (latest definition: 20261125050000_ai_keys).
-- Why:
-- * private.data_rights_audit(action, job_id) was executable by authenticated,
--   because the security-invoker rpc request_export() called it as the user. So
--   a user could append 'export.requested' or 'account.deletion_requested'
--   entries with any job id to their own append-only audit trail. Now
--   request_export() does its work in a definer function (like
--   request_account_deletion() already did), which enqueues through
--   public.enqueue_job (same checks, same per-plan daily limit: the limit
--   trigger reads the request's role, which a definer function does not change)
--   and writes the audit entry itself: no API role may execute
--   data_rights_audit.
-- * private.ai_key_secret(key_id) was executable by authenticated, because the
--   AI proxy read the stored key acting as the user: any user could fetch their
--   own key's ciphertext and wrapped data key. Now no API role may execute it;
--   the proxy reads the blobs as its own database role (the migrations' owner),
--   naming the verified caller's user id, in the same transaction and round
--   trip as the admission (workers/ai/ledger.py). A key that is unknown, not
--   that user's or expired answers PT404 (HTTP 404) instead of P0002 (500).
-- The other private functions anon/authenticated may execute were reviewed: they
-- answer only about the caller (my_*, room_role, plan_of, document_limit,
-- backup_store refuse another user's id), are pure (validators, share token
-- hash, topic parsing), are what a public rpc exposes anyway (open_share,
-- fork_document, room invites, telemetry_ingest, request_account_deletion), or
-- are the proxy's ticketed ledger (ai_begin, ai_finish).

-- == data_rights_audit: only definer code owned by the migrations' role ==
revoke execute on function private.data_rights_audit(text, uuid) from public, anon, authenticated, service_role;

create function private.request_export() returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_id uuid;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to export your data' using errcode = '42501';
  end if;
  v_id := public.enqueue_job('export', '{}'::jsonb);
  perform private.data_rights_audit('export.requested', v_id);
  return v_id;
end;
$$;
revoke execute on function private.request_export() from public, anon, authenticated, service_role;
grant execute on function private.request_export() to authenticated;

-- Same name, arguments and result: the ACL (authenticated only) is kept.
create or replace function public.request_export()
returns uuid
language sql volatile set search_path = ''
as $$ select private.request_export() $$;

-- == ai_key_secret: the proxy's own role, for a user it names ==
drop function private.ai_key_secret(uuid);

-- Returns the encrypted blobs of ONE of p_user_id's own, unexpired keys.
create function private.ai_key_secret(p_key_id uuid, p_user_id uuid)
returns table (provider text, master_key_id text, wrapped_dek bytea, ciphertext bytea)
language plpgsql security definer set search_path = ''
as $$
begin
  if p_key_id is null or p_user_id is null then
    raise exception 'key id and user id are required' using errcode = '22023';
  end if;
  if not exists (
    select 1 from public.ai_keys k
     where k.id = p_key_id and k.user_id = p_user_id and (k.expires_at is null or k.expires_at > now())
  ) then
    raise exception 'AI key % not found, not yours, or expired', p_key_id using errcode = 'PT404',
      hint = 'List your keys with GET /v1/keys; store it again if it expired.';
  end if;
  -- Coarse last-use stamp: at most one write per key per minute keeps the hot path read-only.
  update public.ai_keys k set last_used_at = now()
   where k.id = p_key_id and (k.last_used_at is null or k.last_used_at < now() - interval '1 minute');
  return query
    select k.provider, s.master_key_id, s.wrapped_dek, s.ciphertext
      from public.ai_keys k join private.ai_key_secrets s on s.key_id = k.id
     where k.id = p_key_id;
end;
$$;
revoke execute on function private.ai_key_secret(uuid, uuid) from public, anon, authenticated, service_role;

-- == comments ==
comment on function private.data_rights_audit(text, uuid) is
  'Audit entry of a data-rights request for auth.uid(). Only for definer functions (request_export); no API role.';
comment on function private.request_export() is
  'rpc request_export: enqueue the caller''s export job (plan limit applies) and audit the request.';
comment on function private.ai_key_secret(uuid, uuid) is
  'AI proxy only (its own database role, no API role): the encrypted blobs of one of p_user_id''s own '
  'unexpired keys (PT404 otherwise).';
