-- library: anonymous API requests are counted per real client address.
-- Why: api_pre_request keyed anonymous requests on the FIRST X-Forwarded-For
-- entry, which the client writes itself (proxies append), and did not count
-- requests without the header at all. Now: the address the edge sets
-- (cf-connecting-ip / x-real-ip), else the X-Forwarded-For entry
-- `app.trusted_proxy_hops` (default 1) from the right; no address -> one
-- shared bucket ('ip:unknown'), never unlimited.

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

-- api_pre_request: anonymous requests keyed by private.client_address() (body otherwise unchanged).
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
