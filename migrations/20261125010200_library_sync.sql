-- library: sync for local-first clients (pull by cursor, push with base versions).
-- Why: a client keeps its library offline and syncs when it can.
-- sync_pull never skips a change: every change records the transaction that
-- made it (documents.change_xid = pg_current_xact_id()), and a pull returns
-- only changes of transactions older than the oldest transaction still
-- running (pg_snapshot_xmin of the current snapshot). A transaction that
-- started early and commits late therefore cannot land "behind" a cursor:
-- its changes are held back until it is finished, then returned.
-- sync_push applies each change atomically with its base version; a stale
-- base version is a conflict whose losing side is kept in sync_conflicts
-- (nothing lost). Client change ids make retried pushes apply once.

-- == tables ==
create table public.sync_conflicts (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  document_id uuid not null references public.documents (id) on delete cascade,
  change_id text not null,
  strategy text not null constraint sync_conflicts_strategy_valid
    check (strategy in ('server_wins', 'client_wins', 'manual')),
  base_version integer,
  client_title text,
  client_body jsonb,
  client_deleted boolean not null default false,
  server_version integer not null,
  server_title text not null,
  server_body jsonb not null,
  server_deleted boolean not null default false,
  status text not null default 'open' constraint sync_conflicts_status_valid check (status in ('open', 'resolved')),
  resolution text constraint sync_conflicts_resolution_valid
    check (resolution in ('keep_mine', 'keep_theirs', 'merged', 'client_wins')),
  created_at timestamptz not null default now(),
  resolved_at timestamptz,
  constraint sync_conflicts_resolved_has_resolution check ((status = 'resolved') = (resolution is not null))
);
create index sync_conflicts_owner_id_status_idx on public.sync_conflicts (owner_id, status, created_at);
create index sync_conflicts_document_id_idx on public.sync_conflicts (document_id);
create index sync_conflicts_resolved_at_idx on public.sync_conflicts (resolved_at) where status = 'resolved';

create table public.sync_receipts (
  owner_id uuid not null references auth.users (id) on delete cascade,
  change_id text not null constraint sync_receipts_change_id_length check (length(change_id) between 1 and 100),
  result jsonb not null,
  created_at timestamptz not null default now(),
  primary key (owner_id, change_id)
);
create index sync_receipts_created_at_idx on public.sync_receipts (created_at);

-- == RPCs (public, security invoker) ==

-- Cursor text: '<xid>:<document id>' (position of the last change returned).
create function public.sync_pull(p_cursor text default null, p_limit integer default 500)
returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_watermark xid8 := pg_snapshot_xmin(pg_current_snapshot());
  v_xid xid8 := '0'::xid8;
  v_id uuid := '00000000-0000-0000-0000-000000000000';
  v_rows jsonb;
  v_count integer;
  v_last record;
  v_next text;
begin
  if v_uid is null then
    raise exception 'sync needs a signed-in user' using errcode = '42501', hint = 'Sign in (anonymously is fine).';
  end if;
  if p_limit is null or p_limit < 1 or p_limit > 10000 then
    raise exception 'limit must be between 1 and 10000, got %', p_limit using errcode = '22023';
  end if;
  if p_cursor is not null and p_cursor <> '' then
    if p_cursor !~ '^[0-9]{1,20}:[0-9a-f-]{36}$' then
      raise exception 'malformed sync cursor: %', left(p_cursor, 80) using errcode = '22023',
        hint = 'Pass the cursor returned by the previous sync_pull, or null to start over.';
    end if;
    v_xid := split_part(p_cursor, ':', 1)::xid8;
    v_id := split_part(p_cursor, ':', 2)::uuid;
  end if;

  with page as (
    select d.* from public.documents d
     where d.owner_id = v_uid
       and (d.change_xid, d.id) > (v_xid, v_id)
       and d.change_xid < v_watermark
     order by d.change_xid, d.id
     limit p_limit + 1
  ), numbered as (
    select p.*, row_number() over (order by p.change_xid, p.id) as n from page p
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', n.id, 'kind', n.kind, 'title', n.title, 'body', n.body, 'visibility', n.visibility,
           'version', n.version, 'deleted', n.deleted_at is not null, 'deleted_at', n.deleted_at,
           'forked_from', n.forked_from, 'local_id', n.local_id, 'updated_at', n.updated_at)
           order by n.change_xid, n.id) filter (where n.n <= p_limit), '[]'),
         count(*)
    into v_rows, v_count
    from numbered n;

  if v_count > p_limit then
    select d.change_xid, d.id into v_last from public.documents d
     where d.id = (v_rows -> (p_limit - 1) ->> 'id')::uuid;
    v_next := v_last.change_xid::text || ':' || v_last.id::text;
  elsif v_watermark > v_xid then
    -- Everything before the watermark has been returned: continue from it.
    v_next := v_watermark::text || ':00000000-0000-0000-0000-000000000000';
  else
    v_next := v_xid::text || ':' || v_id::text;
  end if;

  return jsonb_build_object('changes', v_rows, 'cursor', v_next, 'hasMore', v_count > p_limit);
