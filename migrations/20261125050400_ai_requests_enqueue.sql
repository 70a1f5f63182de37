-- ai: queue mode runs on the job runtime. Each new AI request row enqueues one
-- job of kind 'ai_request' (public.job_kinds, jobs module) with payload
-- {"request_id": ...}, owned by the requester; workers.ai.queue.run_ai_request
-- handles it. Why a trigger: the frontend only inserts its row (RLS + rate
-- limit already applied); the job is created in the same transaction, so a
-- request can never be stored without its job (or the reverse).

create function private.ai_requests_enqueue_job() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.job_enqueue('ai_request', jsonb_build_object('request_id', new.id), new.user_id);
  return null;
end;
$$;
revoke execute on function private.ai_requests_enqueue_job() from public;

create trigger ai_requests_enqueue_job after insert on public.ai_requests
  for each row execute function private.ai_requests_enqueue_job();

comment on function private.ai_requests_enqueue_job() is
  'Trigger: enqueue the ai_request job that runs a newly inserted public.ai_requests row.';
