-- ai: a provider key is held for the session by default; keeping it is a choice.
--
-- Why (issue #13 item 7): the ideas canvas promises users that their key is
-- "stored temporarily, only used for the session duration". A key stored
-- without a lifetime was kept until deleted. Now:
-- * public.plans.ai_key_session_hours (default 12, the working day of one
--   session; operators change it per plan) is how long a key stored without
--   an explicit lifetime lives;
-- * private.ai_key_store's p_expires_at: null = that session default;
--   'infinity' = kept until the user deletes it (the explicit choice; the AI
--   proxy sends it for POST /v1/keys {"keep": true}); a time = that time;
-- * an expired key is never used (private.ai_key_secret already refuses keys
--   with expires_at <= now()) and is deleted by the cron cleanup
--   private.cleanup_ai_keys (hourly; migration 20261125050100).
-- Keys stored before this migration keep the lifetime they were stored with
-- (no expiry stays no expiry): their owners chose under the old rule.
-- docs/ai.md "Provider keys".

-- == the setting ==
alter table public.plans add column ai_key_session_hours integer not null default 12
  constraint plans_ai_key_session_hours_range check (ai_key_session_hours between 1 and 8784);

-- == store ==
-- Latest definition: 20261206090410_security_id_oracles.sql. Only the expiry
-- changed: null means the plan's session lifetime, 'infinity' means kept.
create or replace function private.ai_key_store(
  p_provider text, p_label text, p_last4 text, p_expires_at timestamptz,
  p_master_key_id text, p_wrapped_dek bytea, p_ciphertext bytea, p_id uuid default gen_random_uuid()
) returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_expires_at timestamptz;
begin
  if v_uid is null then
    raise exception 'storing an AI key needs a signed-in user' using errcode = '42501';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'key expiry must be in the future' using errcode = '22023',
      hint = 'Give expires_in_hours > 0, omit it for the session lifetime, or keep the key (keep: true).';
  end if;
  if p_ciphertext is null or p_wrapped_dek is null or length(p_ciphertext) > 8192 then
    raise exception 'encrypted key missing or too large' using errcode = '22023';
  end if;
  if p_id is null then
    raise exception 'AI key id missing' using errcode = '22023',
      hint = 'Omit p_id (a random id is chosen) or pass a new random uuid.';
  end if;
  v_expires_at := case
    when p_expires_at is null then now() + make_interval(hours => (private.plan_of(v_uid)).ai_key_session_hours)
    when isfinite(p_expires_at) then p_expires_at
  end;
  begin
    insert into public.ai_keys (id, user_id, provider, label, last4, expires_at)
      values (p_id, v_uid, p_provider, p_label, p_last4, v_expires_at);
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
comment on column public.plans.ai_key_session_hours is
  'Hours an AI provider key stored without an explicit lifetime is kept (the session); then it is unusable '
  'and deleted by cleanup. Keeping a key longer is the user''s explicit choice (keep: true).';
comment on column public.ai_keys.expires_at is
  'After this the key is unusable and deleted by cleanup; null = kept until deleted (stored with keep: true). '
  'Stored without a lifetime: now + plans.ai_key_session_hours.';
comment on function private.ai_key_store(text, text, text, timestamptz, text, bytea, bytea, uuid) is
  'AI proxy: store an encrypted key for auth.uid(). p_expires_at null = the plan''s ai_key_session_hours, '
  '''infinity'' = kept until deleted.';
