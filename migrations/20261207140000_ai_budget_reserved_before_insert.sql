-- ai: an admission reserves on the month's budget row first and creates the row only
-- when it is missing. Why: private.ai_begin ran `insert ... on conflict do nothing`
-- before every reservation, although the row exists from the user's first call of the
-- month on; that insert, and the statement-level audit trigger it fires even when it
-- inserts nothing, cost ~25-35 us of server CPU per admission (a loop of admissions
-- on one connection, docs/benchmarks.md; issue #17's latency). The reservation is the
-- same guarded update as before, run again after the insert when it found no row, so
-- a missing row and a full budget (PT402) behave as before
-- (tests/ai/test_admission_budget_sql.py), and so do twenty concurrent first calls of
-- a user (tests/ai/test_limits.py, parallel requests never overspend).
-- Also drops the body's `set_config('synchronous_commit', 'off', true)`: the function's
-- `set synchronous_commit = on` (20261206100001) has confined it to the call since then,
-- so it did nothing; the clause is restated here because `create or replace` replaces
-- a function's settings with the ones it names.
-- Redefines private.ai_begin (latest: 20261206090100_security_http_statuses.sql);
-- signature, privileges and comment are unchanged.

create or replace function private.ai_begin(
  p_provider text, p_model text, p_est_input_tokens integer, p_est_output_tokens integer,
  p_images integer default 0, p_endpoint text default 'generate', p_streamed boolean default false,
  p_key_id uuid default null,
  p_fallback_provider text default null, p_fallback_model text default null,
  p_fallback_of uuid default null, p_fallback_ticket text default null,
  p_request_id uuid default null, p_request_ticket text default null
) returns table (outcome text, usage_id uuid, ticket text, retry_after_seconds integer, remaining integer,
                 budget_left_usd numeric, input_usd_per_mtok numeric, output_usd_per_mtok numeric,
                 usd_per_image numeric)
language plpgsql security definer set search_path = '' set synchronous_commit = on
as $$
declare
  v_uid uuid := auth.uid();
  v_plan public.plans;
  v_rl record;
  v_remaining integer;
  v_month date := date_trunc('month', now() at time zone 'utc')::date;
  v_key_provider text;
  v_in numeric := 0;
  v_out numeric := 0;
  v_img numeric := 0;
  v_est numeric;
  v_left numeric;
  v_id uuid;
  v_ticket text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  v_exempt boolean := false;
begin
  if v_uid is null then
    raise exception 'AI requests need a signed-in user' using errcode = '42501';
  end if;
  if p_provider is null or p_model is null or length(p_model) not between 1 and 200 then
    raise exception 'provider and model are required' using errcode = '22023';
  end if;
  if (p_fallback_provider is null) <> (p_fallback_model is null)
     or length(p_fallback_model) not between 1 and 200 then
    raise exception 'a fallback needs both provider and model' using errcode = '22023';
  end if;
  if p_fallback_of is not null and (p_request_id is not null or p_fallback_provider is not null) then
    raise exception 'a fallback attempt cannot declare its own fallback or a queue request'
      using errcode = '22023';
  end if;

  if p_key_id is not null then
    select k.provider into v_key_provider from public.ai_keys k
     where k.id = p_key_id and k.user_id = v_uid and (k.expires_at is null or k.expires_at > now());
    if not found then
      raise exception 'AI key % not found, not yours, or expired', p_key_id using errcode = 'PT404',
        hint = 'List your keys with GET /v1/keys; store it again if it expired.';
    end if;
    if v_key_provider <> p_provider then
      raise exception 'key % is a % key, not %', p_key_id, v_key_provider, p_provider
        using errcode = '22023';
    end if;
  end if;

  if p_fallback_of is not null then
    update private.ai_usage_tickets t set fallback_used = true
      from public.ai_usage u
     where t.usage_id = p_fallback_of and u.id = t.usage_id
       and u.user_id = v_uid and u.status = 'pending' and not t.fallback_used
       and t.ticket_sha256 = private.ai_ticket_hash(p_fallback_ticket)
       and t.fallback_provider = p_provider and t.fallback_model = p_model;
    if not found then
      raise exception 'fallback attempt refused: % is not a pending call of yours with fallback %/% left',
        p_fallback_of, p_provider, p_model using errcode = '42501',
        hint = 'Only the proxy that admitted the primary call may admit its one fallback.';
    end if;
    v_exempt := true;
  elsif p_request_id is not null then
    delete from private.ai_request_tickets t
     using public.ai_requests r
     where t.request_id = p_request_id and r.id = t.request_id
       and r.user_id = v_uid and r.status = 'running'
       and r.provider = p_provider and r.model = p_model
       and t.ticket_sha256 = private.ai_ticket_hash(p_request_ticket);
    if not found then
      raise exception 'queue admission refused for request %', p_request_id using errcode = '42501',
        hint = 'Only the worker that claimed the request may admit it, once per claim.';
    end if;
    v_exempt := true;
  end if;

  select pl.* into v_plan from public.plans pl
    join public.profiles pr on pr.plan = pl.id where pr.id = v_uid;
  if not found then
    select pl.* into v_plan from public.plans pl where pl.id = 'free';
  end if;

  if not v_exempt then
    select * into v_rl from private.rate_limit_take(
      'ai:' || v_uid, v_plan.ai_requests_per_window, make_interval(secs => v_plan.ai_window_seconds), 1);
    if not v_rl.allowed then
      return query select 'rate_limited'::text, null::uuid, null::text, v_rl.retry_after_seconds, 0,
                          null::numeric, null::numeric, null::numeric, null::numeric;
      return;
    end if;
    v_remaining := v_rl.remaining;
  end if;

  -- Unit prices now (as private.ai_price: exact model, else the provider's '*', else free).
  select p.input_usd_per_mtok, p.output_usd_per_mtok, p.usd_per_image into v_in, v_out, v_img
    from public.ai_prices p
   where p.provider = p_provider and p.model in (p_model, '*')
   order by (p.model = p_model) desc
   limit 1;
  v_in := coalesce(v_in, 0);
  v_out := coalesce(v_out, 0);
  v_img := coalesce(v_img, 0);
  v_est := (v_in * greatest(p_est_input_tokens, 0) + v_out * greatest(p_est_output_tokens, 0)) / 1000000
           + v_img * greatest(p_images, 0);

  -- The month's row exists after the user's first call of the month: reserve on it directly,
  -- and insert it only when the reservation found nothing (no row yet, or no room left).
  update private.ai_budget_months b
     set reserved_usd = b.reserved_usd + v_est
   where b.user_id = v_uid and b.month = v_month
     and b.spent_usd + b.reserved_usd + v_est <= v_plan.ai_monthly_budget_usd
  returning v_plan.ai_monthly_budget_usd - b.spent_usd - b.reserved_usd into v_left;
  if not found then
    insert into private.ai_budget_months (user_id, month) values (v_uid, v_month)
      on conflict do nothing;
    update private.ai_budget_months b
       set reserved_usd = b.reserved_usd + v_est
     where b.user_id = v_uid and b.month = v_month
       and b.spent_usd + b.reserved_usd + v_est <= v_plan.ai_monthly_budget_usd
    returning v_plan.ai_monthly_budget_usd - b.spent_usd - b.reserved_usd into v_left;
  end if;
  if not found then
    -- Raising undoes the rate-limit slot and a consumed exemption: a refused request counts nothing.
    raise exception 'monthly AI budget of % USD reached', v_plan.ai_monthly_budget_usd
      using errcode = 'PT402', hint = 'Wait for next month or upgrade your plan.';
  end if;

  insert into public.ai_usage (user_id, provider, model, endpoint, streamed, reserved_usd, budget_month)
    values (v_uid, p_provider, p_model, p_endpoint, p_streamed, v_est, v_month)
    returning id into v_id;
  insert into private.ai_usage_tickets (usage_id, ticket_sha256, fallback_provider, fallback_model,
                                        input_usd_per_mtok, output_usd_per_mtok, usd_per_image)
    values (v_id, private.ai_ticket_hash(v_ticket), p_fallback_provider, p_fallback_model,
            v_in, v_out, v_img);
  return query select 'ok'::text, v_id, v_ticket, 0, v_remaining, v_left, v_in, v_out, v_img;
end;
$$;
