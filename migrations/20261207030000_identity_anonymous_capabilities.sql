-- identity: what an anonymous user may do, kept in SQL and enforced in SQL.
-- Adds public.account_capabilities (the table frontends read to grey out
-- what needs a linked account, with the reason per capability),
-- private.require_linked_account(capability) (the one refusal: 42501 -> HTTP
-- 403, message + hint saying to link an account), RESTRICTIVE policies on the
-- tables clients write directly, and triggers on the rows the SECURITY
-- DEFINER RPCs write (share links, room invites, published documents,
-- usernames), so a definer RPC (which bypasses RLS) cannot publish for an
-- anonymous caller either.
--
-- Why (issue #13, music sketchpad: "Anonymous users: server-generated JWT with
-- limited permissions"): anonymous-first apps let people work before they
-- sign up, but an anonymous account is disposable (erased after 90 days of
-- inactivity) and has no identity to contact or moderate, so everything that
-- shows work or a name to other people, or hands out links, needs a linked
-- account. Everything that keeps a person's own data safe stays open.
--
-- Who is anonymous: Supabase's `is_anonymous` JWT claim, as the Supabase docs
-- use it in restrictive policies: (select (auth.jwt()->>'is_anonymous')::boolean).
-- A token without the claim (service role, workers, older tokens) is not
-- anonymous. After linking an identity the client must refresh its session:
-- the old access token still says is_anonymous = true until it expires.

-- == tables ==
create table public.account_capabilities (
  capability text primary key constraint account_capabilities_capability_format
    check (capability ~ '^[a-z][a-z0-9_]{1,62}$'),
  anonymous_allowed boolean not null,
  action text not null constraint account_capabilities_action_length check (length(action) between 1 and 120),
  why text not null constraint account_capabilities_why_length check (length(why) between 1 and 600),
  enforced_by text not null constraint account_capabilities_enforced_by_length
    check (length(enforced_by) between 1 and 300)
);

insert into public.account_capabilities (capability, anonymous_allowed, action, why, enforced_by) values
  ('keep_private_documents', true, 'keep private documents',
   'Anonymous-first apps (music sketchpad) let people create loops and songs before signing up; private '
   'documents are visible to their owner only, so nothing is exposed to others.',
   'documents policies (owner only); anonymous row caps and per-kind limits.'),
  ('back_up', true, 'back up encrypted data',
   'Backup is why an anonymous user signs in silently at all: losing the browser must not lose the work. '
   'Backups are opaque ciphertext only the user can read.',
   'upload_backup / get_backup / restore_backup: own rows only.'),
  ('sync', true, 'sync documents between devices',
   'Sync only moves the user''s own private documents; conflicts are kept, nothing is shown to others.',
   'sync_push / sync_pull / resolve_conflict: own rows only (publishing through sync is refused, see publish_documents).'),
  ('import', true, 'import local data',
   'Moving localStorage/IndexedDB data into the backend is the first thing an anonymous-first app does.',
   'import_local: own rows only (records asking for public visibility are refused, see publish_documents).'),
  ('fork_privately', true, 'fork public work into a private copy',
   'A private fork is like saving a copy: visible to its owner only. Publishing the fork needs a linked account.',
   'fork_document creates a private document.'),
  ('join_invited_rooms', true, 'join rooms they are invited to',
   'Collaboration invites reach people who have not signed up yet; the room''s owner decided to let them in.',
   'accept_room_invite; anonymous row caps on memberships.'),
  ('create_rooms', true, 'create their own rooms',
   'A room is private to its members; an anonymous user can sketch alone (lower caps: 3 rooms).',
   'rooms policies; plan_row_caps.max_rows_anonymous.'),
  ('upload_files', true, 'upload files to their own folder',
   'Samples and images belong to private documents; the storage quota and bucket limits apply as for everyone.',
   'storage.objects policies (own folder) and the quota trigger.'),
  ('use_ai_with_own_key', true, 'use AI with their own provider key',
   'The user pays the provider; the proxy''s per-plan rate limits and anonymous row caps apply.',
   'AI proxy admission and plan_row_caps.'),
  ('data_rights', true, 'export or erase their data',
   'Data rights (GDPR export and erasure) apply to every account, anonymous or not.',
   'request_export / request_account_deletion.'),
  ('report_abuse', true, 'report abuse',
   'Anyone who sees public work may report it; anonymous reporters have a lower cap of open reports.',
   'abuse_reports policies; plan_row_caps.max_rows_anonymous.'),
  ('publish_documents', false, 'publish documents (unlisted or public)',
   'Published work is seen by others and must belong to an account that can be contacted and moderated; an '
   'anonymous account is erased after 90 days of inactivity, which would break every link to it, and '
   'disposable accounts would let spam into explore.',
   'restrictive policies on documents (insert, update) and a trigger for the RPCs (sync_push, import_local, ...).'),
  ('appear_in_explore', false, 'appear in explore',
   'Explore lists public documents only, so it follows publish_documents: no anonymous work is listed.',
   'publish_documents.'),
  ('take_username', false, 'take a username',
   'A username is a unique public name; disposable anonymous accounts would squat names that are then freed '
   'only when the account is erased.',
   'restrictive policy on profiles (update) and a trigger on profiles.username.'),
  ('public_profile', false, 'have a public profile',
   'A profile is public exactly when it has a username (public_profile, explore authors), so it follows '
   'take_username.',
   'take_username.'),
  ('create_share_links', false, 'create share links',
   'A share link hands a document to anyone holding the link; links must belong to an account that can be '
   'held responsible and that does not vanish after 90 days of inactivity.',
   'a trigger on share_links (create_share_link).'),
  ('invite_to_rooms', false, 'invite people to rooms',
   'An invite is a link that opens a room to people outside the account, like a share link.',
   'a trigger on room_invites (create_room_invite).'),
  ('publish_templates', false, 'publish room templates',
   'A public template is shown to every user; it needs an accountable, lasting owner like any published work.',
   'restrictive policies on room_templates (insert, update).');

-- == functions (schema private: not exposed) ==
-- The one refusal: when the caller's token is anonymous and the capability
-- needs a linked account, raise 42501 (HTTP 403 through PostgREST) naming
-- what needs the account, with the hint saying how to link one.
create function private.require_linked_account(p_capability text) returns void
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_action text;
begin
  if not coalesce((select (auth.jwt() ->> 'is_anonymous')::boolean), false) then
    return;
  end if;
  select c.action into v_action
    from public.account_capabilities c
   where c.capability = p_capability and not c.anonymous_allowed;
  if not found then
    return;
  end if;
  raise exception 'link an account to % (anonymous users cannot %)', v_action, v_action
    using errcode = '42501',
          hint = 'Link an email, phone or OAuth identity to this anonymous account (supabase.auth.updateUser or '
                 'linkIdentity), refresh the session, then try again. See public.account_capabilities.';
end;
$$;
revoke execute on function private.require_linked_account(text) from public, anon, authenticated, service_role;
grant execute on function private.require_linked_account(text) to authenticated;

-- BEFORE INSERT OR UPDATE OF visibility on documents: covers the definer RPCs
-- (sync_push, import_local, restore, fork) that bypass the policies.
create function private.documents_require_linked_account_to_publish() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if new.visibility <> 'private'
     and (tg_op = 'INSERT' or old.visibility is distinct from new.visibility) then
    perform private.require_linked_account('publish_documents');
  end if;
  return new;
end;
$$;
revoke execute on function private.documents_require_linked_account_to_publish()
  from public, anon, authenticated, service_role;

create function private.profiles_require_linked_account_for_username() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if new.username is not null and (tg_op = 'INSERT' or old.username is distinct from new.username) then
    perform private.require_linked_account('take_username');
  end if;
  return new;
end;
$$;
revoke execute on function private.profiles_require_linked_account_for_username()
  from public, anon, authenticated, service_role;

create function private.share_links_require_linked_account() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.require_linked_account('create_share_links');
  return new;
end;
$$;
revoke execute on function private.share_links_require_linked_account() from public, anon, authenticated, service_role;

create function private.room_invites_require_linked_account() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.require_linked_account('invite_to_rooms');
  return new;
end;
$$;
revoke execute on function private.room_invites_require_linked_account() from public, anon, authenticated, service_role;

create function private.room_templates_require_linked_account_to_publish() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if new.visibility <> 'private'
     and (tg_op = 'INSERT' or old.visibility is distinct from new.visibility) then
    perform private.require_linked_account('publish_templates');
  end if;
  return new;
end;
$$;
revoke execute on function private.room_templates_require_linked_account_to_publish()
  from public, anon, authenticated, service_role;

-- == triggers ==
create trigger documents_require_linked_account_to_publish
  before insert or update of visibility on public.documents
  for each row execute function private.documents_require_linked_account_to_publish();
create trigger profiles_require_linked_account_for_username
  before insert or update of username on public.profiles
  for each row execute function private.profiles_require_linked_account_for_username();
create trigger share_links_require_linked_account
  before insert on public.share_links
  for each row execute function private.share_links_require_linked_account();
create trigger room_invites_require_linked_account
  before insert on public.room_invites
  for each row execute function private.room_invites_require_linked_account();
create trigger room_templates_require_linked_account_to_publish
  before insert or update of visibility on public.room_templates
  for each row execute function private.room_templates_require_linked_account_to_publish();

-- == grants and row level security ==
revoke all on table public.account_capabilities from anon, authenticated, service_role;
grant select on table public.account_capabilities to anon, authenticated, service_role;
alter table public.account_capabilities enable row level security;

create policy "everyone reads the account capabilities" on public.account_capabilities
  for select to anon, authenticated using (true);

-- Restrictive: AND-ed with the permissive policies of each table (Supabase's
-- documented pattern for anonymous users). The triggers above give the
-- readable message; these keep the rule in the policies too.
create policy "only permanent users publish documents" on public.documents
  as restrictive for insert to authenticated
  with check (visibility = 'private' or (select (auth.jwt() ->> 'is_anonymous')::boolean) is not true);
create policy "only permanent users make documents visible to others" on public.documents
  as restrictive for update to authenticated
  with check (visibility = 'private' or (select (auth.jwt() ->> 'is_anonymous')::boolean) is not true);
create policy "only permanent users take a username" on public.profiles
  as restrictive for update to authenticated
  with check (username is null or (select (auth.jwt() ->> 'is_anonymous')::boolean) is not true);
create policy "only permanent users publish templates" on public.room_templates
  as restrictive for insert to authenticated
  with check (visibility = 'private' or (select (auth.jwt() ->> 'is_anonymous')::boolean) is not true);
create policy "only permanent users make templates public" on public.room_templates
  as restrictive for update to authenticated
  with check (visibility = 'private' or (select (auth.jwt() ->> 'is_anonymous')::boolean) is not true);

-- == comments ==
comment on table public.account_capabilities is
  'What an anonymous user (JWT claim is_anonymous) may do, and why: one row per capability. Frontends read it '
  'to show what needs a linked account. Refusals are SQLSTATE 42501 (HTTP 403) with a hint to link an account. '
  'See docs/anonymous-users.md.';
comment on column public.account_capabilities.capability is 'Stable name of the capability (publish_documents, ...).';
comment on column public.account_capabilities.anonymous_allowed is
  'true: anonymous users may do it; false: it needs a linked (permanent) account.';
comment on column public.account_capabilities.action is 'What the capability lets a user do, as the refusal names it.';
comment on column public.account_capabilities.why is 'Why anonymous users may or may not do it.';
comment on column public.account_capabilities.enforced_by is 'Where the rule is enforced (policies, triggers, RPCs).';
comment on function private.require_linked_account(text) is
  'Refuses (42501, hint: link an account) when the caller''s JWT is anonymous and the capability needs a '
  'linked account; returns otherwise.';
comment on function private.documents_require_linked_account_to_publish() is
  'Trigger: an anonymous caller cannot make a document unlisted or public (publish_documents), whichever RPC writes it.';
comment on function private.profiles_require_linked_account_for_username() is
  'Trigger: an anonymous caller cannot set a username (take_username).';
comment on function private.share_links_require_linked_account() is
  'Trigger: an anonymous caller cannot create share links (create_share_links).';
comment on function private.room_invites_require_linked_account() is
  'Trigger: an anonymous caller cannot create room invites (invite_to_rooms).';
comment on function private.room_templates_require_linked_account_to_publish() is
  'Trigger: an anonymous caller cannot make a template public (publish_templates).';
