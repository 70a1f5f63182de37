-- sharing: explore() and open_share() show an owner only once the owner is public.
-- Redefines private.public_owner (latest definition: 20261125010500_library_sharing).
-- Why: every auth user gets a profile whose display_name and avatar_url are
-- copied from the OAuth provider (full_name, picture), and a profile is public
-- only once its user chooses a username (20261125070300_identity_profiles_not_enumerable).
-- explore(), open_share() and public_profile() built their `owner` object with
-- this helper, which answered for any profile: anyone could read the real name,
-- avatar, bio and user id of the owner of a public document or share link who
-- never made a profile public. Now an owner without a username is answered with
-- the same object, every field null; with a username it is unchanged.
-- public_profile() only ever looks up users by username, so it is unaffected.

create or replace function private.public_owner(p_owner uuid) returns jsonb
language sql stable security definer set search_path = ''
as $$
  select coalesce(
    (select jsonb_build_object('id', p.id, 'username', p.username, 'display_name', p.display_name,
                               'avatar_url', p.avatar_url, 'bio', p.bio)
       from public.profiles p
      where p.id = p_owner and p.username is not null),
    jsonb_build_object('id', null, 'username', null, 'display_name', null, 'avatar_url', null, 'bio', null))
$$;
-- create or replace keeps the ACL; restated so it holds whatever came before.
-- anon and authenticated call it from the security-invoker RPCs explore() and
-- public_profile(); it now answers only what the profiles policies show anon.
revoke execute on function private.public_owner(uuid) from public, anon, authenticated, service_role;
grant execute on function private.public_owner(uuid) to anon, authenticated, service_role;

comment on function private.public_owner(uuid) is
  'The public part of a profile ({id, username, display_name, avatar_url, bio}) if its user chose a username; '
  'otherwise the same keys, all null.';
comment on function public.open_share(text) is
  'Open a shared document (anyone, anon too): {document, owner, expires_at}; counts one view. '
  'owner is {id, username, display_name, avatar_url, bio}, all null unless the owner chose a username. '
  'Errors: PT404 unknown token, PT410 expired/revoked/deleted.';
comment on function public.explore(text, text, text, text, integer) is
  'Public documents of a kind: sort newest/most_forked/most_viewed, optional text search, keyset pages '
  '{items, hasMore, next}; pass next as p_after for the following page. Each item''s owner is '
  '{id, username, display_name, avatar_url, bio}, all null unless the owner chose a username.';
