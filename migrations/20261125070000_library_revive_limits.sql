-- library: plan limits also hold when a tombstoned document comes back.
-- Why: documents_check_limits runs only after INSERT, so clearing deleted_at
-- (PATCH documents, sync_push upsert, resolve_conflict keep_mine/merged)
-- revived documents past the plan's per-kind cap without any check.

create function private.documents_check_limits_on_revive() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  r record;
  v_limit integer;
  v_live integer;
begin
  for r in select n.owner_id, n.kind from new_rows n join old_rows o on o.id = n.id
            where o.deleted_at is not null and n.deleted_at is null
            group by 1, 2 order by 1, 2 loop
    perform pg_advisory_xact_lock(hashtextextended('backline.documents:' || r.owner_id || ':' || r.kind, 0));
    v_limit := private.document_limit(r.owner_id, r.kind);
    select count(*) into v_live from public.documents d
     where d.owner_id = r.owner_id and d.kind = r.kind and d.deleted_at is null;
    if v_limit is not null and v_live > v_limit then
      raise exception 'plan limit reached: at most % documents of kind % (you would have %)', v_limit, r.kind, v_live
        using errcode = 'PT403', hint = 'Delete some documents of this kind or upgrade your plan.';
    end if;
  end loop;
  return null;
end;
$$;
revoke execute on function private.documents_check_limits_on_revive() from public;

create trigger documents_check_limits_on_revive after update on public.documents
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.documents_check_limits_on_revive();
