-- library: the registry of document kinds and their validators.
-- Why: apps store loops, songs, folders, items ... as JSON documents. Which
-- kinds exist, how big a body may be, how many a user may keep and whether a
-- kind may be public is data (rows here), not code. Each kind names a
-- validator: a SQL function private.<name>(jsonb) that raises 22023 with a
-- clear message when a body is bad. Shipped: the music sketchpad's loop/song
-- and the collection tracker's folder/item.

-- == tables ==
create table public.document_kinds (
  id text primary key constraint document_kinds_id_format check (id ~ '^[a-z][a-z0-9_]{1,39}$'),
  description text not null default '' check (length(description) <= 500),
  max_body_bytes integer not null default 65536
    constraint document_kinds_max_body_positive check (max_body_bytes between 2 and 10485760),
  allow_public boolean not null default true,
  validator text constraint document_kinds_validator_format
    check (validator ~ '^private\.[a-z_][a-z0-9_]{0,62}$'),
  refs jsonb not null default '[]' constraint document_kinds_refs_array check (jsonb_typeof(refs) = 'array'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create trigger document_kinds_set_updated_at before update on public.document_kinds
  for each row execute function private.set_updated_at();

create table public.document_kind_limits (
  kind text not null references public.document_kinds (id) on delete cascade,
  plan text not null references public.plans (id) on delete cascade,
  max_documents integer not null constraint document_kind_limits_nonnegative check (max_documents >= 0),
  primary key (kind, plan)
);
create index document_kind_limits_plan_idx on public.document_kind_limits (plan);

-- == validators (schema private: not exposed) ==
create function private.library_require(p_ok boolean, p_message text) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  if p_ok is not true then
    raise exception '%', p_message using errcode = '22023',
      hint = 'Fix the document body and send it again.';
  end if;
end;
$$;
revoke execute on function private.library_require(boolean, text) from public;
grant execute on function private.library_require(boolean, text) to anon, authenticated, service_role;

create function private.library_is_uuid(p_value jsonb) returns boolean
language sql immutable set search_path = ''
as $$ select jsonb_typeof(p_value) = 'string'
         and (p_value #>> '{}') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' $$;
revoke execute on function private.library_is_uuid(jsonb) from public;
grant execute on function private.library_is_uuid(jsonb) to anon, authenticated, service_role;

-- loop: {name, bars (1|2|4|8), color "#RRGGBB", chords: [text], icons: [text]}
create function private.validate_loop(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  perform private.library_require(jsonb_typeof(p_body) = 'object', 'loop body must be a JSON object');
  perform private.library_require(jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 100, 'loop name must be a string of 1-100 characters');
  perform private.library_require(jsonb_typeof(p_body -> 'bars') = 'number'
    and (p_body ->> 'bars') in ('1', '2', '4', '8'), 'loop bars must be 1, 2, 4 or 8');
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

-- song: {name?, bpm 20-300, time_signature "4/4"|"3/4", timeline: [{loop_id: uuid, bar: int >= 0}]}
create function private.validate_song(p_body jsonb) returns void
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
                   and (jsonb_typeof(b -> 'bar') <> 'number' or (b ->> 'bar') !~ '^[0-9]+$')),
    'song timeline block bar must be a non-negative integer');
end;
$$;

-- folder: {name 1-100, parent_id?: uuid}
create function private.validate_folder(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  perform private.library_require(jsonb_typeof(p_body) = 'object', 'folder body must be a JSON object');
  perform private.library_require(jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 100, 'folder name must be a string of 1-100 characters');
  perform private.library_require(p_body -> 'parent_id' is null or p_body -> 'parent_id' = 'null'
    or private.library_is_uuid(p_body -> 'parent_id'), 'folder parent_id must be a folder id');
end;
$$;

-- item: {name 1-200, folder_id?: uuid, notes?: text <= 10000, tags?: [text]}
create function private.validate_item(p_body jsonb) returns void
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
end;
$$;

revoke execute on function private.validate_loop(jsonb), private.validate_song(jsonb),
  private.validate_folder(jsonb), private.validate_item(jsonb) from public;
grant execute on function private.validate_loop(jsonb), private.validate_song(jsonb),
  private.validate_folder(jsonb), private.validate_item(jsonb) to authenticated, service_role;

-- Run a kind's validator on a body (and the size rule). Raises 22023 when bad.
create function private.validate_document(p_kind text, p_body jsonb) returns void
language plpgsql stable security definer set search_path = ''
as $$
declare
  k public.document_kinds;
  v_size integer;
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
  if k.validator is not null then
    execute format('select %s($1)', k.validator) using p_body;
  end if;
end;
$$;
revoke execute on function private.validate_document(text, jsonb) from public;
grant execute on function private.validate_document(text, jsonb) to anon, authenticated, service_role;

-- == seed: the kinds the apps ship with ==
insert into public.document_kinds (id, description, max_body_bytes, allow_public, validator, refs) values
  ('loop', 'Music sketchpad: a loop of 1-8 bars with chords and icons.', 16384, true,
   'private.validate_loop', '[]'),
  ('song', 'Music sketchpad: a song arranging loops on a timeline.', 262144, true,
   'private.validate_song', '[{"array": "timeline", "field": "loop_id", "kind": "loop"}]'),
  ('folder', 'Collection tracker: a folder of items.', 8192, false,
   'private.validate_folder', '[{"field": "parent_id", "kind": "folder"}]'),
  ('item', 'Collection tracker: an item, optionally in a folder.', 65536, true,
   'private.validate_item', '[{"field": "folder_id", "kind": "folder"}]');

insert into public.document_kind_limits (kind, plan, max_documents) values
  ('loop', 'free', 200), ('loop', 'pro', 100000),
  ('song', 'free', 50), ('song', 'pro', 100000);

-- == grants and row level security ==
grant select on public.document_kinds, public.document_kind_limits to anon, authenticated;
grant select, insert, update, delete on public.document_kinds, public.document_kind_limits to service_role;
alter table public.document_kinds enable row level security;
alter table public.document_kind_limits enable row level security;

create policy "everyone reads document kinds" on public.document_kinds
  for select to anon, authenticated using (true);
create policy "everyone reads document kind limits" on public.document_kind_limits
  for select to anon, authenticated using (true);

-- == comments ==
comment on table public.document_kinds is
  'Registered document kinds (loop, song, folder, item, ...). Operators add rows; readable by everyone.';
comment on column public.document_kinds.max_body_bytes is 'Largest body (JSON text, bytes) a document of this kind may have.';
comment on column public.document_kinds.allow_public is 'Whether documents of this kind may be made public (explore, profiles).';
comment on column public.document_kinds.validator is
  'Function private.<name>(jsonb) that raises SQLSTATE 22023 with a readable message for a bad body.';
comment on column public.document_kinds.refs is
  'References to other documents inside the body, rewritten by import_local: '
  '[{"field": "folder_id", "kind": "folder"}] or [{"array": "timeline", "field": "loop_id", "kind": "loop"}].';
comment on table public.document_kind_limits is
  'Maximum live documents of a kind per user on a plan; without a row, plans.documents_per_kind applies.';
