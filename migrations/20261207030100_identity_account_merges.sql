-- identity: merge an anonymous account into a permanent one (the hard case of linking).
-- Adds private.merge_tickets, private.account_merges, private.merge_rules,
-- public.create_merge_ticket() / public.claim_merge_ticket(ticket) (with their
-- private definer bodies), private.account_merge_in_progress(),
-- private.merge_adopt_object() and private.account_merge_finish() for the
-- worker, and the job kind 'account_merge_files'.
--
-- Why (issue #13): converting an anonymous user keeps its id (updateUser /
-- linkIdentity), but when the identity already belongs to another account the
-- client signs in to that account and the anonymous user's data would be
-- stranded, then erased after 90 days. The client holds both sessions, so it
-- proves both: as the anonymous user it creates a one-time ticket (10 minutes;
-- only its sha256 is stored), as the permanent user it claims it.
--
-- What moves: every row of every table (outside auth; private included) with
-- a single-column foreign key to auth.users(id) or public.profiles(id) naming
-- the anonymous user, found from the catalog at claim time (the same rule as
-- export and erasure, workers/export/catalog.py), so a new owned table is
-- picked up without a change here. A table whose user column is part of a
-- unique key cannot be moved blindly (two rows would collide): it needs a rule
-- in private.merge_rules, and without one the claim refuses (nothing changes)
-- naming the table; the merge test seeds a row in every owned table and fails
-- the same way.
-- Collisions (reported to the caller, nothing silently lost):
--   documents local ids: the anonymous copy's local_id gets a '~merged-<id8>'
--     suffix (renamed); usernames: moved only when the permanent account has
--     none (else skipped); display name, avatar, bio: filled where empty;
--   backups: versions renumbered after the permanent account's newest;
--   room memberships in the same room: the stronger role is kept;
--   receipts, consents, duplicate reports: the permanent account's row wins
--     (skipped); AI budget months: amounts added up;
--   per-plan row caps and per-kind document limits: rows are kept even past
--     the permanent plan's cap (like a downgrade: only new rows are refused),
--     and the report lists every limit now exceeded;
--   storage quota: files are moved while they fit the permanent plan
--     (smallest first); the rest stay in the anonymous account, reported as
--     skipped, and that account is then not deleted.
-- Files: SQL cannot move bytes. The claim enqueues an 'account_merge_files'
-- job (workers/identity/merge_files.py) that copies each object through the
-- storage transport (local directory or the Storage API, as the service role)
-- to the same path under the permanent user's folder, makes the permanent
-- user its owner and re-points file_links (private.merge_adopt_object), removes
-- the original, and finally deletes the emptied anonymous auth user through the
-- Auth admin API (private.account_merge_finish says whether it is empty).
-- Audit: 'account.merged' (claim) and 'account.merge_files_moved' (job) in
-- public.audit_log for the permanent user, naming the anonymous id.

-- == tables ==
-- No foreign key to auth.users on purpose: tickets and merges are not user
-- data (export/erasure find user data by such keys); the functions check that
-- the users exist.
create table private.merge_tickets (
  id uuid primary key default gen_random_uuid(),
  anonymous_id uuid not null,
  token_hash bytea not null constraint merge_tickets_token_hash_key unique,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  claimed_at timestamptz,
  claimed_by uuid
);
create index merge_tickets_anonymous_id_idx on private.merge_tickets (anonymous_id);
create index merge_tickets_expires_at_idx on private.merge_tickets (expires_at);

create table private.account_merges (
  id uuid primary key default gen_random_uuid(),
  anonymous_id uuid not null,
  permanent_id uuid not null,
  merge_xact xid8 not null default pg_current_xact_id(),
  files_job_id uuid,
  report jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);
create index account_merges_merge_xact_idx on private.account_merges (merge_xact);
create index account_merges_anonymous_id_idx on private.account_merges (anonymous_id);

