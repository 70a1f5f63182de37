-- security: HTTP statuses a client can act on (issue #12).
-- Why: PostgREST 12 turns a SQLSTATE into an HTTP status by a fixed table
-- (workers/check/postgrest_status.py mirrors it): PTxyz -> xyz, P0001 and
-- 22xxx -> 400, 23505/23503 -> 409, 42501 -> 403 (401 for anon), but P0002
-- (no_data_found), the other P0 codes, XX000 and the classes 25, 38, 39, 40,
-- 54, 55, 57 and 58 -> 500. These functions answered a caller's mistake (an
-- unknown or used-up invite token, leaving a room you are not in, an unknown
-- template, job, schedule, cleanup task, AI key or usage row, a lost job lease)
-- with P0002 or 55000, so clients and monitoring saw an outage.
-- Now, each redefined from its latest definition with only the errcodes (and
-- hints) changed; `create or replace` keeps every grant:
--   not found                          -> PT404 (HTTP 404)
--   invite expired or used up          -> PT410 (HTTP 410; an unknown token is 404)
--   job lease lost, job not retryable  -> PT409 (HTTP 409)
-- The db check lint api_error_maps_to_5xx (workers/check/lints/0018_*) keeps
-- new code from raising a 5xx-mapped errcode again, and
-- tests/security/test_http_statuses.py lists every errcode our functions raise
-- with its HTTP status.

-- public.leave_room: latest definition in 20261125020100_rooms_rooms.sql.
create or replace function public.leave_room(p_room_id uuid) returns void
language plpgsql set search_path = ''
as $$
begin
  if private.room_role(p_room_id) is null then
    raise exception 'you are not a member of this room'
      using errcode = 'PT404', hint = 'Only members leave a room; check the room id.';
  end if;
  if private.room_role(p_room_id) = 'owner' then
    raise exception 'the owner cannot leave the room'
      using errcode = '22023', hint = 'Transfer ownership (rpc transfer_room_ownership) or delete the room.';
  end if;
  delete from public.room_members where room_id = p_room_id and user_id = (select auth.uid());
end;
$$;

-- private.accept_room_invite: latest definition in 20261125020200_rooms_invites.sql.
create or replace function private.accept_room_invite(p_token text) returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_me uuid := (select auth.uid());
  v_invite public.room_invites;
begin
  if v_me is null then
    raise exception 'sign in to accept an invite' using errcode = '42501';
  end if;
  select i.* into v_invite from public.room_invites i
   where i.token_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'))
   for update;
  if v_invite.id is null then
    raise exception 'invite not found'
      using errcode = 'PT404', hint = 'Check the invite link, or ask the room owner for a new one.';
  end if;
  if v_invite.expires_at <= now() then
    raise exception 'invite expired on %', to_char(v_invite.expires_at, 'YYYY-MM-DD')
      using errcode = 'PT410', hint = 'Ask the room owner for a new invite link.';
  end if;
  if v_invite.use_count >= v_invite.max_uses then
    raise exception 'invite is used up (% of % uses)', v_invite.use_count, v_invite.max_uses
      using errcode = 'PT410', hint = 'Ask the room owner for a new invite link.';
  end if;
  if exists (select 1 from public.room_members m where m.room_id = v_invite.room_id and m.user_id = v_me) then
    return v_invite.room_id;  -- already a member: keep the current role, use nothing
  end if;
  insert into public.room_members (room_id, user_id, role, invited_by)
  values (v_invite.room_id, v_me, v_invite.role, v_invite.created_by);
  update public.room_invites set use_count = use_count + 1 where id = v_invite.id;
  return v_invite.room_id;
end;
$$;

-- public.apply_template: latest definition in 20261125020500_rooms_templates.sql.
create or replace function public.apply_template(p_room_id uuid, p_template_id uuid)
returns setof uuid
language plpgsql set search_path = ''
as $$
declare
  v_template public.room_templates;
  v_element jsonb;
  v_conn jsonb;
  v_keys jsonb := '{}';
  v_id uuid;
begin
  -- Users must be owner or editor; the service role (workers, seeding) may apply anywhere.
  if not pg_has_role(current_user, 'service_role', 'member')
     and coalesce(private.room_role(p_room_id), '') not in ('owner', 'editor') then
    raise exception 'only the owner and editors of a room can apply a template'
      using errcode = '42501', hint = 'Ask the room owner to make you an editor.';
  end if;
  select t.* into v_template from public.room_templates t where t.id = p_template_id;
  if v_template.id is null then
    raise exception 'template not found' using errcode = 'PT404',
      hint = 'Use a built-in template, a public one or one of your own (GET /rest/v1/room_templates).';
  end if;
  for v_element in select value from jsonb_array_elements(v_template.elements) loop
    insert into public.room_elements (room_id, kind, x, y, width, height, z_index, data)
    values (
      p_room_id,
      v_element ->> 'kind',
      coalesce((v_element ->> 'x')::double precision, 0),
      coalesce((v_element ->> 'y')::double precision, 0),
      coalesce((v_element ->> 'width')::double precision, 200),
      coalesce((v_element ->> 'height')::double precision, 120),
      coalesce((v_element ->> 'z_index')::integer, 0),
      coalesce(v_element -> 'data', '{}')
    )
    returning id into v_id;
    if v_element ? 'key' then
      v_keys := v_keys || jsonb_build_object(v_element ->> 'key', v_id);
    end if;
    return next v_id;
  end loop;
  for v_conn in select value from jsonb_array_elements(v_template.connections) loop
    if not (v_keys ? (v_conn ->> 'from') and v_keys ? (v_conn ->> 'to')) then
      raise exception 'template % connects unknown element keys % -> %',
        v_template.name, v_conn ->> 'from', v_conn ->> 'to' using errcode = '22023';
    end if;
    insert into public.room_element_connections (room_id, from_element_id, to_element_id, label)
    values (p_room_id, (v_keys ->> (v_conn ->> 'from'))::uuid, (v_keys ->> (v_conn ->> 'to'))::uuid,
            v_conn ->> 'label');
  end loop;
