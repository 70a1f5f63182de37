-- billing: every Stripe event the webhook accepted, once.
-- Why: Stripe delivers at least once and may deliver the same event twice at
-- the same time. The event id is the primary key and is inserted in the same
-- transaction as the event's effect, so a replay or a concurrent duplicate
-- finds the row and changes nothing. Service role only; no payload kept
-- (customer objects carry personal data), only what an operator needs.

-- == tables ==
create table private.billing_events (
  event_id text primary key check (event_id ~ '^evt_[A-Za-z0-9]{1,250}$'),
  type text not null check (length(type) between 1 and 100),
  stripe_created_at timestamptz not null,
  livemode boolean not null default false,
  customer_id text,
  subscription_id text,
  user_id uuid references auth.users (id) on delete set null,
  outcome text not null default 'pending' constraint billing_events_outcome_known check (outcome in (
    'pending', 'applied', 'recorded', 'stale', 'ignored', 'unknown_customer', 'unknown_user', 'customer_conflict'
  )),
  received_at timestamptz not null default now()
);
create index billing_events_user_id_idx on private.billing_events (user_id);
create index billing_events_received_at_idx on private.billing_events (received_at);

-- == grants and row level security ==
revoke all on private.billing_events from public, anon, authenticated;
grant select on private.billing_events to service_role;
alter table private.billing_events enable row level security;

-- == functions (schema private: not exposed) ==
create function private.cleanup_billing_events(p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql security definer set search_path = ''
as $$
begin
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'batch size must be at least 1' using errcode = '22023';
  end if;
  -- Stripe retries an event for up to 3 days; 90 days of ids is ample for dedup.
  if p_dry_run then
    return query
      select format('billing event %s (%s, received %s)', e.event_id, e.type, e.received_at)
        from private.billing_events e
       where e.received_at < now() - interval '90 days'
       order by e.received_at limit p_batch_size;
    return;
  end if;
  return query
    with doomed as (
      select e.event_id from private.billing_events e
       where e.received_at < now() - interval '90 days'
       order by e.received_at limit p_batch_size for update skip locked
    ), gone as (
      delete from private.billing_events e using doomed d where e.event_id = d.event_id
      returning e.event_id, e.type, e.received_at
    )
    select format('billing event %s (%s, received %s)', g.event_id, g.type, g.received_at) from gone g;
end;
$$;
revoke execute on function private.cleanup_billing_events(integer, boolean) from public, anon, authenticated;
grant execute on function private.cleanup_billing_events(integer, boolean) to service_role;

-- == comments ==
comment on table private.billing_events is
  'Stripe events processed by the webhook (dedup by event_id) and what each did. Kept 90 days.';
comment on column private.billing_events.outcome is
  'applied: changed state; recorded: noted without a state change; stale: older than the applied state; '
  'ignored: type not handled; unknown_customer / unknown_user / customer_conflict: nothing changed (logged).';
comment on function private.cleanup_billing_events(integer, boolean) is
  'Delete (or list, dry run) at most p_batch_size billing events received more than 90 days ago.';
