-- ai: price table, usage log, monthly cost budgets, and the admission step.
-- Why: every provider call is recorded (streamed and interrupted ones too)
-- with its estimated cost from a price table kept in SQL. Before a call the
-- proxy calls private.ai_begin, which in ONE transaction takes a slot from the
-- shared sliding-window limiter (private.rate_limit_take, plan limits) and
-- reserves the estimated cost against the user's monthly budget with a
-- conditional UPDATE on a per-user-month counter row (row lock = atomic: parallel
-- requests can never overspend). private.ai_finish settles the real cost.

-- == plan limits ==
alter table public.plans add column ai_monthly_budget_usd numeric(12, 4) not null default 1.00
  constraint plans_ai_monthly_budget_nonnegative check (ai_monthly_budget_usd >= 0);
update public.plans set ai_monthly_budget_usd = 1.00 where id = 'free';
update public.plans set ai_monthly_budget_usd = 25.00 where id = 'pro';
comment on column public.plans.ai_monthly_budget_usd is
  'Estimated AI provider spend (USD) a user may reach per calendar month (UTC).';

-- == tables ==
create table public.ai_prices (
  provider text not null,
  model text not null,
  input_usd_per_mtok numeric(12, 6) not null check (input_usd_per_mtok >= 0),
  output_usd_per_mtok numeric(12, 6) not null check (output_usd_per_mtok >= 0),
  usd_per_image numeric(12, 6) not null default 0 check (usd_per_image >= 0),
  updated_at timestamptz not null default now(),
  primary key (provider, model)
);
create trigger ai_prices_set_updated_at before update on public.ai_prices
  for each row execute function private.set_updated_at();

insert into public.ai_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, usd_per_image) values
  ('openai', '*', 2.50, 10.00, 0.002),
  ('openai', 'gpt-4o-mini', 0.15, 0.60, 0.001),
  ('openai', 'gpt-4o', 2.50, 10.00, 0.002),
  ('openai_compat', '*', 0, 0, 0),
  ('anthropic', '*', 3.00, 15.00, 0.002),
  ('anthropic', 'claude-3-5-haiku-latest', 0.80, 4.00, 0.001),
  ('gemini', '*', 0.10, 0.40, 0.002),
  ('gemini', 'gemini-2.0-flash', 0.10, 0.40, 0.002);

create table public.ai_usage (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  provider text not null,
  model text not null,
  endpoint text not null default 'generate' check (endpoint in ('generate', 'detect', 'queue')),
  streamed boolean not null default false,
  status text not null default 'pending'
    check (status in ('pending', 'ok', 'error', 'interrupted', 'abandoned')),
  input_tokens integer not null default 0 check (input_tokens >= 0),
  output_tokens integer not null default 0 check (output_tokens >= 0),
  images integer not null default 0 check (images >= 0),
  reserved_usd numeric(14, 8) not null default 0 check (reserved_usd >= 0),
  cost_usd numeric(14, 8) not null default 0 check (cost_usd >= 0),
  latency_ms integer check (latency_ms >= 0),
  error text check (length(error) <= 500),
  budget_month date not null default date_trunc('month', now() at time zone 'utc')::date,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);
create index ai_usage_user_id_created_at_idx on public.ai_usage (user_id, created_at desc);
create index ai_usage_created_at_idx on public.ai_usage (created_at);
create index ai_usage_pending_idx on public.ai_usage (created_at) where status = 'pending';

create table private.ai_budget_months (
  user_id uuid not null references auth.users (id) on delete cascade,
  month date not null,
  spent_usd numeric(14, 8) not null default 0 check (spent_usd >= 0),
  reserved_usd numeric(14, 8) not null default 0 check (reserved_usd >= 0),
  primary key (user_id, month)
);

-- == grants and row level security ==
grant select on public.ai_prices to anon, authenticated;
grant select, insert, update, delete on public.ai_prices to service_role;
alter table public.ai_prices enable row level security;
create policy "everyone reads ai prices" on public.ai_prices
  for select to anon, authenticated using (true);