-- How a user column whose table has a unique key containing it is merged
-- (strategy), and which trigger of the table refuses or reverts a change of
-- the column by design (bypass_trigger: disabled for the claim's own update
-- only; ALTER TABLE is transactional and locks the table until the claim ends).
create table private.merge_rules (
  table_name text not null,
  column_name text not null,
  strategy text not null constraint merge_rules_strategy_known check (strategy in
    ('reassign', 'keep', 'merge_profile', 'rename_local_id', 'renumber_versions', 'stronger_role', 'add_amounts',
     'permanent_wins')),
  bypass_trigger text,
  why text not null constraint merge_rules_why_length check (length(why) between 1 and 400),
  primary key (table_name, column_name)
);

insert into private.merge_rules (table_name, column_name, strategy, bypass_trigger, why) values
  ('public.room_elements', 'created_by', 'reassign', 'room_elements_stamp',
   'The stamp trigger pins the creator against clients; the merge hands the creator over.'),
  ('public.room_elements', 'updated_by', 'reassign', 'room_elements_stamp',
   'The stamp trigger sets the last editor to the caller; the merge hands the last editor over.'),
  ('public.audit_log', 'user_id', 'keep', null,
   'History is never rewritten (append-only); the merge''s own entry names both accounts.'),
  ('public.profiles', 'id', 'merge_profile', null,
   'One profile per account: empty fields of the permanent profile are filled, a username moves only when the '
   'permanent account has none.'),
  ('public.documents', 'owner_id', 'rename_local_id', 'documents_before_write',
   'Local ids are unique per owner and kind: a colliding anonymous copy keeps its data under a suffixed local id.'),
  ('public.backups', 'owner_id', 'renumber_versions', null,
   'Versions are unique per owner: the anonymous backups continue after the permanent account''s newest.'),
  ('public.room_members', 'user_id', 'stronger_role', null,
   'One membership per room: when both accounts are members the stronger role is kept.'),
  ('private.ai_budget_months', 'user_id', 'add_amounts', null,
   'One budget row per month: the amounts spent and reserved are added up.'),
  ('public.sync_receipts', 'owner_id', 'permanent_wins', null,
   'A receipt per change id: the permanent account''s receipt for the same change id is kept.'),
  ('public.privacy_consents', 'user_id', 'permanent_wins', null,
   'The permanent account''s own consent decision is kept; the anonymous one moves only when it has none.'),
  ('public.abuse_reports', 'reporter_id', 'permanent_wins', null,
   'One report per document and reporter: the permanent account''s report is kept.');

-- == functions (schema private: not exposed) ==
-- True inside the transaction of a claim: the row-cap owner-change trigger
-- lets merged rows past the cap (reported instead). Clients cannot write
-- private.account_merges, so they cannot fake it.
create function private.account_merge_in_progress() returns boolean
language sql stable security definer set search_path = ''
as $$ select exists (select 1 from private.account_merges m where m.merge_xact = pg_current_xact_id()) $$;
revoke execute on function private.account_merge_in_progress() from public, anon, authenticated, service_role;

create function private.create_merge_ticket() returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  v_token text;
  v_expires timestamptz := now() + interval '10 minutes';
begin
  if v_uid is null then
    raise exception 'sign in (anonymously) to create a merge ticket' using errcode = '42501';
  end if;
  if not coalesce((select (auth.jwt() ->> 'is_anonymous')::boolean), false)
     or not exists (select 1 from auth.users u where u.id = v_uid and u.is_anonymous) then
    raise exception 'only an anonymous account can create a merge ticket'
      using errcode = '42501',
            hint = 'A permanent account adds sign-in methods with linkIdentity; merge tickets move an anonymous '
                   'account''s data into a permanent one.';
  end if;
  perform private.rate_limit_enforce('merge_tickets:' || v_uid, 10, interval '1 hour', 1);
  delete from private.merge_tickets t
   where t.anonymous_id = v_uid and t.claimed_at is null;
  delete from private.merge_tickets t
   where t.id in (select x.id from private.merge_tickets x where x.expires_at < now() - interval '1 day' limit 100);
  v_token := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  insert into private.merge_tickets (anonymous_id, token_hash, expires_at)
  values (v_uid, sha256(convert_to(v_token, 'UTF8')), v_expires);
  return jsonb_build_object('ticket', v_token, 'expires_at', v_expires);
