-- Platform flavour "legacy": the default privileges of `supabase start`,
-- self-hosted stacks built from the supabase/postgres image, and hosted
-- projects created before the 2026 change.
--
-- There, the init scripts run
--   alter default privileges in schema public grant all on tables|functions|sequences
--     to postgres, anon, authenticated, service_role
-- (for the admin role) and the same `for role postgres`, so every table,
-- sequence and function the migrating role creates in `public` starts out with
-- ALL for the three API roles: table-wide SELECT/INSERT/UPDATE/DELETE, TRUNCATE,
-- REFERENCES, TRIGGER, EXECUTE. RLS still filters rows, but column grants
-- and REVOKEs in migrations are what stand between a client and every column.
--
-- Applied by the platform loader after the other files of supabase/platform
-- when BACKLINE_DEFAULT_PRIVILEGES=legacy (the default). Our migrations run as
-- the role that applies this file, which on Supabase is `postgres`.
alter default privileges for role current_user in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role current_user in schema public
  grant all on sequences to anon, authenticated, service_role;
alter default privileges for role current_user in schema public
  grant all on functions to anon, authenticated, service_role;
