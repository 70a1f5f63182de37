-- rooms: realtime for rooms.
-- Why: members see each other's edits live. (1) Postgres Changes: the room
-- tables are in the supabase_realtime publication; Realtime delivers a change
-- only to subscribers whose RLS lets them select the row. (2) Private
-- broadcast/presence channels named `room:<room id>` (cursors, "who is
-- here"): Realtime authorizes a join by running the RLS policies of
-- realtime.messages as the user with realtime.topic() = the channel name
-- (select = may receive, insert = may send). Members receive and send
-- presence; only the owner and editors send broadcasts.

-- == publication ==
alter publication supabase_realtime add table
  public.rooms, public.room_members, public.room_elements,
  public.room_element_connections, public.room_chat_messages;

-- == functions (schema private: not exposed) ==
-- 'room:<uuid>' -> the uuid; anything else -> null (never raises).
create function private.room_id_from_topic(p_topic text) returns uuid
language sql immutable set search_path = ''
as $$
  select case
    when p_topic ~ '^room:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    then substr(p_topic, 6)::uuid
  end
$$;
revoke execute on function private.room_id_from_topic(text) from public;
grant execute on function private.room_id_from_topic(text) to authenticated, service_role;

-- == row level security on realtime.messages ==
create policy "room members receive the room channel" on realtime.messages
  for select to authenticated
  using (
    extension in ('broadcast', 'presence')
    and private.room_id_from_topic((select realtime.topic())) in (select private.my_room_ids())
  );
create policy "room members share presence and editors broadcast" on realtime.messages
  for insert to authenticated
  with check (
    (extension = 'presence'
     and private.room_id_from_topic((select realtime.topic())) in (select private.my_room_ids()))
    or (extension = 'broadcast'
     and private.room_id_from_topic((select realtime.topic())) in (select private.my_editable_room_ids()))
  );

comment on function private.room_id_from_topic(text) is
  'Realtime: the room id of a channel named room:<uuid>, else null.';
