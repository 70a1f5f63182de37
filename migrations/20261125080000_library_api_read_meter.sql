-- library: count Data API reads, which PostgREST runs in READ ONLY transactions.
-- Why: the API rate limit must count every request, reads included (1,000
-- reads per hour for the music sketchpad). PostgREST runs GET/HEAD requests
-- in READ ONLY transactions, where the pre-request hook cannot write, so
-- until now it only checked the read window. A read is now counted in an
-- autonomous transaction: through dblink the hook opens, once per PostgREST
-- connection, a session as the role `backline_api_meter`, which can do one
-- thing: take a read slot with the same exact limiter (so 50 concurrent GETs
-- at a limit of 10 let exactly 10 through).
--
-- The meter is configured by the operator (`backline db read-meter enable`,
-- done by `backline up` on the embedded server): the connection parameters
-- live in private.api_read_meter, never the database name (the meter always
-- connects to current_database(), so clones and restores meter themselves).
-- A read is any request PostgREST runs read-only (GET/HEAD, POST to a
-- STABLE function) plus the library's volatile read RPCs. Unconfigured, on a
-- read replica, or if the meter cannot be reached or refuses the call, reads
-- fall back to check-only (the earlier behaviour) with a warning in the
-- server log: a limiter outage must not take every read down with it.

create extension if not exists dblink with schema extensions;

-- Nothing but the definer functions below may open connections: API roles
-- must not reach dblink (it is granted to PUBLIC by default).
-- A role that does not own the extension (hosted Supabase creates it as
-- supabase_admin) revokes nothing: then say so. Schema extensions is not
-- exposed, so the Data API cannot call dblink either way.
do $$
declare
  f regprocedure;
  v_still_granted integer := 0;
begin
  for f in
    select p.oid::regprocedure from pg_catalog.pg_proc p
      join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
      join pg_catalog.pg_extension e on e.oid = d.refobjid and e.extname = 'dblink'
  loop
    execute format('revoke execute on function %s from public, anon, authenticated, service_role', f);
    if pg_catalog.has_function_privilege('authenticated', f, 'execute') then
      v_still_granted := v_still_granted + 1;
    end if;
  end loop;
  if v_still_granted > 0 then
    raise warning '% dblink functions stay executable by the API roles (their owner granted them to PUBLIC); '
      'the Data API cannot reach schema extensions, but revoke them as the extension''s owner if you can',
      v_still_granted;
  end if;
end;
$$;

-- The meter's login role (cluster-wide, so created only once per cluster).
do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'backline_api_meter') then
    create role backline_api_meter nologin noinherit;
  end if;
end;
$$;
comment on role backline_api_meter is
  'Backline: the autonomous session that counts Data API reads; may only call private.api_meter_take.';
grant usage on schema private to backline_api_meter;
-- A meter call must never hold a read for long (dblink waits are not interruptible on PG 15).
alter role backline_api_meter set statement_timeout = '2s';

-- == configuration ==
create table private.api_read_meter (
  id boolean primary key default true constraint api_read_meter_single_row check (id),
  conninfo text not null constraint api_read_meter_conninfo_has_no_dbname check (conninfo !~* '(^|\s)dbname\s*='),
  updated_at timestamptz not null default now()
);
alter table private.api_read_meter enable row level security;
revoke all on private.api_read_meter from public, anon, authenticated, service_role;

comment on table private.api_read_meter is
  'How the API hook reaches its meter session (libpq conninfo without dbname; may hold the meter role''s '
  'password, so no API role can read it). Empty: reads are checked, not counted.';

-- == functions (schema private: not exposed) ==

-- What the meter session runs: a read slot and nothing else. Over the limit it
-- raises the limiter's own PT429, which dblink hands to the hook unchanged
-- (SQLSTATE, message, hint), so the client gets the same 429 as for a write.
create function private.api_meter_take(p_key text, p_limit integer) returns void
language plpgsql security definer set search_path = ''
as $$
begin
  if p_key is null or p_key !~ '^api:read:' then
    raise exception 'the read meter only takes api:read: keys' using errcode = '22023';
  end if;
  perform private.rate_limit_enforce(p_key, p_limit, interval '1 hour');
