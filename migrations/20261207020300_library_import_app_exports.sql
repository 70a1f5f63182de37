-- library: import_local takes the sketchpad's own export and leaves no
-- reference dangling.
--
-- Why (issue #13 item 2):
-- * the sketchpad exports `{"loops": [...], "songs": [...]}`: each loop and
--   song is its body plus its local `id` (and timestamps). import_local took
--   only the generic `{kind: [{local_id, title, body, visibility}]}`, so the
--   app had to reshape its own export first. Now a library with `loops` or
--   `songs` is read as that export (private.library_from_sketchpad_export):
--   `id` becomes local_id, `name` the title, the record minus id/createdAt/
--   updatedAt the body (isPublic then decides visibility). Other keys whose
--   value is a scalar (e.g. version, exportedAt) are ignored as export
--   metadata; any other collection is refused (22023).
-- * a reference is rewritten when it is a local id of the import; a value
--   that was not in the import but looked like a uuid was kept as it was, so a
--   song whose loop failed to import (or was never sent) pointed at nothing
--   when the app uses uuids as local ids. Now such a uuid must be a live
--   document of the referenced kind in the caller's own library; otherwise the
--   record is reported failed ("references loop …, which is neither in this
--   import nor in your library") and not stored. Only the caller's own
--   documents are looked at, so this tells nothing about anyone else's ids.
--   A song's loopId (and old-shape loop_id) is rewritten through the refs of
--   kind song (migration 20261207020100).
--
-- Adds private.library_from_sketchpad_export(jsonb); redefines
-- private.library_map_ref and private.library_rewrite_refs (latest:
-- 20261125010400_library_import.sql; now stable, as map_ref reads the
-- caller's documents) and public.import_local (latest:
-- 20261206120000_library_lint_explicit_casts.sql; only the export detection
-- and its message changed).

-- == functions (schema private: not exposed) ==
create function private.library_from_sketchpad_export(p_export jsonb) returns jsonb
language plpgsql immutable set search_path = ''
as $$
declare
  v_key text;
  v_kind text;
  v_library jsonb := '{}'::jsonb;
begin
  for v_key in select k from jsonb_object_keys(p_export) k order by k loop
    v_kind := case v_key when 'loops' then 'loop' when 'songs' then 'song' end;
    if v_kind is null then
      if jsonb_typeof(p_export -> v_key) in ('array', 'object') then
        raise exception 'a sketchpad export holds loops and songs, not %', v_key using errcode = '22023',
          hint = 'Send {"loops": [...], "songs": [...]}, or the generic {kind: [records]} shape.';
      end if;
      continue;
    end if;
    if jsonb_typeof(p_export -> v_key) is distinct from 'array' then
      raise exception 'export.% must be an array of %', v_key, v_key using errcode = '22023';
    end if;
    v_library := v_library || jsonb_build_object(v_kind, (
      select coalesce(jsonb_agg(case when jsonb_typeof(r) = 'object' then
               jsonb_build_object('local_id', r -> 'id',
                                  'title', case when jsonb_typeof(r -> 'name') = 'string'
                                                then left(r ->> 'name', 200) else '' end,
                                  'body', r - array['id', 'createdAt', 'updatedAt'])
               else r end order by ord), '[]'::jsonb)
        from jsonb_array_elements(p_export -> v_key) with ordinality t(r, ord)));
  end loop;
  return v_library;
end;
$$;
revoke execute on function private.library_from_sketchpad_export(jsonb) from public, anon, authenticated, service_role;
grant execute on function private.library_from_sketchpad_export(jsonb) to authenticated, service_role;

-- Latest definition: 20261125010400_library_import.sql. A uuid that is not a
-- local id of the import must be one of the caller's live documents of p_kind.
create or replace function private.library_map_ref(p_value jsonb, p_kind text, p_map jsonb) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  if p_value is null or p_value = 'null'::jsonb then
    return p_value;
  end if;
  if jsonb_typeof(p_value) in ('string', 'number') and p_map -> p_kind ? (p_value #>> '{}') then
    return p_map -> p_kind -> (p_value #>> '{}');
  end if;
  if private.library_is_uuid(p_value) then
    if exists (select 1 from public.documents d
                where d.id = (p_value #>> '{}')::uuid and d.owner_id = (select auth.uid())
                  and d.kind = p_kind and d.deleted_at is null) then
      return p_value;
    end if;
    raise exception 'references % %, which is neither in this import nor in your library', p_kind, p_value #>> '{}'
      using errcode = '22023', hint = 'Include the referenced document in the import (or import it first).';
  end if;
  raise exception 'references unknown % %', p_kind, p_value #>> '{}' using errcode = '22023',
    hint = 'Include the referenced document in the import (or import it first).';
end;
$$;

-- Latest definition: 20261125010400_library_import.sql. Unchanged but for
-- stable (it calls library_map_ref, which reads documents now).
create or replace function private.library_rewrite_refs(p_body jsonb, p_refs jsonb, p_map jsonb) returns jsonb
language plpgsql stable set search_path = ''
as $$
declare
  r jsonb;
  v_body jsonb := p_body;
begin
  if jsonb_typeof(v_body) <> 'object' then
    return v_body;
  end if;
  for r in select value from jsonb_array_elements(p_refs) loop
    if r ? 'array' then
      if jsonb_typeof(v_body -> (r ->> 'array')) = 'array' then
        v_body := jsonb_set(v_body, array[r ->> 'array'], (
          select coalesce(jsonb_agg(case
                   when jsonb_typeof(e) = 'object' and e ? (r ->> 'field')
                   then jsonb_set(e, array[r ->> 'field'],
                                  private.library_map_ref(e -> (r ->> 'field'), r ->> 'kind', p_map))
                   else e end order by ord), '[]'::jsonb)
            from jsonb_array_elements(v_body -> (r ->> 'array')) with ordinality as t(e, ord)));
      end if;
    elsif v_body ? (r ->> 'field') then
      v_body := jsonb_set(v_body, array[r ->> 'field'],
                          private.library_map_ref(v_body -> (r ->> 'field'), r ->> 'kind', p_map));
    end if;
  end loop;
  return v_body;
end;
$$;

-- == RPC ==
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
    raise exception 'library must be a JSON object {kind: [records]} or a sketchpad export {loops, songs}'
      using errcode = '22023',
      hint = 'Example: {"loop": [{"local_id": "l1", "title": "Intro", "body": {...}}]} or {"loops": [...], "songs": [...]}';
  end if;
  if p_library ? 'loops' or p_library ? 'songs' then
    p_library := private.library_from_sketchpad_export(p_library);
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
          v_body := private.library_rewrite_refs(coalesce(rec -> 'body', '{}'::jsonb), k.refs, v_map);
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

comment on function private.library_from_sketchpad_export(jsonb) is
  'import_local: the sketchpad''s export {loops, songs} as the generic {loop: [{local_id, title, body}], song: [...]} '
  '(id -> local_id, name -> title, the record minus id/createdAt/updatedAt -> body).';
comment on function public.import_local(jsonb) is
  'Import a local library {kind: [{local_id, title, body, visibility}]}, or the sketchpad''s own export '
  '{loops: [...], songs: [...]}, in one call. Returns '
  '{mapping: {kind: {local_id: uuid}}, created, existing, failed, errors: [{kind, local_id, code, error}]}. '
  'References listed in document_kinds.refs are rewritten to the new ids; a record whose reference is neither '
  'in the import nor one of your documents fails. Re-running creates nothing new. '
  'Limited to plans.imports_per_hour calls per hour (HTTP 429 beyond).';
