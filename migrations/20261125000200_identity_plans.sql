-- identity: plans and the limits each grants.
-- Why: every quota (storage, documents, AI requests, exports) is data, so a
-- paid tier is a row, not a code change. Modules add their own limit columns.

-- == tables ==
create table public.plans (
  id text primary key check (id ~ '^[a-z][a-z0-9_]{1,29}$'),
  name text not null check (length(name) between 1 and 60),
  storage_bytes bigint not null check (storage_bytes >= 0),
  documents_per_kind integer not null check (documents_per_kind >= 0),
  ai_requests_per_window integer not null check (ai_requests_per_window >= 0),
  ai_window_seconds integer not null default 900 check (ai_window_seconds > 0),
  exports_per_day integer not null check (exports_per_day >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create trigger plans_set_updated_at before update on public.plans
  for each row execute function private.set_updated_at();

insert into public.plans
  (id, name, storage_bytes, documents_per_kind, ai_requests_per_window, ai_window_seconds, exports_per_day)
values
  ('free', 'Free', 100 * 1024 * 1024, 500, 100, 900, 1),
  ('pro', 'Pro', 10::bigint * 1024 * 1024 * 1024, 100000, 1000, 900, 10);

-- == grants and row level security ==
grant select on public.plans to anon, authenticated;
grant select, insert, update, delete on public.plans to service_role;
alter table public.plans enable row level security;

create policy "everyone reads plans" on public.plans
  for select to anon, authenticated using (true);

-- == comments ==
comment on table public.plans is
  'What each plan allows. Readable by everyone (pricing pages); changed only by operators.';
comment on column public.plans.storage_bytes is 'Total bytes of files a user on this plan may store.';
comment on column public.plans.documents_per_kind is 'Default cap on documents of one kind per user.';
comment on column public.plans.ai_requests_per_window is 'AI proxy requests allowed per sliding window.';
comment on column public.plans.ai_window_seconds is 'Length of the AI sliding window in seconds (900 = 15 minutes).';
comment on column public.plans.exports_per_day is 'Data exports a user may request per day.';
