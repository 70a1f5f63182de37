-- private.api_meter_count passes `supabase db lint --level warning` (issue #15
-- item 5): its epoch constant is cast to timestamptz explicitly instead of
-- implicitly from text (plpgsql_check: "target type is different type than
-- source type"). Latest definition
-- (20261206090700_ratelimit_count_failed_requests.sql), otherwise unchanged;
-- `create or replace` keeps its grants (SECURITY DEFINER in private, empty
-- search_path, as before).

create or replace function private.api_meter_count(p_key text, p_limit integer) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_conninfo text := private.api_meter_conninfo((select m.conninfo from private.api_read_meter m));
  v_query text := format('select private.api_meter_take(%L, %s)', p_key, p_limit);
  v_epoch constant timestamptz := '2026-01-01 00:00:00+00'::timestamptz;
  v_now_s bigint;
  v_marker oid;
  v_was_open boolean;
  v_error text;
begin
  if v_conninfo is null or pg_catalog.pg_is_in_recovery() then
    return false;
  end if;
  v_was_open := coalesce('backline_api_meter' = any(extensions.dblink_get_connections()), false);
  if not v_was_open then
    v_now_s := floor(extract(epoch from clock_timestamp() - v_epoch))::bigint;
    if exists (select from pg_catalog.pg_locks l
                where l.locktype = 'advisory' and l.pid = pg_catalog.pg_backend_pid()
                  and l.classid = 1112364132::oid and l.objsubid = 2 and l.objid::bigint > v_now_s) then
      return false;  -- backing off after a failed connect
    end if;
  end if;
  loop
    begin
      if not v_was_open then
        perform extensions.dblink_connect('backline_api_meter', v_conninfo);
      end if;
      perform from extensions.dblink('backline_api_meter', v_query) as r(taken text);
      return true;
    exception
      when sqlstate 'PT429' then
        raise;  -- over the limit: the meter's answer is the request's
      when connection_exception or sqlstate '2F003' then
        -- unreachable, closed, or authentication refused (2F003: dblink's "password is required")
        v_error := sqlerrm;
        if 'backline_api_meter' = any(extensions.dblink_get_connections()) then
          perform extensions.dblink_disconnect('backline_api_meter');
        end if;
      when others then
        -- the meter answered with an error (e.g. its statement timeout): this request is counted
        -- in its own transaction, the session stays open and the next request tries again
        raise warning 'api meter refused a slot: this request is counted in its own transaction '
          '(not at all if it fails; a read is only checked): %', sqlerrm;
        return false;
    end;
    exit when not v_was_open;  -- a fresh connection failed: do not try again now
    v_was_open := false;       -- the open one had broken: reconnect once
  end loop;
  -- Back off: replace this session's marker by one that expires in 10 seconds.
  for v_marker in
    select l.objid from pg_catalog.pg_locks l
     where l.locktype = 'advisory' and l.pid = pg_catalog.pg_backend_pid()
       and l.classid = 1112364132::oid and l.objsubid = 2 and l.granted
  loop
    perform pg_catalog.pg_advisory_unlock(1112364132, v_marker::bigint::integer);
  end loop;
  perform pg_catalog.pg_advisory_lock(
    1112364132, (floor(extract(epoch from clock_timestamp() - v_epoch)) + 10)::integer);
  raise warning 'api meter unavailable for 10 s: requests are counted in their own transaction '
    '(not at all if they fail; reads are only checked): %', v_error;
  return false;
end;
$$;
