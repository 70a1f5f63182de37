-- library: the music sketchpad's real loop and song bodies.
--
-- Why (issue #13 item 2): validate_loop wanted a shape Backline invented
-- ({bars, chords: [text], icons: [text]}) and refused the body the sketchpad
-- actually sends; validate_song accepted a timeline block without a loop
-- reference (`[{}]`: `not private.library_is_uuid(null)` is NULL, so the
-- "bad block" test never matched) and import_local then stored a song that
-- pointed nowhere.
--
-- The sketchpad's bodies, accepted exactly (unknown fields are refused, every
-- message names the field by its path, e.g. `chordProgression[2].bar`):
--   loop  {name: 1-100 chars, length: 1|2|4|8, chordProgression: ChordCell[] (<= 64),
--          iconSequence: IconStep[] (<= 2048), color: "#RRGGBB", isPublic: boolean}
--     ChordCell {bar: int >= 0, chord: 1-32 chars, roman: 0-16, root: 1-8, quality: 0-16}
--     IconStep  {step: int >= 0, soundId: 1-64 chars, velocity: number 0-1, note?: 1-8 chars}
--   song  {name: 1-100 chars, bpm: 20-300, timeSignature: "4/4"|"3/4",
--          timeline: TimelineBlock[] (<= 1000), totalBars: int >= 0, isPublic: boolean}
--     TimelineBlock {id: 1-100 chars (unique in the song), loopId: a loop's id (uuid),
--                    startBar: int >= 0, duration: int >= 1}
-- ("int" = a JSON number that is a whole number from 0 to 2147483647.)
-- isPublic decides the document's visibility (next migration).
--
-- The old shapes stay accepted for a documented period (docs/validation.md,
-- "Legacy loop and song bodies"): documents already stored in them are read,
-- updated and forked as before. A loop body is the old shape when it has
-- `bars` and no `length`, a song body when it has `time_signature` and no
-- `timeSignature`. The old song validator's NULL hole is closed there too:
-- every block needs a loop_id.
--
-- Adds private.library_is_count(jsonb), private.library_check_fields(jsonb,
-- text, text[], text[]), private.validate_loop_legacy(jsonb),
-- private.validate_song_legacy(jsonb); redefines validate_loop, validate_song;
-- loop bodies may now be 128 KiB (an 8-bar loop's icon steps); song refs name
-- both loopId (new) and loop_id (old), so import_local rewrites either.

-- == helpers ==
-- A whole JSON number from 0 to 2147483647 (fits an int4, as readers use it).
create function private.library_is_count(p_value jsonb) returns boolean
language sql immutable parallel safe set search_path = ''
as $$ select coalesce(jsonb_typeof(p_value) = 'number'
                      and (p_value #>> '{}')::numeric between 0 and 2147483647
                      and (p_value #>> '{}')::numeric = trunc((p_value #>> '{}')::numeric), false) $$;
revoke execute on function private.library_is_count(jsonb) from public, anon, authenticated, service_role;
grant execute on function private.library_is_count(jsonb) to authenticated, service_role;

-- p_value must be an object with every required key and no key outside
-- required + optional. p_what names it in the message ("loop", "song
-- timeline[2]").
create function private.library_check_fields(p_value jsonb, p_what text, p_required text[], p_optional text[])
returns void
language plpgsql immutable set search_path = ''
as $$
declare
  v_missing text;
  v_unknown text;
begin
  perform private.library_require(jsonb_typeof(p_value) = 'object', p_what || ' must be a JSON object');
  select string_agg(r, ', ' order by o) into v_missing
    from unnest(p_required) with ordinality as t(r, o) where not p_value ? r;
  perform private.library_require(v_missing is null, format('%s is missing %s', p_what, v_missing));
  select string_agg(k, ', ' order by k) into v_unknown
    from jsonb_object_keys(p_value) k where not (k = any (p_required || p_optional));
  perform private.library_require(v_unknown is null,
    format('%s has unknown field(s) %s (allowed: %s)', p_what, v_unknown, array_to_string(p_required || p_optional, ', ')));
end;
$$;
revoke execute on function private.library_check_fields(jsonb, text, text[], text[])
  from public, anon, authenticated, service_role;
grant execute on function private.library_check_fields(jsonb, text, text[], text[]) to authenticated, service_role;

-- == legacy shapes (accepted for a documented period) ==
-- Latest definition of validate_loop: 20261206090600_library_validation_depth.sql, unchanged.
create function private.validate_loop_legacy(p_body jsonb) returns void
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
    not exists (select 1 from jsonb_array_elements(coalesce(p_body -> 'chords', '[]'::jsonb)) c
                 where jsonb_typeof(c) <> 'string' or length(c #>> '{}') > 20)
    and jsonb_array_length(coalesce(p_body -> 'chords', '[]'::jsonb)) <= 64,
    'loop chords must be at most 64 strings of up to 20 characters');
  perform private.library_require(
    not exists (select 1 from jsonb_array_elements(coalesce(p_body -> 'icons', '[]'::jsonb)) c
                 where jsonb_typeof(c) <> 'string' or length(c #>> '{}') > 40)
    and jsonb_array_length(coalesce(p_body -> 'icons', '[]'::jsonb)) <= 64,
    'loop icons must be at most 64 strings of up to 40 characters');
end;
$$;

-- Latest definition of validate_song: 20261206090600_library_validation_depth.sql.
-- Fixed: a block without loop_id (or not an object) is refused (`is not true`,
-- so a NULL test counts as a failure).
create function private.validate_song_legacy(p_body jsonb) returns void
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
                 where (jsonb_typeof(b) = 'object' and private.library_is_uuid(b -> 'loop_id')) is not true),
    'every song timeline block must reference a loop by its id (loop_id)');
  perform private.library_require(
    not exists (select 1 from jsonb_array_elements(p_body -> 'timeline') b
                 where b -> 'bar' is not null and not private.library_is_count(b -> 'bar')),
    'song timeline block bar must be a non-negative integer (at most 2147483647)');
end;
$$;

-- == the sketchpad's shapes ==
create or replace function private.validate_loop(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
declare
  e jsonb;
  i integer;
  v_at text;
begin
  if jsonb_typeof(p_body) = 'object' and p_body ? 'bars' and not p_body ? 'length' then
    perform private.validate_loop_legacy(p_body);
    return;
  end if;
  perform private.library_check_fields(p_body, 'loop body',
    array['name', 'length', 'chordProgression', 'iconSequence', 'color', 'isPublic'], '{}'::text[]);
  perform private.library_require(jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 100, 'loop name must be a string of 1-100 characters');
  perform private.library_require(jsonb_typeof(p_body -> 'length') = 'number'
    and (p_body ->> 'length')::numeric in (1, 2, 4, 8), 'loop length must be 1, 2, 4 or 8 (bars)');
  perform private.library_require(jsonb_typeof(p_body -> 'color') = 'string'
    and (p_body ->> 'color') ~ '^#[0-9A-Fa-f]{6}$', 'loop color must look like #RRGGBB');
  perform private.library_require(jsonb_typeof(p_body -> 'isPublic') = 'boolean',
    'loop isPublic must be true or false');
  perform private.library_require(jsonb_typeof(p_body -> 'chordProgression') = 'array'
    and jsonb_array_length(p_body -> 'chordProgression') <= 64,
    'loop chordProgression must be an array of at most 64 chord cells');
  perform private.library_require(jsonb_typeof(p_body -> 'iconSequence') = 'array'
    and jsonb_array_length(p_body -> 'iconSequence') <= 2048,
    'loop iconSequence must be an array of at most 2048 icon steps');

  for e, i in select t.value, (t.ord - 1)::integer
                from jsonb_array_elements(p_body -> 'chordProgression') with ordinality t(value, ord) loop
    v_at := format('loop chordProgression[%s]', i);
    perform private.library_check_fields(e, v_at, array['bar', 'chord', 'roman', 'root', 'quality'], '{}'::text[]);
    perform private.library_require(private.library_is_count(e -> 'bar'),
      v_at || '.bar must be a non-negative integer');
    perform private.library_require(jsonb_typeof(e -> 'chord') = 'string'
      and length(e ->> 'chord') between 1 and 32, v_at || '.chord must be a string of 1-32 characters');
    perform private.library_require(jsonb_typeof(e -> 'roman') = 'string'
      and length(e ->> 'roman') <= 16, v_at || '.roman must be a string of at most 16 characters');
    perform private.library_require(jsonb_typeof(e -> 'root') = 'string'
      and length(e ->> 'root') between 1 and 8, v_at || '.root must be a string of 1-8 characters');
    perform private.library_require(jsonb_typeof(e -> 'quality') = 'string'
      and length(e ->> 'quality') <= 16, v_at || '.quality must be a string of at most 16 characters');
  end loop;

  for e, i in select t.value, (t.ord - 1)::integer
                from jsonb_array_elements(p_body -> 'iconSequence') with ordinality t(value, ord) loop
    v_at := format('loop iconSequence[%s]', i);
    perform private.library_check_fields(e, v_at, array['step', 'soundId', 'velocity'], array['note']);
    perform private.library_require(private.library_is_count(e -> 'step'),
      v_at || '.step must be a non-negative integer');
    perform private.library_require(jsonb_typeof(e -> 'soundId') = 'string'
      and length(e ->> 'soundId') between 1 and 64, v_at || '.soundId must be a string of 1-64 characters');
    perform private.library_require(jsonb_typeof(e -> 'velocity') = 'number'
      and (e ->> 'velocity')::numeric between 0 and 1, v_at || '.velocity must be a number from 0 to 1');
    perform private.library_require(not e ? 'note' or (jsonb_typeof(e -> 'note') = 'string'
      and length(e ->> 'note') between 1 and 8), v_at || '.note must be a string of 1-8 characters, or absent');
  end loop;
end;
$$;

create or replace function private.validate_song(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
declare
  e jsonb;
  i integer;
  v_at text;
  v_ids text[] := '{}'::text[];
begin
  if jsonb_typeof(p_body) = 'object' and p_body ? 'time_signature' and not p_body ? 'timeSignature' then
    perform private.validate_song_legacy(p_body);
    return;
  end if;
  perform private.library_check_fields(p_body, 'song body',
    array['name', 'bpm', 'timeSignature', 'timeline', 'totalBars', 'isPublic'], '{}'::text[]);
  perform private.library_require(jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 100, 'song name must be a string of 1-100 characters');
  perform private.library_require(jsonb_typeof(p_body -> 'bpm') = 'number'
    and (p_body ->> 'bpm')::numeric between 20 and 300, 'song bpm must be a number from 20 to 300');
  perform private.library_require(jsonb_typeof(p_body -> 'timeSignature') = 'string'
    and (p_body ->> 'timeSignature') in ('4/4', '3/4'), 'song timeSignature must be "4/4" or "3/4"');
  perform private.library_require(private.library_is_count(p_body -> 'totalBars'),
    'song totalBars must be a non-negative integer');
  perform private.library_require(jsonb_typeof(p_body -> 'isPublic') = 'boolean',
    'song isPublic must be true or false');
  perform private.library_require(jsonb_typeof(p_body -> 'timeline') = 'array'
    and jsonb_array_length(p_body -> 'timeline') <= 1000, 'song timeline must be an array of at most 1000 blocks');

  for e, i in select t.value, (t.ord - 1)::integer
                from jsonb_array_elements(p_body -> 'timeline') with ordinality t(value, ord) loop
    v_at := format('song timeline[%s]', i);
    perform private.library_check_fields(e, v_at, array['id', 'loopId', 'startBar', 'duration'], '{}'::text[]);
    perform private.library_require(jsonb_typeof(e -> 'id') = 'string'
      and length(e ->> 'id') between 1 and 100, v_at || '.id must be a string of 1-100 characters');
    perform private.library_require(not (e ->> 'id') = any (v_ids),
      format('%s.id %s is used by an earlier block: block ids must be unique in a song', v_at, e ->> 'id'));
    v_ids := v_ids || (e ->> 'id');
    perform private.library_require(private.library_is_uuid(e -> 'loopId') is true,
      v_at || '.loopId must be the id (a uuid) of a loop document; import_local rewrites local ids');
    perform private.library_require(private.library_is_count(e -> 'startBar'),
      v_at || '.startBar must be a non-negative integer');
    perform private.library_require(private.library_is_count(e -> 'duration') and (e ->> 'duration')::numeric >= 1,
      v_at || '.duration must be a positive integer (bars)');
  end loop;
end;
$$;

revoke execute on function private.validate_loop_legacy(jsonb), private.validate_song_legacy(jsonb)
  from public, anon, authenticated, service_role;
grant execute on function private.validate_loop_legacy(jsonb), private.validate_song_legacy(jsonb)
  to authenticated, service_role;

-- == kinds ==
update public.document_kinds
   set max_body_bytes = 131072,
       description = 'Music sketchpad: a loop of 1, 2, 4 or 8 bars with a chord progression and an icon sequence.'
 where id = 'loop';
update public.document_kinds
   set refs = '[{"array": "timeline", "field": "loopId", "kind": "loop"},
                {"array": "timeline", "field": "loop_id", "kind": "loop"}]'::jsonb
 where id = 'song';

-- == comments ==
comment on function private.library_is_count(jsonb) is
  'True when the JSON value is a whole number from 0 to 2147483647 (bar, step, startBar, ...).';
comment on function private.library_check_fields(jsonb, text, text[], text[]) is
  'Validator helper: 22023 unless the value is an object with every required key and no other key than '
  'required + optional; messages name p_what.';
comment on function private.validate_loop_legacy(jsonb) is
  'The pre-#13 loop body {name, bars, color, chords, icons}; accepted for a documented period (docs/validation.md).';
comment on function private.validate_song_legacy(jsonb) is
  'The pre-#13 song body {name?, bpm, time_signature, timeline: [{loop_id, bar?}]}; accepted for a documented '
  'period (docs/validation.md). Every block needs a loop_id.';
