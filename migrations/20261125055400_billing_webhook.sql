-- billing: apply one verified Stripe event, exactly once, in one transaction.
-- Why: the webhook (workers/ai/billing.py) verifies the Stripe-Signature and
-- then hands the parsed event to private.billing_process_event as the
-- service role. Everything that decides a user's plan is here: dedup by event
-- id, the customer <-> user link, out-of-order protection, the plan derived
-- from all of the user's subscriptions, and audit entries for plan changes.
--
-- Ordering rule: a subscription event is applied only if its `created` is
-- later than the stored state_at, or equal with a status at least as far in
-- the lifecycle (incomplete < trialing < active < past_due < unpaid/paused <
-- canceled/incomplete_expired). A canceled or incomplete_expired subscription
-- never comes back (Stripe cannot reactivate them). An older event is
-- recorded as 'stale'; it may only fill in a price the row does not know yet.

-- == functions (schema private: not exposed) ==
create function private.billing_status_rank(p_status text) returns integer
language sql immutable set search_path = ''
as $$
  select case p_status
    when 'incomplete' then 0 when 'trialing' then 1 when 'active' then 2 when 'past_due' then 3
    when 'unpaid' then 4 when 'paused' then 4 when 'canceled' then 5 when 'incomplete_expired' then 5
  end
$$;
revoke execute on function private.billing_status_rank(text) from public;
grant execute on function private.billing_status_rank(text) to service_role;

create function private.billing_stripe_id(p_value jsonb) returns text
language sql immutable set search_path = ''
as $$
  -- Stripe fields like `customer` are an id string, or the object when expanded.
  select case jsonb_typeof(p_value)
    when 'string' then p_value #>> '{}'
    when 'object' then p_value ->> 'id'
  end
$$;
revoke execute on function private.billing_stripe_id(jsonb) from public;
grant execute on function private.billing_stripe_id(jsonb) to service_role;

