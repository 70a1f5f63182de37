-- rooms: canvas elements and the connections between them.
-- Why: the canvas is rows members edit together (realtime streams them).
-- Editors and the owner write, viewers only read. version and updated_by are
-- kept by the database so clients can do optimistic updates
-- (`update ... where id = $1 and version = $2`). A room holds at most the
-- owner's plan's room_elements_max elements; a connection's two ends are in
-- the connection's room (composite foreign keys). An image element names its
-- file under images/rooms/<room id>/...; the link is recorded in
-- public.file_links (ref_kind 'room_element') for orphan detection.

-- == tables ==
create table public.room_elements (
  id uuid primary key default gen_random_uuid(),
  room_id uuid not null references public.rooms (id) on delete cascade,
  kind text not null constraint room_elements_kind_known check (
    kind in ('text', 'note', 'image', 'chat', 'shape', 'connector', 'frame', 'link')
  ),
  x double precision not null default 0,
  y double precision not null default 0,
  width double precision not null default 200 constraint room_elements_width_positive check (width > 0),
  height double precision not null default 120 constraint room_elements_height_positive check (height > 0),
  z_index integer not null default 0,
  data jsonb not null default '{}' constraint room_elements_data_is_small_object check (
    jsonb_typeof(data) = 'object' and pg_column_size(data) <= 65536
  ),
  image_path text constraint room_elements_image_path_in_room check (
    image_path is null
    or (image_path ~ '^rooms/[0-9a-f-]{36}/[^/]' and length(image_path) <= 1024
        and split_part(image_path, '/', 2) = room_id::text)
  ),
  created_by uuid references auth.users (id) on delete set null,
  updated_by uuid references auth.users (id) on delete set null,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint room_elements_room_id_id_key unique (room_id, id)
);
create index room_elements_room_id_z_idx on public.room_elements (room_id, z_index);
create index room_elements_created_by_idx on public.room_elements (created_by);
create index room_elements_updated_by_idx on public.room_elements (updated_by);

create table public.room_element_connections (
  id uuid primary key default gen_random_uuid(),
  room_id uuid not null references public.rooms (id) on delete cascade,
  from_element_id uuid not null,
  to_element_id uuid not null,
  label text constraint room_element_connections_label_length check (length(label) <= 200),
  data jsonb not null default '{}' constraint room_element_connections_data_is_small_object check (
    jsonb_typeof(data) = 'object' and pg_column_size(data) <= 8192
  ),
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  constraint room_element_connections_not_to_itself check (from_element_id <> to_element_id),
  constraint room_element_connections_once unique (from_element_id, to_element_id),
  constraint room_element_connections_from_in_room foreign key (room_id, from_element_id)
    references public.room_elements (room_id, id) on delete cascade,
  constraint room_element_connections_to_in_room foreign key (room_id, to_element_id)
    references public.room_elements (room_id, id) on delete cascade
);
create index room_element_connections_room_id_from_idx
  on public.room_element_connections (room_id, from_element_id);
create index room_element_connections_room_id_to_idx on public.room_element_connections (room_id, to_element_id);
create index room_element_connections_to_element_id_idx on public.room_element_connections (to_element_id);
create index room_element_connections_created_by_idx on public.room_element_connections (created_by);

-- == functions (schema private: not exposed) ==
-- Stamps author/editor and version on API writes; room_id never changes.
create function private.room_elements_stamp() returns trigger
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
revoke execute on function private.room_elements_stamp() from public;

create trigger room_elements_stamp before insert or update on public.room_elements
  for each row execute function private.room_elements_stamp();

-- The cap: serialised per room (row lock on the room), counted per insert.
create function private.enforce_room_element_cap() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_max integer;
  v_plan text;
  v_count integer;
begin
  select pl.room_elements_max, pl.id into v_max, v_plan
    from public.rooms r
    join public.profiles p on p.id = r.owner_id
    join public.plans pl on pl.id = p.plan
   where r.id = new.room_id
     for no key update of r;
  if v_max is null then
    return new;  -- unknown room: the foreign key reports it
  end if;
  select count(*) into v_count from public.room_elements e where e.room_id = new.room_id;
  if v_count >= v_max then
    raise exception 'room element limit reached: a room on the % plan holds at most % elements', v_plan, v_max
      using errcode = '23514', hint = 'Delete elements, or the room owner upgrades the plan.';
  end if;
  return new;
end;
$$;
revoke execute on function private.enforce_room_element_cap() from public;

