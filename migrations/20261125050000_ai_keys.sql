-- ai: users' own provider keys, envelope-encrypted, readable by no API role.
-- Why: the ideas canvas lets users bring their OpenAI/Anthropic keys. The
-- secret (ciphertext, wrapped data key) lives in private.ai_key_secrets,
-- which no API role can SELECT; public.ai_keys holds only metadata (provider,
-- label, last 4 characters, expiry) that the owner may list and delete. The
-- AI proxy encrypts in Python (AES-256-GCM data key per secret, wrapped by a
-- master key from configuration) and stores/reads the blobs through two
-- narrowly scoped definer functions that only ever touch the caller's own keys.

-- == tables ==
create table public.ai_keys (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  provider text not null constraint ai_keys_provider_known
    check (provider in ('openai', 'anthropic', 'gemini', 'openai_compat')),
  label text constraint ai_keys_label_length check (length(label) <= 100),
  last4 text not null constraint ai_keys_last4_length check (length(last4) <= 4),
  expires_at timestamptz,
  last_used_at timestamptz,
  created_at timestamptz not null default now()
);
create index ai_keys_user_id_idx on public.ai_keys (user_id);
create index ai_keys_expires_at_idx on public.ai_keys (expires_at) where expires_at is not null;

create table private.ai_key_secrets (
  key_id uuid primary key references public.ai_keys (id) on delete cascade,
  master_key_id text not null check (length(master_key_id) between 1 and 64),
  wrapped_dek bytea not null,
  ciphertext bytea not null,
  rotated_at timestamptz
);
create index ai_key_secrets_master_key_id_idx on private.ai_key_secrets (master_key_id);

-- == grants and row level security ==
grant select, delete on public.ai_keys to authenticated;
grant select, delete on public.ai_keys to service_role;
alter table public.ai_keys enable row level security;

create policy "owners read their ai keys" on public.ai_keys
  for select to authenticated using (user_id = (select auth.uid()));
create policy "owners delete their ai keys" on public.ai_keys
  for delete to authenticated using (user_id = (select auth.uid()));

-- The secrets table: no API role gets any privilege (not even service_role).
revoke all on private.ai_key_secrets from public, anon, authenticated, service_role;
alter table private.ai_key_secrets enable row level security;
-- No policies on purpose: even a stray GRANT would yield no rows.

-- == functions ==
create function private.ai_key_store(
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
  insert into public.ai_keys (id, user_id, provider, label, last4, expires_at)
    values (p_id, v_uid, p_provider, p_label, p_last4, p_expires_at);
  insert into private.ai_key_secrets (key_id, master_key_id, wrapped_dek, ciphertext)
    values (p_id, p_master_key_id, p_wrapped_dek, p_ciphertext);
  return p_id;
end;
$$;
revoke execute on function private.ai_key_store(text, text, text, timestamptz, text, bytea, bytea, uuid)
  from public;
grant execute on function private.ai_key_store(text, text, text, timestamptz, text, bytea, bytea, uuid)
  to authenticated;

-- Returns the encrypted blobs of ONE of the caller's own, unexpired keys
-- (useless without the master key, which only the proxy holds).
create function private.ai_key_secret(p_key_id uuid)
returns table (provider text, master_key_id text, wrapped_dek bytea, ciphertext bytea)
language plpgsql security definer set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
begin
  if v_uid is null then
    raise exception 'using an AI key needs a signed-in user' using errcode = '42501';
  end if;
  if not exists (
    select 1 from public.ai_keys k
     where k.id = p_key_id and k.user_id = v_uid and (k.expires_at is null or k.expires_at > now())
  ) then
    raise exception 'AI key % not found, not yours, or expired', p_key_id using errcode = 'P0002',
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
revoke execute on function private.ai_key_secret(uuid) from public;
grant execute on function private.ai_key_secret(uuid) to authenticated;

-- == comments ==
comment on table public.ai_keys is
  'Your stored AI provider keys: metadata only (the secret is never readable through the API). Delete a row to forget the key.';
comment on column public.ai_keys.last4 is 'Last 4 characters of the key, for display.';
comment on column public.ai_keys.expires_at is 'After this the key is unusable and deleted by cleanup; null = until deleted.';
comment on table private.ai_key_secrets is
  'Envelope-encrypted key material (AES-256-GCM; data key wrapped by master key master_key_id). No API role has any privilege.';
comment on function private.ai_key_store(text, text, text, timestamptz, text, bytea, bytea, uuid) is
  'AI proxy: store an encrypted key for auth.uid().';
comment on function private.ai_key_secret(uuid) is
  'AI proxy: the encrypted blobs of one of the caller''s own unexpired keys (P0002 otherwise).';
