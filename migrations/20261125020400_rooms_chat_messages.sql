-- rooms: chat histories of chat elements.
-- Why: a chat element on the canvas is a conversation with an AI model that
-- the room shares. Messages are append-only: the owner and editors add their
-- own `user` messages; `assistant` (and `system`) messages are written by the
-- AI worker with the service role. Nobody edits or deletes a message; they
-- go with their element or room.

-- == tables ==
create table public.room_chat_messages (
  id bigint generated always as identity primary key,
  room_id uuid not null,
  element_id uuid not null,
  role text not null constraint room_chat_messages_role_known check (role in ('user', 'assistant', 'system')),
  author_id uuid references auth.users (id) on delete set null,
  content text not null constraint room_chat_messages_content_length check (length(content) between 1 and 100000),
  prompt_tokens integer constraint room_chat_messages_prompt_tokens_nonnegative check (prompt_tokens >= 0),
  completion_tokens integer
    constraint room_chat_messages_completion_tokens_nonnegative check (completion_tokens >= 0),
  model text constraint room_chat_messages_model_length check (length(model) <= 100),
  created_at timestamptz not null default now(),
  constraint room_chat_messages_element_in_room foreign key (room_id, element_id)
    references public.room_elements (room_id, id) on delete cascade
);
create index room_chat_messages_room_id_element_id_idx on public.room_chat_messages (room_id, element_id, id);
create index room_chat_messages_element_id_idx on public.room_chat_messages (element_id, id);
create index room_chat_messages_author_id_idx on public.room_chat_messages (author_id);

-- == functions (schema private: not exposed) ==
create function private.room_chat_messages_check() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
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
revoke execute on function private.room_chat_messages_check() from public;

create trigger room_chat_messages_check before insert on public.room_chat_messages
  for each row execute function private.room_chat_messages_check();

-- == grants and row level security ==
grant select, insert (room_id, element_id, role, content) on public.room_chat_messages to authenticated;
grant select, insert, update, delete on public.room_chat_messages to service_role;
alter table public.room_chat_messages enable row level security;

create policy "members read room chats" on public.room_chat_messages
  for select to authenticated using (room_id in (select private.my_room_ids()));
create policy "editors add their own user messages" on public.room_chat_messages
  for insert to authenticated
  with check (role = 'user' and room_id in (select private.my_editable_room_ids()));

-- == comments ==
comment on table public.room_chat_messages is
  'Messages of a chat element, oldest first by id. Members read; owner and editors append user '
  'messages (author set by the database); the AI worker appends assistant messages. Never edited.';
comment on column public.room_chat_messages.role is 'user (a member), assistant (the AI model) or system.';
comment on column public.room_chat_messages.prompt_tokens is 'Tokens the AI provider counted for the prompt (assistant messages).';
comment on column public.room_chat_messages.completion_tokens is 'Tokens the AI provider generated (assistant messages).';
