-- billing: the link between a Stripe customer and a Backline user.
-- Why: Stripe events name customers, never users. The link is written only
-- by the webhook (from a signed checkout.session.completed whose
-- client_reference_id is the user id the frontend put into the session), so
-- no client can claim someone else's subscription. A customer belongs to
-- exactly one user; a user may have several customers (one per checkout).

-- == tables ==
create table public.billing_customers (
  customer_id text primary key check (customer_id ~ '^cus_[A-Za-z0-9]{1,250}$'),
  user_id uuid not null references auth.users (id) on delete cascade,
  linked_by_event text not null,
  created_at timestamptz not null default now()
);
create index billing_customers_user_id_idx on public.billing_customers (user_id);

-- == grants and row level security ==
grant select on public.billing_customers to authenticated, service_role;
alter table public.billing_customers enable row level security;

create policy "users read their own billing customer links" on public.billing_customers
  for select to authenticated using (user_id = (select auth.uid()));

-- == comments ==
comment on table public.billing_customers is
  'Which Stripe customer belongs to which user. Read your own link; written only by the Stripe webhook.';
comment on column public.billing_customers.customer_id is 'Stripe customer id (cus_...).';
comment on column public.billing_customers.linked_by_event is 'The Stripe event (evt_...) that created the link.';
