-- Platform layer, part 1: the slice of Supabase Auth (GoTrue) our SQL uses.
--
-- On Supabase the Auth server owns the `auth` schema and creates these
-- objects with its own migrations (supabase/auth, migrations/). Plain
-- PostgreSQL has none of it, so we recreate, with the same names, columns,
-- types and semantics:
--   auth.users       the accounts (every column GoTrue has today);
--   auth.identities  the sign-in identities of each user;
--   auth.uid(), auth.role(), auth.email(), auth.jwt()
--                    the request's JWT claims, as PostgREST sets them.
-- Other GoTrue tables (sessions, refresh_tokens, mfa_*, sso_*, ...) are only
-- read by the Auth server itself and are left out.
--
-- Like GoTrue, auth.users has no defaults for id, aud, role, instance_id,
-- created_at or updated_at: the Auth server always supplies them, and so must
-- anything that inserts users directly (test fixtures, the local transport).

-- ---------------------------------------------------------------------------
-- auth.users
-- ---------------------------------------------------------------------------

create table if not exists auth.users (
  instance_id uuid,
  id uuid not null,
  aud character varying(255),
  role character varying(255),
  email character varying(255),
  encrypted_password character varying(255),
  email_confirmed_at timestamp with time zone,
  invited_at timestamp with time zone,
  confirmation_token character varying(255),
  confirmation_sent_at timestamp with time zone,
  recovery_token character varying(255),
  recovery_sent_at timestamp with time zone,
  email_change_token_new character varying(255),
  email_change character varying(255),
  email_change_sent_at timestamp with time zone,
  last_sign_in_at timestamp with time zone,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamp with time zone,
  updated_at timestamp with time zone,
  phone text default null,
  phone_confirmed_at timestamp with time zone,
  phone_change text default '',
  phone_change_token character varying(255) default '',
  phone_change_sent_at timestamp with time zone,
  confirmed_at timestamp with time zone
    generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current character varying(255) default '',
  email_change_confirm_status smallint default 0,
  banned_until timestamp with time zone,
  reauthentication_token character varying(255) default '',
  reauthentication_sent_at timestamp with time zone,
  is_sso_user boolean not null default false,
  deleted_at timestamp with time zone,
  is_anonymous boolean not null default false,
  constraint users_pkey primary key (id),
  constraint users_phone_key unique (phone),
  constraint users_email_change_confirm_status_check
    check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2)
);

comment on table auth.users is
  'Auth: Stores user login data within a secure schema.';
comment on column auth.users.is_sso_user is
  'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';
comment on column auth.users.is_anonymous is
  'Auth: true for users created by anonymous sign-in (no email or phone yet).';
comment on column auth.users.raw_app_meta_data is
  'Auth: app_metadata claim of the user''s JWT; only the server may write it.';
comment on column auth.users.raw_user_meta_data is
  'Auth: user_metadata claim of the user''s JWT; the user may write it through the Auth API.';

