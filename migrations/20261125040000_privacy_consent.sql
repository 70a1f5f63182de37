-- privacy: consent settings per user. Adds public.privacy_consents and rpc set_privacy_consent().
-- Why: telemetry (and any future optional processing) is collected only after
-- the user said yes; the choice and when it was made are kept per user and
-- read by ingest_telemetry(). No row means "not asked yet" = no consent.

-- == tables ==
create table public.privacy_consents (
  user_id uuid primary key references auth.users (id) on delete cascade,
  telemetry boolean not null default false,
  updated_at timestamptz not null default now(),
  created_at timestamptz not null default now()
);

create trigger privacy_consents_set_updated_at before update on public.privacy_consents
  for each row execute function private.set_updated_at();

-- == grants and row level security ==
grant select, insert, update (telemetry) on public.privacy_consents to authenticated;
grant select, insert, update, delete on public.privacy_consents to service_role;
alter table public.privacy_consents enable row level security;

create policy "users read their own consent" on public.privacy_consents
  for select to authenticated using (user_id = (select auth.uid()));
create policy "users record their own consent" on public.privacy_consents
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "users change their own consent" on public.privacy_consents
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

-- == functions ==
-- Invoker RPC: upsert the caller's own row (RLS above applies).
create function public.set_privacy_consent(telemetry boolean)
returns public.privacy_consents
language sql
set search_path = ''
as $$
  insert into public.privacy_consents (user_id, telemetry)
  values ((select auth.uid()), coalesce(set_privacy_consent.telemetry, false))
  on conflict (user_id) do update set telemetry = excluded.telemetry
  returning *
$$;
revoke execute on function public.set_privacy_consent(boolean) from public, anon;
grant execute on function public.set_privacy_consent(boolean) to authenticated;

-- == comments ==
comment on table public.privacy_consents is
  'The user''s privacy choices. No row = nothing consented. Change with rpc set_privacy_consent(telemetry => true).';
comment on column public.privacy_consents.telemetry is
  'true: the app may send usage events with rpc ingest_telemetry(). false withdraws consent (sending is refused).';
comment on function public.set_privacy_consent(boolean) is
  'Record the signed-in user''s telemetry consent (true/false); returns the consent row.';