end;
$$;
revoke execute on function private.create_merge_ticket() from public, anon, authenticated, service_role;
grant execute on function private.create_merge_ticket() to authenticated;

-- Everything of p_from moved to p_to (see the header); returns the report.
-- Called only by private.claim_merge_ticket after its checks.
create function private.merge_account_rows(p_from uuid, p_to uuid) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  r record;
  v_rule text;
  v_bypass text;
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
    select m.strategy, m.bypass_trigger into v_rule, v_bypass from private.merge_rules m
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
      -- hand a document over). Only this transaction sees the trigger off
      -- (ALTER TABLE is transactional; its lock holds writers of documents
      -- until the claim commits); what it maintains is set here instead, so
      -- the permanent account's next sync_pull sees every moved document.
      execute format('alter table public.documents disable trigger %I', v_bypass);
      update public.documents d
         set owner_id = p_to, version = d.version + 1, change_xid = pg_current_xact_id(), updated_at = now()
       where d.owner_id = p_from;
      get diagnostics v_count = row_count;
      execute format('alter table public.documents enable trigger %I', v_bypass);
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

    if v_bypass is not null then
      execute format('alter table %I.%I disable trigger %I', r.sch, r.tbl, v_bypass);
    end if;
    execute format('update %I.%I set %I = $2 where %I = $1', r.sch, r.tbl, r.col, r.col) using p_from, p_to;
    get diagnostics v_count = row_count;
    if v_bypass is not null then
      execute format('alter table %I.%I enable trigger %I', r.sch, r.tbl, v_bypass);
    end if;
    if v_count > 0 then
      v_moved := v_moved || jsonb_build_object(r.sch || '.' || r.tbl,
        coalesce((v_moved ->> (r.sch || '.' || r.tbl))::bigint, 0) + v_count);
    end if;
  end loop;
  return jsonb_build_object('moved', v_moved, 'renamed', v_renamed, 'skipped', v_skipped, 'kept', v_kept,
                            'merged', v_merged);
end;
$$;
revoke execute on function private.merge_account_rows(uuid, uuid) from public, anon, authenticated, service_role;

-- Limits the permanent account now exceeds (kept, reported): row caps and
-- per-kind document limits of its plan.
create function private.merge_limits_exceeded(p_user uuid) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  t record;
  v_plan text;
  v_count bigint;
  v_out jsonb := '[]'::jsonb;
begin
  select coalesce(p.plan, 'free') into v_plan from public.profiles p where p.id = p_user;
  v_plan := coalesce(v_plan, 'free');
  for t in
    select c.table_name, c.owner_column, c.counted_rows, c.noun, c.hint,
           (select x.max_rows from public.plan_row_caps x
             where x.table_name = c.table_name and x.plan in (v_plan, 'free')
             order by (x.plan = v_plan) desc limit 1) as max_rows
      from private.row_cap_tables c order by c.table_name
  loop
    continue when t.max_rows is null;
    execute format('select count(*) from public.%I x where x.%I = $1 and (%s)',
                   t.table_name, t.owner_column, coalesce(t.counted_rows, 'true'))
      into v_count using p_user;
    if v_count > t.max_rows then
      v_out := v_out || jsonb_build_object('limit', 'public.' || t.table_name, 'count', v_count, 'max', t.max_rows,
        'reason', format('kept past the %s plan''s cap of %s %s: new ones are refused until you are below it',
                         v_plan, t.max_rows, t.noun),
        'hint', t.hint);
    end if;
  end loop;
  for t in
    select d.kind, count(*) as n from public.documents d
     where d.owner_id = p_user and d.deleted_at is null group by d.kind order by d.kind
  loop
    v_count := private.document_limit(p_user, t.kind);
    if v_count is not null and t.n > v_count then
      v_out := v_out || jsonb_build_object('limit', 'documents of kind ' || t.kind, 'count', t.n, 'max', v_count,
        'reason', 'kept past the plan''s per-kind limit: new ones are refused until you are below it',
        'hint', 'Delete some documents of this kind or upgrade your plan.');
    end if;
  end loop;
  return v_out;
