-- ratelimit: a request the API rate limiter admitted stays counted when it fails.
-- Why (issue #12): the pre-request hook counted writes and the volatile read
-- RPCs inside the request's own transaction, so a request that failed later
-- (a constraint error, a bad token, a refused id) rolled its count back with
-- it: at a write limit of 5, ten failing writes were all free and a valid one
-- still passed. Anyone could guess tokens or probe ids without limit.
--
-- Now every request the hook admits (writes, read RPCs and plain reads) takes
-- its slot in the meter session: the autonomous dblink session that already
-- counted reads (20261125080000). Its slot is committed before the request's
-- own work starts, so the request's rollback cannot undo it. The meter role
-- may now take `api:write:` slots as well as `api:read:` ones; that is still
-- all it can do. As a side effect a write no longer holds the per-user
-- limiter lock for the whole request, only for the meter's own statement.
--
-- When the meter is not configured, on a read replica, unreachable or
-- refusing (e.g. its 2 s statement timeout), the hook falls back to what it
-- did before: writes and read RPCs are counted in the request's transaction
-- (so a failing one is not counted), plain reads are only checked against the
-- window. An unreachable meter is retried at most every 10 seconds per
-- connection, and that back-off is now kept in a session advisory lock
-- instead of a session setting: a setting is reverted when the request's
-- transaction rolls back, so failing requests would otherwise retry the
-- connection (and log a warning) every time. docs/rate-limits.md says what is
-- counted where.
--
-- Replaces private.api_meter_read (which only counted reads) with
-- private.api_meter_count, redefines private.api_meter_take and
-- private.api_pre_request (latest definitions: 20261125080000).

-- A meter slot is committed on its own: without waiting for the WAL flush
-- (on a crash the last fraction of a second of counts may be lost, never a
-- refusal wrongly given), so counting costs one round trip, not one fsync.
alter role backline_api_meter set synchronous_commit = off;
comment on role backline_api_meter is
  'Backline: the autonomous session that counts Data API requests (reads and writes) so that a failing '
  'request stays counted; may only call private.api_meter_take.';

-- == functions (schema private: not exposed) ==

-- What the meter session runs: a read or a write slot, nothing else.
create or replace function private.api_meter_take(p_key text, p_limit integer) returns void
language plpgsql security definer set search_path = ''
as $$
begin
  if p_key is null or p_key !~ '^api:(read|write):' then
    raise exception 'the api meter only takes api:read: and api:write: keys' using errcode = '22023',
      hint = 'Keys are built by private.api_pre_request.';
  end if;
  perform private.rate_limit_enforce(p_key, p_limit, interval '1 hour');
end;
$$;

drop function private.api_meter_read(text, integer);

-- Take a slot in the meter session, opened on first use and reopened once if
-- it broke; over the limit the meter's PT429 is raised here. Returns false
-- when the request could not be counted there: the meter is not configured,
-- this server is a read-only replica, the meter cannot be reached (then this
-- connection skips it for 10 seconds, so an outage costs one connect attempt
-- per 10 s, not one per request), or it failed otherwise.
--
-- The back-off is a session advisory lock (key 1112364132, retry time in
-- seconds since 2026-01-01): unlike a session setting it survives the
-- rollback of the failing request that noticed the outage. It is looked up
-- only while no meter connection is open.
create function private.api_meter_count(p_key text, p_limit integer) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_conninfo text := private.api_meter_conninfo((select m.conninfo from private.api_read_meter m));
  v_query text := format('select private.api_meter_take(%L, %s)', p_key, p_limit);
  v_epoch constant timestamptz := '2026-01-01 00:00:00+00';
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
revoke execute on function private.api_meter_count(text, integer) from public, anon, authenticated, service_role;

-- The pre-request hook again: every admitted request is counted in the meter
-- session when it can be, in its own transaction only as the fallback.
create or replace function private.api_pre_request() returns void
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  v_method text := upper(coalesce(current_setting('request.method', true), ''));
  v_path text := coalesce(current_setting('request.path', true), '');
  v_sub text := v_claims ->> 'sub';
  v_role text := coalesce(v_claims ->> 'role', 'anon');
  v_plan public.plans;
  v_is_read boolean;
  v_key text;
  v_limit integer;
  v_read_only boolean := current_setting('transaction_read_only') = 'on';
begin
  if v_role = 'service_role' or v_method = '' or v_method = 'OPTIONS' then
    return;
  end if;
  if v_sub is null then
    -- A request with the anon key and no user: count per client address when known.
    v_sub := 'ip:' || coalesce(private.client_address(), 'unknown');
    v_plan := private.plan_of(null);
  elsif v_sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_plan := private.plan_of(v_sub::uuid);
  else
    v_plan := private.plan_of(null);  -- a custom token whose sub is not a user id: free limits
  end if;
  -- The subject and the client address come from the client: keep long ones to a fixed-size key.
  if length(v_sub) > 100 then
    v_sub := 'sha256:' || encode(sha256(convert_to(v_sub, 'UTF8')), 'hex');
  end if;
  -- A read-only transaction is a read: GET/HEAD, and POST to a STABLE function (PostgREST runs
  -- those read-only too), as are the library's volatile read RPCs.
  v_is_read := v_read_only or v_method in ('GET', 'HEAD')
    or (v_method = 'POST' and v_path in ('/rpc/sync_pull', '/rpc/open_share', '/rpc/explore',
                                         '/rpc/public_profile', '/rpc/get_backup'));
  v_key := 'api:' || case when v_is_read then 'read:' else 'write:' end || v_sub;
  v_limit := case when v_is_read then v_plan.api_reads_per_hour else v_plan.api_writes_per_hour end;
  -- Counted in the meter session: committed already, so it stays counted if this request fails.
  if private.api_meter_count(v_key, v_limit) then
    return;
  end if;
  -- Fallback (no meter): count in this transaction; a read-only one can only check the window.
  if v_read_only then
    perform private.rate_limit_check(v_key, v_limit, interval '1 hour');
  else
    perform private.rate_limit_enforce(v_key, v_limit, interval '1 hour');
  end if;
end;
$$;

comment on function private.api_pre_request() is
  'PostgREST db-pre-request hook: counts each Data API request per user and plan (reads vs writes, sliding hour) '
  'in the meter session (private.api_read_meter), so a request that fails later stays counted; without a '
  'working meter, writes and read RPCs are counted in the request''s transaction and plain reads only checked. '
  'Raises PT429 (HTTP 429) with the retry time when over the limit. Service role is not limited.';
comment on function private.api_meter_count(text, integer) is
  'Take a Data API slot (read or write) in the autonomous meter session, committed at once (PT429 over the '
  'limit); false when it could not be counted there (meter not configured, replica, unreachable or failing).';
comment on function private.api_meter_take(text, integer) is
  'The only thing the meter role may do: take an api:read: or api:write: slot (one hour window; PT429 over '
  'the limit).';
comment on table private.api_read_meter is
  'How the API hook reaches its meter session (libpq conninfo without dbname; may hold the meter role''s '
  'password, so no API role can read it). Empty: writes are counted in their own transaction (a failing one '
  'is not counted) and reads are checked, not counted.';
