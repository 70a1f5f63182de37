-- billing: which plan a Stripe price buys. Adds private.billing_prices.
-- Why: the listening companion sells a paid backup tier through Stripe; the
-- plan a subscription grants is data (price id or lookup key -> plan), so a
-- new tier or a price change is a row, not a deploy. A price without a row
-- grants the webhook's default paid plan (BILLING_DEFAULT_PLAN, 'pro').

-- == tables ==
create table private.billing_prices (
  price_ref text primary key check (length(price_ref) between 1 and 255),
  plan_id text not null references public.plans (id),
  created_at timestamptz not null default now()
);
create index billing_prices_plan_id_idx on private.billing_prices (plan_id);

-- == grants and row level security ==
-- Operators manage rows with SQL (superuser / migrations); the webhook reads
-- them through definer functions. No API role writes them.
revoke all on private.billing_prices from public, anon, authenticated;
grant select on private.billing_prices to service_role;
alter table private.billing_prices enable row level security;

-- == comments ==
comment on table private.billing_prices is
  'Stripe price -> plan. price_ref is a price id (price_...) or a price lookup_key; '
  'the id is tried first. Unmapped prices grant the default paid plan.';