create trigger room_elements_enforce_cap before insert on public.room_elements
  for each row execute function private.enforce_room_element_cap();

-- Keeps public.file_links in step with image_path (ref_kind 'room_element').
create function private.link_room_element_file() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_owner text;
begin
  if tg_op in ('UPDATE', 'DELETE') and (tg_op = 'DELETE' or old.image_path is distinct from new.image_path) then
    delete from public.file_links l where l.ref_kind = 'room_element' and l.ref_id = old.id;
  end if;
  if tg_op in ('INSERT', 'UPDATE') and new.image_path is not null
     and (tg_op = 'INSERT' or old.image_path is distinct from new.image_path) then
    select o.owner_id into v_owner from storage.objects o
     where o.bucket_id = 'images' and o.name = new.image_path;
    if v_owner is null or v_owner !~ '^[0-9a-f-]{36}$' then
      raise exception 'image not found: images/% (upload it first)', new.image_path
        using errcode = '23503', hint = 'Upload the file to images/rooms/<room id>/..., then set image_path.';
    end if;
    insert into public.file_links (owner_id, bucket_id, object_name, ref_kind, ref_id)
    values (v_owner::uuid, 'images', new.image_path, 'room_element', new.id)
    on conflict do nothing;
  end if;
  return null;
end;
$$;
revoke execute on function private.link_room_element_file() from public;

create trigger room_elements_link_file after insert or update of image_path or delete on public.room_elements
  for each row execute function private.link_room_element_file();

create function private.room_connections_stamp() returns trigger
language plpgsql set search_path = ''
as $$
begin
  new.created_by := coalesce((select auth.uid()), new.created_by);
  return new;
end;
$$;
revoke execute on function private.room_connections_stamp() from public;

create trigger room_element_connections_stamp before insert on public.room_element_connections
  for each row execute function private.room_connections_stamp();

-- == grants and row level security ==
grant select,
  insert (id, room_id, kind, x, y, width, height, z_index, data, image_path),
  update (kind, x, y, width, height, z_index, data, image_path),
  delete
  on public.room_elements to authenticated;
grant select, insert, update, delete on public.room_elements to service_role;
alter table public.room_elements enable row level security;

create policy "members read room elements" on public.room_elements
  for select to authenticated using (room_id in (select private.my_room_ids()));
create policy "editors add room elements" on public.room_elements
  for insert to authenticated with check (room_id in (select private.my_editable_room_ids()));
create policy "editors change room elements" on public.room_elements
  for update to authenticated
  using (room_id in (select private.my_editable_room_ids()))
  with check (room_id in (select private.my_editable_room_ids()));
create policy "editors delete room elements" on public.room_elements
  for delete to authenticated using (room_id in (select private.my_editable_room_ids()));

grant select, insert (id, room_id, from_element_id, to_element_id, label, data),
  update (label, data), delete
  on public.room_element_connections to authenticated;
grant select, insert, update, delete on public.room_element_connections to service_role;
alter table public.room_element_connections enable row level security;

create policy "members read element connections" on public.room_element_connections
  for select to authenticated using (room_id in (select private.my_room_ids()));
create policy "editors connect elements" on public.room_element_connections
  for insert to authenticated with check (room_id in (select private.my_editable_room_ids()));
create policy "editors change element connections" on public.room_element_connections
  for update to authenticated
  using (room_id in (select private.my_editable_room_ids()))
  with check (room_id in (select private.my_editable_room_ids()));
create policy "editors remove element connections" on public.room_element_connections
  for delete to authenticated using (room_id in (select private.my_editable_room_ids()));

-- == comments ==
comment on table public.room_elements is
  'Canvas elements of a room. Members read; owner and editors write. At most plans.room_elements_max '
  'per room (room owner''s plan; error 23514). version increases on every update: send '
  '`version=eq.<n>` with updates to avoid overwriting someone else''s change.';
comment on column public.room_elements.kind is 'text, note, image, chat, shape, connector, frame or link.';
comment on column public.room_elements.z_index is 'Stacking order; higher is drawn on top.';
comment on column public.room_elements.data is 'Client-owned JSON object (text, colour, style, ...), up to 64 kB.';
comment on column public.room_elements.image_path is
  'For image elements: the object path in bucket images, rooms/<this room id>/<file>. Upload first.';
comment on column public.room_elements.updated_by is 'Last editor (set by the database).';
comment on column public.room_elements.version is 'Starts at 1, +1 on every update (set by the database).';
comment on table public.room_element_connections is
  'Arrows between two elements of the same room. Members read; owner and editors write.';
