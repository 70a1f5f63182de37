-- library (and every module that stores client JSON): validators that check
-- what their messages promise, and one depth limit on stored client JSON.
--
-- Why (issue #12): an item's `tags` could hold objects or arrays nested
-- thousands deep although validate_item's message says "array of strings",
-- and explore() then served that public item to every client. Nothing bounded
-- how deeply any stored client JSON nests, so every reader (frontends,
-- workers, exports, jsonb functions that recurse) had to cope with whatever a
-- client sent.
--
-- Adds:
-- * private.json_max_depth(): THE limit, 32 nested arrays/objects (a scalar
--   is depth 0, {} and [] are 1, {"a": [1]} is 2). One constant, documented in
--   docs/validation.md.
-- * private.json_depth_exceeds(value, max): true when value nests more than
--   max arrays/objects. No recursion in SQL or PL/pgSQL: one jsonpath query
--   `strict $.**{max} ? (@.type() == "array" || @.type() == "object")`, whose
--   walk stops at level max, so it never runs into the stack depth limit
--   (measured: 10,000 and 12,000 deep values on PostgreSQL 15 and 18).
-- * private.json_check_depth(value, field, max default the constant): raises
--   22023 "<field> is nested too deeply: at most N levels ..." (HTTP 400), else
--   true. Used by validate_document and by CHECK constraints.
-- * private.validate_document: the depth check after the size check and before
--   the kind's validator, naming the top-level body field that is too deep
--   ("document body.tags is nested too deeply: at most 32 levels ..."). It is what the documents trigger, sync_push, resolve_conflict
--   and import_local already call, so they all refuse with 22023.
-- * validate_item: every tag must be a string (the message always said so).
--   validate_loop: bars compared as numbers (4.0 is 4). validate_song: a
--   block's bar is a non-negative integer that fits an int4, as the message
--   says "integer" and readers treat it as one.
-- * CHECK constraints (named <table>_<column>_depth, so that, checks running
--   in name order, the depth check runs before the existing shape/size checks
--   of the same column and answers 22023 instead of a 23514 about size) on
--   every jsonb column a client writes, directly or through an RPC:
--     rooms.settings, room_elements.data, room_element_connections.data,
--     ai_requests.messages, jobs.payload (enqueue_job, job_enqueue),
--     telemetry_events.props (ingest_telemetry), backups.kdf (upload_backup),
--     sync_conflicts.client_body / server_body (sync_push conflicts): the limit;
--     room_templates.elements / connections (a list of records that each hold
--     a data object: apply_template copies that data into room_elements) and
--     sync_receipts.result (a result that holds the server's document body two
--     levels down): the limit + 2, so whatever fits the limit fits there.
--   Not guarded here: jsonb only the service role or the database writes
--   (jobs.result, ai_requests.result, audit_log.details, document_kinds.refs,
--   private.cron_schedules.payload) and the platform's own tables
--   (realtime.messages, storage.objects, auth.users), which migrations do not
--   alter (docs/validation.md, "Limits of validation").
--   The constraints are added NOT VALID: rows stored before this migration are
--   not re-checked (a deep row must not block a deploy); every insert and
--   every update of such a row is. docs/validation.md shows how to find and
--   then validate them.
--
-- Not fixable in SQL (docs/validation.md): a JSON argument nested deeper than
-- the server's parser can go (about 14,500 levels on PostgreSQL 15, 16,300 on
-- 18 with the default 2MB max_stack_depth) fails with 54001 while PostgreSQL
-- reads the request's parameter, before any function of ours runs; PostgREST
-- answers 500. Only a gateway in front of PostgREST can refuse those.

-- == the limit ==
create function private.json_max_depth() returns integer
language sql immutable parallel safe set search_path = ''
as $$ select 32 $$;
revoke execute on function private.json_max_depth() from public, anon, authenticated, service_role;
grant execute on function private.json_max_depth() to authenticated, service_role;

create function private.json_depth_exceeds(p_value jsonb, p_max integer) returns boolean
language plpgsql immutable parallel safe set search_path = ''
as $$
begin
  if p_max is null or p_max < 0 then
    raise exception 'JSON depth limit must be a non-negative integer, got %', coalesce(p_max::text, 'null')
      using errcode = '22023', hint = 'Pass private.json_max_depth() or a number of levels.';
  end if;
  if p_value is null then
    return false;
  end if;
  -- Items at level p_max sit inside p_max containers; one more container there
  -- makes p_max + 1 levels. `.**{n}` visits levels up to n only (no deeper).
  return jsonb_path_exists(p_value,
    format('strict $.**{%s} ? (@.type() == "array" || @.type() == "object")', p_max)::jsonpath);