-- Users read their own usage; rows are written only by the definer functions below.
grant select on public.ai_usage to authenticated;
grant select on public.ai_usage to service_role;
alter table public.ai_usage enable row level security;
create policy "owners read their ai usage" on public.ai_usage
  for select to authenticated using (user_id = (select auth.uid()));

revoke all on private.ai_budget_months from public, anon, authenticated, service_role;
alter table private.ai_budget_months enable row level security;

-- == functions ==
create function private.ai_price(
  p_provider text, p_model text, p_input_tokens bigint, p_output_tokens bigint, p_images integer
) returns numeric
language sql stable security definer set search_path = ''
as $$
  select coalesce((
    select (p.input_usd_per_mtok * greatest(p_input_tokens, 0)
            + p.output_usd_per_mtok * greatest(p_output_tokens, 0)) / 1000000
           + p.usd_per_image * greatest(p_images, 0)
      from public.ai_prices p
     where p.provider = p_provider and p.model in (p_model, '*')
     order by (p.model = p_model) desc
     limit 1), 0)::numeric
$$;
revoke execute on function private.ai_price(text, text, bigint, bigint, integer) from public;
grant execute on function private.ai_price(text, text, bigint, bigint, integer)
  to authenticated, service_role;

-- Admission: rate limit + budget reservation, atomically, for auth.uid().
-- outcome: 'ok' (usage_id set), 'rate_limited' (retry_after_seconds), 'over_budget'.
create function private.ai_begin(
  p_provider text, p_model text, p_est_input_tokens integer, p_est_output_tokens integer,
  p_images integer default 0, p_endpoint text default 'generate', p_streamed boolean default false,
  p_take_rate_limit boolean default true
) returns table (outcome text, usage_id uuid, retry_after_seconds integer, remaining integer,
                 budget_left_usd numeric)
language plpgsql security definer set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_plan public.plans;
  v_rl record;
  v_remaining integer;
  v_month date := date_trunc('month', now() at time zone 'utc')::date;
  v_est numeric;
  v_left numeric;
  v_id uuid;
begin
  if v_uid is null then
    raise exception 'AI requests need a signed-in user' using errcode = '42501';
  end if;
  -- Hot-path bookkeeping: commit without waiting for the WAL flush (a database
  -- crash may lose the last milliseconds of slots/reservations, never corrupt them).
  perform set_config('synchronous_commit', 'off', true);
  if p_provider is null or p_model is null or length(p_model) not between 1 and 200 then
    raise exception 'provider and model are required' using errcode = '22023';
  end if;
  select pl.* into v_plan from public.plans pl
    join public.profiles pr on pr.plan = pl.id where pr.id = v_uid;
  if not found then
    select pl.* into v_plan from public.plans pl where pl.id = 'free';
  end if;

  if p_take_rate_limit then
    select * into v_rl from private.rate_limit_take(
      'ai:' || v_uid, v_plan.ai_requests_per_window, make_interval(secs => v_plan.ai_window_seconds), 1);
    if not v_rl.allowed then
      return query select 'rate_limited'::text, null::uuid, v_rl.retry_after_seconds, 0, null::numeric;
      return;
    end if;
    v_remaining := v_rl.remaining;
  end if;

  v_est := private.ai_price(p_provider, p_model, p_est_input_tokens, p_est_output_tokens, p_images);
  insert into private.ai_budget_months (user_id, month) values (v_uid, v_month)
    on conflict do nothing;
  update private.ai_budget_months b
     set reserved_usd = b.reserved_usd + v_est
   where b.user_id = v_uid and b.month = v_month
     and b.spent_usd + b.reserved_usd + v_est <= v_plan.ai_monthly_budget_usd
  returning v_plan.ai_monthly_budget_usd - b.spent_usd - b.reserved_usd into v_left;
  if not found then
    -- Undo the rate-limit slot: a refused request must not count.
    raise exception 'monthly AI budget of % USD reached', v_plan.ai_monthly_budget_usd
      using errcode = 'PT402', hint = 'Wait for next month or upgrade your plan.';
  end if;

  insert into public.ai_usage (user_id, provider, model, endpoint, streamed, reserved_usd, budget_month)
    values (v_uid, p_provider, p_model, p_endpoint, p_streamed, v_est, v_month)
    returning id into v_id;
  return query select 'ok'::text, v_id, 0, v_remaining, v_left;
