-- library: client-side encrypted backups (the listening companion).
-- Why: the app encrypts its whole state on the device and uploads opaque
-- ciphertext + nonce + key-derivation parameters; the server stores bytes it
-- can never decrypt (it never sees the passphrase or key). Uploads are
-- versioned with optimistic concurrency (p_if_version = the version the
-- client last saw), the newest N versions per plan are kept, any kept
-- version can be downloaded or restored (copied to a new newest version).
-- Only the owner reads; writes go through the RPCs (definer helpers enforce
-- version order, size and retention).

-- == plan limits ==
alter table public.plans
  add column backup_max_bytes bigint not null default 5242880
    constraint plans_backup_max_bytes_nonnegative check (backup_max_bytes >= 0),
  add column backup_versions_kept integer not null default 3
    constraint plans_backup_versions_kept_min check (backup_versions_kept >= 3);
update public.plans set backup_max_bytes = 5 * 1024 * 1024, backup_versions_kept = 3 where id = 'free';
update public.plans set backup_max_bytes = 100 * 1024 * 1024, backup_versions_kept = 30 where id = 'pro';

comment on column public.plans.backup_max_bytes is 'Largest encrypted backup (ciphertext bytes) a user may upload.';
comment on column public.plans.backup_versions_kept is 'How many newest backup versions are kept per user (at least 3).';

-- == tables ==
create table public.backups (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  version integer not null constraint backups_version_positive check (version >= 1),
  ciphertext bytea not null,
  nonce bytea not null constraint backups_nonce_length check (octet_length(nonce) between 8 and 64),
  kdf jsonb not null constraint backups_kdf_object check (jsonb_typeof(kdf) = 'object' and octet_length(kdf::text) <= 2048),
  size_bytes bigint generated always as (octet_length(ciphertext)) stored,
  restored_from integer,
  created_at timestamptz not null default now(),
  constraint backups_owner_version_key unique (owner_id, version)
);

-- == functions (schema private: not exposed) ==
create function private.backup_store(
  p_owner uuid, p_ciphertext bytea, p_nonce bytea, p_kdf jsonb, p_if_version integer, p_restored_from integer
) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_plan public.plans;
  v_latest integer;
  b public.backups;
  v_pruned integer;
begin
  if p_owner is distinct from (select auth.uid()) and current_setting('role', true) in ('anon', 'authenticated') then
    raise exception 'backups are stored for the signed-in user only' using errcode = '42501';
  end if;
  if p_owner is null then
    raise exception 'backups need a signed-in user' using errcode = '42501';
  end if;
  if p_if_version is null or p_if_version < 0 then
    raise exception 'if_version is required: the version you last saw (0 for the first backup)'
      using errcode = '22023';
  end if;
  v_plan := private.plan_of(p_owner);
  if octet_length(p_ciphertext) > v_plan.backup_max_bytes then
    raise exception 'backup too large: % bytes (max % on plan %)', octet_length(p_ciphertext),
      v_plan.backup_max_bytes, v_plan.id using errcode = 'PT413', hint = 'Upgrade the plan for larger backups.';
  end if;
  if octet_length(p_ciphertext) = 0 then
    raise exception 'backup is empty' using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('backline.backups:' || p_owner, 0));
  select coalesce(max(x.version), 0) into v_latest from public.backups x where x.owner_id = p_owner;
  if v_latest <> p_if_version then
    raise exception 'backup changed: you expected version % but the latest is %', p_if_version, v_latest
      using errcode = 'PT409', hint = 'Download the latest backup, merge, and upload again with its version.';
  end if;
  insert into public.backups (owner_id, version, ciphertext, nonce, kdf, restored_from)
  values (p_owner, v_latest + 1, p_ciphertext, p_nonce, p_kdf, p_restored_from)
  returning * into b;
  with gone as (
    delete from public.backups x
     where x.owner_id = p_owner and x.version <= b.version - v_plan.backup_versions_kept
    returning 1)
  select count(*) into v_pruned from gone;
  return jsonb_build_object('version', b.version, 'size_bytes', b.size_bytes, 'created_at', b.created_at,
                            'pruned', v_pruned, 'kept', v_plan.backup_versions_kept);