end;
$$;
revoke execute on function private.merge_limits_exceeded(uuid) from public, anon, authenticated, service_role;

-- The anonymous user's files and where each goes: paths under its folder move
-- to the same path under the permanent user's folder (suffixed when taken);
-- other paths (room images) keep their path and only change owner. Files that
-- do not fit the permanent plan's storage (smallest first) stay, reported.
create function private.merge_plan_files(p_from uuid, p_to uuid) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  o record;
  v_free bigint;
  v_to text;
  v_move jsonb := '[]'::jsonb;
  v_skip jsonb := '[]'::jsonb;
  v_renamed jsonb := '[]'::jsonb;
  v_bytes bigint := 0;
begin
  select greatest(pl.storage_bytes - p.storage_used, 0) into v_free
    from public.profiles p join public.plans pl on pl.id = p.plan where p.id = p_to;
  v_free := coalesce(v_free, 0);
  for o in
    select s.bucket_id, s.name, private.object_size(s.metadata) as size,
           coalesce(s.metadata ->> 'mimetype', 'application/octet-stream') as mimetype,
           (storage.foldername(s.name))[1] = p_from::text as in_folder
      from storage.objects s
     where s.owner_id = p_from::text or (storage.foldername(s.name))[1] = p_from::text
     order by private.object_size(s.metadata), s.bucket_id, s.name
  loop
    if o.size > v_free then
      v_skip := v_skip || jsonb_build_object('table', 'storage.objects', 'bucket', o.bucket_id, 'name', o.name,
        'size', o.size, 'reason', 'storage quota: it does not fit the permanent account''s plan; it stays in the '
        'anonymous account (free space or upgrade, then merge again from the anonymous session)');
      continue;
    end if;
    v_free := v_free - o.size;
    v_bytes := v_bytes + o.size;
    v_to := o.name;
    if o.in_folder then
      v_to := p_to::text || substr(o.name, length(p_from::text) + 1);
      if exists (select 1 from storage.objects s where s.bucket_id = o.bucket_id and s.name = v_to) then
        v_to := p_to::text || '/merged-' || left(p_from::text, 8) || substr(o.name, length(p_from::text) + 1);
        v_renamed := v_renamed || jsonb_build_object('table', 'storage.objects', 'bucket', o.bucket_id,
          'from', o.name, 'to', v_to, 'reason', 'the permanent account already has a file at that path');
      end if;
    end if;
    v_move := v_move || jsonb_build_object('bucket', o.bucket_id, 'from', o.name, 'to', v_to, 'size', o.size,
      'mimetype', o.mimetype);
  end loop;
  return jsonb_build_object('objects', v_move, 'bytes', v_bytes, 'skipped', v_skip, 'renamed', v_renamed);
end;
$$;
revoke execute on function private.merge_plan_files(uuid, uuid) from public, anon, authenticated, service_role;

