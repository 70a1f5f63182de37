-- security: insert/update policies check every reference, not only the owner.
-- Replaces the INSERT/UPDATE policies of ai_requests, documents, file_links,
-- jobs, room_members, share_links and sync_conflicts, adds four private
-- helpers for them, and makes two BEFORE triggers (room_chat_messages,
-- room_elements) refuse rooms the caller cannot edit before looking at them.
--
-- Why: the policies pinned the owner column to auth.uid() but let the other
-- uuid columns point anywhere: a stranger could queue an ai_requests row on
-- another room's chat element, record a sync_conflicts row on another user's
-- document, move a share link to someone else's document, or enqueue a
-- room_export job for a room they are not in. Each of those also answered
-- differently for an existing and an unknown id (the foreign key answers 23503
-- for an unknown one), so it told strangers which ids exist. A reference now
-- has to point at something the caller may reach; anything else (someone
-- else's row or no row at all) is refused with the same 42501 before any
-- foreign key is looked at. BEFORE triggers run before RLS, so triggers that
-- looked up the referenced room (its chat element, its owner's plan) now do
-- so only for rooms the caller may edit.
--
-- Every reference column of every table in public (pg_constraint contype 'f'
-- plus uuid columns without a foreign key) and how a client write to it is
-- checked (INSERT/UPDATE = the policy of that command; "no grant" = no API
-- role may write it, 20261206090000_security_api_grants; RPCs in
-- 20261206090410_security_id_oracles):
--   abuse_reports.reporter_id          = auth.uid() (insert policy, unchanged)
--   abuse_reports.document_id          a public, live document (insert, unchanged); no update policy
--   ai_keys.user_id                    no client insert/update (private.ai_key_store sets auth.uid())
--   ai_requests.user_id                = auth.uid() (insert policy and trigger, unchanged)
--   ai_requests.key_id                 null or one of your keys (insert, unchanged)
--   ai_requests.chat_element_id        NEW: null or a chat element of a room you may edit (insert)
--   ai_requests.usage_id               forced null by ai_requests_before_insert; no update policy
--   ai_usage.user_id                   no client writes
--   audit_log.user_id                  no client writes
--   backups.owner_id                   no client writes (rpc upload_backup/restore_backup, definer)
--   billing_customers/subscriptions.*  no client writes
--   document_kind_limits.kind/plan     no client writes
--   documents.owner_id                 = auth.uid() (insert, update; owner never changes: trigger)
--   documents.kind                     foreign key to the public kind registry (every kind is public)
--   documents.forked_from              NEW: null on insert (only rpc fork_document sets it, as
--                                      definer); on update null or the value already stored
--   documents body refs (song timeline loop_id, item folder_id, folder parent_id): not checked on
--                                      purpose. They are not foreign keys, grant nothing (reading the
--                                      target is RLS's decision), are never looked up on write (so no
--                                      oracle), and must stay free: a fork keeps the source owner's
--                                      loop ids, and sync_push may send a song before its loops.
--   file_links.owner_id                = auth.uid() (insert, unchanged); no update policy
--   file_links.bucket_id/object_name   an object you own (insert, unchanged)
--   file_links.ref_kind/ref_id         NEW: private.file_link_ref_is_mine: document = your document,
--                                      room_element = an element of a room you may edit,
--                                      profile = your own id; any other kind is refused
--   jobs.owner_id                      = auth.uid() (insert, unchanged); no update policy
--   jobs.kind                          user-enqueueable kinds only (insert, unchanged)
--   jobs.payload refs                  NEW: private.job_payload_refs_are_mine: user_id = you,
--                                      room_id = a room you are a member of, document_id = your
--                                      document, thumbnail bucket/name = an object you own
--   privacy_consents.user_id           = auth.uid() (insert, update, unchanged)
--   profiles.id                        = auth.uid() (update, unchanged)
--   profiles.plan                      maintained by the database (billing): no grant
--   room_chat_messages.room_id         a room you may edit (insert, unchanged); the trigger now
--                                      refuses other rooms first (it answered 23514 vs 42501 before)
--   room_chat_messages.element_id      foreign key (room_id, element_id): inside the checked room
--   room_chat_messages.author_id       set by the trigger; no update policy
--   room_element_connections.room_id   a room you may edit (insert, update, unchanged)
--   room_element_connections.from/to_element_id  foreign keys (room_id, id): inside the checked room
--   room_element_connections.created_by set by the trigger
--   room_elements.room_id              a room you may edit (insert, update; never changes: trigger);
--                                      the cap trigger now refuses other rooms first (it locked the
--                                      room and named its owner's plan before)
--   room_elements.created_by/updated_by set by the trigger
--   room_elements.image_path           must lie under rooms/<room_id>/ (check) and exist (trigger)
--   room_invites.room_id/created_by    no client insert (rpc create_room_invite: owner only)
--   room_members.room_id/user_id/invited_by  NEW on update: must stay what they are
--                                      (private.room_membership_is); no client insert (invites)
--   room_templates.owner_id            = auth.uid() (insert, update, unchanged); no other refs
--   rooms.owner_id                     = auth.uid() (insert, update, unchanged)
--   share_links.owner_id               = auth.uid() (insert, update, unchanged)
--   share_links.document_id            your document (insert, unchanged); NEW on update too
--   sync_conflicts.owner_id            = auth.uid() (insert, update, unchanged)
--   sync_conflicts.document_id         NEW: your document (insert and update)
--   sync_receipts.owner_id             = auth.uid() (insert, unchanged); no other refs
--   telemetry_events.user_id/name      no client insert (rpc ingest_telemetry)
-- Primary keys (id columns) are the row's own id, not references.

-- == helpers (private, security definer: they read rows the caller's RLS hides) ==

-- The lineage of one of the caller's documents as stored: an UPDATE policy's
-- check sees the row before the update, so this pins forked_from to its
-- stored value. Answers false for anyone else's document (called directly it
-- tells nothing RLS hides).
create function private.document_lineage_is(p_document_id uuid, p_forked_from uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
begin
  return exists (select 1 from public.documents d
                  where d.id = p_document_id and d.owner_id = (select auth.uid())
                    and d.forked_from is not distinct from p_forked_from);
end;
$$;
revoke execute on function private.document_lineage_is(uuid, uuid) from public, anon, authenticated, service_role;
grant execute on function private.document_lineage_is(uuid, uuid) to authenticated;

-- The membership row exactly as stored (room, member, inviter): an owner may
-- change a member's role, never who the member is or which room they are in.
-- Answers false outside the rooms the caller owns (called directly it tells
-- nothing RLS hides).
create function private.room_membership_is(p_room_id uuid, p_user_id uuid, p_invited_by uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
begin
  return exists (select 1 from public.room_members m
                  where m.room_id = p_room_id and m.user_id = p_user_id
                    and m.invited_by is not distinct from p_invited_by
                    and m.room_id in (select private.my_owned_room_ids()));
end;
$$;
revoke execute on function private.room_membership_is(uuid, uuid, uuid)
  from public, anon, authenticated, service_role;
grant execute on function private.room_membership_is(uuid, uuid, uuid) to authenticated;

-- What a file link may name as the row that uses the file. A module that adds
-- a ref_kind extends this function (create or replace from this definition).
create function private.file_link_ref_is_mine(p_ref_kind text, p_ref_id uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null or p_ref_id is null then
    return false;
  end if;
  return case p_ref_kind
    when 'document' then exists (
      select 1 from public.documents d where d.id = p_ref_id and d.owner_id = v_uid)
    when 'room_element' then exists (
      select 1 from public.room_elements e
       where e.id = p_ref_id and e.room_id in (select private.my_editable_room_ids()))
    when 'profile' then p_ref_id = v_uid
    else false
  end;
end;
$$;
revoke execute on function private.file_link_ref_is_mine(text, uuid) from public, anon, authenticated, service_role;
grant execute on function private.file_link_ref_is_mine(text, uuid) to authenticated;

-- References inside a user-enqueued job's payload. Refuses (42501, one
-- message per key whether the target is someone else's or does not exist)
-- instead of returning false, so rpc enqueue_job and direct inserts get a
-- message that names the key. A missing key is the worker's to refuse
-- (InvalidPayload); a payload that is not an object is the table's check.
create function private.job_payload_refs_are_mine(p_kind text, p_payload jsonb) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  if jsonb_typeof(p_payload) is distinct from 'object' then
    return true;
  end if;
  if p_payload ? 'user_id' and (p_payload ->> 'user_id') is distinct from v_uid::text then
    raise exception 'job payload user_id must be your own user id' using errcode = '42501',
      hint = 'Leave user_id out: a job you enqueue always acts for you.';
  end if;
  if p_payload ? 'room_id' and not exists (
    select 1 from public.room_members m
     where m.room_id::text = p_payload ->> 'room_id' and m.user_id = v_uid
  ) then
    raise exception 'job payload room_id is not a room you are a member of' using errcode = '42501',
      hint = 'Use the id of a room you belong to.';
  end if;
  if p_payload ? 'document_id' and not exists (
    select 1 from public.documents d where d.id::text = p_payload ->> 'document_id' and d.owner_id = v_uid
  ) then
    raise exception 'job payload document_id is not a document in your library' using errcode = '42501',
      hint = 'Use the id of one of your own documents.';
  end if;
  if p_kind = 'thumbnail' and p_payload ? 'name' and not exists (
    select 1 from storage.objects o
     where o.bucket_id = coalesce(p_payload ->> 'bucket', 'images')
       and o.name = p_payload ->> 'name' and o.owner_id = v_uid::text
  ) then
    raise exception 'job payload names no file you uploaded' using errcode = '42501',
      hint = 'Give bucket and name of an object you uploaded yourself.';
  end if;
  return true;
end;
$$;
revoke execute on function private.job_payload_refs_are_mine(text, jsonb)
  from public, anon, authenticated, service_role;
grant execute on function private.job_payload_refs_are_mine(text, jsonb) to authenticated;

-- == policies ==

-- ai_requests: the chat element a reply is appended to must be a chat element
-- of a room the caller may write in (the worker checks again when it runs).
drop policy "owners queue their own ai requests" on public.ai_requests;
create policy "owners queue ai requests with their own keys and chats" on public.ai_requests
  for insert to authenticated with check (
    user_id = (select auth.uid())
    and (key_id is null or exists (
      select 1 from public.ai_keys k where k.id = ai_requests.key_id and k.user_id = (select auth.uid())))
    and (chat_element_id is null or exists (
      select 1 from public.room_elements e
       where e.id = ai_requests.chat_element_id and e.kind = 'chat'
         and e.room_id in (select private.my_editable_room_ids())))
  );

-- documents: lineage is written by rpc fork_document only.
drop policy "users create their own documents" on public.documents;
create policy "users create their own documents without lineage" on public.documents
  for insert to authenticated
  with check (owner_id = (select auth.uid()) and forked_from is null);
drop policy "owners update their documents" on public.documents;
create policy "owners update their documents but not their lineage" on public.documents
  for update to authenticated
  using (owner_id = (select auth.uid()))
  with check (
    owner_id = (select auth.uid())
    and (forked_from is null or private.document_lineage_is(id, forked_from))
  );

-- file_links: the referring row must be the caller's too.
drop policy "users link their own files" on public.file_links;
create policy "users link their own files to their own rows" on public.file_links
  for insert to authenticated
  with check (
    owner_id = (select auth.uid())
    and exists (
      select 1 from storage.objects o
       where o.bucket_id = file_links.bucket_id
         and o.name = file_links.object_name
         and o.owner_id = (select auth.uid())::text
    )
    and private.file_link_ref_is_mine(ref_kind, ref_id)
  );

-- jobs: references in the payload.
drop policy "users enqueue allowed jobs for themselves" on public.jobs;
create policy "users enqueue allowed jobs about their own things" on public.jobs
  for insert to authenticated
  with check (
    owner_id = (select auth.uid())
    and private.job_kind_is_user_enqueueable(kind)
    and private.job_payload_refs_are_mine(kind, payload)
  );

-- room_members: the owner changes a role, not who or where the member is.
drop policy "the owner changes members between editor and viewer" on public.room_members;
create policy "the owner changes members between editor and viewer" on public.room_members
  for update to authenticated
  using (role <> 'owner' and room_id in (select private.my_owned_room_ids()))
  with check (
    role in ('editor', 'viewer')
    and room_id in (select private.my_owned_room_ids())
    and private.room_membership_is(room_id, user_id, invited_by)
  );

-- share_links: revoking must not move a link to someone else's document.
drop policy "owners revoke their share links" on public.share_links;
create policy "owners revoke their share links of their own documents" on public.share_links
  for update to authenticated
  using (owner_id = (select auth.uid()))
  with check (
    owner_id = (select auth.uid())
    and exists (select 1 from public.documents d
                 where d.id = share_links.document_id and d.owner_id = (select auth.uid()))
  );

-- sync_conflicts: a conflict is about one of the caller's documents.
drop policy "owners record their conflicts" on public.sync_conflicts;
create policy "owners record conflicts of their own documents" on public.sync_conflicts
  for insert to authenticated
  with check (
    owner_id = (select auth.uid())
    and exists (select 1 from public.documents d
                 where d.id = sync_conflicts.document_id and d.owner_id = (select auth.uid()))
  );
drop policy "owners resolve their conflicts" on public.sync_conflicts;
create policy "owners resolve conflicts of their own documents" on public.sync_conflicts
  for update to authenticated
  using (owner_id = (select auth.uid()))
  with check (
    owner_id = (select auth.uid())
    and exists (select 1 from public.documents d
                 where d.id = sync_conflicts.document_id and d.owner_id = (select auth.uid()))
  );

-- == BEFORE triggers: rooms the caller cannot edit are refused before they are looked at ==

-- From 20261125020400_rooms_chat_messages.sql. New: an API user's message to
-- a room they cannot edit is refused first (42501, one message whether the
-- room or its chat element exist or not); it answered 23514 for a missing chat
-- element and 42501 (policy) for an existing one before. Raising here rather
-- than leaving it to the policy also refuses it on a definer path.
create or replace function private.room_chat_messages_check() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if current_setting('role', true) in ('authenticated', 'anon')
     and new.room_id not in (select private.my_editable_room_ids()) then
    raise exception 'only the owner and editors of a room add chat messages to it' using errcode = '42501',
      hint = 'Ask the room owner to make you an editor.';
  end if;
  if not exists (
    select 1 from public.room_elements e
     where e.id = new.element_id and e.room_id = new.room_id and e.kind = 'chat'
  ) then
    raise exception 'messages belong to a chat element of the same room'
      using errcode = '23514', hint = 'element_id must be an element of kind chat in room_id.';
  end if;
  if (select auth.uid()) is not null then
    new.author_id := (select auth.uid());
  end if;
  new.created_at := now();
  return new;
end;
$$;

-- From 20261125020300_rooms_elements.sql. New: a room the API user cannot
-- edit is refused first (42501, the same for an unknown room), before the room
-- is locked or its owner's plan is named in the cap message.
create or replace function private.enforce_room_element_cap() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_max integer;
  v_plan text;
  v_count integer;
begin
  if current_setting('role', true) in ('authenticated', 'anon')
     and new.room_id not in (select private.my_editable_room_ids()) then
    raise exception 'only the owner and editors of a room add elements to it' using errcode = '42501',
      hint = 'Ask the room owner to make you an editor.';
  end if;
  select pl.room_elements_max, pl.id into v_max, v_plan
    from public.rooms r
    join public.profiles p on p.id = r.owner_id
    join public.plans pl on pl.id = p.plan
   where r.id = new.room_id
     for no key update of r;
  if v_max is null then
    return new;  -- unknown room: the foreign key reports it
  end if;
  select count(*) into v_count from public.room_elements e where e.room_id = new.room_id;
  if v_count >= v_max then
    raise exception 'room element limit reached: a room on the % plan holds at most % elements', v_plan, v_max
      using errcode = '23514', hint = 'Delete elements, or the room owner upgrades the plan.';
  end if;
  return new;
end;
$$;

-- == comments ==
comment on column public.ai_requests.chat_element_id is
  'Optional chat element (kind chat) of a room you may edit (owner or editor); the assistant reply is appended there.';
comment on column public.file_links.ref_id is
  'Id of the referring row (no foreign key: any module may link). A user may link only their own rows: '
  'document = your document, room_element = an element of a room you edit, profile = your user id.';
comment on column public.jobs.payload is
  'Job input. In jobs you enqueue, references must be yours: user_id (you), room_id (a room you are in), '
  'document_id (your document), thumbnail bucket/name (a file you uploaded); otherwise 42501.';