-- An email is unique among non-SSO accounts (GoTrue's partial unique index).
create unique index if not exists users_email_partial_key
  on auth.users using btree (email)
  where (is_sso_user = false);
comment on index auth.users_email_partial_key is
  'Auth: A partial unique index that applies only when is_sso_user is false';

create index if not exists users_instance_id_idx
  on auth.users using btree (instance_id);
create index if not exists users_instance_id_email_idx
  on auth.users using btree (instance_id, lower((email)::text));
create index if not exists users_is_anonymous_idx
  on auth.users using btree (is_anonymous);

-- One-time tokens are unique, except empty/whitespace/numeric OTP values.
create unique index if not exists confirmation_token_idx
  on auth.users using btree (confirmation_token)
  where ((confirmation_token)::text !~ '^[0-9 ]*$');
create unique index if not exists recovery_token_idx
  on auth.users using btree (recovery_token)
  where ((recovery_token)::text !~ '^[0-9 ]*$');
create unique index if not exists email_change_token_current_idx
  on auth.users using btree (email_change_token_current)
  where ((email_change_token_current)::text !~ '^[0-9 ]*$');
create unique index if not exists email_change_token_new_idx
  on auth.users using btree (email_change_token_new)
  where ((email_change_token_new)::text !~ '^[0-9 ]*$');
create unique index if not exists reauthentication_token_idx
  on auth.users using btree (reauthentication_token)
  where ((reauthentication_token)::text !~ '^[0-9 ]*$');

-- ---------------------------------------------------------------------------
-- auth.identities
-- ---------------------------------------------------------------------------

create table if not exists auth.identities (
  provider_id text not null,
  user_id uuid not null,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamp with time zone,
  created_at timestamp with time zone,
  updated_at timestamp with time zone,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid not null default gen_random_uuid(),
  constraint identities_pkey primary key (id),
  constraint identities_provider_id_provider_unique unique (provider_id, provider),
  constraint identities_user_id_fkey foreign key (user_id)
    references auth.users (id) on delete cascade
);

comment on table auth.identities is
  'Auth: Stores identities associated to a user.';
comment on column auth.identities.email is
  'Auth: Email is a generated column that references the optional email property in the identity_data';

create index if not exists identities_user_id_idx
  on auth.identities using btree (user_id);
create index if not exists identities_email_idx
  on auth.identities using btree (email text_pattern_ops);

-- ---------------------------------------------------------------------------
-- Row level security and privileges
-- ---------------------------------------------------------------------------

-- Supabase enables RLS on every auth table and defines no policy: the API
-- roles get no rows even if someone grants them the table.
alter table auth.users enable row level security;
alter table auth.identities enable row level security;

-- The API roles have no privileges on auth tables (anon/authenticated get
-- 42501). Nothing to grant; revoke in case a re-run found stray grants.
revoke all on table auth.users from public, anon, authenticated;
revoke all on table auth.identities from public, anon, authenticated;

-- DEVIATION from hosted Supabase, on purpose: there the Auth server manages
-- these tables through its own role (supabase_auth_admin) and service_role
-- has no table privileges in `auth`. Our local transport and workers stand in
-- for the Auth admin API with the service_role, so grant it DML here. Code
-- that must also run on hosted Supabase uses the Auth admin API instead.
grant select, insert, update, delete on table auth.users to service_role;
grant select, insert, update, delete on table auth.identities to service_role;

-- ---------------------------------------------------------------------------
-- Request helpers: the JWT claims PostgREST puts in `request.jwt.claims`
-- ---------------------------------------------------------------------------
-- Same definitions as Supabase Auth: the legacy per-claim settings
-- (`request.jwt.claim.sub`, PostgREST < 9) win, then the claims JSON. Empty
-- strings count as missing (a setting once set in a session reads '' after
-- its transaction ends).
-- Like Supabase's, they set no search_path: they call only pg_catalog, and a
-- SET clause would stop PostgreSQL inlining them into policies (on PG 15 it
-- re-plans the body on every call: ~15 us per request), so RLS timings here
-- would not match production.

create or replace function auth.uid()
returns uuid
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role()
returns text
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email()
returns text
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt()
returns jsonb
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

comment on function auth.uid() is
  'The requesting user''s id (the JWT "sub" claim) or NULL for anonymous requests. Use as (select auth.uid()) in policies.';
comment on function auth.role() is
  'The JWT "role" claim of the request: anon, authenticated or service_role. NULL outside a request.';
comment on function auth.email() is
  'The JWT "email" claim of the request, or NULL.';
comment on function auth.jwt() is
  'All JWT claims of the request as jsonb (sub, role, email, is_anonymous, app_metadata, user_metadata, aal, session_id, ...), or NULL.';

-- Callable from policies by every API role (PUBLIC keeps EXECUTE; explicit
-- for clarity, as Supabase does).
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;