create function private.claim_merge_ticket(p_ticket text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_uid uuid := (select auth.uid());
  t private.merge_tickets;
  v_merge uuid;
  v_rows jsonb;
  v_files jsonb;
  v_job uuid;
  v_report jsonb;
begin
  if v_uid is null then
    raise exception 'sign in to the permanent account to claim a merge ticket' using errcode = '42501';
  end if;
  if coalesce((select (auth.jwt() ->> 'is_anonymous')::boolean), false)
     or exists (select 1 from auth.users u where u.id = v_uid and u.is_anonymous) then
    raise exception 'a merge ticket must be claimed by a permanent account, not an anonymous one'
      using errcode = '42501',
            hint = 'Sign in to the account that owns the identity (signInWithPassword, signInWithOAuth, ...) and '
                   'claim the ticket with that session.';
  end if;
  if p_ticket is null or p_ticket !~ '^[0-9a-f]{64}$' then
    raise exception 'ticket must be the 64-character hex string create_merge_ticket returned'
      using errcode = '22023';
  end if;
  select * into t from private.merge_tickets x
   where x.token_hash = sha256(convert_to(p_ticket, 'UTF8')) for update;
  if not found then
    raise exception 'unknown merge ticket' using errcode = 'PT404',
      hint = 'Create a new ticket as the anonymous user (create_merge_ticket).';
  end if;
  if t.claimed_at is not null then
    raise exception 'this merge ticket was already used' using errcode = 'PT410',
      hint = 'Tickets work once; create a new one as the anonymous user if data is left.';
  end if;
  if t.expires_at <= now() then
    raise exception 'this merge ticket expired at %', t.expires_at using errcode = 'PT410',
      hint = 'Tickets live 10 minutes; create a new one as the anonymous user.';
  end if;
  if t.anonymous_id = v_uid then
    raise exception 'this ticket was made by this same account: there is nothing to merge'
      using errcode = '22023', hint = 'The account was linked in place; its data is already here.';
  end if;
  if not exists (select 1 from auth.users u where u.id = t.anonymous_id) then
    raise exception 'the account that made this ticket no longer exists' using errcode = 'PT410';
  end if;
  if not exists (select 1 from auth.users u where u.id = t.anonymous_id and u.is_anonymous) then
    raise exception 'the account that made this ticket is no longer anonymous: it cannot be merged'
      using errcode = 'PT409',
            hint = 'It was linked to an identity; sign in to it instead. Only anonymous accounts are merged.';
  end if;
  -- Serialise merges out of this anonymous account.
  perform 1 from auth.users u where u.id = t.anonymous_id for update;
  update private.merge_tickets x set claimed_at = now(), claimed_by = v_uid where x.id = t.id;
  insert into private.account_merges (anonymous_id, permanent_id) values (t.anonymous_id, v_uid)
  returning id into v_merge;

  v_files := private.merge_plan_files(t.anonymous_id, v_uid);
  v_rows := private.merge_account_rows(t.anonymous_id, v_uid);
  insert into public.jobs (kind, payload, owner_id, max_attempts)
  select 'account_merge_files',
         jsonb_build_object('merge_id', v_merge, 'anonymous_id', t.anonymous_id, 'permanent_id', v_uid,
                            'objects', v_files -> 'objects'),
         v_uid, k.max_attempts
    from public.job_kinds k where k.kind = 'account_merge_files'
  returning id into v_job;

  v_report := jsonb_build_object(
    'merge_id', v_merge,
    'anonymous_id', t.anonymous_id,
    'permanent_id', v_uid,
    'moved', v_rows -> 'moved',
    'renamed', (v_rows -> 'renamed') || (v_files -> 'renamed'),
    'skipped', (v_rows -> 'skipped') || (v_files -> 'skipped'),
    'kept', v_rows -> 'kept',
    'merged', v_rows -> 'merged',
    'over_limits', private.merge_limits_exceeded(v_uid),
    'files', jsonb_build_object('moving', jsonb_array_length(v_files -> 'objects'), 'bytes', v_files -> 'bytes',
                                'skipped', jsonb_array_length(v_files -> 'skipped'), 'job_id', v_job),
    'anonymous_account', case when jsonb_array_length(v_files -> 'skipped') = 0
      then 'deleted once the files job has moved its files'
      else 'kept: it still holds files that did not fit' end);
  update private.account_merges m set files_job_id = v_job, report = v_report where m.id = v_merge;
  perform private.audit(v_uid, 'account.merged', jsonb_build_object(
    'merge_id', v_merge, 'anonymous_id', t.anonymous_id, 'moved', v_report -> 'moved',
    'renamed', jsonb_array_length(v_report -> 'renamed'), 'skipped', jsonb_array_length(v_report -> 'skipped'),
    'files', v_report -> 'files'));
  return v_report;
end;
$$;
revoke execute on function private.claim_merge_ticket(text) from public, anon, authenticated, service_role;
grant execute on function private.claim_merge_ticket(text) to authenticated;

-- Worker step per file (after the bytes are copied to p_to_name): the copy
-- belongs to the permanent user and file links follow it. Refuses like the
-- quota trigger (42501) when the copy does not fit; the worker then removes it.
create function private.merge_adopt_object(p_merge uuid, p_bucket text, p_from_name text, p_to_name text)
returns void
language plpgsql volatile security definer set search_path = ''
as $$
declare
  m private.account_merges;
begin
  select * into m from private.account_merges x where x.id = p_merge;
  if not found then
    raise exception 'unknown account merge %', p_merge using errcode = 'PT404';
  end if;
  update storage.objects s set owner_id = m.permanent_id::text, owner = m.permanent_id
   where s.bucket_id = p_bucket and s.name = p_to_name;
  if not found then
    raise exception 'no object %/% to adopt', p_bucket, p_to_name using errcode = 'PT404';
  end if;
  update public.file_links l set object_name = p_to_name
   where l.bucket_id = p_bucket and l.object_name = p_from_name and l.owner_id = m.permanent_id;
end;
$$;
revoke execute on function private.merge_adopt_object(uuid, text, text, text) from public, anon, authenticated, service_role;
grant execute on function private.merge_adopt_object(uuid, text, text, text) to service_role;

-- Worker's last step: what still references the anonymous user (rows in
-- tables the merge moves, files). Empty => the worker deletes the auth user.
create function private.account_merge_finish(p_merge uuid, p_result jsonb) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  m private.account_merges;
  r record;
  v_count bigint;
  v_left jsonb := '{}'::jsonb;