create function private.billing_epoch(p_value jsonb) returns timestamptz
language sql immutable set search_path = ''
as $$
  select case when jsonb_typeof(p_value) = 'number' then to_timestamp((p_value #>> '{}')::numeric) end
$$;
revoke execute on function private.billing_epoch(jsonb) from public;
grant execute on function private.billing_epoch(jsonb) to service_role;

create function private.billing_plan_for_price(p_price_id text, p_lookup_key text, p_default_plan text)
returns text
language sql stable security definer set search_path = ''
as $$
  select coalesce(
    (select bp.plan_id from private.billing_prices bp where bp.price_ref = p_price_id),
    (select bp.plan_id from private.billing_prices bp where bp.price_ref = p_lookup_key),
    p_default_plan)
$$;
revoke execute on function private.billing_plan_for_price(text, text, text) from public;
grant execute on function private.billing_plan_for_price(text, text, text) to service_role;

create function private.billing_refresh_plan(p_user_id uuid, p_event_id text) returns text
language plpgsql security definer set search_path = ''
as $$
declare
  v_plan text;
  v_sub text;
  v_old text;
begin
  -- Lock the profile BEFORE reading subscriptions: events of the user's other
  -- customers run concurrently (their locks are per customer), and whoever
  -- gets this lock last must see the others' committed subscription changes.
  select p.plan into v_old from public.profiles p where p.id = p_user_id for update;
  if not found then
    return null;
  end if;

  -- The most recently changed entitled subscription decides; none -> free.
  select s.plan_id, s.subscription_id into v_plan, v_sub
    from public.billing_subscriptions s
   where s.user_id = p_user_id and s.status in ('active', 'trialing', 'past_due')
   order by s.state_at desc, s.subscription_id
   limit 1;
  v_plan := coalesce(v_plan, 'free');
  if v_old = v_plan then
    return v_old;
  end if;
  update public.profiles set plan = v_plan where id = p_user_id;
  perform private.audit(p_user_id, 'billing.plan_changed', jsonb_build_object(
    'from', v_old, 'to', v_plan, 'subscription_id', v_sub, 'event_id', p_event_id));
  return v_plan;
end;
$$;
revoke execute on function private.billing_refresh_plan(uuid, text) from public;
grant execute on function private.billing_refresh_plan(uuid, text) to service_role;

create function private.billing_link_customer(p_customer_id text, p_user_id uuid, p_event_id text default null)
returns text
language plpgsql security definer set search_path = ''
as $$
declare
  v_owner uuid;
  v_result text := 'already_linked';
begin
  if p_customer_id is null or p_customer_id !~ '^cus_[A-Za-z0-9]{1,250}$' then
    raise exception 'not a Stripe customer id: %', coalesce(p_customer_id, 'null')
      using errcode = '22023', hint = 'Customer ids look like cus_...';
  end if;
  if p_user_id is null or not exists (select 1 from auth.users u where u.id = p_user_id) then
    raise exception 'no such user: %', coalesce(p_user_id::text, 'null') using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('backline.billing:' || p_customer_id, 0));
  insert into public.billing_customers (customer_id, user_id, linked_by_event)
  values (p_customer_id, p_user_id, coalesce(p_event_id, 'manual'))
  on conflict (customer_id) do nothing;
  if found then
    perform private.audit(p_user_id, 'billing.customer_linked',
      jsonb_build_object('customer_id', p_customer_id, 'event_id', p_event_id));
    v_result := 'linked';
  else
    select c.user_id into v_owner from public.billing_customers c where c.customer_id = p_customer_id;
    if v_owner is distinct from p_user_id then
      return 'customer_conflict';  -- a customer never moves to another user
    end if;
  end if;
  -- Subscription states that arrived before the link now count for the user.
  update public.billing_subscriptions s set user_id = p_user_id
   where s.customer_id = p_customer_id and s.user_id is null;
  perform private.billing_refresh_plan(p_user_id, coalesce(p_event_id, 'manual'));
  return v_result;
end;
$$;
revoke execute on function private.billing_link_customer(text, uuid, text) from public;
grant execute on function private.billing_link_customer(text, uuid, text) to service_role;

comment on function private.billing_link_customer(text, uuid, text) is
  'Link a Stripe customer to a user (checkout webhook, or an operator when a checkout had no usable '
  'client_reference_id), attach subscription states that arrived earlier and recompute the plan. '
  'Returns linked, already_linked or customer_conflict (nothing changed).';

create function private.billing_process_event(p_event jsonb, p_default_plan text default 'pro')
returns table (outcome text, user_id uuid, subscription_id text)
language plpgsql security definer set search_path = ''
as $$
declare
  v_id text := p_event ->> 'id';
  v_type text := p_event ->> 'type';
  v_created timestamptz := private.billing_epoch(p_event -> 'created');
  v_obj jsonb := p_event #> '{data,object}';
  v_customer text;
  v_sub text;
  v_user uuid;
  v_outcome text;
  v_status text;
  v_price_id text;
  v_lookup text;
  v_price_ref text;
  v_plan text;
  v_row public.billing_subscriptions;
  v_linked uuid;
begin
  if jsonb_typeof(p_event) is distinct from 'object' or v_id is null or v_id !~ '^evt_[A-Za-z0-9]{1,250}$'
     or v_type is null or length(v_type) not between 1 and 100 or v_created is null
     or jsonb_typeof(v_obj) is distinct from 'object' then
    raise exception 'malformed Stripe event: needs id (evt_...), type, created and data.object'
      using errcode = '22023', hint = 'Pass the verified event JSON exactly as Stripe sent it.';
  end if;
  if not exists (select 1 from public.plans pl where pl.id = p_default_plan) then
    raise exception 'default billing plan % does not exist in public.plans', p_default_plan
      using errcode = '22023', hint = 'Set BILLING_DEFAULT_PLAN to a plan id.';
  end if;

  v_customer := private.billing_stripe_id(v_obj -> 'customer');
  if v_customer !~ '^cus_[A-Za-z0-9]{1,250}$' then
    v_customer := null;
  end if;
  v_sub := case
    when v_type like 'customer.subscription.%' then v_obj ->> 'id'
    else coalesce(private.billing_stripe_id(v_obj -> 'subscription'),
                  private.billing_stripe_id(v_obj #> '{parent,subscription_details,subscription}'))
  end;
  if v_sub !~ '^sub_[A-Za-z0-9]{1,250}$' then
    v_sub := null;
  end if;

  -- Serialise every event of one customer (link, subscription rows, plan).
  perform pg_advisory_xact_lock(hashtextextended('backline.billing:' || coalesce(v_customer, v_id), 0));

  -- Exactly once: a duplicate (replayed or concurrent) finds the id and stops here.
  insert into private.billing_events (event_id, type, stripe_created_at, livemode, customer_id, subscription_id)
  values (v_id, v_type, v_created, coalesce((p_event ->> 'livemode')::boolean, false), v_customer, v_sub)
  on conflict (event_id) do nothing;
  if not found then
    return query select 'duplicate'::text, null::uuid, v_sub;
    return;
  end if;

  if v_customer is not null then
    select c.user_id into v_user from public.billing_customers c where c.customer_id = v_customer;
  end if;

  if v_type = 'checkout.session.completed' then
    if v_obj ->> 'mode' is distinct from 'subscription' then
      v_outcome := 'ignored';
    elsif v_obj ->> 'client_reference_id' is null
          or v_obj ->> 'client_reference_id' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
          or not exists (select 1 from auth.users u where u.id = (v_obj ->> 'client_reference_id')::uuid) then
      v_outcome := 'unknown_user';
    elsif v_customer is null then
      v_outcome := 'unknown_customer';
    else
      v_linked := (v_obj ->> 'client_reference_id')::uuid;
      if private.billing_link_customer(v_customer, v_linked, v_id) = 'customer_conflict' then
        -- The customer already belongs to someone else: never move it.
        v_outcome := 'customer_conflict';
      else
        v_user := v_linked;
        if v_sub is not null
           and not exists (select 1 from public.billing_subscriptions s where s.subscription_id = v_sub) then
          -- Provisional state until a customer.subscription.* event brings the real one.
          insert into public.billing_subscriptions
            (subscription_id, customer_id, user_id, status, plan_id, state_source, state_at, state_event_id)
          values (v_sub, v_customer, v_user,
                  case v_obj ->> 'payment_status' when 'paid' then 'active'
                       when 'no_payment_required' then 'trialing' else 'incomplete' end,
                  p_default_plan, 'checkout', v_created, v_id);
        end if;
        perform private.billing_refresh_plan(v_user, v_id);
        v_outcome := 'applied';
      end if;
    end if;

  elsif v_type in ('customer.subscription.created', 'customer.subscription.updated',
                   'customer.subscription.deleted') then
    v_status := case when v_type = 'customer.subscription.deleted' then 'canceled' else v_obj ->> 'status' end;
    if v_sub is null or v_customer is null or private.billing_status_rank(v_status) is null then
      raise exception 'malformed % event %: needs data.object id (sub_...), customer (cus_...) and a known status',
        v_type, v_id using errcode = '22023';
    end if;
    v_price_id := v_obj #>> '{items,data,0,price,id}';
    v_lookup := v_obj #>> '{items,data,0,price,lookup_key}';
    v_price_ref := left(coalesce(v_price_id, v_lookup), 255);
    v_plan := private.billing_plan_for_price(v_price_id, v_lookup, p_default_plan);

    select * into v_row from public.billing_subscriptions s where s.subscription_id = v_sub for update;
    if found and (
         (private.billing_status_rank(v_row.status) = 5 and private.billing_status_rank(v_status) < 5)
         or v_created < v_row.state_at
         or (v_created = v_row.state_at
             and private.billing_status_rank(v_status) < private.billing_status_rank(v_row.status))) then
      v_outcome := 'stale';
      if v_row.price_ref is null and v_price_ref is not null then
        update public.billing_subscriptions s set price_ref = v_price_ref, plan_id = v_plan
         where s.subscription_id = v_sub;
      end if;
    elsif found then
      update public.billing_subscriptions s
         set status = v_status, plan_id = v_plan, price_ref = coalesce(v_price_ref, s.price_ref),
             cancel_at_period_end = coalesce((v_obj ->> 'cancel_at_period_end')::boolean, false),
             current_period_end = coalesce(private.billing_epoch(v_obj -> 'current_period_end'),
                                           private.billing_epoch(v_obj #> '{items,data,0,current_period_end}')),
             user_id = coalesce(s.user_id, v_user),
             state_source = 'subscription', state_at = v_created, state_event_id = v_id
       where s.subscription_id = v_sub;
      v_outcome := 'applied';
    else
      insert into public.billing_subscriptions
        (subscription_id, customer_id, user_id, status, plan_id, price_ref, cancel_at_period_end,
         current_period_end, state_source, state_at, state_event_id)
      values (v_sub, v_customer, v_user, v_status, v_plan, v_price_ref,
              coalesce((v_obj ->> 'cancel_at_period_end')::boolean, false),
              coalesce(private.billing_epoch(v_obj -> 'current_period_end'),
                       private.billing_epoch(v_obj #> '{items,data,0,current_period_end}')),
              'subscription', v_created, v_id);
      v_outcome := 'applied';
    end if;
    if v_user is null then
      -- Kept, unattached: the checkout event that links the customer applies it.
      v_outcome := 'unknown_customer';
    else
      perform private.billing_refresh_plan(v_user, v_id);
    end if;

  elsif v_type = 'invoice.payment_failed' then
    -- Decision: the plan stays until Stripe changes the subscription's status
    -- (past_due keeps the plan; unpaid/canceled remove it). The failure is
    -- recorded on the subscription and audited so the app can ask for a new card.
    if v_user is null then
      v_outcome := 'unknown_customer';
    else
      update public.billing_subscriptions s
         set last_payment_failed_at = greatest(s.last_payment_failed_at, v_created)
       where s.subscription_id = v_sub and s.customer_id = v_customer;
      perform private.audit(v_user, 'billing.payment_failed', jsonb_build_object(
        'invoice_id', v_obj ->> 'id', 'subscription_id', v_sub, 'event_id', v_id,
        'attempt_count', v_obj -> 'attempt_count', 'next_payment_attempt', v_obj -> 'next_payment_attempt'));
      v_outcome := 'recorded';
    end if;

  else
    v_outcome := 'ignored';
  end if;

  update private.billing_events e set outcome = v_outcome, user_id = v_user where e.event_id = v_id;
  return query select v_outcome, v_user, v_sub;
end;
$$;
revoke execute on function private.billing_process_event(jsonb, text) from public;
grant execute on function private.billing_process_event(jsonb, text) to service_role;

comment on function private.billing_process_event(jsonb, text) is
  'Apply one signature-verified Stripe event exactly once. Returns outcome (applied, recorded, stale, '
  'ignored, duplicate, unknown_customer, unknown_user, customer_conflict), the user and the subscription.';
comment on function private.billing_refresh_plan(uuid, text) is
  'Set profiles.plan from the user''s entitled subscriptions (none: free) and audit a change.';
