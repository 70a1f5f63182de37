-- ai: admission and settlement only by whoever admitted the call (one-time tickets).
-- Why: private.ai_begin(..., p_take_rate_limit) and private.ai_finish(...)'s
-- provider/model override were executable by authenticated and trusted their
-- arguments. A signed-in user calling them directly could skip the rate limit
-- (p_take_rate_limit = false), settle the proxy's in-flight call at zero tokens
-- (its usage id is readable in public.ai_usage), releasing the reservation and
-- skipping the budget, or re-price a call as another model.
-- Now every admission returns a ticket: a random one-time secret that only the
-- caller of ai_begin sees (its sha256 is kept in a private table no API role can
-- read). Then:
--  * ai_begin always takes a rate-limit slot, except for
--    (a) a fallback attempt: it names the admitted primary call's usage row and
--        its ticket; the primary belongs to the same user, is still pending, its
--        recorded fallback target is exactly this provider/model, and it allows
--        ONE fallback (a fallback row records no further fallback: no chains);
--    (b) a queue request whose insert already took the slot: the worker proves it
--        holds the ticket private.ai_request_claim (service_role only) issued for
--        this attempt; the provider/model are the request's; one admission per claim.
--  * ai_finish needs the row's ticket (so only the admitting proxy can settle, once)
--    and no longer takes a provider/model override: a row is always settled as the
--    provider/model it was admitted for (a fallback is its own usage row).
--  * The budget is always reserved; the cost is computed from the unit prices
--    captured at admission (also returned to the proxy, so a JSON response can
--    carry the exact cost while settlement runs after the response is sent).
-- ai_begin also checks a stored key (p_key_id: the caller's, unexpired, of this
-- provider) before taking a slot, so the proxy can pipeline key lookup and
-- admission in one round trip and a bad key id still takes no slot.

-- == tables ==
create table private.ai_usage_tickets (
  usage_id uuid primary key references public.ai_usage (id) on delete cascade,
  ticket_sha256 bytea not null,
  fallback_provider text,
  fallback_model text,
  fallback_used boolean not null default false,
  input_usd_per_mtok numeric(12, 6) not null default 0,
  output_usd_per_mtok numeric(12, 6) not null default 0,
  usd_per_image numeric(12, 6) not null default 0,
  constraint ai_usage_tickets_fallback_whole
    check ((fallback_provider is null) = (fallback_model is null))
);

create table private.ai_request_tickets (
  request_id uuid primary key references public.ai_requests (id) on delete cascade,
  ticket_sha256 bytea not null,
  issued_at timestamptz not null default now()
);

-- == grants and row level security ==
-- No API role gets any privilege; only the definer functions below touch them.
revoke all on private.ai_usage_tickets from public, anon, authenticated, service_role;
alter table private.ai_usage_tickets enable row level security;
revoke all on private.ai_request_tickets from public, anon, authenticated, service_role;
alter table private.ai_request_tickets enable row level security;

-- == functions ==
drop function private.ai_begin(text, text, integer, integer, integer, text, boolean, boolean);
drop function private.ai_finish(uuid, text, integer, integer, integer, integer, text, text, text);

create function private.ai_ticket_hash(p_ticket text) returns bytea
language sql immutable set search_path = ''
as $$ select sha256(convert_to(coalesce(p_ticket, ''), 'UTF8')) $$;
revoke execute on function private.ai_ticket_hash(text) from public;

-- Admission for auth.uid(): stored-key check, rate-limit slot (unless a verified
-- fallback/queue exemption), budget reservation, usage row, ticket.
-- outcome: 'ok' (usage_id, ticket, unit prices set) or 'rate_limited' (retry_after_seconds).
create function private.ai_begin(
  p_provider text, p_model text, p_est_input_tokens integer, p_est_output_tokens integer,
  p_images integer default 0, p_endpoint text default 'generate', p_streamed boolean default false,
  p_key_id uuid default null,
  p_fallback_provider text default null, p_fallback_model text default null,
  p_fallback_of uuid default null, p_fallback_ticket text default null,
  p_request_id uuid default null, p_request_ticket text default null
) returns table (outcome text, usage_id uuid, ticket text, retry_after_seconds integer, remaining integer,
                 budget_left_usd numeric, input_usd_per_mtok numeric, output_usd_per_mtok numeric,
                 usd_per_image numeric)
