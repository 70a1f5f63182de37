-- extensions: the Postgres extensions Backline relies on, in schema `extensions`.
-- Why: citext gives case-insensitive usernames; pg_trgm powers fuzzy search.
-- Both ship with hosted Supabase and with the embedded server. No pgcrypto:
-- use core gen_random_uuid() and sha256().

create schema if not exists extensions;
create extension if not exists citext with schema extensions;
create extension if not exists pg_trgm with schema extensions;