end;
$$;
revoke execute on function private.json_depth_exceeds(jsonb, integer) from public, anon, authenticated, service_role;
grant execute on function private.json_depth_exceeds(jsonb, integer) to authenticated, service_role;

create function private.json_check_depth(p_value jsonb, p_field text, p_max integer default null)
returns boolean
language plpgsql immutable parallel safe set search_path = ''
as $$
declare
  v_max integer := coalesce(p_max, private.json_max_depth());
begin
  if private.json_depth_exceeds(p_value, v_max) then
    raise exception '% is nested too deeply: at most % levels of arrays and objects', p_field, v_max
      using errcode = '22023',
        hint = format('Flatten the JSON: Backline stores at most %s nested arrays/objects in %s.', v_max, p_field);
  end if;
  return true;
end;
$$;
revoke execute on function private.json_check_depth(jsonb, text, integer) from public, anon, authenticated, service_role;
grant execute on function private.json_check_depth(jsonb, text, integer) to authenticated, service_role;

comment on function private.json_max_depth() is
  'The most arrays/objects any stored client JSON may nest (a scalar is 0, {} is 1). docs/validation.md.';
comment on function private.json_depth_exceeds(jsonb, integer) is
  'True when the value nests more than p_max arrays/objects. One jsonpath walk bounded by p_max: no recursion, '
  'safe on values nested thousands deep.';
comment on function private.json_check_depth(jsonb, text, integer) is
  'True, or SQLSTATE 22023 naming p_field when the value nests more than p_max (default json_max_depth()) '
  'arrays/objects. Used in CHECK constraints and validate_document.';

-- == validators: what their messages say ==

