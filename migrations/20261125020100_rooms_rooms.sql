-- rooms: collaboration sessions and their members (owner/editor/viewer).
-- Why: the ideas canvas lets several people edit one canvas. Only members see
-- a room and anything in it; the owner manages members and may hand the room
-- over. Membership checks are definer helpers in `private` returning the
-- caller's room ids, so policies stay one hashed sub-select per query.

-- == tables ==
create table public.rooms (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  title text not null constraint rooms_title_length check (length(title) between 1 and 200),
  settings jsonb not null default '{}'
    constraint rooms_settings_is_small_object check (
      jsonb_typeof(settings) = 'object' and pg_column_size(settings) <= 16384
    ),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index rooms_owner_id_idx on public.rooms (owner_id);

create trigger rooms_set_updated_at before update on public.rooms
  for each row execute function private.set_updated_at();

create table public.room_members (
  room_id uuid not null references public.rooms (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null constraint room_members_role_known check (role in ('owner', 'editor', 'viewer')),
  invited_by uuid references auth.users (id) on delete set null,
  joined_at timestamptz not null default now(),
  primary key (room_id, user_id)
);
create index room_members_user_id_idx on public.room_members (user_id, room_id);
create index room_members_invited_by_idx on public.room_members (invited_by);
create unique index room_members_one_owner_per_room on public.room_members (room_id) where role = 'owner';

-- == functions (schema private: not exposed) ==
-- plpgsql, not sql: a non-inlinable SQL function is re-planned on every call
-- before PostgreSQL 18, while plpgsql caches its plan per session.
create function private.my_room_ids() returns setof uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
  return query select m.room_id from public.room_members m where m.user_id = (select auth.uid());
end;
$$;
revoke execute on function private.my_room_ids() from public;
grant execute on function private.my_room_ids() to authenticated, service_role;

create function private.my_editable_room_ids() returns setof uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
  return query select m.room_id from public.room_members m
   where m.user_id = (select auth.uid()) and m.role in ('owner', 'editor');
end;
$$;
revoke execute on function private.my_editable_room_ids() from public;
grant execute on function private.my_editable_room_ids() to authenticated, service_role;

create function private.my_owned_room_ids() returns setof uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
  return query select m.room_id from public.room_members m
   where m.user_id = (select auth.uid()) and m.role = 'owner';
end;
$$;
revoke execute on function private.my_owned_room_ids() from public;
grant execute on function private.my_owned_room_ids() to authenticated, service_role;

create function private.room_role(p_room_id uuid) returns text
language sql stable security definer set search_path = ''
as $$
  select m.role from public.room_members m
   where m.room_id = p_room_id and m.user_id = (select auth.uid())
$$;
revoke execute on function private.room_role(uuid) from public;
grant execute on function private.room_role(uuid) to authenticated, service_role;

-- The creator becomes the owner member in the same statement.
create function private.add_room_owner() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.room_members (room_id, user_id, role) values (new.id, new.owner_id, 'owner');
  return new;
end;
$$;
revoke execute on function private.add_room_owner() from public;

create trigger rooms_add_owner_member after insert on public.rooms
  for each row execute function private.add_room_owner();

create function private.transfer_room_ownership(p_room_id uuid, p_new_owner uuid) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  v_me uuid := (select auth.uid());
  v_owner uuid;
begin
  select r.owner_id into v_owner from public.rooms r where r.id = p_room_id for update;
  if v_owner is null or v_me is null or v_owner <> v_me then
    raise exception 'only the room owner can transfer the room'
      using errcode = '42501', hint = 'Ask the owner of the room to transfer it.';
  end if;
  if p_new_owner is null or p_new_owner = v_me or not exists (
    select 1 from public.room_members m where m.room_id = p_room_id and m.user_id = p_new_owner
  ) then
    raise exception 'the new owner must be another member of the room'
      using errcode = '22023', hint = 'Invite the person first, then transfer the room.';
  end if;
  update public.room_members set role = 'editor' where room_id = p_room_id and user_id = v_me;
  update public.room_members set role = 'owner' where room_id = p_room_id and user_id = p_new_owner;
  update public.rooms set owner_id = p_new_owner where id = p_room_id;
  perform private.audit(v_me, 'room.ownership_transferred',
    jsonb_build_object('room_id', p_room_id, 'new_owner', p_new_owner));
end;
$$;
revoke execute on function private.transfer_room_ownership(uuid, uuid) from public;
grant execute on function private.transfer_room_ownership(uuid, uuid) to authenticated;

-- == RPCs (exposed, security invoker) ==
create function public.transfer_room_ownership(p_room_id uuid, p_new_owner uuid) returns void
language sql set search_path = ''
as $$ select private.transfer_room_ownership(p_room_id, p_new_owner) $$;
revoke execute on function public.transfer_room_ownership(uuid, uuid) from public, anon;
grant execute on function public.transfer_room_ownership(uuid, uuid) to authenticated;

create function public.leave_room(p_room_id uuid) returns void
language plpgsql set search_path = ''
as $$
begin
  if private.room_role(p_room_id) is null then
    raise exception 'you are not a member of this room' using errcode = 'P0002';
  end if;
  if private.room_role(p_room_id) = 'owner' then
    raise exception 'the owner cannot leave the room'
      using errcode = '22023', hint = 'Transfer ownership (rpc transfer_room_ownership) or delete the room.';
  end if;
  delete from public.room_members where room_id = p_room_id and user_id = (select auth.uid());
end;
$$;
revoke execute on function public.leave_room(uuid) from public, anon;
grant execute on function public.leave_room(uuid) to authenticated;

-- == grants and row level security ==
grant select, insert (title, settings, owner_id), update (title, settings), delete
  on public.rooms to authenticated;
grant select, insert, update, delete on public.rooms to service_role;
alter table public.rooms enable row level security;

create policy "members and the owner read the room" on public.rooms
  for select to authenticated
  using (owner_id = (select auth.uid()) or id in (select private.my_room_ids()));
create policy "users create rooms they own" on public.rooms
  for insert to authenticated with check (owner_id = (select auth.uid()));
create policy "the owner updates the room" on public.rooms
  for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy "the owner deletes the room" on public.rooms
  for delete to authenticated using (owner_id = (select auth.uid()));

grant select, update (role), delete on public.room_members to authenticated;
grant select, insert, update, delete on public.room_members to service_role;
alter table public.room_members enable row level security;

create policy "members see who is in their rooms" on public.room_members
  for select to authenticated using (room_id in (select private.my_room_ids()));
create policy "the owner changes members between editor and viewer" on public.room_members
  for update to authenticated
  using (role <> 'owner' and room_id in (select private.my_owned_room_ids()))
  with check (role in ('editor', 'viewer') and room_id in (select private.my_owned_room_ids()));
create policy "members leave and the owner removes members" on public.room_members
  for delete to authenticated
  using (
    role <> 'owner'
    and (user_id = (select auth.uid()) or room_id in (select private.my_owned_room_ids()))
  );

-- == comments ==
comment on table public.rooms is
  'Collaboration sessions (ideas canvas). Visible only to members; created by any signed-in user, '
  'who becomes the owner member. Change owner with rpc transfer_room_ownership.';
comment on column public.rooms.settings is 'Client-owned JSON object (background, grid, AI model, ...), up to 16 kB.';
comment on table public.room_members is
  'Who is in a room and with which role: owner (one), editor (writes), viewer (reads). '
  'Join through an invite (rpc accept_room_invite); leave with rpc leave_room or delete your row; '
  'the owner changes roles (editor/viewer) and removes members.';
comment on function public.transfer_room_ownership(uuid, uuid) is
  'Owner only: make another member the owner; the old owner stays as editor.';
comment on function public.leave_room(uuid) is 'Leave a room you are a member of (the owner must transfer first).';