language plpgsql security definer set search_path = ''
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
  -- Hot-path bookkeeping: commit without waiting for the WAL flush (a database
  -- crash may lose the last milliseconds of slots, reservations and settlements,
  -- never corrupt them; a lost settlement ends 'abandoned' at cost 0 via cleanup).
  perform set_config('synchronous_commit', 'off', true);
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
      raise exception 'AI key % not found, not yours, or expired', p_key_id using errcode = 'P0002',
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

  insert into private.ai_budget_months (user_id, month) values (v_uid, v_month)
    on conflict do nothing;
  update private.ai_budget_months b
     set reserved_usd = b.reserved_usd + v_est
   where b.user_id = v_uid and b.month = v_month
     and b.spent_usd + b.reserved_usd + v_est <= v_plan.ai_monthly_budget_usd
  returning v_plan.ai_monthly_budget_usd - b.spent_usd - b.reserved_usd into v_left;
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
revoke execute on function private.ai_begin(text, text, integer, integer, integer, text, boolean, uuid,
  text, text, uuid, text, uuid, text) from public;
grant execute on function private.ai_begin(text, text, integer, integer, integer, text, boolean, uuid,
  text, text, uuid, text, uuid, text) to authenticated;

-- Settle with real tokens; needs the ticket ai_begin returned (one-time).
create function private.ai_finish(
  p_usage_id uuid, p_status text, p_input_tokens integer, p_output_tokens integer,
  p_images integer, p_latency_ms integer, p_error text default null, p_ticket text default null
) returns numeric
language plpgsql security definer set search_path = ''
as $$
declare
  v_row public.ai_usage;
  v_t private.ai_usage_tickets;
  v_cost numeric;
begin
  if p_status is null or p_status not in ('ok', 'error', 'interrupted') then
    raise exception 'status must be ok, error or interrupted' using errcode = '22023';
  end if;
  perform set_config('synchronous_commit', 'off', true);  -- see private.ai_begin
  select * into v_row from public.ai_usage u
   where u.id = p_usage_id and u.user_id = auth.uid() and u.status = 'pending'
   for update;
  if not found then
    raise exception 'no pending AI usage row %', p_usage_id using errcode = 'P0002';
  end if;
  delete from private.ai_usage_tickets t
   where t.usage_id = p_usage_id and t.ticket_sha256 = private.ai_ticket_hash(p_ticket)
  returning t.* into v_t;
  if not found then
    raise exception 'AI call % may only be settled by whoever admitted it', p_usage_id
      using errcode = '42501', hint = 'Pass the ticket private.ai_begin returned.';
  end if;
  -- The unit prices captured at admission (the proxy computes the same cost for its response).
  v_cost := round((v_t.input_usd_per_mtok * greatest(coalesce(p_input_tokens, 0), 0)
                   + v_t.output_usd_per_mtok * greatest(coalesce(p_output_tokens, 0), 0)) / 1000000
                  + v_t.usd_per_image * greatest(coalesce(p_images, 0), 0), 8);
  update public.ai_usage u set
      status = p_status, input_tokens = greatest(coalesce(p_input_tokens, 0), 0),
      output_tokens = greatest(coalesce(p_output_tokens, 0), 0), images = greatest(coalesce(p_images, 0), 0),
      cost_usd = v_cost, reserved_usd = 0, latency_ms = greatest(p_latency_ms, 0),
      error = left(p_error, 500), finished_at = now()
   where u.id = p_usage_id;
  update private.ai_budget_months b
     set reserved_usd = greatest(b.reserved_usd - v_row.reserved_usd, 0),
         spent_usd = b.spent_usd + v_cost
   where b.user_id = v_row.user_id and b.month = v_row.budget_month;
  return v_cost;
