-- library: per-user API rate limits in PostgREST's pre-request hook.
-- Why: the music sketchpad asks for 1,000 reads and 100 writes per hour and
-- 1 bulk import per hour per user. Limits are plan columns; counting reuses
-- the foundation's exact sliding-window limiter (private.rate_limit_take /
-- rate_limit_enforce). PostgREST runs private.api_pre_request() before every
-- Data API request in the caller's role with request.method and the claims
-- set; over the limit it raises SQLSTATE PT429, which PostgREST turns into
-- HTTP 429 with our message (it adds no Retry-After header, so the message
-- and hint say when to retry).
--
-- PostgREST runs GET/HEAD requests (and POSTs to STABLE/IMMUTABLE functions)
-- in READ ONLY transactions, where nothing can be recorded. There the hook
-- only checks the window (a client whose budget is used up is refused) but
-- cannot count the request. Requests in read-write transactions (POST, PATCH,
-- PUT, DELETE; POST to a VOLATILE rpc) are counted exactly. The library's
-- read RPCs (sync_pull, open_share, explore, public_profile, get_backup) are
-- VOLATILE and classified as reads, so they are counted against the read
-- budget.

-- == plan limits ==
alter table public.plans
  add column api_reads_per_hour integer not null default 1000 constraint plans_api_reads_nonnegative check (api_reads_per_hour >= 0),
  add column api_writes_per_hour integer not null default 100 constraint plans_api_writes_nonnegative check (api_writes_per_hour >= 0),
  add column imports_per_hour integer not null default 1 constraint plans_imports_nonnegative check (imports_per_hour >= 0);
update public.plans set api_reads_per_hour = 1000, api_writes_per_hour = 100, imports_per_hour = 1 where id = 'free';
update public.plans set api_reads_per_hour = 20000, api_writes_per_hour = 5000, imports_per_hour = 20 where id = 'pro';

comment on column public.plans.api_reads_per_hour is 'Data API reads (GET/HEAD and read RPCs) per user per sliding hour.';
comment on column public.plans.api_writes_per_hour is 'Data API writes (POST/PATCH/PUT/DELETE) per user per sliding hour.';
comment on column public.plans.imports_per_hour is 'Bulk imports (rpc import_local) per user per sliding hour.';

-- == functions (schema private: not exposed) ==

-- The plan of a user (free when unknown, e.g. a request without a user).
create function private.plan_of(p_user_id uuid) returns public.plans
language plpgsql stable security definer set search_path = ''
as $$
declare
  v public.plans;
begin
  if p_user_id is not null and current_setting('role', true) in ('anon', 'authenticated')
     and p_user_id is distinct from (select auth.uid()) then
    raise exception 'plan_of: not your user id' using errcode = '42501';
  end if;
  select pl.* into v from public.plans pl
   where pl.id = coalesce((select p.plan from public.profiles p where p.id = p_user_id), 'free');
  return v;
end;
$$;
revoke execute on function private.plan_of(uuid) from public;
-- authenticated: invoker RPCs (import_local) read their own caller's plan through it.
grant execute on function private.plan_of(uuid) to authenticated, service_role;

-- Check-only variant for READ ONLY transactions: refuse when the window is full.
create function private.rate_limit_check(p_key text, p_limit integer, p_window interval) returns void
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_used integer;
  v_oldest timestamptz;
  v_retry integer;
begin
  select count(*)::integer, min(e.at) into v_used, v_oldest
    from private.rate_limit_events e where e.key = p_key and e.at > clock_timestamp() - p_window;
  if v_used >= p_limit then
    v_retry := greatest(1, ceil(extract(epoch from (v_oldest + p_window - clock_timestamp())))::integer);
    raise sqlstate 'PT429' using
      message = format('rate limit exceeded: at most %s per %s; retry in %s seconds', p_limit, p_window, v_retry),
      detail = format('retry_after_seconds=%s', v_retry),
      hint = format('Retry after %s seconds.', v_retry);
  end if;
end;
$$;
revoke execute on function private.rate_limit_check(text, integer, interval) from public;
grant execute on function private.rate_limit_check(text, integer, interval) to service_role;

-- The PostgREST pre-request hook (pgrst.db_pre_request).
-- The client address of an anonymous request: the address the edge sets
-- (cf-connecting-ip / x-real-ip), else the X-Forwarded-For entry
-- `app.trusted_proxy_hops` (default 1) from the right: entries further left
-- are written by the client. Unknown -> one shared bucket, never unlimited.
create function private.client_address() returns text
language plpgsql stable set search_path = ''
as $$
declare
  v_h jsonb := coalesce(nullif(current_setting('request.headers', true), '')::jsonb, '{}');
  v_xff text[];
  v_hops integer := coalesce(nullif(current_setting('app.trusted_proxy_hops', true), '')::integer, 1);
begin
  if nullif(trim(v_h ->> 'cf-connecting-ip'), '') is not null then
    return trim(v_h ->> 'cf-connecting-ip');
  end if;
  if nullif(trim(v_h ->> 'x-real-ip'), '') is not null then
    return trim(v_h ->> 'x-real-ip');
  end if;
  v_xff := regexp_split_to_array(coalesce(v_h ->> 'x-forwarded-for', ''), '\s*,\s*');
  return nullif(trim(v_xff[greatest(cardinality(v_xff) - v_hops + 1, 1)]), '');
end;
$$;
revoke execute on function private.client_address() from public;
grant execute on function private.client_address() to anon, authenticated, service_role;

create function private.api_pre_request() returns void
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
  v_is_read := v_method in ('GET', 'HEAD')
    or (v_method = 'POST' and v_path in ('/rpc/sync_pull', '/rpc/open_share', '/rpc/explore',
                                         '/rpc/public_profile', '/rpc/get_backup'));
  v_key := 'api:' || case when v_is_read then 'read:' else 'write:' end || v_sub;
  v_limit := case when v_is_read then v_plan.api_reads_per_hour else v_plan.api_writes_per_hour end;
  if current_setting('transaction_read_only') = 'on' then
    perform private.rate_limit_check(v_key, v_limit, interval '1 hour');
  else
    perform private.rate_limit_enforce(v_key, v_limit, interval '1 hour');
  end if;
end;
$$;
revoke execute on function private.api_pre_request() from public;
grant execute on function private.api_pre_request() to anon, authenticated, service_role;

comment on function private.api_pre_request() is
  'PostgREST db-pre-request hook: counts each Data API request per user and plan (reads vs writes, sliding hour); '
  'raises PT429 (HTTP 429) with the retry time when over the limit. Service role is not limited.';
comment on function private.rate_limit_check(text, integer, interval) is
  'Raise PT429 when the sliding window of key is full, without recording (for READ ONLY transactions).';

-- == registration ==
alter role authenticator set pgrst.db_pre_request to 'private.api_pre_request';
notify pgrst, 'reload config';
