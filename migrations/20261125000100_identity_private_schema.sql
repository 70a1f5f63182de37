-- identity: the `private` schema and shared trigger helpers.
-- Why: SECURITY DEFINER helpers must live in a schema the Data API does not
-- expose. Roles may USE the schema (policies call its functions) but it is
-- never listed in PostgREST's exposed schemas.

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to anon, authenticated, service_role;

comment on schema private is
  'Backline helpers (security definer functions, internal tables). Never exposed through the Data API.';

-- == functions ==
create function private.set_updated_at() returns trigger
language plpgsql set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke execute on function private.set_updated_at() from public;

comment on function private.set_updated_at() is
  'Trigger: keeps updated_at at the time of the last change.';
