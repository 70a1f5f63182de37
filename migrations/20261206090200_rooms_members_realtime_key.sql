-- rooms: Realtime DELETE events carry surrogate keys only. Adds
-- public.room_members.id (uuid, the new primary key and replica identity;
-- (room_id, user_id) stays unique) and public.room_chat_messages.realtime_id
-- (uuid, the replica identity).
-- Why: Realtime delivers a published table's DELETE events to every subscriber
-- of the table WITHOUT checking RLS, carrying the deleted row's replica-identity
-- key (columns that are also primary-key columns, when RLS is on). room_members
-- had the primary key (room_id, user_id), so anyone subscribed to it learned who
-- left or was removed from which room, and whose account was erased.
-- room_chat_messages' key is a global bigint sequence, which told every
-- subscriber how many messages all rooms hold and when they go. The other
-- published tables (rooms, room_elements, room_element_connections, jobs,
-- ai_requests) are keyed by a random uuid that is no foreign key: a deleted
-- row's key reveals nothing. `backline db check` now refuses a published table
-- whose key is anything else (lint realtime_key_reveals_hidden_rows).
-- Frontends: a DELETE event on room_members now says only {id}; match it to
-- the member rows you read (select id with the other columns). A DELETE event
-- on room_chat_messages carries no key at all (messages are deleted only with
-- their chat element or room, whose own DELETE events say which).

-- == room_members: a random surrogate primary key ==
alter table public.room_members add column id uuid not null default gen_random_uuid();
alter table public.room_members drop constraint room_members_pkey;
alter table public.room_members
  add constraint room_members_room_id_user_id_key unique (room_id, user_id);
alter table public.room_members add constraint room_members_pkey primary key (id);
-- Explicit, so dropping the key later makes deletes fail loudly instead of
-- falling back to another key.
alter table public.room_members replica identity using index room_members_pkey;

-- == room_chat_messages: a random replica identity beside the ordering id ==
alter table public.room_chat_messages add column realtime_id uuid not null default gen_random_uuid();
create unique index room_chat_messages_realtime_id_key on public.room_chat_messages (realtime_id);
alter table public.room_chat_messages replica identity using index room_chat_messages_realtime_id_key;

-- == privileges ==
-- Both columns are set by the database. No grant is needed or given: a new
-- column is covered by the table-level SELECT that members and the service
-- role already have (20261206090000_security_api_grants), and by none of the
-- column-level INSERT/UPDATE grants, so no client can write it.

-- == comments ==
comment on column public.room_members.id is
  'Random id of the membership, set by the database. The only key a Realtime DELETE event on room_members carries.';
comment on column public.room_chat_messages.realtime_id is
  'Random id of the message, set by the database: the replica identity, so Realtime DELETE events reveal no '
  'message count. Order messages by id.';
