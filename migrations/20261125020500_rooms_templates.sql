-- rooms: templates and frameworks, and rpc apply_template.
-- Why: a room often starts from a structure (SWOT, brainstorm, six thinking
-- hats). Built-in ones (owner_id null) are readable by everyone; users keep
-- their own, private or public. apply_template creates a template's elements
-- and connections in a room in one transaction, as the caller: room RLS and
-- the element cap apply.

-- == tables ==
create table public.room_templates (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid default auth.uid() references auth.users (id) on delete cascade,
  kind text not null default 'template' constraint room_templates_kind_known check (kind in ('template', 'framework')),
  name text not null constraint room_templates_name_length check (length(name) between 1 and 120),
  description text not null default '' constraint room_templates_description_length check (length(description) <= 2000),
  visibility text not null default 'private' constraint room_templates_visibility_known check (
    visibility in ('private', 'public')
  ),
  elements jsonb not null default '[]' constraint room_templates_elements_shape check (
    jsonb_typeof(elements) = 'array' and jsonb_array_length(elements) <= 200
    and pg_column_size(elements) <= 262144
  ),
  connections jsonb not null default '[]' constraint room_templates_connections_shape check (
    jsonb_typeof(connections) = 'array' and jsonb_array_length(connections) <= 400
  ),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index room_templates_owner_id_idx on public.room_templates (owner_id);
create index room_templates_visibility_idx on public.room_templates (visibility) where owner_id is null or visibility = 'public';

create trigger room_templates_set_updated_at before update on public.room_templates
  for each row execute function private.set_updated_at();

insert into public.room_templates (owner_id, kind, name, description, visibility, elements, connections) values
(null, 'framework', 'SWOT analysis', 'Strengths, weaknesses, opportunities and threats in four quadrants.', 'public',
 '[{"key":"s","kind":"frame","x":0,"y":0,"width":400,"height":300,"data":{"title":"Strengths"}},
   {"key":"w","kind":"frame","x":420,"y":0,"width":400,"height":300,"data":{"title":"Weaknesses"}},
   {"key":"o","kind":"frame","x":0,"y":320,"width":400,"height":300,"data":{"title":"Opportunities"}},
   {"key":"t","kind":"frame","x":420,"y":320,"width":400,"height":300,"data":{"title":"Threats"}}]', '[]'),
(null, 'template', 'Brainstorm', 'A central question, four idea notes connected to it and an AI chat.', 'public',
 '[{"key":"q","kind":"text","x":300,"y":250,"width":240,"height":100,"z_index":1,"data":{"text":"Central question"}},
   {"key":"n1","kind":"note","x":0,"y":0,"data":{"text":"Idea"}},
   {"key":"n2","kind":"note","x":600,"y":0,"data":{"text":"Idea"}},
   {"key":"n3","kind":"note","x":0,"y":500,"data":{"text":"Idea"}},
   {"key":"n4","kind":"note","x":600,"y":500,"data":{"text":"Idea"}},
   {"key":"ai","kind":"chat","x":900,"y":200,"width":320,"height":400,"data":{"title":"Ask the AI"}}]',
 '[{"from":"q","to":"n1"},{"from":"q","to":"n2"},{"from":"q","to":"n3"},{"from":"q","to":"n4"}]'),
(null, 'framework', 'Six thinking hats', 'One note per hat: facts, feelings, caution, benefits, ideas, process.', 'public',
 '[{"key":"white","kind":"note","x":0,"y":0,"data":{"title":"Facts","color":"white"}},
   {"key":"red","kind":"note","x":220,"y":0,"data":{"title":"Feelings","color":"red"}},
   {"key":"black","kind":"note","x":440,"y":0,"data":{"title":"Caution","color":"black"}},
   {"key":"yellow","kind":"note","x":0,"y":140,"data":{"title":"Benefits","color":"yellow"}},
   {"key":"green","kind":"note","x":220,"y":140,"data":{"title":"Ideas","color":"green"}},
   {"key":"blue","kind":"note","x":440,"y":140,"data":{"title":"Process","color":"blue"}}]', '[]');

