-- ai: queue mode. A frontend inserts an AI request row instead of calling the
-- proxy; a worker job (kind 'ai.request', handler workers.ai.queue.run_ai_request)
-- runs it as the owner and writes the result, which reaches the frontend through
-- Realtime (table in publication supabase_realtime).
-- Why: frontends that cannot hold a long HTTP stream still get AI replies, with
-- the same rate limit as the proxy (the same limiter key 'ai:<user>').

-- == tables ==
create table public.ai_requests (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  provider text not null check (provider in ('openai', 'anthropic', 'gemini', 'openai_compat')),
  model text not null check (length(model) between 1 and 200),
  key_id uuid references public.ai_keys (id) on delete set null,
  messages jsonb not null constraint ai_requests_messages_array
    check (jsonb_typeof(messages) = 'array' and jsonb_array_length(messages) between 1 and 200
           and pg_column_size(messages) <= 262144),
  max_tokens integer check (max_tokens between 1 and 32000),
  chat_element_id uuid,
  status text not null default 'queued' check (status in ('queued', 'running', 'done', 'failed')),
  result jsonb,
  error text check (length(error) <= 500),
  usage_id uuid references public.ai_usage (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index ai_requests_user_id_created_at_idx on public.ai_requests (user_id, created_at desc);
create index ai_requests_key_id_idx on public.ai_requests (key_id);
create index ai_requests_usage_id_idx on public.ai_requests (usage_id);
create index ai_requests_queued_idx on public.ai_requests (created_at) where status = 'queued';

create trigger ai_requests_set_updated_at before update on public.ai_requests
  for each row execute function private.set_updated_at();

-- Rate limit on insert: the same limiter and plan limits as the proxy.
create function private.ai_requests_before_insert() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_plan public.plans;
begin
  if auth.role() = 'authenticated' then
    if new.user_id is distinct from auth.uid() then
      raise exception 'AI requests are created for yourself only' using errcode = '42501';
    end if;
    select pl.* into v_plan from public.plans pl
      join public.profiles pr on pr.plan = pl.id where pr.id = new.user_id;
    if not found then
      select pl.* into v_plan from public.plans pl where pl.id = 'free';
    end if;
    perform private.rate_limit_enforce('ai:' || new.user_id, v_plan.ai_requests_per_window,
                                       make_interval(secs => v_plan.ai_window_seconds), 1);
  end if;
  new.status := 'queued';
  new.result := null;
  new.error := null;
  new.usage_id := null;
  return new;
end;
$$;
revoke execute on function private.ai_requests_before_insert() from public;

create trigger ai_requests_before_insert before insert on public.ai_requests
  for each row execute function private.ai_requests_before_insert();

-- == grants and row level security ==
grant select, delete on public.ai_requests to authenticated;
grant insert (provider, model, key_id, messages, max_tokens, chat_element_id) on public.ai_requests
  to authenticated;
grant select, insert, update, delete on public.ai_requests to service_role;
alter table public.ai_requests enable row level security;

create policy "owners read their ai requests" on public.ai_requests
  for select to authenticated using (user_id = (select auth.uid()));
create policy "owners queue their own ai requests" on public.ai_requests
  for insert to authenticated with check (
    user_id = (select auth.uid())
    and (key_id is null or exists (
      select 1 from public.ai_keys k where k.id = key_id and k.user_id = (select auth.uid())))
  );
create policy "owners delete their ai requests" on public.ai_requests
  for delete to authenticated using (user_id = (select auth.uid()));

-- == realtime ==
alter publication supabase_realtime add table public.ai_requests;

-- == comments ==
comment on table public.ai_requests is
  'Queue mode: insert {provider, model, messages[, key_id, max_tokens, chat_element_id]}; a worker sets status running -> done (result) or failed (error). Subscribe with Realtime postgres_changes. Rate-limited like the proxy (SQLSTATE PT429 -> HTTP 429).';
comment on column public.ai_requests.messages is
  'Chat messages [{"role": "system"|"user"|"assistant", "content": "..."}].';
comment on column public.ai_requests.result is
  '{"text": ..., "model": ..., "usage": {"input_tokens": n, "output_tokens": n}} when done.';
comment on column public.ai_requests.chat_element_id is
  'Optional room chat element; the assistant reply is appended there (you must be a room member).';