end;
$$;
revoke execute on function private.backup_store(uuid, bytea, bytea, jsonb, integer, integer) from public, anon;
grant execute on function private.backup_store(uuid, bytea, bytea, jsonb, integer, integer) to authenticated, service_role;

-- == RPCs (public, security invoker) ==
create function public.upload_backup(p_ciphertext text, p_nonce text, p_kdf jsonb, p_if_version integer)
returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_ct bytea;
  v_nonce bytea;
begin
  begin
    v_ct := decode(p_ciphertext, 'base64');
    v_nonce := decode(p_nonce, 'base64');
  exception when others then
    raise exception 'ciphertext and nonce must be base64' using errcode = '22023';
  end;
  if v_ct is null or v_nonce is null or p_kdf is null then
    raise exception 'ciphertext, nonce and kdf are required' using errcode = '22023';
  end if;
  return private.backup_store((select auth.uid()), v_ct, v_nonce, p_kdf, p_if_version, null);
end;
$$;
revoke execute on function public.upload_backup(text, text, jsonb, integer) from public, anon;
grant execute on function public.upload_backup(text, text, jsonb, integer) to authenticated;

create function public.get_backup(p_version integer default null) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  b public.backups;
begin
  select * into b from public.backups x
   where x.owner_id = (select auth.uid()) and (p_version is null or x.version = p_version)
   order by x.version desc limit 1;
  if not found then
    raise exception 'backup % not found', coalesce(p_version::text, '(latest)') using errcode = 'PT404',
      hint = 'Only the newest versions are kept; list them with select version from backups.';
  end if;
  return jsonb_build_object('version', b.version, 'ciphertext', encode(b.ciphertext, 'base64'),
    'nonce', encode(b.nonce, 'base64'), 'kdf', b.kdf, 'size_bytes', b.size_bytes,
    'restored_from', b.restored_from, 'created_at', b.created_at);
end;
$$;
revoke execute on function public.get_backup(integer) from public, anon;
grant execute on function public.get_backup(integer) to authenticated;

create function public.restore_backup(p_version integer, p_if_version integer) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  b public.backups;
begin
  select * into b from public.backups x where x.owner_id = (select auth.uid()) and x.version = p_version;
  if not found then
    raise exception 'backup version % not found', p_version using errcode = 'PT404',
      hint = 'Only the newest versions are kept.';
  end if;
  return private.backup_store((select auth.uid()), b.ciphertext, b.nonce, b.kdf, p_if_version, b.version);
end;
$$;
revoke execute on function public.restore_backup(integer, integer) from public, anon;
grant execute on function public.restore_backup(integer, integer) to authenticated;

-- == grants and row level security ==
grant select on public.backups to authenticated;
grant select, insert, update, delete on public.backups to service_role;
alter table public.backups enable row level security;

create policy "owners read their backups" on public.backups
  for select to authenticated using (owner_id = (select auth.uid()));

-- == comments ==
comment on table public.backups is
  'Client-side encrypted backups: the server stores ciphertext it cannot decrypt. Owner reads (select version, '
  'size_bytes, created_at to list); write with rpc upload_backup / restore_backup, download with get_backup.';
comment on column public.backups.ciphertext is 'Opaque encrypted bytes (the server never has the key).';
comment on column public.backups.nonce is 'The cipher nonce/IV the client used (8-64 bytes).';
comment on column public.backups.kdf is 'Key-derivation parameters, e.g. {"algorithm": "argon2id", "salt": "...", "m": 65536, "t": 3}.';
comment on column public.backups.restored_from is 'For a restore: the version this one copies.';
comment on function public.upload_backup(text, text, jsonb, integer) is
  'Upload a new encrypted backup (base64 ciphertext and nonce). p_if_version = the latest version you saw (0 first); '
  'PT409 (HTTP 409) if someone uploaded since; PT413 if larger than the plan allows. Keeps the newest N versions.';
comment on function public.get_backup(integer) is 'Download a kept backup version (latest if null), base64-encoded.';
comment on function public.restore_backup(integer, integer) is
  'Make a kept older version the newest again (copied as a new version, so other devices pick it up).';