-- Latest definition: 20261125010000_library_kinds.sql. Only bars changed:
-- compared as a number, so 4.0 (the same JSON number as 4) passes.
create or replace function private.validate_loop(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  perform private.library_require(jsonb_typeof(p_body) = 'object', 'loop body must be a JSON object');
  perform private.library_require(jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 100, 'loop name must be a string of 1-100 characters');
  perform private.library_require(jsonb_typeof(p_body -> 'bars') = 'number'
    and (p_body ->> 'bars')::numeric in (1, 2, 4, 8), 'loop bars must be 1, 2, 4 or 8');
  perform private.library_require(jsonb_typeof(p_body -> 'color') = 'string'
    and (p_body ->> 'color') ~ '^#[0-9A-Fa-f]{6}$', 'loop color must look like #RRGGBB');
  perform private.library_require(coalesce(jsonb_typeof(p_body -> 'chords'), 'array') = 'array',
    'loop chords must be an array');
  perform private.library_require(coalesce(jsonb_typeof(p_body -> 'icons'), 'array') = 'array',
    'loop icons must be an array');
  perform private.library_require(
    not exists (select 1 from jsonb_array_elements(coalesce(p_body -> 'chords', '[]')) c
                 where jsonb_typeof(c) <> 'string' or length(c #>> '{}') > 20)
    and jsonb_array_length(coalesce(p_body -> 'chords', '[]')) <= 64,
    'loop chords must be at most 64 strings of up to 20 characters');
  perform private.library_require(
    not exists (select 1 from jsonb_array_elements(coalesce(p_body -> 'icons', '[]')) c
                 where jsonb_typeof(c) <> 'string' or length(c #>> '{}') > 40)
    and jsonb_array_length(coalesce(p_body -> 'icons', '[]')) <= 64,
    'loop icons must be at most 64 strings of up to 40 characters');
end;
$$;

-- Latest definition: 20261125010000_library_kinds.sql. Only a block's bar
-- changed: a non-negative integer that fits an int4 (1e30 was "digits").
create or replace function private.validate_song(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  perform private.library_require(jsonb_typeof(p_body) = 'object', 'song body must be a JSON object');
  perform private.library_require(p_body -> 'name' is null or (jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 100), 'song name must be a string of 1-100 characters');
  perform private.library_require(jsonb_typeof(p_body -> 'bpm') = 'number'
    and (p_body ->> 'bpm')::numeric between 20 and 300, 'song bpm must be a number from 20 to 300');
  perform private.library_require((p_body ->> 'time_signature') in ('4/4', '3/4'),
    'song time_signature must be "4/4" or "3/4"');
  perform private.library_require(jsonb_typeof(p_body -> 'timeline') = 'array'
    and jsonb_array_length(p_body -> 'timeline') <= 1000, 'song timeline must be an array of at most 1000 blocks');
  perform private.library_require(
    not exists (select 1 from jsonb_array_elements(p_body -> 'timeline') b
                 where jsonb_typeof(b) <> 'object' or not private.library_is_uuid(b -> 'loop_id')),
    'every song timeline block must reference a loop by its id (loop_id)');
  perform private.library_require(
    not exists (select 1 from jsonb_array_elements(p_body -> 'timeline') b
                 where b -> 'bar' is not null
                   and (jsonb_typeof(b -> 'bar') <> 'number' or (b ->> 'bar') !~ '^[0-9]{1,10}$'
                        or (b ->> 'bar')::bigint > 2147483647)),
    'song timeline block bar must be a non-negative integer (at most 2147483647)');
end;
$$;

-- Latest definition: 20261125010000_library_kinds.sql. tags: every element a
-- string, as the message promised (objects and nested arrays were stored).
create or replace function private.validate_item(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  perform private.library_require(jsonb_typeof(p_body) = 'object', 'item body must be a JSON object');
  perform private.library_require(jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 200, 'item name must be a string of 1-200 characters');
  perform private.library_require(p_body -> 'folder_id' is null or p_body -> 'folder_id' = 'null'
    or private.library_is_uuid(p_body -> 'folder_id'), 'item folder_id must be a folder id');
  perform private.library_require(p_body -> 'notes' is null or (jsonb_typeof(p_body -> 'notes') = 'string'
    and length(p_body ->> 'notes') <= 10000), 'item notes must be text of at most 10000 characters');
  perform private.library_require(coalesce(jsonb_typeof(p_body -> 'tags'), 'array') = 'array',
    'item tags must be an array of strings');
  perform private.library_require(
    not jsonb_path_exists(coalesce(p_body -> 'tags', '[]'), 'strict $[*] ? (@.type() != "string")'),
    'item tags must be an array of strings');
end;
$$;

-- Latest definition: 20261125010000_library_kinds.sql. Adds the depth limit
-- after the size check, before the kind's validator (which then only sees
-- bounded values), naming the top-level field that is too deep.
create or replace function private.validate_document(p_kind text, p_body jsonb) returns void
language plpgsql stable security definer set search_path = ''
as $$
declare
  k public.document_kinds;
  v_size integer;
  v_max integer := private.json_max_depth();
  v_field text;
begin
  select * into k from public.document_kinds where id = p_kind;
  if not found then
    raise exception 'unknown document kind: %', p_kind using errcode = '22023',
      hint = 'Use one of the kinds in public.document_kinds.';
  end if;
  v_size := octet_length(p_body::text);
  if v_size > k.max_body_bytes then
    raise exception 'document body too large: % bytes (max % for kind %)', v_size, k.max_body_bytes, p_kind
      using errcode = '22023', hint = 'Split the document or remove unused data.';
  end if;
  if private.json_depth_exceeds(p_body, v_max) then
    if jsonb_typeof(p_body) = 'object' then
      select 'body.' || e.key into v_field
        from jsonb_each(p_body) e
       where private.json_depth_exceeds(e.value, v_max - 1)
       order by e.key limit 1;
    end if;
    perform private.json_check_depth(p_body, 'document ' || coalesce(v_field, 'body'), v_max);
  end if;
  if k.validator is not null then
    execute format('select %s($1)', k.validator) using p_body;
  end if;
end;
$$;

-- == every other jsonb column a client writes ==
alter table public.rooms add constraint rooms_settings_depth
  check (private.json_check_depth(settings, 'rooms.settings')) not valid;
alter table public.room_elements add constraint room_elements_data_depth
  check (private.json_check_depth(data, 'room_elements.data')) not valid;
alter table public.room_element_connections add constraint room_element_connections_data_depth
  check (private.json_check_depth(data, 'room_element_connections.data')) not valid;
alter table public.room_templates add constraint room_templates_elements_depth
  check (private.json_check_depth(elements, 'room_templates.elements', private.json_max_depth() + 2)) not valid;
alter table public.room_templates add constraint room_templates_connections_depth
  check (private.json_check_depth(connections, 'room_templates.connections', private.json_max_depth() + 2)) not valid;
alter table public.ai_requests add constraint ai_requests_messages_depth
  check (private.json_check_depth(messages, 'ai_requests.messages')) not valid;
alter table public.jobs add constraint jobs_payload_depth
  check (private.json_check_depth(payload, 'job payload')) not valid;
alter table public.telemetry_events add constraint telemetry_events_props_depth
  check (private.json_check_depth(props, 'telemetry event props')) not valid;
alter table public.backups add constraint backups_kdf_depth
  check (private.json_check_depth(kdf, 'backup kdf')) not valid;
alter table public.sync_conflicts add constraint sync_conflicts_client_body_depth
  check (private.json_check_depth(client_body, 'sync change body')) not valid;
alter table public.sync_conflicts add constraint sync_conflicts_server_body_depth
  check (private.json_check_depth(server_body, 'sync_conflicts.server_body')) not valid;
alter table public.sync_receipts add constraint sync_receipts_result_depth
  check (private.json_check_depth(result, 'sync_receipts.result', private.json_max_depth() + 2)) not valid;
