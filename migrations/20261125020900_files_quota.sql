-- files: per-user storage quota, enforced by the database on the real upload path.
-- Why: the Storage API (1) tests permission by inserting the row as the
-- caller and rolling back, (2) stores the bytes, (3) as a superuser upserts
-- the row with owner_id = uploader and metadata.size. So the quota is a
-- trigger on storage.objects that counts metadata->>'size' by owner_id; an
-- overwrite counts the difference, a delete gives the bytes back. Step 1
-- carries no size: older Storage API versions send no metadata (counts 0),
-- current ones send {mimetype, contentLength} when the client declared a
-- length, which we count too, so an upload that cannot fit is refused before
-- its bytes are sent (step 1 is rolled back, so nothing is charged twice). The owner's profile row is
-- locked (select ... for update) before reading storage_used, so concurrent
-- uploads by one user are serialised and cannot together overshoot. Errors
-- use SQLSTATE 42501: the Storage API then returns our message as a 403.

-- == functions (schema private: not exposed) ==
-- metadata.size (completed upload), else metadata.contentLength (declared in
-- the permission test), else 0. Malformed numbers count 0.
create function private.object_size(p_metadata jsonb) returns bigint
language sql immutable set search_path = ''
as $$
  select case
    when p_metadata ->> 'size' ~ '^[0-9]{1,18}$' then (p_metadata ->> 'size')::bigint
    when p_metadata ? 'size' then 0
    when p_metadata ->> 'contentLength' ~ '^[0-9]{1,18}$' then (p_metadata ->> 'contentLength')::bigint
    else 0
  end
$$;
revoke execute on function private.object_size(jsonb) from public;
grant execute on function private.object_size(jsonb) to service_role;

create function private.object_owner(p_owner_id text) returns uuid
language sql immutable set search_path = ''
as $$
  select case when p_owner_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then p_owner_id::uuid end
$$;
revoke execute on function private.object_owner(text) from public;
grant execute on function private.object_owner(text) to service_role;

-- Adds p_delta bytes to a user's storage_used; refuses growth past the plan.
create function private.storage_charge(p_user uuid, p_delta bigint, p_path text) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  v_used bigint;
  v_limit bigint;
  v_plan text;
begin
  if p_user is null or p_delta = 0 then
    return;
  end if;
  select p.storage_used, pl.storage_bytes, pl.id into v_used, v_limit, v_plan
    from public.profiles p join public.plans pl on pl.id = p.plan
   where p.id = p_user
     for update of p;
  if not found then
    return;  -- no profile (e.g. a service upload named after a deleted user)
  end if;
  if p_delta > 0 and v_used + p_delta > v_limit then
    raise exception 'storage quota exceeded: % would need % bytes, % of % bytes (% plan) used',
      p_path, p_delta, v_used, v_limit, v_plan
      using errcode = '42501', hint = 'Delete files or upgrade your plan.';
  end if;
  update public.profiles set storage_used = greatest(0, v_used + p_delta) where id = p_user;
end;
$$;
revoke execute on function private.storage_charge(uuid, bigint, text) from public;

create function private.storage_objects_quota() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_old_owner uuid;
  v_new_owner uuid;
  v_old_size bigint := 0;
  v_new_size bigint := 0;
begin
  if tg_op in ('UPDATE', 'DELETE') then
    v_old_owner := private.object_owner(old.owner_id);
    v_old_size := private.object_size(old.metadata);
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    v_new_owner := private.object_owner(new.owner_id);
    v_new_size := private.object_size(new.metadata);
  end if;
  if v_old_owner is not distinct from v_new_owner then
    perform private.storage_charge(v_new_owner, v_new_size - v_old_size, new.bucket_id || '/' || new.name);
  else
    perform private.storage_charge(v_old_owner, -v_old_size, old.bucket_id || '/' || old.name);
    perform private.storage_charge(v_new_owner, v_new_size, new.bucket_id || '/' || new.name);
  end if;
  return null;
end;
$$;
revoke execute on function private.storage_objects_quota() from public;

-- AFTER, not BEFORE: an upsert (insert ... on conflict do update) fires BEFORE
-- INSERT for the proposed row even when it becomes an update, which would
-- count an overwrite twice. AFTER triggers fire only for what really happened;
-- raising there still aborts the statement, so a refused upload writes nothing
-- (and the API then deletes the bytes).
create trigger backline_objects_quota after insert or update or delete on storage.objects
  for each row execute function private.storage_objects_quota();

comment on function private.storage_objects_quota() is
  'Quota: keeps profiles.storage_used equal to the sum of metadata.size of the user''s objects; '
  'refuses (42501) an insert/overwrite that would exceed plans.storage_bytes.';
