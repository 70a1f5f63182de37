-- identity: the append-only audit log.
-- Why: exports, deletions, plan changes and security events leave a trace a
-- user can read and no API role can rewrite. When an account is erased its
-- entries stay with user_id set to null (no personal data kept).

-- == tables ==
create table public.audit_log (
  id bigint generated always as identity primary key,
  user_id uuid references auth.users (id) on delete set null,
  action text not null check (action ~ '^[a-z][a-z0-9_.]{1,62}$'),
  details jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
  created_at timestamptz not null default now()
);
create index audit_log_user_id_created_at_idx on public.audit_log (user_id, created_at desc);

-- == functions (schema private: not exposed) ==
create function private.audit_log_is_append_only() returns trigger
language plpgsql set search_path = ''
as $$
begin
  -- The only change allowed is the foreign key's own "on delete set null".
  if tg_op = 'UPDATE' and old.user_id is not null and new.user_id is null
     and new.id = old.id and new.action = old.action and new.details = old.details
     and new.created_at = old.created_at then
    return new;
  end if;
  raise exception 'audit_log is append-only: % is not allowed', lower(tg_op)
    using errcode = '42501', hint = 'Audit entries are never changed or removed.';
end;
$$;
revoke execute on function private.audit_log_is_append_only() from public;

create trigger audit_log_append_only before update or delete on public.audit_log
  for each row execute function private.audit_log_is_append_only();

create function private.audit(p_user_id uuid, p_action text, p_details jsonb default '{}')
returns bigint
language sql security definer set search_path = ''
as $$
  insert into public.audit_log (user_id, action, details)
  values (p_user_id, p_action, coalesce(p_details, '{}'))
  returning id
$$;
revoke execute on function private.audit(uuid, text, jsonb) from public, anon, authenticated;
grant execute on function private.audit(uuid, text, jsonb) to service_role;

-- == grants and row level security ==
grant select on public.audit_log to authenticated;
grant select, insert on public.audit_log to service_role;
alter table public.audit_log enable row level security;

create policy "users read their own audit entries" on public.audit_log
  for select to authenticated using (user_id = (select auth.uid()));

-- == comments ==
comment on table public.audit_log is
  'Append-only record of security-relevant events. Users read their own entries; nobody edits them.';
comment on column public.audit_log.action is 'Dotted event name, e.g. export.requested, account.deleted.';
comment on column public.audit_log.details is 'Event data without secrets or personal data.';
comment on function private.audit(uuid, text, jsonb) is
  'Append an audit entry. Called by definer functions of other modules and by workers.';
