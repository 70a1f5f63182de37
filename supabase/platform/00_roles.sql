-- Platform layer, part 0: roles, schemas and schema-level grants.
--
-- Hosted Supabase (and `supabase start`) ship these; plain PostgreSQL (the
-- embedded server, a CI service container) does not. Our migrations reference
-- them and must never create them, so this file recreates exactly what the
-- platform provides and nothing more. It is applied by the platform loader,
-- as a superuser, in one transaction together with the other files of this
-- directory, and only when `auth.users` is missing in the target database.
--
-- Roles are cluster-global while everything else here is per database: the
-- same cluster may provision several databases (tests, `backline db reset`),
-- possibly at the same time, so every role is created only if missing and a
-- concurrent creation by another transaction is tolerated.
--
-- What Supabase does (supabase/postgres init scripts):
--   anon           nologin noinherit            -- requests without a user
--   authenticated  nologin noinherit            -- requests with a user JWT
--   service_role   nologin noinherit bypassrls  -- the service key
--   authenticator  login noinherit, member of the three above; PostgREST,
--                  Storage and Realtime connect as it and `set role` per request.
-- Default privileges on `public` come in two flavours (DESIGN.md, "Platform
-- facts"): hosted projects since the 2026 change grant new `public` objects to
-- nobody (this file alone), while `supabase start`, self-hosted stacks and
-- older projects grant them ALL to the API roles
-- (flavours/legacy_default_privileges.sql, applied on top when
-- BACKLINE_DEFAULT_PRIVILEGES=legacy). Every migration must be safe on both.

-- ---------------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------------

-- Serialize role provisioning across the whole cluster: concurrent CREATE,
-- ALTER or GRANT on the same role from two databases' transactions fail with
-- "tuple concurrently updated" or a unique violation. pg_authid is a shared
-- catalog, so this lock (unlike an advisory lock, which is per database) is
-- cluster-wide. It is held until this transaction ends; it does not block
-- logins or reads, only other role DDL.
lock table pg_catalog.pg_authid in share row exclusive mode;

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
exception when duplicate_object or unique_violation then
  null; -- created concurrently by the provisioning of another database
end $$;

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
exception when duplicate_object or unique_violation then
  null;
end $$;

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
exception when duplicate_object or unique_violation then
  null;
end $$;

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
    -- No password: local connections use the cluster's own authentication.
    create role authenticator login noinherit;
  end if;
exception when duplicate_object or unique_violation then
  null;
end $$;

-- A role that already existed (an older provisioning, a hand-made cluster)
-- gets the attributes the platform guarantees; roles that already have them
-- are left untouched.
do $$
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'anon'
             and (rolcanlogin or rolinherit)) then
    alter role anon nologin noinherit;
  end if;
  if exists (select from pg_catalog.pg_roles where rolname = 'authenticated'
             and (rolcanlogin or rolinherit)) then
    alter role authenticated nologin noinherit;
  end if;
  if exists (select from pg_catalog.pg_roles where rolname = 'service_role'
             and (rolcanlogin or rolinherit or not rolbypassrls)) then
    alter role service_role nologin noinherit bypassrls;
  end if;
  if exists (select from pg_catalog.pg_roles where rolname = 'authenticator'
             and (not rolcanlogin or rolinherit)) then
    alter role authenticator login noinherit;
  end if;
end $$;

-- authenticator switches to the API roles with `set role`.
do $$
declare
  api_role text;
begin
  foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_catalog.pg_has_role('authenticator', api_role, 'member') then
      execute format('grant %I to authenticator', api_role);
    end if;
  end loop;
end $$;

-- ---------------------------------------------------------------------------
-- Schemas
-- ---------------------------------------------------------------------------

create schema if not exists extensions;
create schema if not exists auth;
create schema if not exists storage;
create schema if not exists realtime;

comment on schema extensions is
  'Platform: extensions live here (pg_trgm, citext, btree_gist, ...), never in public.';
comment on schema auth is
  'Platform: Supabase Auth users and the auth.uid() / auth.role() / auth.jwt() helpers.';
comment on schema storage is
  'Platform: Supabase Storage buckets and objects (rows only; bytes live in the Storage backend).';
comment on schema realtime is
  'Platform: Supabase Realtime broadcast/presence authorization (realtime.messages, realtime.topic()).';

-- ---------------------------------------------------------------------------
-- Schema privileges, as on hosted Supabase
-- ---------------------------------------------------------------------------

-- Nobody but the owner creates objects in public (PostgreSQL 15+ default,
-- repeated here so older-initialised clusters match).
revoke create on schema public from public;

grant usage on schema public to anon, authenticated, service_role;
grant usage on schema extensions to anon, authenticated, service_role;
-- auth: usage only, so policies can call auth.uid() etc.; its tables are not
-- granted to the API roles.
grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema storage to anon, authenticated, service_role;
grant usage on schema realtime to anon, authenticated, service_role;

-- Functions keep PostgreSQL's default (EXECUTE to PUBLIC). The default
-- privileges of the legacy flavour live in flavours/, applied only in that mode.
--
-- Also absent: a database-level search_path. On Supabase, PostgREST runs each
-- request with `search_path = public, extensions`, but a database setting
-- would not survive CREATE DATABASE ... TEMPLATE (test clones) and the
-- migrations qualify every name (extensions.citext, set search_path = '').