end;
$$;
revoke execute on function public.sync_pull(text, integer) from public, anon;
grant execute on function public.sync_pull(text, integer) to authenticated;

create function public.sync_push(p_changes jsonb, p_strategy text default 'server_wins')
returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  c jsonb;
  v_change_id text;
  v_id uuid;
  v_op text;
  v_base integer;
  v_prior jsonb;
  v_result jsonb;
  v_results jsonb[] := '{}';
  d public.documents;
  v_conflict uuid;
  v_receipts jsonb;
  v_dups text[];
  v_dup_results jsonb := '{}';
  v_new_ids text[] := '{}';
  v_new_results jsonb[] := '{}';
begin
  if v_uid is null then
    raise exception 'sync needs a signed-in user' using errcode = '42501', hint = 'Sign in (anonymously is fine).';
  end if;
  if p_strategy is null or p_strategy not in ('server_wins', 'client_wins', 'manual') then
    raise exception 'unknown conflict strategy: %', p_strategy using errcode = '22023',
      hint = 'Use server_wins (default), client_wins or manual.';
  end if;
  if jsonb_typeof(p_changes) is distinct from 'array' or jsonb_array_length(p_changes) > 5000 then
    raise exception 'changes must be a JSON array of at most 5000 changes' using errcode = '22023';
  end if;
  -- Results of change ids applied before (retries), in one query; ids repeated within this batch.
  select coalesce(jsonb_object_agg(r.change_id, r.result), '{}') into v_receipts
    from public.sync_receipts r
   where r.owner_id = v_uid and r.change_id in (select e ->> 'change_id' from jsonb_array_elements(p_changes) e);
  select coalesce(array_agg(x.id), '{}') into v_dups from (
    select e ->> 'change_id' as id from jsonb_array_elements(p_changes) e group by 1 having count(*) > 1) x;

  for c in select value from jsonb_array_elements(p_changes) loop
    v_change_id := c ->> 'change_id';
    v_result := jsonb_build_object('change_id', v_change_id, 'id', c ->> 'id');
    begin
      if v_change_id is null or length(v_change_id) not between 1 and 100 then
        raise exception 'change_id must be 1-100 characters' using errcode = '22023';
      end if;
      v_prior := coalesce(v_receipts -> v_change_id, v_dup_results -> v_change_id);
      if v_prior is not null then
        v_results := v_results || (v_prior || jsonb_build_object('duplicate', true));
        continue;
      end if;
      v_id := (c ->> 'id')::uuid;
      if v_id is null then
        raise exception 'every change needs the document id' using errcode = '22023';
      end if;
      v_op := coalesce(c ->> 'op', 'upsert');
      if v_op not in ('upsert', 'delete') then
        raise exception 'op must be upsert or delete, got %', v_op using errcode = '22023';
      end if;
      v_base := (c ->> 'base_version')::integer;

      -- Happy path first: one statement applies a change whose base version matches.
      if v_base is not null then
        update public.documents
           set title = case when v_op = 'delete' then title else coalesce(c ->> 'title', title) end,
               body = case when v_op = 'delete' then body else coalesce(c -> 'body', body) end,
               visibility = case when v_op = 'delete' then visibility else coalesce(c ->> 'visibility', visibility) end,
               deleted_at = case when v_op = 'delete' then coalesce(deleted_at, now()) else null end
         where id = v_id and owner_id = v_uid and version = v_base
        returning * into d;
      end if;
      if v_base is not null and found then
        v_result := v_result || jsonb_build_object('status', 'applied', 'version', d.version);
      else
        select * into d from public.documents where id = v_id and owner_id = v_uid for update;
        if not found then
          if v_op = 'delete' then
            v_result := v_result || jsonb_build_object('status', 'applied', 'version', null, 'note', 'already absent');
          else
            insert into public.documents (id, owner_id, kind, title, body, visibility)
            values (v_id, v_uid, c ->> 'kind', coalesce(c ->> 'title', ''), coalesce(c -> 'body', '{}'),
                    coalesce(c ->> 'visibility', 'private'))
            returning * into d;
            v_result := v_result || jsonb_build_object('status', 'applied', 'version', d.version);
          end if;
        else
          insert into public.sync_conflicts (owner_id, document_id, change_id, strategy, base_version,
            client_title, client_body, client_deleted, server_version, server_title, server_body, server_deleted,
            status, resolution, resolved_at)
          values (v_uid, v_id, v_change_id, p_strategy, v_base,
            c ->> 'title', c -> 'body', v_op = 'delete', d.version, d.title, d.body, d.deleted_at is not null,
            case when p_strategy = 'client_wins' then 'resolved' else 'open' end,
            case when p_strategy = 'client_wins' then 'client_wins' end,
            case when p_strategy = 'client_wins' then now() end)
          returning id into v_conflict;
          if p_strategy = 'client_wins' then
            update public.documents
               set title = case when v_op = 'delete' then title else coalesce(c ->> 'title', title) end,
                   body = case when v_op = 'delete' then body else coalesce(c -> 'body', body) end,
                   visibility = case when v_op = 'delete' then visibility else coalesce(c ->> 'visibility', visibility) end,
                   deleted_at = case when v_op = 'delete' then coalesce(deleted_at, now()) else null end
             where id = v_id
            returning * into d;
            v_result := v_result || jsonb_build_object('status', 'applied', 'version', d.version,
              'conflict_id', v_conflict, 'note', 'server copy kept in sync_conflicts');
          else
            v_result := v_result || jsonb_build_object(
              'status', case when p_strategy = 'manual' then 'needs_resolution' else 'conflict' end,
              'conflict_id', v_conflict,
              'server', jsonb_build_object('version', d.version, 'title', d.title, 'body', d.body,
                                           'visibility', d.visibility, 'deleted', d.deleted_at is not null));
          end if;
        end if;
      end if;
      v_new_ids := v_new_ids || v_change_id;
      v_new_results := v_new_results || v_result;
      if v_change_id = any (v_dups) then
        v_dup_results := v_dup_results || jsonb_build_object(v_change_id, v_result);
      end if;
    exception when others then
      v_result := v_result || jsonb_build_object('status', 'rejected', 'code', sqlstate, 'error', sqlerrm);
    end;
    v_results := v_results || v_result;
  end loop;
  -- Receipts in one statement. A concurrent retry of the same change id fails
  -- here on the primary key and its whole call rolls back: applied once.
  insert into public.sync_receipts (owner_id, change_id, result)
  select v_uid, t.id, t.result from unnest(v_new_ids, v_new_results) as t(id, result);
  return jsonb_build_object('results', to_jsonb(v_results));
