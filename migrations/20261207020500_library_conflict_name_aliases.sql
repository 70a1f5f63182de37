-- library: the collection tracker's names for conflict handling.
--
-- Why (issue #13 item 2): the tracker names its conflict resolutions
-- local_wins, remote_wins and manual; Backline's are client_wins/server_wins/
-- manual (sync_push strategies) and keep_mine/keep_theirs/merged
-- (resolve_conflict). Both sets are accepted; the tracker's names are aliases,
-- normalised on entry, so sync_conflicts stores (and sync answers report)
-- one set of names:
--   sync_push p_strategy:        local_wins = client_wins, remote_wins = server_wins, manual = manual
--   resolve_conflict resolution: local_wins = keep_mine, remote_wins = keep_theirs, manual = merged
--
-- Redefines public.sync_push (latest: 20261206120000_library_lint_explicit_casts.sql)
-- and public.resolve_conflict (latest: 20261125010200_library_sync.sql); only
-- the name normalisation and the messages changed.

create or replace function public.sync_push(p_changes jsonb, p_strategy text default 'server_wins')
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
  v_results jsonb[] := '{}'::jsonb[];
  d public.documents;
  v_conflict uuid;
  v_receipts jsonb;
  v_dups text[];
  v_dup_results jsonb := '{}'::jsonb;
  v_new_ids text[] := '{}'::text[];
  v_new_results jsonb[] := '{}'::jsonb[];
begin
  if v_uid is null then
    raise exception 'sync needs a signed-in user' using errcode = '42501', hint = 'Sign in (anonymously is fine).';
  end if;
  -- The collection tracker's names: local_wins (the client's copy) and
  -- remote_wins (the server's copy); stored under the canonical names.
  p_strategy := case p_strategy when 'local_wins' then 'client_wins' when 'remote_wins' then 'server_wins'
                                else p_strategy end;
  if p_strategy is null or p_strategy not in ('server_wins', 'client_wins', 'manual') then
    raise exception 'unknown conflict strategy: %', p_strategy using errcode = '22023',
      hint = 'Use server_wins (default; alias remote_wins), client_wins (alias local_wins) or manual.';
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
          -- Not in the caller's library: someone else's id and an unused id get the same answer.
          if v_op = 'delete' then
            v_result := v_result || jsonb_build_object('status', 'applied', 'version', null, 'note', 'already absent');
          elsif v_base is not null then
            raise exception 'document % is not in your library', v_id using errcode = 'PT404',
              hint = 'base_version is for documents you synced before. To create a document send base_version null.';
          else
            begin
              insert into public.documents (id, owner_id, kind, title, body, visibility)
              values (v_id, v_uid, c ->> 'kind', coalesce(c ->> 'title', ''), coalesce(c -> 'body', '{}'),
                      coalesce(c ->> 'visibility', 'private'))
              returning * into d;
            exception when unique_violation then
              raise exception 'document id % cannot be used for a new document', v_id using errcode = '23505',
                hint = 'Generate a new random id (uuid v4) for every new document.';
            end;
            v_result := v_result || jsonb_build_object('status', 'applied', 'version', d.version);
          end if;
        else
          v_conflict := private.sync_record_conflict(v_id, v_change_id, p_strategy, v_base,
            c ->> 'title', c -> 'body', v_op = 'delete');
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

create or replace function public.resolve_conflict(
  p_conflict_id uuid, p_resolution text, p_body jsonb default null, p_title text default null
) returns public.documents
language plpgsql volatile set search_path = ''
as $$
declare
  k public.sync_conflicts;
  d public.documents;
begin
  -- The collection tracker's names: local_wins, remote_wins, manual (the user's
  -- merge); stored under the canonical names.
  p_resolution := case p_resolution when 'local_wins' then 'keep_mine' when 'remote_wins' then 'keep_theirs'
                                    when 'manual' then 'merged' else p_resolution end;
  if p_resolution is null or p_resolution not in ('keep_mine', 'keep_theirs', 'merged') then
    raise exception 'resolution must be keep_mine (alias local_wins), keep_theirs (alias remote_wins) or merged (alias manual)'
      using errcode = '22023';
  end if;
  if p_resolution = 'merged' and p_body is null then
    raise exception 'a merged (manual) resolution needs the merged body' using errcode = '22023',
      hint = 'Pass p_body: the document body the user chose.';
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

comment on function public.resolve_conflict(uuid, text, jsonb, text) is
  'Resolve an open conflict: keep_mine / local_wins (apply the client copy), keep_theirs / remote_wins (keep the '
  'server), merged / manual (apply p_body).';
comment on function public.sync_push(jsonb, text) is
  'Apply [{change_id, id, kind, op: upsert|delete, base_version, title, body, visibility}] each atomically. '
  'A new document: base_version null and a new random id; an id that is taken is rejected (23505). '
  'An update of a document not in your library is rejected (PT404); a delete of one is applied (already absent). '
  'Strategy server_wins / remote_wins (default: conflict kept, server copy returned), client_wins / local_wins '
  '(client applied, server copy kept), manual (conflict kept for resolve_conflict). '
  'Returns {results: [{change_id, id, status, version, conflict_id, server}]}.';
