-- library: sync conflicts are recorded by the database only. Adds
-- private.sync_record_conflict(); public.sync_push() records through it;
-- clients lose INSERT on public.sync_conflicts.
-- Why: a conflict row keeps the server's copy (server_version, server_title,
-- server_body) next to the client's. While sync_push ran the INSERT as the
-- caller, any client could store a "conflict" claiming whatever server copy it
-- liked, and a later resolve_conflict(keep_theirs) would act on it. Now the
-- server copy is read by the database from the document itself, and the
-- client's side is checked like any body (the kind's validator, size, depth)
-- before it is stored. sync_push is otherwise unchanged (its latest
-- definition, 20261206090410_security_id_oracles).

-- == functions (schema private: not exposed) ==
create function private.sync_record_conflict(
  p_document_id uuid, p_change_id text, p_strategy text, p_base_version integer,
  p_client_title text, p_client_body jsonb, p_client_deleted boolean
) returns uuid
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d public.documents;
  v_id uuid;
begin
  if p_strategy is null or p_strategy not in ('server_wins', 'client_wins', 'manual') then
    raise exception 'unknown conflict strategy: %', p_strategy using errcode = '22023';
  end if;
  if p_change_id is null or length(p_change_id) not between 1 and 100 then
    raise exception 'change_id must be 1-100 characters' using errcode = '22023';
  end if;
  select * into d from public.documents
   where id = p_document_id and owner_id = (select auth.uid());
  if not found then
    raise exception 'document % is not in your library', p_document_id using errcode = 'PT404';
  end if;
  if p_client_title is not null and length(p_client_title) > 200 then
    raise exception 'title must be at most 200 characters' using errcode = '22023';
  end if;
  if p_client_body is not null and not coalesce(p_client_deleted, false) then
    perform private.validate_document(d.kind, p_client_body);
  end if;
  insert into public.sync_conflicts (owner_id, document_id, change_id, strategy, base_version,
    client_title, client_body, client_deleted, server_version, server_title, server_body, server_deleted,
    status, resolution, resolved_at)
  values (d.owner_id, d.id, p_change_id, p_strategy, p_base_version,
    p_client_title, p_client_body, coalesce(p_client_deleted, false),
    d.version, d.title, d.body, d.deleted_at is not null,
    case when p_strategy = 'client_wins' then 'resolved' else 'open' end,
    case when p_strategy = 'client_wins' then 'client_wins' end,
    case when p_strategy = 'client_wins' then now() end)
  returning id into v_id;
  return v_id;
end;
$$;
revoke execute on function private.sync_record_conflict(uuid, text, text, integer, text, jsonb, boolean)
  from public, anon, authenticated, service_role;
-- authenticated: sync_push runs as the caller and records through it.
grant execute on function private.sync_record_conflict(uuid, text, text, integer, text, jsonb, boolean)
  to authenticated;

-- == sync_push: records conflicts through the helper ==
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

-- == grants and row level security ==
revoke insert on table public.sync_conflicts from anon, authenticated;
drop policy "owners record conflicts of their own documents" on public.sync_conflicts;

-- == comments ==
comment on function private.sync_record_conflict(uuid, text, text, integer, text, jsonb, boolean) is
  'Record a sync conflict on one of the caller''s documents with the server copy read from the document.';