end;
$$;

-- private.job_lease_lost: latest definition in 20261125030000_jobs_queue.sql.
create or replace function private.job_lease_lost(p_id uuid, p_worker text) returns void
language plpgsql set search_path = ''
as $$
declare
  v record;
begin
  select j.status, j.locked_by into v from public.jobs j where j.id = p_id;
  if not found then
    raise exception 'job % does not exist', p_id
      using errcode = 'PT404', hint = 'List jobs with `backline jobs list`.';
  end if;
  raise exception 'job % is not running under worker % (status %, locked by %)',
    p_id, p_worker, v.status, coalesce(v.locked_by, 'nobody')
    using errcode = 'PT409', hint = 'The lease expired and the job was re-queued or taken by another worker.';
end;
$$;

-- private.job_retry: latest definition in 20261125030000_jobs_queue.sql.
create or replace function private.job_retry(p_id uuid)
returns text
language plpgsql security definer set search_path = ''
as $$
declare
  v_status text;
begin
  select j.status into v_status from public.jobs j where j.id = p_id for update;
  if not found then
    raise exception 'job % does not exist', p_id
      using errcode = 'PT404', hint = 'List jobs with `backline jobs list`.';
  end if;
  if v_status not in ('dead', 'failed') then
    raise exception 'job % is %, only dead or failed jobs can be retried', p_id, v_status
      using errcode = 'PT409', hint = 'Queued and running jobs are already on their way.';
  end if;
  update public.jobs j
     set status = 'queued', attempts = 0, run_after = now(), finished_at = null, result = null
   where j.id = p_id;
  return 'queued';
end;
$$;

-- private.cron_run_now: latest definition in 20261125030200_jobs_cron_schedules.sql.
create or replace function private.cron_run_now(p_name text)
returns uuid
language plpgsql security definer set search_path = ''
as $$
declare
  v_schedule private.cron_schedules;
  v_job uuid;
begin
  select * into v_schedule from private.cron_schedules s where s.name = p_name;
  if not found then
    raise exception 'no cron schedule named %', p_name
      using errcode = 'PT404', hint = 'List them with `backline cron list`.';
  end if;
  v_job := private.job_enqueue(v_schedule.job_kind,
                               v_schedule.payload || jsonb_build_object('schedule', p_name, 'manual', true),
                               null, now() + interval '1 minute', 10);
  update private.cron_schedules s set last_run_at = now(), last_job_id = v_job where s.name = p_name;
  return v_job;
end;
$$;

-- private.run_cleanup: latest definition in 20261125030300_jobs_cleanups.sql.
create or replace function private.run_cleanup(p_task text, p_batch_size integer, p_dry_run boolean)
returns table (item text)
language plpgsql set search_path = ''
as $$
declare
  v_function text;
begin
  select c.function_name into v_function from private.list_cleanups() c where c.task = p_task;
  if v_function is null then
    raise exception 'no cleanup task named %', p_task
      using errcode = 'PT404', hint = 'Tasks are the private.cleanup_* functions; see list_cleanups().';
  end if;
  return query execute format('select t.item from private.%I($1, $2) t', 'cleanup_' || p_task)
    using p_batch_size, coalesce(p_dry_run, false);
end;
$$;

-- private.ai_begin: latest definition in 20261125081000_ai_admission_tickets.sql.
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

-- private.ai_finish: latest definition in 20261125081000_ai_admission_tickets.sql.
create or replace function private.ai_finish(
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
    raise exception 'no pending AI usage row %', p_usage_id using errcode = 'PT404',
      hint = 'A call is settled once, by whoever admitted it; unsettled calls are abandoned after an hour.';
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

-- == comments ==
comment on function public.leave_room(uuid) is
  'Leave a room you are a member of (the owner must transfer first). Not a member: PT404 (HTTP 404).';
comment on function public.accept_room_invite(text) is
  'Join the invite''s room with its role; returns the room id. Already a member: no change. '
  'Unknown token: PT404 (HTTP 404); expired or used up: PT410 (HTTP 410).';
comment on function public.apply_template(uuid, uuid) is
  'Owner/editors: create the template''s elements and connections in the room in one transaction; '
  'returns the new element ids. The element cap applies. Unknown or invisible template: PT404 (HTTP 404).';
