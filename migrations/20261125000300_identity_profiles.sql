-- identity: profiles, one per auth user, created by trigger.
-- Why: apps are anonymous-first; every auth user (anonymous ones too) gets a
-- profile at sign-up, and linking an identity later keeps the same row.
-- Public fields are readable by everyone; plan and storage_used only by the
-- owner (column privileges + private.my_profile()).

-- == tables ==
create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  username extensions.citext unique
    constraint profiles_username_format check (
      length(username::text) between 3 and 30 and username::text ~ '^[a-z0-9_]+$'
    ),
  display_name text constraint profiles_display_name_length check (length(display_name) <= 100),
  avatar_url text constraint profiles_avatar_url_format check (
    avatar_url ~ '^https?://' and length(avatar_url) <= 2048
  ),
  bio text constraint profiles_bio_length check (length(bio) <= 1000),
  is_anonymous boolean not null default false,
  plan text not null default 'free' references public.plans (id),
  storage_used bigint not null default 0 constraint profiles_storage_used_nonnegative check (storage_used >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index profiles_plan_idx on public.profiles (plan);

create trigger profiles_set_updated_at before update on public.profiles
  for each row execute function private.set_updated_at();

create function private.normalize_username() returns trigger
language plpgsql set search_path = ''
as $$
begin
  new.username := lower(new.username::text);
  return new;
end;
$$;
revoke execute on function private.normalize_username() from public;

create trigger profiles_normalize_username before insert or update of username on public.profiles
  for each row execute function private.normalize_username();

-- == functions (schema private: not exposed) ==
create function private.handle_new_user() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into public.profiles (id, is_anonymous, display_name, avatar_url)
  values (
    new.id,
    coalesce(new.is_anonymous, false),
    left(coalesce(new.raw_user_meta_data ->> 'display_name',
                  new.raw_user_meta_data ->> 'full_name',
                  new.raw_user_meta_data ->> 'name'), 100),
    case when new.raw_user_meta_data ->> 'avatar_url' ~ '^https?://'
         then left(new.raw_user_meta_data ->> 'avatar_url', 2048) end
  )
  on conflict (id) do nothing;
  return new;
end;
$$;
revoke execute on function private.handle_new_user() from public;

create function private.sync_user_anonymity() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update public.profiles
     set is_anonymous = coalesce(new.is_anonymous, false)
   where id = new.id and is_anonymous is distinct from coalesce(new.is_anonymous, false);
  return new;
end;
$$;
revoke execute on function private.sync_user_anonymity() from public;

create trigger on_auth_user_created after insert on auth.users
  for each row execute function private.handle_new_user();
create trigger on_auth_user_anonymity_changed after update of is_anonymous on auth.users
  for each row execute function private.sync_user_anonymity();

create function private.my_profile() returns setof public.profiles
language sql stable security definer set search_path = ''
as $$ select p.* from public.profiles p where p.id = (select auth.uid()) $$;
revoke execute on function private.my_profile() from public, anon;
grant execute on function private.my_profile() to authenticated;

-- Invoker wrapper in the exposed schema: `supabase.rpc('my_profile')`.
create function public.my_profile() returns setof public.profiles
language sql stable set search_path = ''
as $$ select * from private.my_profile() $$;
revoke execute on function public.my_profile() from public, anon;
grant execute on function public.my_profile() to authenticated;

-- == grants and row level security ==
grant select (id, username, display_name, avatar_url, bio, is_anonymous, created_at, updated_at)
  on public.profiles to anon, authenticated;
grant update (username, display_name, avatar_url, bio) on public.profiles to authenticated;
grant select, insert, update, delete on public.profiles to service_role;
alter table public.profiles enable row level security;

create policy "everyone reads public profile fields" on public.profiles
  for select to anon, authenticated using (true);
create policy "users update their own profile" on public.profiles
  for update to authenticated
  using (id = (select auth.uid()))
  with check (id = (select auth.uid()));

-- == comments ==
comment on table public.profiles is
  'One row per auth user, created automatically at sign-up (anonymous users too). '
  'Select explicit columns: plan and storage_used are readable only through rpc my_profile().';
comment on column public.profiles.username is
  'Unique handle, stored lower-case: 3-30 characters of a-z, 0-9 and _. Null until chosen.';
comment on column public.profiles.display_name is 'Name shown to others, up to 100 characters.';
comment on column public.profiles.avatar_url is 'http(s) URL of the avatar image (e.g. in the avatars bucket).';
comment on column public.profiles.bio is 'Free text, up to 1000 characters.';
comment on column public.profiles.is_anonymous is
  'True while the user has not linked an email or provider; kept in step with auth.users.';
comment on column public.profiles.plan is 'The plan (public.plans.id). Changed by billing, never by the user.';
comment on column public.profiles.storage_used is
  'Bytes of files the user stores, maintained by the database. Owner-only (rpc my_profile).';
comment on function public.my_profile() is 'The signed-in user''s whole profile, plan and storage_used included.';
