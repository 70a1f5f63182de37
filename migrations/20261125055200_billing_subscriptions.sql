-- billing: the last applied state of each Stripe subscription.
-- Why: the user's plan is derived from their subscriptions. Stripe delivers
-- events out of order and more than once, so each row keeps the creation
-- time of the event whose state it holds (state_at); an older event never
-- overwrites a newer state. Rows for a customer not yet linked to a user are
-- kept with user_id null and attached when the checkout event links it.

-- == tables ==
create table public.billing_subscriptions (
  subscription_id text primary key check (subscription_id ~ '^sub_[A-Za-z0-9]{1,250}$'),
  customer_id text not null check (customer_id ~ '^cus_[A-Za-z0-9]{1,250}$'),
  user_id uuid references auth.users (id) on delete cascade,
  status text not null constraint billing_subscriptions_status_known check (status in (
    'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused'
  )),
  plan_id text not null references public.plans (id),
  price_ref text check (length(price_ref) between 1 and 255),
  cancel_at_period_end boolean not null default false,
  current_period_end timestamptz,
  last_payment_failed_at timestamptz,
  state_source text not null constraint billing_subscriptions_state_source_known
    check (state_source in ('subscription', 'checkout')),
  state_at timestamptz not null,
  state_event_id text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index billing_subscriptions_user_id_idx on public.billing_subscriptions (user_id);
create index billing_subscriptions_customer_id_idx on public.billing_subscriptions (customer_id);
create index billing_subscriptions_plan_id_idx on public.billing_subscriptions (plan_id);

create trigger billing_subscriptions_set_updated_at before update on public.billing_subscriptions
  for each row execute function private.set_updated_at();

-- == grants and row level security ==
grant select on public.billing_subscriptions to authenticated, service_role;
alter table public.billing_subscriptions enable row level security;

create policy "users read their own subscriptions" on public.billing_subscriptions
  for select to authenticated using (user_id = (select auth.uid()));

-- == comments ==
comment on table public.billing_subscriptions is
  'Your Stripe subscriptions as last reported by Stripe (read-only; written by the webhook). '
  'Show status, current_period_end, cancel_at_period_end and last_payment_failed_at in billing settings.';
comment on column public.billing_subscriptions.status is
  'Stripe status. active, trialing and past_due grant plan_id; every other status grants nothing.';
comment on column public.billing_subscriptions.plan_id is 'The plan this subscription grants while entitled.';
comment on column public.billing_subscriptions.price_ref is 'Stripe price id of the first item (null until known).';
comment on column public.billing_subscriptions.cancel_at_period_end is
  'True when the user cancelled: the plan stays until current_period_end, then Stripe deletes the subscription.';
comment on column public.billing_subscriptions.last_payment_failed_at is
  'When Stripe last reported a failed invoice payment (invoice.payment_failed); ask the user to update their card.';
comment on column public.billing_subscriptions.state_source is
  'checkout: provisional state from checkout.session.completed; subscription: a customer.subscription.* event.';
comment on column public.billing_subscriptions.state_at is
  'Creation time of the Stripe event whose state this row holds; older events are not applied.';