end;
$$;
revoke execute on function private.ai_finish(uuid, text, integer, integer, integer, integer, text, text)
  from public;
grant execute on function private.ai_finish(uuid, text, integer, integer, integer, integer, text, text)
  to authenticated;

-- Queue worker: claim a request row for one attempt and get the ticket its admission needs.
create function private.ai_request_claim(p_request_id uuid)
returns table (user_id uuid, provider text, model text, key_id uuid, messages jsonb, max_tokens integer,
               chat_element_id uuid, ticket text)
language plpgsql security definer set search_path = ''
as $$
declare
  v_ticket text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
begin
  update public.ai_requests r set status = 'running'
   where r.id = p_request_id and r.status in ('queued', 'running');
  if not found then
    return;
  end if;
  insert into private.ai_request_tickets (request_id, ticket_sha256)
    values (p_request_id, private.ai_ticket_hash(v_ticket))
    on conflict (request_id) do update set ticket_sha256 = excluded.ticket_sha256, issued_at = now();
  return query
    select r.user_id, r.provider, r.model, r.key_id, r.messages, r.max_tokens, r.chat_element_id, v_ticket
      from public.ai_requests r where r.id = p_request_id;
end;
$$;
revoke execute on function private.ai_request_claim(uuid) from public, anon, authenticated;
grant execute on function private.ai_request_claim(uuid) to service_role;

-- Abandoned calls also drop their (now useless) tickets.
create or replace function private.cleanup_ai_usage_pending(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql security definer set search_path = ''
as $$
begin
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'batch size must be >= 1' using errcode = '22023';
  end if;
  if coalesce(p_dry_run, true) then
    return query select format('ai usage %s pending since %s', u.id, u.created_at)
      from public.ai_usage u where u.status = 'pending' and u.created_at < now() - interval '1 hour'
      order by u.created_at limit p_batch_size;
    return;
  end if;
  return query
    with stale as (
      select u.id, u.user_id, u.budget_month, u.reserved_usd as r from public.ai_usage u
       where u.status = 'pending' and u.created_at < now() - interval '1 hour'
       order by u.created_at limit p_batch_size for update skip locked
    ), released as (
      update public.ai_usage u set status = 'abandoned', finished_at = now(), reserved_usd = 0
        from stale s where u.id = s.id
      returning u.id, s.user_id, s.budget_month, s.r
    ), budget as (
      update private.ai_budget_months b set reserved_usd = greatest(b.reserved_usd - agg.r, 0)
        from (select user_id, budget_month, sum(r) as r from released group by 1, 2) agg
       where b.user_id = agg.user_id and b.month = agg.budget_month
      returning 1
    ), tickets as (
      delete from private.ai_usage_tickets t using released r where t.usage_id = r.id
      returning 1
    )
    select format('ai usage %s abandoned (reservation released)', r.id) from released r;
end;
$$;

-- == comments ==
comment on table private.ai_usage_tickets is
  'One per pending AI call: sha256 of the one-time ticket its admitter holds, the fallback target recorded at admission, unit prices at admission.';
comment on table private.ai_request_tickets is
  'Queue mode: sha256 of the ticket the claiming worker holds for one admission of the request.';
comment on function private.ai_begin(text, text, integer, integer, integer, text, boolean, uuid, text, text,
  uuid, text, uuid, text) is
  'AI proxy admission for auth.uid(): key check, rate-limit slot (skipped only for a verified fallback or queue claim), budget reservation (PT402), usage row and one-time ticket.';
comment on function private.ai_finish(uuid, text, integer, integer, integer, integer, text, text) is
  'AI proxy: settle a pending usage row (needs its ticket) with real tokens; releases the reservation.';
comment on function private.ai_request_claim(uuid) is
  'Queue worker (service_role): mark an AI request running and issue the ticket for one admission.';
