-- identity/library: definer helpers that take a user id or a limiter key no
-- longer act for someone else when an API role calls them.
-- Why: backup_store(p_owner), plan_of(p_user_id), document_limit(p_owner) and
-- rate_limit_take/enforce(p_key) were executable by authenticated (the limiter
-- by anon too) and trusted their arguments: any session running as
-- authenticated could overwrite and prune another user's backups, read another
-- user's plan, or fill another user's ai/import/jobs limiter window.
-- Callers that pass auth.uid() (the exposed RPCs, triggers) are unaffected;
-- service_role and the definer functions that call the limiter keep working.

create or replace function private.plan_of(p_user_id uuid) returns public.plans
language plpgsql stable security definer set search_path = ''
as $$
declare
  v public.plans;
begin
  if p_user_id is not null and current_setting('role', true) in ('anon', 'authenticated')
     and p_user_id is distinct from (select auth.uid()) then
    raise exception 'plan_of: not your user id' using errcode = '42501';
  end if;
  select pl.* into v from public.plans pl
   where pl.id = coalesce((select p.plan from public.profiles p where p.id = p_user_id), 'free');
  return v;
end;
$$;

create or replace function private.document_limit(p_owner uuid, p_kind text) returns integer
language plpgsql stable security definer set search_path = ''
as $$
begin
  if current_setting('role', true) in ('anon', 'authenticated') and p_owner is distinct from (select auth.uid()) then
    raise exception 'document_limit: not your user id' using errcode = '42501';
  end if;
  return (select coalesce(kl.max_documents, pl.documents_per_kind)
            from public.profiles p
            join public.plans pl on pl.id = p.plan
            left join public.document_kind_limits kl on kl.kind = p_kind and kl.plan = p.plan
           where p.id = p_owner);
end;
$$;

-- backup_store: the same guard before anything else (body otherwise unchanged).
create or replace function private.backup_store(
  p_owner uuid, p_ciphertext bytea, p_nonce bytea, p_kdf jsonb, p_if_version integer, p_restored_from integer
) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_plan public.plans;
  v_latest integer;
  b public.backups;
  v_pruned integer;
begin
  if p_owner is distinct from (select auth.uid()) and current_setting('role', true) in ('anon', 'authenticated') then
    raise exception 'backups are stored for the signed-in user only' using errcode = '42501';
  end if;
  if p_owner is null then
    raise exception 'backups need a signed-in user' using errcode = '42501';
  end if;
  if p_if_version is null or p_if_version < 0 then
    raise exception 'if_version is required: the version you last saw (0 for the first backup)'
      using errcode = '22023';
  end if;
  v_plan := private.plan_of(p_owner);
  if octet_length(p_ciphertext) > v_plan.backup_max_bytes then
    raise exception 'backup too large: % bytes (max % on plan %)', octet_length(p_ciphertext),
      v_plan.backup_max_bytes, v_plan.id using errcode = 'PT413', hint = 'Upgrade the plan for larger backups.';
  end if;
  if octet_length(p_ciphertext) = 0 then
    raise exception 'backup is empty' using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('backline.backups:' || p_owner, 0));
  select coalesce(max(x.version), 0) into v_latest from public.backups x where x.owner_id = p_owner;
  if v_latest <> p_if_version then
    raise exception 'backup changed: you expected version % but the latest is %', p_if_version, v_latest
      using errcode = 'PT409', hint = 'Download the latest backup, merge, and upload again with its version.';
  end if;
  insert into public.backups (owner_id, version, ciphertext, nonce, kdf, restored_from)
  values (p_owner, v_latest + 1, p_ciphertext, p_nonce, p_kdf, p_restored_from)
  returning * into b;
  with gone as (
    delete from public.backups x
     where x.owner_id = p_owner and x.version <= b.version - v_plan.backup_versions_kept
    returning 1)
  select count(*) into v_pruned from gone;
  return jsonb_build_object('version', b.version, 'size_bytes', b.size_bytes, 'created_at', b.created_at,
                            'pruned', v_pruned, 'kept', v_plan.backup_versions_kept);
end;
$$;

-- The limiter: only definer functions (running as their owner) call it; the
-- one invoker caller, import_local, goes through a self-only helper.
create function private.take_import_slot() returns void
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
begin
  perform private.rate_limit_enforce('import:' || v_uid, (private.plan_of(v_uid)).imports_per_hour, interval '1 hour');
end;
$$;
revoke execute on function private.take_import_slot() from public, anon;
grant execute on function private.take_import_slot() to authenticated;

-- import_local: the hourly import limit through the self-only helper (body otherwise unchanged).
create or replace function public.import_local(p_library jsonb) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_plan public.plans;
  v_kinds text[];
  v_done text[] := '{}';
  v_kind text;
  k public.document_kinds;
  v_map jsonb := '{}';
  v_errors jsonb := '[]';
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

  v_plan := private.plan_of(v_uid);
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

revoke execute on function private.rate_limit_take(text, integer, interval, integer) from anon, authenticated;
revoke execute on function private.rate_limit_enforce(text, integer, interval, integer) from anon, authenticated;