end;
$$;
revoke execute on function private.api_meter_take(text, integer) from public;
grant execute on function private.api_meter_take(text, integer) to backline_api_meter;

-- Connection parameters plus this database (stored parameters never name one).
create function private.api_meter_conninfo(p_params text) returns text
language sql stable set search_path = ''
as $$
  select p_params || ' dbname=''' || replace(replace(current_database(), '\', '\\'), '''', '\''') || ''''
$$;
revoke execute on function private.api_meter_conninfo(text) from public;

-- Take a read slot in the meter session, opened on first use and reopened
-- once if it broke; over the limit the meter's PT429 is raised here. Returns
-- false when the read cannot be counted: the meter is not configured, this
-- server is a read-only replica, the meter cannot be reached (then this
-- connection skips it for 10 seconds, so an outage costs one connect timeout,
-- not one per read), or it failed otherwise.
create function private.api_meter_read(p_key text, p_limit integer) returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_conninfo text := private.api_meter_conninfo((select m.conninfo from private.api_read_meter m));
  v_query text := format('select private.api_meter_take(%L, %s)', p_key, p_limit);
  v_was_open boolean;
  v_error text;
begin
  if v_conninfo is null or pg_catalog.pg_is_in_recovery()
     or nullif(current_setting('backline.api_meter_retry_at', true), '')::timestamptz > clock_timestamp() then
    return false;
  end if;
  loop
    v_was_open := coalesce('backline_api_meter' = any(extensions.dblink_get_connections()), false);
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
        -- the meter answered with an error (e.g. its statement timeout): this read is not
        -- counted, the session stays open and the next read tries again
        raise warning 'api read meter refused a read slot, the read is checked but not counted: %', sqlerrm;
        return false;
    end;
    exit when not v_was_open;  -- a fresh connection failed: do not try again now
  end loop;
  perform set_config('backline.api_meter_retry_at', (clock_timestamp() + interval '10 seconds')::text, false);
  raise warning 'api read meter unavailable, reads are checked but not counted for 10 s: %', v_error;
  return false;
end;
$$;
revoke execute on function private.api_meter_read(text, integer) from public;

-- Used by `backline db read-meter enable` before it keeps a configuration:
-- who the meter session is and whether it may take read slots.
create function private.api_meter_probe(p_conninfo text)
returns table (meter_user text, can_take boolean)
language plpgsql volatile security definer set search_path = ''
as $$
begin
  return query select r.meter_user, r.can_take from extensions.dblink(
    private.api_meter_conninfo(p_conninfo),
    'select current_user::text, has_function_privilege(''private.api_meter_take(text, integer)'', ''execute'')'
  ) as r(meter_user text, can_take boolean);
end;
$$;
revoke execute on function private.api_meter_probe(text) from public;

-- The pre-request hook again, now counting reads through the meter.
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
  if not v_read_only then
    perform private.rate_limit_enforce(v_key, v_limit, interval '1 hour');
    return;
  end if;
  if not private.api_meter_read(v_key, v_limit) then
    perform private.rate_limit_check(v_key, v_limit, interval '1 hour');
  end if;
end;
$$;

comment on function private.api_pre_request() is
  'PostgREST db-pre-request hook: counts each Data API request per user and plan (reads vs writes, sliding hour); '
  'reads in READ ONLY transactions are counted through the read meter (private.api_read_meter) when configured. '
  'Raises PT429 (HTTP 429) with the retry time when over the limit. Service role is not limited.';
comment on column public.plans.api_reads_per_hour is
  'Data API reads per user per sliding hour: requests PostgREST runs read-only (GET/HEAD, rpc to STABLE '
  'functions) and the library''s read RPCs.';
comment on function private.api_meter_read(text, integer) is
  'Take a Data API read slot in the autonomous meter session (PT429 over the limit); false when the read '
  'could not be counted (meter not configured, replica, unreachable or failing).';
comment on function private.api_meter_take(text, integer) is
  'The only thing the meter role may do: take an api:read: slot (one hour window; PT429 over the limit).';
comment on function private.api_meter_probe(text) is
  'Connect as the meter would with these parameters; returns the session user and whether it may take slots.';