-- == RPCs (exposed, security invoker) ==
create function public.apply_template(p_room_id uuid, p_template_id uuid)
returns setof uuid
language plpgsql set search_path = ''
as $$
declare
  v_template public.room_templates;
  v_element jsonb;
  v_conn jsonb;
  v_keys jsonb := '{}';
  v_id uuid;
begin
  -- Users must be owner or editor; the service role (workers, seeding) may apply anywhere.
  if not pg_has_role(current_user, 'service_role', 'member')
     and coalesce(private.room_role(p_room_id), '') not in ('owner', 'editor') then
    raise exception 'only the owner and editors of a room can apply a template'
      using errcode = '42501', hint = 'Ask the room owner to make you an editor.';
  end if;
  select t.* into v_template from public.room_templates t where t.id = p_template_id;
  if v_template.id is null then
    raise exception 'template not found' using errcode = 'P0002';
  end if;
  for v_element in select value from jsonb_array_elements(v_template.elements) loop
    insert into public.room_elements (room_id, kind, x, y, width, height, z_index, data)
    values (
      p_room_id,
      v_element ->> 'kind',
      coalesce((v_element ->> 'x')::double precision, 0),
      coalesce((v_element ->> 'y')::double precision, 0),
      coalesce((v_element ->> 'width')::double precision, 200),
      coalesce((v_element ->> 'height')::double precision, 120),
      coalesce((v_element ->> 'z_index')::integer, 0),
      coalesce(v_element -> 'data', '{}')
    )
    returning id into v_id;
    if v_element ? 'key' then
      v_keys := v_keys || jsonb_build_object(v_element ->> 'key', v_id);
    end if;
    return next v_id;
  end loop;
  for v_conn in select value from jsonb_array_elements(v_template.connections) loop
    if not (v_keys ? (v_conn ->> 'from') and v_keys ? (v_conn ->> 'to')) then
      raise exception 'template % connects unknown element keys % -> %',
        v_template.name, v_conn ->> 'from', v_conn ->> 'to' using errcode = '22023';
    end if;
    insert into public.room_element_connections (room_id, from_element_id, to_element_id, label)
    values (p_room_id, (v_keys ->> (v_conn ->> 'from'))::uuid, (v_keys ->> (v_conn ->> 'to'))::uuid,
            v_conn ->> 'label');
  end loop;
end;
$$;
revoke execute on function public.apply_template(uuid, uuid) from public, anon;
grant execute on function public.apply_template(uuid, uuid) to authenticated, service_role;

-- == grants and row level security ==
grant select on public.room_templates to anon;
grant select, insert (kind, name, description, visibility, elements, connections, owner_id),
  update (kind, name, description, visibility, elements, connections), delete
  on public.room_templates to authenticated;
grant select, insert, update, delete on public.room_templates to service_role;
alter table public.room_templates enable row level security;

create policy "everyone reads built-in and public templates, users their own" on public.room_templates
  for select to anon, authenticated
  using (owner_id is null or visibility = 'public' or owner_id = (select auth.uid()));
create policy "users create their own templates" on public.room_templates
  for insert to authenticated with check (owner_id = (select auth.uid()));
create policy "users change their own templates" on public.room_templates
  for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy "users delete their own templates" on public.room_templates
  for delete to authenticated using (owner_id = (select auth.uid()));

-- == comments ==
comment on table public.room_templates is
  'Room templates and frameworks. Built-in ones have owner_id null; users create their own (private or '
  'public). Apply with rpc apply_template(room, template).';
comment on column public.room_templates.elements is
  'Array of {key, kind, x, y, width, height, z_index, data}; key names the element for connections.';
comment on column public.room_templates.connections is 'Array of {from, to, label} using element keys.';
comment on function public.apply_template(uuid, uuid) is
  'Owner/editors: create the template''s elements and connections in the room in one transaction; '
  'returns the new element ids. The element cap applies.';
