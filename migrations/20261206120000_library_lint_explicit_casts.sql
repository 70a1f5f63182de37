-- Library RPCs pass `supabase db lint --level warning` (issue #15 item 5).
--
-- Supabase's linter (plpgsql_check) warns when a variable is initialised from a
-- text literal without an explicit cast ("target type is different type than
-- source type": text -> jsonb, jsonb[], text[], uuid) and when a variable is
-- never read. Each function below is its latest definition, unchanged except:
--   import_local  '{}'/'[]' initialisers cast explicitly; the never-read v_plan
--                 and its assignment removed (private.plan_of(auth.uid()) only
--                 read the caller's plan and cannot fail for the caller).
--                 From 20261125010400_library_import.sql.
--   sync_push     initialisers cast explicitly. From
--                 20261206091100_library_sync_conflicts_recorded_by_the_database.sql.
--   sync_pull     the zero uuid cast explicitly. From 20261125010200_library_sync.sql.
-- `create or replace` keeps each function's grants and comment.

create or replace function public.import_local(p_library jsonb) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_kinds text[];
  v_done text[] := '{}'::text[];
  v_kind text;
  k public.document_kinds;
  v_map jsonb := '{}'::jsonb;
  v_errors jsonb := '[]'::jsonb;
  v_created integer := 0;
  v_existing integer := 0;
  v_total integer := 0;
  v_seen text[];
  v_dups text[];
  v_rows jsonb;
  v_batch jsonb[];
  v_new jsonb;
  v_n integer;
  v_room integer;
  v_limit integer;
  v_valid integer;
  rec jsonb;
  v_local text;
  v_body jsonb;
  v_progress boolean;
begin
  if v_uid is null then
    raise exception 'import needs a signed-in user' using errcode = '42501', hint = 'Sign in (anonymously is fine).';
  end if;
  if jsonb_typeof(p_library) is distinct from 'object' then
    raise exception 'library must be a JSON object {kind: [records]}' using errcode = '22023',
      hint = 'Example: {"loop": [{"local_id": "l1", "title": "Intro", "body": {...}}]}';
  end if;
  select array_agg(key order by key) into v_kinds from jsonb_object_keys(p_library) key;
  for v_kind in select unnest(coalesce(v_kinds, '{}')) loop
    if not exists (select 1 from public.document_kinds dk where dk.id = v_kind) then
      raise exception 'unknown document kind: %', v_kind using errcode = '22023',
        hint = 'Use the kinds in public.document_kinds.';
    end if;
    if jsonb_typeof(p_library -> v_kind) <> 'array' then
      raise exception 'library.% must be an array of records', v_kind using errcode = '22023';
    end if;
    v_total := v_total + jsonb_array_length(p_library -> v_kind);
  end loop;
  if v_total > 20000 then
    raise exception 'too many records in one import: % (max 20000)', v_total using errcode = '22023',
      hint = 'Split the library into several imports.';
  end if;

  perform private.take_import_slot();

  -- Kinds whose references point only at kinds already imported (or absent) go first.
  while coalesce(array_length(v_done, 1), 0) < coalesce(array_length(v_kinds, 1), 0) loop
    v_progress := false;
    for v_kind in select unnest(v_kinds) except select unnest(v_done) order by 1 loop
      select * into k from public.document_kinds dk where dk.id = v_kind;
      if exists (select 1 from jsonb_array_elements(k.refs) ref
                  where ref ->> 'kind' <> v_kind and ref ->> 'kind' = any (v_kinds)
                    and not (ref ->> 'kind' = any (v_done))) then
        continue;
      end if;
      v_progress := true;
      v_done := v_done || v_kind;
      v_map := jsonb_set(v_map, array[v_kind], '{}');

      -- Already imported earlier: map, do not create.
      select coalesce(jsonb_object_agg(d.local_id, d.id), '{}') into v_rows
        from public.documents d
       where d.owner_id = v_uid and d.kind = v_kind and d.local_id in (
         select e ->> 'local_id' from jsonb_array_elements(p_library -> v_kind) e);
      v_map := jsonb_set(v_map, array[v_kind], v_rows);

      v_batch := '{}';
      v_seen := '{}';
      select coalesce(array_agg(l), '{}') into v_dups from (
        select e ->> 'local_id' l from jsonb_array_elements(p_library -> v_kind) e
         group by 1 having count(*) > 1) dup;
      for rec in select value from jsonb_array_elements(p_library -> v_kind) loop
        v_local := rec ->> 'local_id';
        begin
          if jsonb_typeof(rec) <> 'object' or v_local is null or length(v_local) not between 1 and 200 then
            raise exception 'every record needs a local_id of 1-200 characters' using errcode = '22023';
          end if;
          if v_local = any (v_dups) then
            if v_local = any (v_seen) then
              raise exception 'local_id % appears twice', v_local using errcode = '22023';
            end if;
            v_seen := v_seen || v_local;
          end if;
          if v_map -> v_kind ? v_local then
            v_existing := v_existing + 1;
            continue;
          end if;
          v_body := private.library_rewrite_refs(coalesce(rec -> 'body', '{}'), k.refs, v_map);
          perform private.validate_document(v_kind, v_body);
          if coalesce(rec ->> 'visibility', 'private') not in ('private', 'unlisted', 'public')
             or (rec ->> 'visibility' = 'public' and not k.allow_public) then
            raise exception 'visibility % is not allowed for kind %', rec ->> 'visibility', v_kind
              using errcode = '22023';
          end if;
          if length(coalesce(rec ->> 'title', '')) > 200 then
            raise exception 'title longer than 200 characters' using errcode = '22023';
          end if;
          v_batch := v_batch || jsonb_build_object(
            'local_id', v_local, 'title', coalesce(rec ->> 'title', ''), 'body', v_body,
            'visibility', coalesce(rec ->> 'visibility', 'private'));
        exception when others then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object(
            'kind', v_kind, 'local_id', v_local, 'code', sqlstate, 'error', sqlerrm));
        end;
      end loop;

      -- Plan limit: store what fits, report the rest.
      v_rows := to_jsonb(v_batch);
      v_valid := jsonb_array_length(v_rows);
      if v_valid > 0 then
        v_limit := private.document_limit(v_uid, v_kind);
        select v_limit - count(*) into v_room from public.documents d
         where d.owner_id = v_uid and d.kind = v_kind and d.deleted_at is null;
        if v_limit is not null and v_valid > greatest(v_room, 0) then
          select v_errors || coalesce(jsonb_agg(jsonb_build_object('kind', v_kind, 'local_id', e ->> 'local_id',
                   'code', 'PT403', 'error', format('plan limit reached: at most %s documents of kind %s', v_limit, v_kind))), '[]')
            into v_errors
            from jsonb_array_elements(v_rows) with ordinality t(e, ord) where ord > greatest(v_room, 0);
          select coalesce(jsonb_agg(e order by ord), '[]') into v_rows
            from jsonb_array_elements(v_rows) with ordinality t(e, ord) where ord <= greatest(v_room, 0);
        end if;
        with ins as (
          insert into public.documents (owner_id, kind, title, body, visibility, local_id)
          select v_uid, v_kind, x.title, x.body, x.visibility, x.local_id
            from jsonb_to_recordset(v_rows) as x(local_id text, title text, body jsonb, visibility text)
          returning id, local_id
        )
        select coalesce(jsonb_object_agg(ins.local_id, ins.id), '{}'), count(*) into v_new, v_n from ins;
        v_map := jsonb_set(v_map, array[v_kind], (v_map -> v_kind) || v_new);
        v_created := v_created + v_n;
      end if;
    end loop;
    if not v_progress then
      raise exception 'document kinds reference each other in a cycle: %', v_kinds using errcode = '22023';
    end if;
  end loop;

  return jsonb_build_object('mapping', v_map, 'created', v_created, 'existing', v_existing,
                            'failed', jsonb_array_length(v_errors), 'errors', v_errors);
end;
$$;

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

create or replace function public.sync_pull(p_cursor text default null, p_limit integer default 500)
returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_watermark xid8 := pg_snapshot_xmin(pg_current_snapshot());
  v_xid xid8 := '0'::xid8;
  v_id uuid := '00000000-0000-0000-0000-000000000000'::uuid;
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