end;
$$;
revoke execute on function public.sync_push(jsonb, text) from public, anon;
grant execute on function public.sync_push(jsonb, text) to authenticated;

create function public.resolve_conflict(
  p_conflict_id uuid, p_resolution text, p_body jsonb default null, p_title text default null
) returns public.documents
language plpgsql volatile set search_path = ''
as $$
declare
  k public.sync_conflicts;
  d public.documents;
begin
  if p_resolution is null or p_resolution not in ('keep_mine', 'keep_theirs', 'merged') then
    raise exception 'resolution must be keep_mine, keep_theirs or merged' using errcode = '22023';
  end if;
  if p_resolution = 'merged' and p_body is null then
    raise exception 'a merged resolution needs the merged body' using errcode = '22023';
  end if;
  select * into k from public.sync_conflicts
   where id = p_conflict_id and owner_id = (select auth.uid()) and status = 'open' for update;
  if not found then
    raise exception 'open conflict % not found', p_conflict_id using errcode = 'PT404',
      hint = 'It may be resolved already, or belong to someone else.';
  end if;
  if p_resolution = 'keep_mine' then
    update public.documents
       set title = coalesce(k.client_title, title), body = coalesce(k.client_body, body),
           deleted_at = case when k.client_deleted then coalesce(deleted_at, now()) else null end
     where id = k.document_id returning * into d;
  elsif p_resolution = 'merged' then
    update public.documents set title = coalesce(p_title, title), body = p_body, deleted_at = null
     where id = k.document_id returning * into d;
  else
    select * into d from public.documents where id = k.document_id;
  end if;
  update public.sync_conflicts set status = 'resolved', resolution = p_resolution, resolved_at = now()
   where id = k.id;
  return d;
