-- queues: check a JSON column's depth when the column is written, not on every
-- update of the row (issue #16).
--
-- Why: PostgreSQL evaluates every CHECK constraint of a table for every new
-- row version, whichever columns an UPDATE changed. jobs.payload and
-- ai_requests.messages carried `check (private.json_check_depth(...))`
-- (migration 20261206090600), so each claim, heartbeat, completion and retry of
-- a job or an AI request, none of which touches the payload, walked the payload
-- again through a PL/pgSQL call and a jsonpath query: measured on the server,
-- claim + complete of a no-op job cost 68.5 us of CPU with the constraint and
-- 57 us without it (median of four alternating runs of 20,000 jobs).
--
-- Adds private.json_depth_guard(): a BEFORE INSERT OR UPDATE OF <column>
-- trigger function (arguments: the column and the name its error uses) that
-- calls private.json_check_depth, so the same value is refused with the same
-- 22023 message as before, by every writer (API roles, service role, definer
-- functions), before any CHECK constraint runs. Updates that do not set the
-- column no longer pay for it. Rows stored before the depth limit (the
-- constraints were NOT VALID) are now checked only when their JSON is written
-- again: a job stored with a deep payload before the limit can still be run
-- and completed, where the constraint refused every update of it.
--
-- The other *_depth constraints stay: their tables are not updated by a queue.

create function private.json_depth_guard() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Its triggers are checked by tests/security/test_json_validation.py (column argument,
  -- INSERT OR UPDATE OF that column).
  perform private.json_check_depth(to_jsonb(new) -> tg_argv[0], tg_argv[1]);
  return new;
end;
$$;
revoke execute on function private.json_depth_guard() from public, anon, authenticated, service_role;
comment on function private.json_depth_guard() is
  'Trigger: refuses (22023) a jsonb column nested deeper than private.json_max_depth(). Arguments: the column, the field name used in the error. Fires only when that column is written.';

alter table public.jobs drop constraint jobs_payload_depth;
create trigger jobs_payload_depth
  before insert or update of payload on public.jobs
  for each row execute function private.json_depth_guard('payload', 'job payload');

alter table public.ai_requests drop constraint ai_requests_messages_depth;
create trigger ai_requests_messages_depth
  before insert or update of messages on public.ai_requests
  for each row execute function private.json_depth_guard('messages', 'ai_requests.messages');