begin
  select * into m from private.account_merges x where x.id = p_merge for update;
  if not found then
    raise exception 'unknown account merge %', p_merge using errcode = 'PT404';
  end if;
  for r in
    select n.nspname::text as sch, c.relname::text as tbl, a.attname::text as col
      from pg_catalog.pg_constraint k
      join pg_catalog.pg_class c on c.oid = k.conrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
     where k.contype = 'f' and cardinality(k.conkey) = 1
       and k.confrelid in ('auth.users'::regclass, 'public.profiles'::regclass)
       and n.nspname <> 'auth'
       and not exists (select 1 from private.merge_rules x where x.table_name = n.nspname || '.' || c.relname
                        and x.column_name = a.attname and x.strategy in ('keep', 'merge_profile'))
  loop
    execute format('select count(*) from %I.%I where %I = $1', r.sch, r.tbl, r.col) into v_count
      using m.anonymous_id;
    if v_count > 0 then
      v_left := v_left || jsonb_build_object(r.sch || '.' || r.tbl, v_count);
    end if;
  end loop;
  select count(*) into v_count from storage.objects s
   where s.owner_id = m.anonymous_id::text or (storage.foldername(s.name))[1] = m.anonymous_id::text;
  if v_count > 0 then
    v_left := v_left || jsonb_build_object('storage.objects', v_count);
  end if;
  update private.account_merges x set finished_at = now() where x.id = p_merge;
  perform private.audit(m.permanent_id, 'account.merge_files_moved', jsonb_build_object(
    'merge_id', p_merge, 'anonymous_id', m.anonymous_id, 'result', coalesce(p_result, '{}'::jsonb),
    'left_in_anonymous_account', v_left));
  return v_left;
