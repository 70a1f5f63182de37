-- ai: the ledger commits durably (issue #18 "Nothing confirmed is ever lost").
-- Gives private.ai_begin and private.ai_finish the function-level setting
-- `synchronous_commit = on`, and redefines private.cleanup_ai_usage_pending
-- (latest definition: 20261125081000_ai_admission_tickets.sql) so that a call
-- that was admitted but never settled is charged its reservation, not nothing.
-- Why: both functions run `set_config('synchronous_commit', 'off', true)` (a
-- latency choice of 20261125050200), so a database crash could drop a budget
-- reservation or a settlement the caller had already been served for, and the
-- monthly budget ("never exceeded") did not hold across a crash. A function's
-- SET clause confines any SET LOCAL of the same setting inside its body to the
-- call: the caller's transaction keeps `on` and commits durably (tested by
-- tests/durability/test_ai_ledger_durable.py, which fails if a later
-- redefinition drops the clause). The bodies are left alone: another migration
-- of this release owns their error codes. Whoever redefines them next should
-- drop the set_config line and keep `set synchronous_commit = on`.
-- A JSON answer is still sent before its settlement commits (deferred
-- settlement, docs/ai.md): if the proxy or the database dies in that moment the
-- row stays `pending` with its reservation, which keeps counting against the
-- budget, and cleanup now charges that reservation (the estimate: input from
-- the prompt, output = max_tokens) as the call's cost, status `abandoned`. The
-- budget errs on the side of the user's limit, never past it.
-- `create or replace` and `alter function` keep each function's privileges.

-- == functions ==
alter function private.ai_begin(text, text, integer, integer, integer, text, boolean, uuid,
  text, text, uuid, text, uuid, text) set synchronous_commit = on;
alter function private.ai_finish(uuid, text, integer, integer, integer, integer, text, text)
  set synchronous_commit = on;

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
      update public.ai_usage u set status = 'abandoned', finished_at = now(), reserved_usd = 0,
                                   cost_usd = s.r
        from stale s where u.id = s.id
      returning u.id, s.user_id, s.budget_month, s.r
    ), budget as (
      update private.ai_budget_months b set reserved_usd = greatest(b.reserved_usd - agg.r, 0),
                                            spent_usd = b.spent_usd + agg.r
        from (select user_id, budget_month, sum(r) as r from released group by 1, 2) agg
       where b.user_id = agg.user_id and b.month = agg.budget_month
      returning 1
    ), tickets as (
      delete from private.ai_usage_tickets t using released r where t.usage_id = r.id
      returning 1
    )
    select format('ai usage %s abandoned (charged its reservation of %s USD)', r.id, r.r) from released r;
end;
$$;

-- == comments ==
comment on function private.cleanup_ai_usage_pending(integer, boolean) is
  'Cron cleanup: AI calls pending for over an hour (proxy or database died before settlement) become abandoned and are charged their reservation.';
