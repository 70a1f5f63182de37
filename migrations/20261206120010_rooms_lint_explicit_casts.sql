-- apply_template passes `supabase db lint --level warning` (issue #15 item 5):
-- its '{}' initialiser is cast to jsonb explicitly instead of implicitly from
-- text (plpgsql_check: "target type is different type than source type").
-- Latest definition (20261206090100_security_http_statuses.sql), otherwise
-- unchanged; `create or replace` keeps its grants and comment.

create or replace function public.apply_template(p_room_id uuid, p_template_id uuid)
returns setof uuid
language plpgsql set search_path = ''
as $$
declare
  v_template public.room_templates;
  v_element jsonb;
  v_conn jsonb;
  v_keys jsonb := '{}'::jsonb;
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
    raise exception 'template not found' using errcode = 'PT404',
      hint = 'Use a built-in template, a public one or one of your own (GET /rest/v1/room_templates).';
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
