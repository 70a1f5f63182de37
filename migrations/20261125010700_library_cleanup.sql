-- library: cleanups run by the workers' cron (discovered by name).
-- Why: expired or revoked share links, tombstoned documents and resolved
-- sync conflicts pile up; each cleanup deletes at most p_batch_size rows (or,
-- dry run, only lists them) and returns one readable line per item.
-- Retention: tombstones 30 days (clients that have not synced for longer
-- than that must pull from scratch), resolved conflicts and push receipts 30
-- days, share links 7 days after they expired or were revoked.

create function private.cleanup_share_links(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql volatile security definer set search_path = ''
as $$
begin
  return query
  with doomed as (
    select s.id, s.document_id, s.expires_at, s.revoked_at from public.share_links s
     where (s.revoked_at is not null and s.revoked_at < now() - interval '7 days')
        or (s.expires_at is not null and s.expires_at < now() - interval '7 days')
     order by s.created_at limit greatest(p_batch_size, 0)
  ), gone as (
    delete from public.share_links s using doomed d where s.id = d.id and not p_dry_run returning s.id
  )
  select format('share link %s of document %s (%s)', d.id, d.document_id,
                case when d.revoked_at is not null then 'revoked ' || d.revoked_at::date
                     else 'expired ' || d.expires_at::date end)
    from doomed d where p_dry_run or d.id in (select g.id from gone g);
end;
$$;

create function private.cleanup_tombstones(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql volatile security definer set search_path = ''
as $$
begin
  return query
  with doomed as (
    select d.id, d.kind, d.owner_id, d.deleted_at from public.documents d
     where d.deleted_at is not null and d.deleted_at < now() - interval '30 days'
     order by d.deleted_at limit greatest(p_batch_size, 0)
  ), gone as (
    delete from public.documents x using doomed d where x.id = d.id and not p_dry_run returning x.id
  )
  select format('%s document %s of user %s (deleted %s)', d.kind, d.id, d.owner_id, d.deleted_at::date)
    from doomed d where p_dry_run or d.id in (select g.id from gone g);
end;
$$;

create function private.cleanup_sync_conflicts(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_left integer := greatest(p_batch_size, 0);
begin
  return query
  with doomed as (
    select c.id, c.document_id, c.resolution, c.resolved_at from public.sync_conflicts c
     where c.status = 'resolved' and c.resolved_at < now() - interval '30 days'
     order by c.resolved_at limit v_left
  ), gone as (
    delete from public.sync_conflicts x using doomed d where x.id = d.id and not p_dry_run returning x.id
  )
  select format('sync conflict %s on document %s (%s %s)', d.id, d.document_id, d.resolution, d.resolved_at::date)
    from doomed d where p_dry_run or d.id in (select g.id from gone g);
  get diagnostics v_left = row_count;
  v_left := greatest(p_batch_size, 0) - v_left;
  return query
  with doomed as (
    select r.owner_id, r.change_id, r.created_at from public.sync_receipts r
     where r.created_at < now() - interval '30 days' order by r.created_at limit v_left
  ), gone as (
    delete from public.sync_receipts x using doomed d
     where x.owner_id = d.owner_id and x.change_id = d.change_id and not p_dry_run returning x.change_id
  )
  select format('sync push receipt %s of user %s (%s)', d.change_id, d.owner_id, d.created_at::date)
    from doomed d where p_dry_run or d.change_id in (select g.change_id from gone g);
end;
$$;

revoke execute on function private.cleanup_share_links(integer, boolean),
  private.cleanup_tombstones(integer, boolean), private.cleanup_sync_conflicts(integer, boolean) from public;
grant execute on function private.cleanup_share_links(integer, boolean),
  private.cleanup_tombstones(integer, boolean), private.cleanup_sync_conflicts(integer, boolean) to service_role;

comment on function private.cleanup_share_links(integer, boolean) is
  'Delete share links revoked or expired more than 7 days ago (at most p_batch_size; dry run lists only).';
comment on function private.cleanup_tombstones(integer, boolean) is
  'Delete documents tombstoned more than 30 days ago (at most p_batch_size; dry run lists only).';
comment on function private.cleanup_sync_conflicts(integer, boolean) is
  'Delete sync conflicts resolved more than 30 days ago, then push receipts older than 30 days (at most p_batch_size in all).';
