-- identity: claiming a merge ticket no longer turns triggers off with ALTER TABLE.
--
-- Why: private.merge_account_rows disabled documents_before_write and
-- room_elements_stamp (the triggers that refuse or revert an owner change) with
-- ALTER TABLE ... DISABLE TRIGGER inside the claim's transaction. ALTER TABLE takes
-- an ACCESS EXCLUSIVE lock, so every read and write of public.documents and
-- public.room_elements, by every user, waited until the claim committed; and on
-- hosted Supabase any DDL makes PostgREST reload its schema cache.
--
-- Now both triggers let the claim's own update through: they ask
-- private.account_merge_in_progress() (true only inside the transaction of a claim:
-- it reads private.account_merges, which no API role can write), and only when
-- the owner columns change, so other writes pay nothing. documents_before_write
-- gives a moved document a new version and change_xid (the permanent account's
-- next sync_pull returns it), as the claim used to set by hand.
-- room_elements_stamp is SECURITY INVOKER, so the API roles that update elements
-- may now execute account_merge_in_progress() (it only says whether the caller's
-- own transaction is a claim). private.merge_rules.bypass_trigger now names the
-- trigger that lets the claim through (documentation; nothing disables it).

-- == the two triggers ==
create or replace function private.documents_before_write() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_allow_public boolean;
  v_flag boolean;
  v_old_flag boolean;
begin
  if jsonb_typeof(new.body) = 'object' and jsonb_typeof(new.body -> 'isPublic') = 'boolean' then
    v_flag := (new.body -> 'isPublic')::boolean;
  end if;
  if tg_op = 'INSERT' then
    perform private.validate_document(new.kind, new.body);
    if v_flag is not null then
      new.visibility := case when v_flag then 'public'
                             when new.visibility = 'public' then 'private' else new.visibility end;
    end if;
    new.version := 1;
    new.change_xid := pg_current_xact_id();
    new.created_at := coalesce(new.created_at, now());
    new.updated_at := now();
  else
    if new.owner_id is distinct from old.owner_id or new.kind is distinct from old.kind then
      if new.kind is not distinct from old.kind and private.account_merge_in_progress() then
        -- Claiming a merge ticket hands the anonymous account's documents over: a new
        -- version, so the permanent account's next sync_pull returns them.
        new.version := old.version + 1;
        new.change_xid := pg_current_xact_id();
        new.updated_at := now();
        return new;
      end if;
      raise exception 'a document''s owner and kind never change' using errcode = '42501',
        hint = 'Create a new document instead (or fork it).';
    end if;
    if (new.title, new.body, new.visibility, new.deleted_at)
       is not distinct from (old.title, old.body, old.visibility, old.deleted_at) then
      new.version := old.version;
      new.change_xid := old.change_xid;
      new.updated_at := old.updated_at;
      return new;
    end if;
    if jsonb_typeof(old.body) = 'object' and jsonb_typeof(old.body -> 'isPublic') = 'boolean' then
      v_old_flag := (old.body -> 'isPublic')::boolean;
    end if;
    if v_flag is not null and v_flag is distinct from v_old_flag then
      if new.visibility is distinct from old.visibility and (new.visibility = 'public') <> v_flag then
        raise exception 'isPublic (%) and visibility (%) disagree', v_flag::text, new.visibility using errcode = '22023',
          hint = 'Change one of them: isPublic true means visibility public, false means private or unlisted.';
      end if;
      new.visibility := case when v_flag then 'public'
                             when new.visibility = 'public' then 'private' else new.visibility end;
    elsif v_flag is not null and new.visibility is distinct from old.visibility
          and (new.visibility = 'public') <> v_flag then
      new.body := jsonb_set(new.body, '{isPublic}', to_jsonb(new.visibility = 'public'));
    end if;
    if new.body is distinct from old.body then
      perform private.validate_document(new.kind, new.body);
    end if;
    new.version := old.version + 1;
    new.change_xid := pg_current_xact_id();
    new.updated_at := now();
  end if;
  if new.visibility = 'public' and (tg_op = 'INSERT' or old.visibility <> 'public') then
    select k.allow_public into v_allow_public from public.document_kinds k where k.id = new.kind;
    if not coalesce(v_allow_public, false) then
      raise exception 'documents of kind % cannot be public', new.kind using errcode = '22023',
        hint = 'Use visibility private or unlisted (share links) for this kind.';
    end if;
  end if;
  return new;
