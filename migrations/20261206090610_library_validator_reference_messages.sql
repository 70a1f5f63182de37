-- library: the folder-reference messages of validate_item and validate_folder
-- say what is checked.
--
-- Why (issue #12, "validators that check what their messages promise"):
-- "item folder_id must be a folder id" and "folder parent_id must be a folder
-- id" promised a folder, but the validators check the value's form only (null
-- or a uuid). That is on purpose: body references are not foreign keys, are
-- never looked up on write (no id-existence oracle) and must stay free (a fork
-- keeps the source owner's ids; sync may send an item before its folder); see
-- migration 20261206090400's header. So the messages now say "a uuid, or
-- null" instead of the checks growing a lookup. Messages keep their old
-- beginning, so clients matching on it still match.

-- Latest definition: 20261206090600_library_validation_depth.sql (tags). Only
-- the folder_id message changed.
create or replace function private.validate_item(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  perform private.library_require(jsonb_typeof(p_body) = 'object', 'item body must be a JSON object');
  perform private.library_require(jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 200, 'item name must be a string of 1-200 characters');
  perform private.library_require(p_body -> 'folder_id' is null or p_body -> 'folder_id' = 'null'
    or private.library_is_uuid(p_body -> 'folder_id'),
    'item folder_id must be a folder id: a uuid, or null (whether that folder exists is not checked)');
  perform private.library_require(p_body -> 'notes' is null or (jsonb_typeof(p_body -> 'notes') = 'string'
    and length(p_body ->> 'notes') <= 10000), 'item notes must be text of at most 10000 characters');
  perform private.library_require(coalesce(jsonb_typeof(p_body -> 'tags'), 'array') = 'array',
    'item tags must be an array of strings');
  perform private.library_require(
    not jsonb_path_exists(coalesce(p_body -> 'tags', '[]'), 'strict $[*] ? (@.type() != "string")'),
    'item tags must be an array of strings');
end;
$$;

-- Latest definition: 20261125010000_library_kinds.sql. Only the parent_id
-- message changed.
create or replace function private.validate_folder(p_body jsonb) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  perform private.library_require(jsonb_typeof(p_body) = 'object', 'folder body must be a JSON object');
  perform private.library_require(jsonb_typeof(p_body -> 'name') = 'string'
    and length(p_body ->> 'name') between 1 and 100, 'folder name must be a string of 1-100 characters');
  perform private.library_require(p_body -> 'parent_id' is null or p_body -> 'parent_id' = 'null'
    or private.library_is_uuid(p_body -> 'parent_id'),
    'folder parent_id must be a folder id: a uuid, or null (whether that folder exists is not checked)');
end;
$$;
