-- files: every upload is checked for what it really is. Adds public.upload_scans
-- (one row per user upload: pending, clean, rejected or not_scanned, readable by
-- its owner), the job kind upload_scan, the bucket `quarantine`,
-- private.buckets_served_when_clean (a bucket-level opt-in: files are readable
-- by others only once checked) and the functions the scan worker calls.
-- Why (issue #13 item 5): the Storage API checks only the declared MIME type,
-- so a text file named fake.wav sent as audio/wav was stored and served. The
-- database cannot see bytes, so the Storage API's completed upload (step 3,
-- privileged, owner_id set, a new version) records the upload as pending and
-- queues an upload_scan job in the same transaction; the worker
-- (workers/files/scan.py) sniffs the real type from the bytes' magic numbers,
-- optionally streams them to ClamAV, and records the verdict through
-- private.upload_scan_record(). A rejected file is removed, or copied to the
-- quarantine bucket and removed, through the storage transport (bytes and
-- row go together); its record stays, saying why. Writes made in a client
-- role (the Storage API's rolled-back permission test, direct SQL) record and
-- queue nothing, like thumbnails (20261206091200).
-- Rows are written only by the database (one per stored upload plus the
-- rejected ones, bounded by plans.uploads_per_hour), so no row cap.

-- == tables ==
create table public.upload_scans (
  object_id uuid primary key,
  bucket_id text not null,
  object_name text not null,
  owner_id uuid not null references auth.users (id) on delete cascade,
  object_version text,
  declared_type text,
  detected_type text,
  state text not null default 'pending'
    constraint upload_scans_state_known check (state in ('pending', 'clean', 'rejected', 'not_scanned')),
  reason text constraint upload_scans_reason_length check (length(reason) <= 1000),
  action text constraint upload_scans_action_known check (action in ('removed', 'quarantined')),
  quarantine_path text,
  uploaded_at timestamptz not null default now(),
  checked_at timestamptz,
  constraint upload_scans_rejected_says_why check (
    case when state = 'rejected' then reason is not null and action is not null
         else reason is null and action is null and quarantine_path is null end),
  constraint upload_scans_checked_iff_not_pending check ((state = 'pending') = (checked_at is null))
);
create index upload_scans_owner_id_idx on public.upload_scans (owner_id, uploaded_at desc);
create index upload_scans_bucket_id_object_name_idx on public.upload_scans (bucket_id, object_name);

-- Buckets whose files others may read only once checked (opt-in per bucket).
create table private.buckets_served_when_clean (
  bucket_id text primary key references storage.buckets (id) on delete cascade,
  was_public boolean not null,
  created_at timestamptz not null default now()
);

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('quarantine', 'quarantine', false, null, null)
on conflict (id) do nothing;

insert into public.job_kinds (kind, description, max_attempts, backoff_base, user_enqueueable, plan_limit_column)
values ('upload_scan', 'Checks an upload''s real type from its bytes (and malware with ClamAV); removes or '
        'quarantines a mismatch.', 5, interval '30 seconds', false, null)
on conflict (kind) do nothing;

-- == grants and row level security ==
revoke all on table public.upload_scans from anon, authenticated, service_role;
grant select on table public.upload_scans to authenticated, service_role;
alter table public.upload_scans enable row level security;

create policy "owners read their upload scans" on public.upload_scans
  for select to authenticated using (owner_id = (select auth.uid()));

revoke all on table private.buckets_served_when_clean from public, anon, authenticated, service_role;
grant select on table private.buckets_served_when_clean to service_role;
alter table private.buckets_served_when_clean enable row level security;

-- == functions (schema private: not exposed) ==

-- AFTER INSERT OR UPDATE OR DELETE on storage.objects: a completed user upload
-- is recorded pending and a scan queued; a deleted file takes its record with
-- it unless the record says why it was rejected.
create function private.record_upload_scan() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_owner uuid;
begin
  if tg_op = 'DELETE' then
    delete from public.upload_scans s where s.object_id = old.id and s.state <> 'rejected';
    return null;
  end if;
  -- The role in effect (SET ROLE by PostgREST or the Storage API), not the definer.
  if coalesce(current_setting('role', true), 'none') in ('anon', 'authenticated') then
    return null;
  end if;
  if not coalesce(new.metadata ? 'size', false)
     or (tg_op = 'UPDATE' and new.version is not distinct from old.version) then
    return null;
  end if;
  v_owner := private.object_owner(new.owner_id);
  if v_owner is null or not exists (select 1 from auth.users u where u.id = v_owner) then
    return null;  -- a service write (worker output): trusted, not scanned
  end if;
  insert into public.upload_scans (object_id, bucket_id, object_name, owner_id, object_version, declared_type)
  values (new.id, new.bucket_id, new.name, v_owner, new.version, new.metadata ->> 'mimetype')
  on conflict (object_id) do update set
    bucket_id = excluded.bucket_id, object_name = excluded.object_name, owner_id = excluded.owner_id,
    object_version = excluded.object_version, declared_type = excluded.declared_type,
    detected_type = null, state = 'pending', reason = null, action = null, quarantine_path = null,
    uploaded_at = now(), checked_at = null;
  perform private.job_enqueue(
    'upload_scan',
    jsonb_build_object('bucket', new.bucket_id, 'name', new.name, 'object_id', new.id, 'version', new.version),
    v_owner);
  return null;
end;
$$;
revoke execute on function private.record_upload_scan() from public, anon, authenticated, service_role;

create trigger backline_objects_record_upload_scan
  after insert or update or delete on storage.objects
  for each row execute function private.record_upload_scan();

-- The worker's verdict. False (and nothing changed) when the object was
-- replaced or deleted since the job was queued: a newer job checks the new bytes.
create function private.upload_scan_record(
  p_object_id uuid, p_version text, p_state text, p_detected_type text,
  p_reason text default null, p_action text default null, p_quarantine_path text default null
) returns boolean
language plpgsql security definer set search_path = ''
as $$
begin
  if p_object_id is null then
    raise exception 'upload_scan_record needs the object id' using errcode = '22023';
  end if;
  if p_state is null or p_state not in ('clean', 'rejected', 'not_scanned') then
    raise exception 'upload scan state must be clean, rejected or not_scanned, got %', coalesce(p_state, 'null')
      using errcode = '22023', hint = 'pending is the state the upload starts in.';
  end if;
  if (p_state = 'rejected' and (p_reason is null or p_action is null))
     or (p_state <> 'rejected' and (p_reason is not null or p_action is not null)) then
    raise exception 'a rejected upload needs a reason and an action (removed or quarantined); others neither'
      using errcode = '22023';
  end if;
  if p_action is not null and p_action not in ('removed', 'quarantined') then
    raise exception 'upload scan action must be removed or quarantined, got %', p_action using errcode = '22023';
  end if;
  update public.upload_scans s
     set state = p_state, detected_type = left(p_detected_type, 200), reason = left(p_reason, 1000),
         action = p_action, quarantine_path = p_quarantine_path, checked_at = now()
   where s.object_id = p_object_id and s.object_version is not distinct from p_version
     and (s.state = 'pending' or s.state = p_state);
  return found;
end;
$$;
revoke execute on function private.upload_scan_record(uuid, text, text, text, text, text, text)
  from public, anon, authenticated, service_role;
grant execute on function private.upload_scan_record(uuid, text, text, text, text, text, text) to service_role;

-- Opt a bucket in (or out): others read its files through RLS once checked.
-- Opting in makes the bucket non-public, because the Storage API serves a
-- public bucket's files by URL without asking the database; opting out
-- restores the bucket's earlier public flag.
create function private.set_bucket_served_when_clean(p_bucket text, p_enabled boolean) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  v_public boolean;
begin
  if p_enabled is null then
    raise exception 'set_bucket_served_when_clean needs true or false' using errcode = '22023';
  end if;
  select b.public into v_public from storage.buckets b where b.id = p_bucket;
  if not found then
    raise exception 'no such bucket: %', coalesce(p_bucket, 'null') using errcode = '22023';
  end if;
  if p_enabled then
    insert into private.buckets_served_when_clean (bucket_id, was_public) values (p_bucket, coalesce(v_public, false))
    on conflict (bucket_id) do nothing;
    update storage.buckets set public = false where id = p_bucket and public;
  else
    update storage.buckets b set public = s.was_public
      from private.buckets_served_when_clean s where s.bucket_id = p_bucket and b.id = p_bucket;
    delete from private.buckets_served_when_clean where bucket_id = p_bucket;
  end if;
end;
$$;
revoke execute on function private.set_bucket_served_when_clean(text, boolean)
  from public, anon, authenticated, service_role;
grant execute on function private.set_bucket_served_when_clean(text, boolean) to service_role;

create function private.served_when_clean_bucket_ids() returns setof text
language sql stable security definer set search_path = ''
as $$ select s.bucket_id from private.buckets_served_when_clean s $$;
revoke execute on function private.served_when_clean_bucket_ids() from public, anon, authenticated, service_role;
grant execute on function private.served_when_clean_bucket_ids() to anon, authenticated, service_role;

-- Whether a file of an opted-in bucket is held: its check is pending or it
-- was rejected. A derived file (<name>.thumbNNN.webp, <name>.full.webp,
-- written by the workers) is held with its original. One path at a time, so
-- a caller learns nothing about files it does not already know of.
create function private.upload_is_held(p_bucket text, p_name text) returns boolean
language sql stable security definer set search_path = ''
as $$
  select exists (
    select 1 from public.upload_scans s
     where s.bucket_id = p_bucket
       and s.object_name in (p_name, regexp_replace(p_name, '\.(thumb[0-9]+|full)\.webp$', ''))
       and s.state in ('pending', 'rejected')
       and s.bucket_id in (select b.bucket_id from private.buckets_served_when_clean b))
$$;
revoke execute on function private.upload_is_held(text, text) from public, anon, authenticated, service_role;
grant execute on function private.upload_is_held(text, text) to anon, authenticated, service_role;

-- == row level security on storage.objects ==
create policy "everyone reads checked files of buckets served when clean" on storage.objects
  for select to anon, authenticated
  using (
    bucket_id in (select private.served_when_clean_bucket_ids())
    and not private.upload_is_held(bucket_id, name)
  );

-- == comments ==
comment on table public.upload_scans is
  'What each user upload really is: pending until the upload_scan worker checked its bytes (magic numbers, and '
  'ClamAV when configured), then clean, not_scanned (type verified, no malware scanner configured) or rejected '
  '(removed or quarantined, reason says why). Written only by the database; owners read their own.';
comment on column public.upload_scans.object_id is 'storage.objects.id of the upload (kept after a rejected file is removed).';
comment on column public.upload_scans.bucket_id is 'Bucket of the upload.';
comment on column public.upload_scans.object_name is 'Path of the upload in its bucket.';
comment on column public.upload_scans.owner_id is 'The uploader.';
comment on column public.upload_scans.object_version is 'storage.objects.version checked; an overwrite starts a new check.';
comment on column public.upload_scans.declared_type is 'MIME type the client declared (metadata.mimetype).';
comment on column public.upload_scans.detected_type is 'MIME type found from the bytes'' magic numbers, null when none matched.';
comment on column public.upload_scans.state is 'pending, clean, rejected or not_scanned (no malware scanner configured).';
comment on column public.upload_scans.reason is 'Why a rejected upload was rejected (type mismatch or the malware signature).';
comment on column public.upload_scans.action is 'What happened to a rejected file: removed, or quarantined (kept for operators only).';
comment on column public.upload_scans.quarantine_path is 'Where a quarantined file is kept: quarantine/<bucket>/<name>.';
comment on column public.upload_scans.uploaded_at is 'When the Storage API completed the upload.';
comment on column public.upload_scans.checked_at is 'When the worker recorded its verdict; null while pending.';
comment on table private.buckets_served_when_clean is
  'Buckets opted in to serving files to others only once checked (private.set_bucket_served_when_clean).';
comment on function private.record_upload_scan() is
  'Trigger on storage.objects: a completed user upload (privileged step, owner set, new version) is recorded '
  'pending in public.upload_scans and an upload_scan job queued; a delete drops the record unless rejected.';
comment on function private.upload_scan_record(uuid, text, text, text, text, text, text) is
  'Worker: record the verdict on an upload (clean, rejected with reason and action, not_scanned); false when '
  'the object changed since (a newer check is queued). 22023 on bad input.';
comment on function private.set_bucket_served_when_clean(text, boolean) is
  'Operator: opt a bucket in (files readable by anyone through RLS once checked; the bucket stops being public '
  'so no URL serves an unchecked file) or out (its earlier public flag comes back).';
comment on function private.served_when_clean_bucket_ids() is
  'Policy helper: the buckets opted in to serving files once checked.';
comment on function private.upload_is_held(text, text) is
  'Policy helper: true when this file of an opted-in bucket (or the original of this derived file) is still '
  'being checked or was rejected.';
comment on policy "everyone reads checked files of buckets served when clean" on storage.objects is
  'In a bucket opted in with private.set_bucket_served_when_clean, anyone reads (downloads, lists) a file once '
  'its upload check is no longer pending; uploaders read their own files under the per-user policies.';
