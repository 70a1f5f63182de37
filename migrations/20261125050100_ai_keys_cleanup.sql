-- ai: cleanup of expired provider keys.
-- Why: "session only" keys must be gone when the user said so; the workers
-- issue discovers private.cleanup_* functions by name and runs them in batches.

create function private.cleanup_ai_keys(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql security definer set search_path = ''
as $$
begin
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'batch size must be >= 1' using errcode = '22023';
  end if;
  if coalesce(p_dry_run, true) then
    return query
      select format('ai key %s (%s, user %s) expired at %s', k.id, k.provider, k.user_id, k.expires_at)
        from public.ai_keys k
       where k.expires_at <= now()
       order by k.expires_at
       limit p_batch_size;
    return;
  end if;
  return query
    with doomed as (
      select k.id from public.ai_keys k
       where k.expires_at <= now()
       order by k.expires_at
       limit p_batch_size
       for update skip locked
    ), gone as (
      delete from public.ai_keys k using doomed d where k.id = d.id
      returning k.id, k.provider, k.user_id, k.expires_at
    )
    select format('ai key %s (%s, user %s) expired at %s', g.id, g.provider, g.user_id, g.expires_at)
      from gone g;
end;
$$;
revoke execute on function private.cleanup_ai_keys(integer, boolean) from public, anon, authenticated;
grant execute on function private.cleanup_ai_keys(integer, boolean) to service_role;

comment on function private.cleanup_ai_keys(integer, boolean) is
  'Delete (or list, dry run) at most p_batch_size expired AI keys; one line per key.';