end;
$$;


create or replace function private.room_elements_stamp() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    new.created_by := coalesce((select auth.uid()), new.created_by);
    new.updated_by := new.created_by;
    new.version := 1;
    new.created_at := now();
  else
    -- An update made by another trigger is a foreign key action (updated_by or
    -- created_by set null when an account is erased): leave it as it is.
    if pg_trigger_depth() > 1 then
      return new;
    end if;
    -- Claiming a merge ticket hands the anonymous account's elements over (creator and last
    -- editor): the claim's own update passes as it is. Checked only when those columns change.
    if (new.created_by is distinct from old.created_by or new.updated_by is distinct from old.updated_by)
       and private.account_merge_in_progress() then
      return new;
    end if;
    if new.room_id <> old.room_id then
      raise exception 'an element cannot move to another room'
        using errcode = '22023', hint = 'Create a new element in the other room instead.';
    end if;
    new.created_by := old.created_by;
    new.created_at := old.created_at;
    new.updated_by := coalesce((select auth.uid()), new.updated_by);
    new.version := old.version + 1;
  end if;
  new.updated_at := now();
  return new;
end;
$$;


-- == the claim's row moves, without ALTER TABLE ==
create or replace function private.merge_account_rows(p_from uuid, p_to uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  r record;
  v_rule text;
  v_count bigint;
  v_moved jsonb := '{}'::jsonb;
  v_renamed jsonb := '[]'::jsonb;
  v_skipped jsonb := '[]'::jsonb;
  v_kept jsonb := '[]'::jsonb;
  v_merged jsonb := '[]'::jsonb;
  v_items jsonb;
  v_keys text[];
  v_match text;
  v_key_json text;
  v_from_profile public.profiles;
  v_to_profile public.profiles;
  v_max integer;
begin
  for r in
    select k.conrelid as rel, n.nspname::text as sch, c.relname::text as tbl, a.attname::text as col, a.attnum as num
      from pg_catalog.pg_constraint k
      join pg_catalog.pg_class c on c.oid = k.conrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
     where k.contype = 'f' and cardinality(k.conkey) = 1
       and k.confrelid in ('auth.users'::regclass, 'public.profiles'::regclass)
       and n.nspname <> 'auth'
     order by n.nspname, c.relname, a.attname
  loop
    select m.strategy into v_rule from private.merge_rules m
     where m.table_name = r.sch || '.' || r.tbl and m.column_name = r.col;
    if v_rule is null and exists (select 1 from pg_catalog.pg_index i
                                   where i.indrelid = r.rel and i.indisunique and r.num = any(i.indkey)) then
      raise exception 'merge cannot move %.%.%: it is part of a unique key and has no merge rule', r.sch, r.tbl, r.col
        using errcode = 'P0001',
              hint = 'Operators: add a row to private.merge_rules (by migration) saying how collisions are resolved.';
    end if;

    if v_rule = 'keep' then
      execute format('select count(*) from %I.%I where %I = $1', r.sch, r.tbl, r.col) into v_count using p_from;
      if v_count > 0 then
        v_kept := v_kept || jsonb_build_object('table', r.sch || '.' || r.tbl, 'rows', v_count,
          'reason', (select m.why from private.merge_rules m where m.table_name = r.sch || '.' || r.tbl
                       and m.column_name = r.col));
      end if;
      continue;
    elsif v_rule = 'merge_profile' then
      select * into v_from_profile from public.profiles p where p.id = p_from for update;
      select * into v_to_profile from public.profiles p where p.id = p_to for update;
      if v_from_profile.id is not null and v_to_profile.id is not null then
        if v_from_profile.username is not null then
          update public.profiles p set username = null where p.id = p_from;
          if v_to_profile.username is null then
            update public.profiles p set username = v_from_profile.username where p.id = p_to;
            v_renamed := v_renamed || jsonb_build_object('table', 'public.profiles', 'field', 'username',
              'from', null, 'to', v_from_profile.username::text, 'reason', 'moved: the permanent account had none');
          else
            v_skipped := v_skipped || jsonb_build_object('table', 'public.profiles', 'field', 'username',
              'value', v_from_profile.username::text,
              'reason', 'the permanent account keeps its own username ' || v_to_profile.username::text);
          end if;
        end if;
        update public.profiles p
           set display_name = coalesce(p.display_name, v_from_profile.display_name),
               avatar_url = coalesce(p.avatar_url, v_from_profile.avatar_url),
               bio = coalesce(p.bio, v_from_profile.bio)
         where p.id = p_to;
        update public.profiles p set display_name = null, avatar_url = null, bio = null where p.id = p_from;
        v_moved := v_moved || jsonb_build_object('public.profiles', 1);
      end if;
      continue;
    elsif v_rule = 'rename_local_id' then
      with clash as (
        select a.id, a.local_id from public.documents a
         where a.owner_id = p_from and a.local_id is not null
           and exists (select 1 from public.documents b
                        where b.owner_id = p_to and b.kind = a.kind and b.local_id = a.local_id)
      ), renamed as (
        update public.documents d set local_id = left(c.local_id, 180) || '~merged-' || left(p_from::text, 8)
          from clash c where d.id = c.id
        returning d.id, c.local_id as old_local_id, d.local_id as new_local_id
      )
      select coalesce(jsonb_agg(jsonb_build_object('table', 'public.documents', 'id', x.id, 'field', 'local_id',
               'from', x.old_local_id, 'to', x.new_local_id,
               'reason', 'the permanent account already has this local id for this kind') order by x.id), '[]'::jsonb)
        into v_items from renamed x;
      v_renamed := v_renamed || v_items;
      -- documents_before_write refuses any owner change (a client must never
      -- hand a document over) except inside a claim (account_merge_in_progress),
      -- where it gives each moved document a new version and change_xid, so the
      -- permanent account's next sync_pull sees every moved document.
      update public.documents d set owner_id = p_to where d.owner_id = p_from;
      get diagnostics v_count = row_count;
      if v_count > 0 then
        v_moved := v_moved || jsonb_build_object('public.documents', v_count);
      end if;
      continue;
    elsif v_rule = 'renumber_versions' then
      select coalesce(max(b.version), 0) into v_max from public.backups b where b.owner_id = p_to;
      with moved as (
        select b.id, b.version, v_max + row_number() over (order by b.version) as new_version
          from public.backups b where b.owner_id = p_from
      ), done as (
        update public.backups b set owner_id = p_to, version = m.new_version::integer
          from moved m where b.id = m.id
        returning b.id, m.version as old_version, b.version as new_version
      )
      select coalesce(jsonb_agg(jsonb_build_object('table', 'public.backups', 'id', x.id, 'field', 'version',
               'from', x.old_version, 'to', x.new_version,
               'reason', 'versions continue after the permanent account''s newest backup') order by x.new_version)
               filter (where x.old_version <> x.new_version), '[]'::jsonb),
             count(*)
        into v_items, v_count from done x;
      v_renamed := v_renamed || v_items;
      if v_count > 0 then
        v_moved := v_moved || jsonb_build_object('public.backups', v_count);
      end if;
      continue;
    elsif v_rule = 'stronger_role' then
      -- Drop the anonymous membership first (one owner per room), then give
      -- the permanent membership the stronger of the two roles.
      with gone as (
        delete from public.room_members a
         where a.user_id = p_from
           and exists (select 1 from public.room_members p where p.user_id = p_to and p.room_id = a.room_id)
        returning a.room_id, a.role
      )
      select coalesce(jsonb_agg(jsonb_build_object('table', 'public.room_members', 'key',
               jsonb_build_object('room_id', g.room_id), 'role', g.role,
               'reason', 'both accounts were members of this room: the stronger role is kept') order by g.room_id),
               '[]'::jsonb)
        into v_items from gone g;
      update public.room_members p set role = x.role
        from jsonb_to_recordset(v_items) as x(key jsonb, role text)
       where p.user_id = p_to and p.room_id = (x.key ->> 'room_id')::uuid
         and array_position(array['viewer', 'editor', 'owner'], x.role)
             > array_position(array['viewer', 'editor', 'owner'], p.role);
      v_merged := v_merged || v_items;
    elsif v_rule = 'add_amounts' then
      update private.ai_budget_months p
         set spent_usd = p.spent_usd + a.spent_usd, reserved_usd = p.reserved_usd + a.reserved_usd
        from private.ai_budget_months a
       where a.user_id = p_from and p.user_id = p_to and p.month = a.month;
      with gone as (
        delete from private.ai_budget_months a
         where a.user_id = p_from
           and exists (select 1 from private.ai_budget_months p where p.user_id = p_to and p.month = a.month)
        returning a.month
      )
      select coalesce(jsonb_agg(jsonb_build_object('table', 'private.ai_budget_months', 'key',
               jsonb_build_object('month', g.month),
               'reason', 'amounts added to the permanent account''s row for the same month') order by g.month),
               '[]'::jsonb)
        into v_items from gone g;
      v_merged := v_merged || v_items;
    elsif v_rule = 'permanent_wins' then
      -- Every unique key holding the column: drop the anonymous row that would collide.
      for v_keys in
        select array(select att.attname::text from unnest(i.indkey) with ordinality u(attnum, ord)
                       join pg_catalog.pg_attribute att on att.attrelid = i.indrelid and att.attnum = u.attnum
                      where u.attnum <> r.num order by u.ord)
          from pg_catalog.pg_index i
         where i.indrelid = r.rel and i.indisunique and r.num = any(i.indkey) and i.indpred is null
      loop
        v_match := coalesce((select string_agg(format('b.%1$I is not distinct from a.%1$I', k), ' and ')
                               from unnest(v_keys) k), 'true');
        v_key_json := coalesce((select string_agg(format('%1$L, a.%1$I', k), ', ') from unnest(v_keys) k), '');
        execute format(
          'with gone as (delete from %1$I.%2$I a where a.%3$I = $1 and exists '
          '(select 1 from %1$I.%2$I b where b.%3$I = $2 and %4$s) returning jsonb_build_object(%5$s) as k) '
          'select coalesce(jsonb_agg(jsonb_build_object(''table'', %6$L, ''key'', g.k, ''reason'', %7$L)), ''[]''::jsonb) '
          'from gone g',
          r.sch, r.tbl, r.col, v_match, v_key_json, r.sch || '.' || r.tbl,
          'the permanent account already has this row: its own is kept')
          into v_items using p_from, p_to;
        v_skipped := v_skipped || v_items;
      end loop;
    end if;

    execute format('update %I.%I set %I = $2 where %I = $1', r.sch, r.tbl, r.col, r.col) using p_from, p_to;
    get diagnostics v_count = row_count;
    if v_count > 0 then
      v_moved := v_moved || jsonb_build_object(r.sch || '.' || r.tbl,
        coalesce((v_moved ->> (r.sch || '.' || r.tbl))::bigint, 0) + v_count);
    end if;
  end loop;
  return jsonb_build_object('moved', v_moved, 'renamed', v_renamed, 'skipped', v_skipped, 'kept', v_kept,
                            'merged', v_merged);
end;
$$;

grant execute on function private.account_merge_in_progress() to authenticated, service_role;

comment on column private.merge_rules.bypass_trigger is
  'The trigger of the table that refuses or reverts a change of the column for everyone else and lets the claim''s own update through (it checks private.account_merge_in_progress()).';
