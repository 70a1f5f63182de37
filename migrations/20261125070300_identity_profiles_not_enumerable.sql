-- identity: profiles are readable when public by choice, not all enumerable.
-- Why: every auth user (anonymous ones too) gets a profile whose display_name
-- and avatar_url are copied from the OAuth provider (full_name, picture), and
-- anon could list them all with GET /profiles: real names and user ids of
-- users who never published anything. Now anon reads profiles that chose a
-- username; signed-in users also read their own and their room mates'.

create function private.my_room_mate_ids() returns setof uuid
language plpgsql stable security definer set search_path = ''
as $$
begin
  return query select distinct m.user_id from public.room_members m
   where m.room_id in (select x.room_id from public.room_members x where x.user_id = (select auth.uid()));
end;
$$;
revoke execute on function private.my_room_mate_ids() from public;
grant execute on function private.my_room_mate_ids() to authenticated, service_role;

drop policy "everyone reads public profile fields" on public.profiles;
create policy "anonymous visitors read profiles with a username" on public.profiles
  for select to anon using (username is not null);
create policy "users read public profiles, their own and their room mates" on public.profiles
  for select to authenticated
  using (username is not null or id = (select auth.uid()) or id in (select private.my_room_mate_ids()));