end;
$$;
revoke execute on function public.resolve_conflict(uuid, text, jsonb, text) from public, anon;
grant execute on function public.resolve_conflict(uuid, text, jsonb, text) to authenticated;

-- == grants and row level security ==
grant select, insert on public.sync_conflicts to authenticated;
grant update (status, resolution, resolved_at) on public.sync_conflicts to authenticated;
grant select, insert, update, delete on public.sync_conflicts to service_role;
alter table public.sync_conflicts enable row level security;

create policy "owners read their conflicts" on public.sync_conflicts
  for select to authenticated using (owner_id = (select auth.uid()));
create policy "owners record their conflicts" on public.sync_conflicts
  for insert to authenticated with check (owner_id = (select auth.uid()));
create policy "owners resolve their conflicts" on public.sync_conflicts
  for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));

grant select, insert on public.sync_receipts to authenticated;
grant select, insert, update, delete on public.sync_receipts to service_role;
alter table public.sync_receipts enable row level security;

create policy "owners read their push receipts" on public.sync_receipts
  for select to authenticated using (owner_id = (select auth.uid()));
create policy "owners record their push receipts" on public.sync_receipts
  for insert to authenticated with check (owner_id = (select auth.uid()));

-- == comments ==
comment on table public.sync_conflicts is
  'Both sides of every sync conflict: the client''s change and the server copy it collided with. '
  'Open conflicts are resolved with rpc resolve_conflict (keep_mine / keep_theirs / merged).';
comment on table public.sync_receipts is
  'One row per applied client change id: a retried sync_push returns the stored result instead of applying twice.';
comment on function public.sync_pull(text, integer) is
  'Changes (tombstones included) to your documents after cursor, oldest first: {changes, cursor, hasMore}. '
  'Pass null to start; keep calling with the returned cursor while hasMore.';
comment on function public.sync_push(jsonb, text) is
  'Apply [{change_id, id, kind, op: upsert|delete, base_version, title, body, visibility}] each atomically. '
  'Strategy server_wins (default: conflict kept, server copy returned), client_wins (client applied, server copy kept), '
  'manual (conflict kept for resolve_conflict). Returns {results: [{change_id, id, status, version, conflict_id, server}]}.';
comment on function public.resolve_conflict(uuid, text, jsonb, text) is
  'Resolve an open conflict: keep_mine (apply the client copy), keep_theirs (keep the server), merged (apply p_body).';
