-- rooms: invites by unguessable token, with a role, an expiry and a use limit.
-- Why: the owner shares a link; a signed-in user who opens it joins the room
-- through rpc accept_room_invite. Only sha256(token) is stored, so a leaked
-- table does not leak working invites. Expired and used-up invites are
-- removed by private.cleanup_room_invites (cron, workers issue).

-- == tables ==
create table public.room_invites (
  id uuid primary key default gen_random_uuid(),
  room_id uuid not null references public.rooms (id) on delete cascade,
  token_hash bytea not null constraint room_invites_token_hash_unique unique,
  role text not null constraint room_invites_role_known check (role in ('editor', 'viewer')),
  created_by uuid references auth.users (id) on delete set null,
  expires_at timestamptz not null,
  max_uses integer not null default 1 constraint room_invites_max_uses_range check (max_uses between 1 and 100),
  use_count integer not null default 0 constraint room_invites_use_count_range check (use_count between 0 and max_uses),
  created_at timestamptz not null default now()
);
create index room_invites_room_id_idx on public.room_invites (room_id);
create index room_invites_created_by_idx on public.room_invites (created_by);
create index room_invites_expires_at_idx on public.room_invites (expires_at);

-- == functions (schema private: not exposed) ==
create function private.create_room_invite(
  p_room_id uuid, p_role text, p_expires_in interval, p_max_uses integer
) returns table (invite_id uuid, token text, expires_at timestamptz)
language plpgsql security definer set search_path = ''
as $$
declare
  v_token text;
  v_id uuid;
  v_expires timestamptz;
begin
  if (select auth.uid()) is null or private.room_role(p_room_id) is distinct from 'owner' then
    raise exception 'only the room owner can invite'
      using errcode = '42501', hint = 'Ask the owner of the room for an invite.';
  end if;
  if p_role is null or p_role not in ('editor', 'viewer') then
    raise exception 'invite role must be editor or viewer, not %', coalesce(p_role, 'null')
      using errcode = '22023';
  end if;
  if p_expires_in is null or p_expires_in < interval '1 minute' or p_expires_in > interval '30 days' then
    raise exception 'invite expiry must be between 1 minute and 30 days'
      using errcode = '22023', hint = 'Pass p_expires_in, e.g. ''7 days''.';
  end if;
  if p_max_uses is null or p_max_uses not between 1 and 100 then
    raise exception 'invite max uses must be between 1 and 100' using errcode = '22023';
  end if;
  -- 256 bits from two v4 uuids (244 random bits), url-safe.
  v_token := translate(encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'),
                       '+/=', '-_');
  v_expires := now() + p_expires_in;
  insert into public.room_invites (room_id, token_hash, role, created_by, expires_at, max_uses)
  values (p_room_id, sha256(convert_to(v_token, 'UTF8')), p_role, (select auth.uid()), v_expires, p_max_uses)
  returning id into v_id;
  return query select v_id, v_token, v_expires;
end;
$$;
revoke execute on function private.create_room_invite(uuid, text, interval, integer) from public;
grant execute on function private.create_room_invite(uuid, text, interval, integer) to authenticated;

create function private.accept_room_invite(p_token text) returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_me uuid := (select auth.uid());
  v_invite public.room_invites;
begin
  if v_me is null then
    raise exception 'sign in to accept an invite' using errcode = '42501';
  end if;
  select i.* into v_invite from public.room_invites i
   where i.token_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'))
   for update;
  if v_invite.id is null or v_invite.expires_at <= now() or v_invite.use_count >= v_invite.max_uses then
    raise exception 'invite not found, expired or used up'
      using errcode = 'P0002', hint = 'Ask the room owner for a new invite link.';
  end if;
  if exists (select 1 from public.room_members m where m.room_id = v_invite.room_id and m.user_id = v_me) then
    return v_invite.room_id;  -- already a member: keep the current role, use nothing
  end if;
  insert into public.room_members (room_id, user_id, role, invited_by)
  values (v_invite.room_id, v_me, v_invite.role, v_invite.created_by);
  update public.room_invites set use_count = use_count + 1 where id = v_invite.id;
  return v_invite.room_id;
end;
$$;
revoke execute on function private.accept_room_invite(text) from public;
grant execute on function private.accept_room_invite(text) to authenticated;

create function private.cleanup_room_invites(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql security definer set search_path = ''
as $$
begin
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'batch size must be at least 1' using errcode = '22023';
  end if;
  if coalesce(p_dry_run, true) then
    return query
      select format('room invite %s (room %s, %s)', i.id, i.room_id,
                    case when i.expires_at <= now() then 'expired ' || i.expires_at else 'used up' end)
        from public.room_invites i
       where i.expires_at <= now() or i.use_count >= i.max_uses
       order by i.expires_at
       limit p_batch_size;
    return;
  end if;
  return query
    with doomed as (
      select i.id from public.room_invites i
       where i.expires_at <= now() or i.use_count >= i.max_uses
       order by i.expires_at
       limit p_batch_size
       for update skip locked
    )
    delete from public.room_invites i using doomed where i.id = doomed.id
    returning format('room invite %s (room %s, %s)', i.id, i.room_id,
                     case when i.expires_at <= now() then 'expired ' || i.expires_at else 'used up' end);
end;
$$;
revoke execute on function private.cleanup_room_invites(integer, boolean) from public, anon, authenticated;
grant execute on function private.cleanup_room_invites(integer, boolean) to service_role;

-- == RPCs (exposed, security invoker) ==
create function public.create_room_invite(
  p_room_id uuid, p_role text default 'viewer', p_expires_in interval default '7 days',
  p_max_uses integer default 1
) returns table (invite_id uuid, token text, expires_at timestamptz)
language sql set search_path = ''
as $$ select * from private.create_room_invite(p_room_id, p_role, p_expires_in, p_max_uses) $$;
revoke execute on function public.create_room_invite(uuid, text, interval, integer) from public, anon;
grant execute on function public.create_room_invite(uuid, text, interval, integer) to authenticated;

create function public.accept_room_invite(p_token text) returns uuid
language sql set search_path = ''
as $$ select private.accept_room_invite(p_token) $$;
revoke execute on function public.accept_room_invite(text) from public, anon;
grant execute on function public.accept_room_invite(text) to authenticated;

-- == grants and row level security ==
grant select (id, room_id, role, created_by, expires_at, max_uses, use_count, created_at), delete
  on public.room_invites to authenticated;
grant select, insert, update, delete on public.room_invites to service_role;
alter table public.room_invites enable row level security;

create policy "the owner sees the room's invites" on public.room_invites
  for select to authenticated using (room_id in (select private.my_owned_room_ids()));
create policy "the owner revokes the room's invites" on public.room_invites
  for delete to authenticated using (room_id in (select private.my_owned_room_ids()));

-- == comments ==
comment on table public.room_invites is
  'Invites to a room. Create with rpc create_room_invite (owner only; the token is returned once), '
  'accept with rpc accept_room_invite(token), revoke by deleting the row.';
comment on column public.room_invites.token_hash is 'sha256 of the token; never readable through the API.';
comment on function public.create_room_invite(uuid, text, interval, integer) is
  'Owner only: a new invite (role editor|viewer, expiry 1 minute..30 days, 1..100 uses). Returns the token once.';
comment on function public.accept_room_invite(text) is
  'Join the invite''s room with its role; returns the room id. Already a member: no change.';
comment on function private.cleanup_room_invites(integer, boolean) is
  'Cron: delete (or list, dry run) at most p_batch_size expired or used-up invites.';