end;
$$;
revoke execute on function private.ai_begin(text, text, integer, integer, integer, text, boolean, boolean)
  from public;
grant execute on function private.ai_begin(text, text, integer, integer, integer, text, boolean, boolean)
  to authenticated;

-- Settle: real tokens -> cost; releases the reservation. Only the caller's own pending row.
create function private.ai_finish(
  p_usage_id uuid, p_status text, p_input_tokens integer, p_output_tokens integer,
  p_images integer, p_latency_ms integer, p_error text default null, p_model text default null,
  p_provider text default null
) returns numeric
language plpgsql security definer set search_path = ''
as $$
declare
  v_row public.ai_usage;
  v_cost numeric;
begin
  if p_status not in ('ok', 'error', 'interrupted') then
    raise exception 'status must be ok, error or interrupted' using errcode = '22023';
  end if;
  perform set_config('synchronous_commit', 'off', true);  -- see private.ai_begin
  select * into v_row from public.ai_usage u
   where u.id = p_usage_id and u.user_id = auth.uid() and u.status = 'pending'
   for update;
  if not found then
    raise exception 'no pending AI usage row %', p_usage_id using errcode = 'P0002';
  end if;
  v_cost := private.ai_price(coalesce(p_provider, v_row.provider), coalesce(p_model, v_row.model),
                             p_input_tokens, p_output_tokens, p_images);
  update public.ai_usage u set
      status = p_status, input_tokens = greatest(coalesce(p_input_tokens, 0), 0),
      output_tokens = greatest(coalesce(p_output_tokens, 0), 0), images = greatest(coalesce(p_images, 0), 0),
      cost_usd = v_cost, reserved_usd = 0, latency_ms = greatest(p_latency_ms, 0),
      error = left(p_error, 500), finished_at = now(),
      provider = coalesce(p_provider, u.provider), model = coalesce(p_model, u.model)
   where u.id = p_usage_id;
  update private.ai_budget_months b
     set reserved_usd = greatest(b.reserved_usd - v_row.reserved_usd, 0),
         spent_usd = b.spent_usd + v_cost
   where b.user_id = v_row.user_id and b.month = v_row.budget_month;
  return v_cost;
end;
$$;
revoke execute on function private.ai_finish(uuid, text, integer, integer, integer, integer, text, text, text)
  from public;
grant execute on function private.ai_finish(uuid, text, integer, integer, integer, integer, text, text, text)
  to authenticated;

-- Requests whose proxy died never settle: release their reservation.
create function private.cleanup_ai_usage_pending(p_batch_size integer, p_dry_run boolean)
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
    )
    select format('ai usage %s abandoned (reservation released)', r.id) from released r;
end;
$$;
revoke execute on function private.cleanup_ai_usage_pending(integer, boolean) from public, anon, authenticated;
grant execute on function private.cleanup_ai_usage_pending(integer, boolean) to service_role;

-- == comments ==
comment on table public.ai_prices is
  'Estimated provider prices (USD per million tokens, per image). model ''*'' is the provider default.';
comment on table public.ai_usage is
  'One row per AI provider call made for you: tokens, estimated cost, latency, status. Read-only.';
comment on column public.ai_usage.status is
  'pending (in flight), ok, error, interrupted (client went away mid-stream; tokens so far counted), abandoned.';
comment on column public.ai_usage.cost_usd is 'Estimated cost from public.ai_prices at settlement.';
comment on table private.ai_budget_months is
  'Per user and month: settled spend and in-flight reservations; the budget check locks this row.';
comment on function private.ai_begin(text, text, integer, integer, integer, text, boolean, boolean) is
  'AI proxy admission for auth.uid(): rate limit slot + budget reservation (PT402 when over budget).';
comment on function private.ai_finish(uuid, text, integer, integer, integer, integer, text, text, text) is
  'AI proxy: settle a pending usage row with real tokens; releases the reservation.';