end;
$$;
revoke execute on function private.account_merge_finish(uuid, jsonb) from public, anon, authenticated, service_role;
grant execute on function private.account_merge_finish(uuid, jsonb) to service_role;

-- == API (schema public: security invoker wrappers) ==
create function public.create_merge_ticket() returns jsonb
language sql volatile set search_path = ''
as $$ select private.create_merge_ticket() $$;
revoke execute on function public.create_merge_ticket() from public, anon, authenticated, service_role;
grant execute on function public.create_merge_ticket() to authenticated;

create function public.claim_merge_ticket(p_ticket text) returns jsonb
language sql volatile set search_path = ''
as $$ select private.claim_merge_ticket(p_ticket) $$;
revoke execute on function public.claim_merge_ticket(text) from public, anon, authenticated, service_role;
grant execute on function public.claim_merge_ticket(text) to authenticated;

-- == job kind ==
insert into public.job_kinds (kind, description, max_attempts, backoff_base, backoff_max)
values ('account_merge_files',
        'Move a merged anonymous account''s files into the permanent account, then delete the emptied account.',
        10, interval '30 seconds', interval '1 hour');

-- == grants ==
revoke all on table private.merge_tickets from public, anon, authenticated, service_role;
revoke all on table private.account_merges from public, anon, authenticated, service_role;
revoke all on table private.merge_rules from public, anon, authenticated, service_role;

-- == comments ==
comment on table private.merge_tickets is
  'One-time tickets (sha256 only, 10 minutes) an anonymous user makes so a permanent account can claim its data.';
comment on table private.account_merges is
  'Every claimed merge: anonymous and permanent ids, the report returned to the caller, the files job.';
comment on table private.merge_rules is
  'How a user column that is part of a unique key is merged (collision rules); other owned columns are '
  'reassigned as they are. A claim refuses when an owned unique column has no rule.';
comment on function private.account_merge_in_progress() is
  'True inside a claim_merge_ticket transaction (lets merged rows past row caps; they are reported).';
comment on function private.create_merge_ticket() is 'Body of public.create_merge_ticket.';
comment on function private.claim_merge_ticket(text) is 'Body of public.claim_merge_ticket.';
comment on function private.merge_account_rows(uuid, uuid) is
  'Moves every catalog-found row of one user to another, resolving unique-key collisions by private.merge_rules.';
comment on function private.merge_limits_exceeded(uuid) is
  'Row caps and per-kind document limits the user is over (kept after a merge, listed in its report).';
comment on function private.merge_plan_files(uuid, uuid) is
  'Which of the anonymous user''s files move where, and which do not fit the storage quota.';
comment on function private.merge_adopt_object(uuid, text, text, text) is
  'Worker: make a copied object the permanent user''s and re-point its file links.';
comment on function private.account_merge_finish(uuid, jsonb) is
  'Worker: audit the end of a merge; returns what still references the anonymous user (empty: delete it).';
comment on function public.create_merge_ticket() is
  'As an anonymous user: a one-time ticket {ticket, expires_at} (10 minutes) that lets a permanent account '
  'claim this account''s data with claim_merge_ticket. 403 when the caller is not anonymous; 429 past 10 per hour.';
comment on function public.claim_merge_ticket(text) is
  'As a permanent user: move everything the ticket''s anonymous account owns into this account. Returns the '
  'report {merge_id, moved, renamed, skipped, kept, merged, over_limits, files {moving, bytes, skipped, job_id}, '
  'anonymous_account}. Errors: 400 malformed ticket or same account, 403 anonymous caller, 404 unknown ticket, '
  '409 the ticket''s account is no longer anonymous, 410 used or expired ticket.';
