"""Queue mode (SQL side + handler) and the room chat append (against a stand-in of the rooms RPC)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.ai.conftest import Proxy
from tests.ai.test_generate import MSGS, add_key
from tests.helpers import act_as
from workers.ai.queue import RetryableAIError, run_ai_request
from workers.jobs.context import JobContext
from workers.settings import Settings

# Stand-in for the rooms module's RPC, with the shape the AI proxy assumes:
# public.append_chat_message(p_element_id uuid, p_role text, p_content text, p_metadata jsonb) returns uuid,
# SECURITY INVOKER; raises 42501 for non-members.
ROOMS_STUB = """
create table public.test_room_members (element_id uuid, user_id uuid);
create table public.test_chat (id uuid default gen_random_uuid(), element_id uuid, role text, content text,
                               metadata jsonb, author uuid default auth.uid());
grant select on public.test_room_members to authenticated;
grant select, insert on public.test_chat to authenticated;
create function public.append_chat_message(p_element_id uuid, p_role text, p_content text,
                                           p_metadata jsonb default '{}') returns uuid
language plpgsql security invoker set search_path = '' as $$
declare v_id uuid;
begin
  if not exists (select 1 from public.test_room_members m
                  where m.element_id = p_element_id and m.user_id = auth.uid()) then
    raise exception 'not a member of this room' using errcode = '42501';
  end if;
  insert into public.test_chat (element_id, role, content, metadata)
    values (p_element_id, p_role, p_content, p_metadata) returning id into v_id;
  return v_id;
end $$;
"""


def ctx_for(proxy: Proxy, request_id: str, attempt: int = 1) -> JobContext:
    """The JobContext the runtime would pass for the job the insert trigger enqueued."""
    row = proxy.sql(
        "select id, owner_id from public.jobs where kind = 'ai_request' and payload->>'request_id' = %s",
        (request_id,),
    )
    assert row, "no ai_request job was enqueued"
    return JobContext(
        job_id=row[0][0],
        kind="ai_request",
        owner_id=row[0][1],
        attempt=attempt,
        settings=proxy.settings,
        database_url=proxy.db_url,
        heartbeat=lambda: None,
        should_stop=lambda: False,
    )


def test_generate_appends_to_room_chat_only_for_members(proxy: Proxy) -> None:
    proxy.sql(ROOMS_STUB)
    member, h = proxy.user()
    _, h_out = proxy.user()
    element = uuid.uuid4()
    proxy.sql("insert into public.test_room_members values (%s, %s)", (element, member))
    body = {"provider": "openai", "model": "gpt-4o-mini", "messages": MSGS, "chat_element_id": str(element)}
    ok = proxy.http.post("/v1/generate", headers=h, json={**body, "key_id": add_key(proxy, h, "openai")})
    assert ok.status_code == 200, ok.text
    rows = proxy.sql("select role, content, author from public.test_chat")
    assert rows == [("assistant", "Hello from the fake provider.", member)]
    refused = proxy.http.post(
        "/v1/generate", headers=h_out, json={**body, "key_id": add_key(proxy, h_out, "openai")}
    )
    assert refused.status_code == 403
    assert proxy.sql("select count(*) from public.test_chat")[0][0] == 1


def test_append_without_rooms_module_is_a_clear_501(proxy: Proxy) -> None:
    _, h = proxy.user()
    resp = proxy.http.post(
        "/v1/generate",
        headers=h,
        json={
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": MSGS,
            "key_id": add_key(proxy, h, "openai"),
            "chat_element_id": str(uuid.uuid4()),
        },
    )
    assert resp.status_code == 501 and "append_chat_message" in resp.json()["error"]["message"]


def queue(proxy: Proxy, uid: uuid.UUID, **cols: Any) -> str:
    values = {"provider": "openai", "model": "gpt-4o-mini", "messages": json.dumps(MSGS), **cols}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    with psycopg.connect(proxy.db_url) as conn, act_as(conn, uid, rollback=False) as cur:
        cur.execute(
            f"insert into public.ai_requests ({names}) values ({marks}) returning id, status",
            list(values.values()),
        )
        row = cur.fetchone()
    assert row is not None and row[1] == "queued"
    return str(row[0])


def test_queue_rls_and_insert_rules(proxy: Proxy) -> None:
    owner, h = proxy.user()
    stranger, _ = proxy.user()
    key = add_key(proxy, h, "openai")
    req = queue(proxy, owner, key_id=key)
    with psycopg.connect(proxy.db_url) as conn:
        with act_as(conn, stranger) as cur:
            cur.execute("select count(*) from public.ai_requests")
            assert cur.fetchone() == (0,)
            cur.execute("delete from public.ai_requests where id = %s", (req,))
            assert cur.rowcount == 0
        # Someone else's key, forged status/result, and updates are refused.
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(conn, stranger) as cur:
            cur.execute(
                "insert into public.ai_requests (provider, model, messages, key_id) values"
                ' (\'openai\', \'m\', \'[{"role":"user","content":"x"}]\', %s)',
                (key,),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(conn, owner) as cur:
            cur.execute(
                "insert into public.ai_requests (provider, model, messages, status) values"
                " ('openai', 'm', '[{\"role\":\"user\",\"content\":\"x\"}]', 'done')"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(conn, owner) as cur:
            cur.execute("update public.ai_requests set status = 'done'")
        with pytest.raises(psycopg.errors.CheckViolation), act_as(conn, owner) as cur:
            cur.execute(
                "insert into public.ai_requests (provider, model, messages) values ('openai', 'm', '[]')"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege), act_as(conn, None, "anon") as cur:
            cur.execute("select * from public.ai_requests")
    assert proxy.sql("select count(*) from public.ai_requests")[0][0] == 1
    pub = proxy.sql(
        "select 1 from pg_publication_tables where pubname = 'supabase_realtime'"
        " and schemaname = 'public' and tablename = 'ai_requests'"
    )
    assert pub == [(1,)]


def test_queue_handler_runs_request_as_owner_and_appends_chat(proxy: Proxy) -> None:
    proxy.sql(ROOMS_STUB)
    uid, h = proxy.user()
    element = uuid.uuid4()
    proxy.sql("insert into public.test_room_members values (%s, %s)", (element, uid))
    req = queue(
        proxy, uid, key_id=add_key(proxy, h, "openai", key="sk-queue-key-4444"), chat_element_id=element
    )
    out = run_ai_request(ctx_for(proxy, req), {"request_id": req})
    assert out is not None and out["status"] == "done"
    status, result, usage_id = proxy.sql("select status, result, usage_id from public.ai_requests")[0]
    assert status == "done" and result["text"] == "Hello from the fake provider." and usage_id is not None
    assert proxy.fake.requests[-1]["headers"]["authorization"] == "Bearer sk-queue-key-4444"
    assert proxy.sql("select endpoint, status from public.ai_usage where id = %s", (usage_id,)) == [
        ("queue", "ok")
    ]
    assert proxy.sql("select content from public.test_chat") == [("Hello from the fake provider.",)]
    # Running it again changes nothing.
    again = run_ai_request(ctx_for(proxy, req), {"request_id": req})
    assert again is not None and "skipped" in again
    assert proxy.sql("select count(*) from public.ai_usage")[0][0] == 1


def test_queue_handler_failures(proxy: Proxy) -> None:
    uid, h = proxy.user()
    bad = queue(proxy, uid, key_id=add_key(proxy, h, "openai", key="bad-key-1111"))
    out = run_ai_request(ctx_for(proxy, bad), {"request_id": bad})
    assert out is not None and out["status"] == "failed"
    assert proxy.sql("select status from public.ai_requests where id = %s", (bad,)) == [("failed",)]
    down = queue(proxy, uid, model="gpt-fail500", key_id=add_key(proxy, h, "openai"))
    with pytest.raises(RetryableAIError):
        run_ai_request(ctx_for(proxy, down), {"request_id": down})
    assert proxy.sql("select status from public.ai_requests where id = %s", (down,)) == [("queued",)]


def test_queue_request_runs_end_to_end_on_the_job_runtime(proxy: Proxy) -> None:
    import io

    from workers.jobs.logs import JobLog
    from workers.jobs.queue_sql import SqlQueue
    from workers.jobs.registry import HANDLERS
    from workers.jobs.worker import Worker

    assert HANDLERS["ai_request"] is run_ai_request
    uid, h = proxy.user()
    req = queue(
        proxy,
        uid,
        key_id=add_key(proxy, h, "anthropic"),
        provider="anthropic",
        model="claude-3-5-haiku-latest",
    )
    ((job_id, owner, payload),) = proxy.sql(
        "select id, owner_id, payload from public.jobs where kind = 'ai_request'"
    )
    assert owner == uid and payload == {"request_id": req}
    q = SqlQueue(proxy.db_url, pool_size=2)
    try:
        worker = Worker(q, HANDLERS, settings=proxy.settings, cron=False, log=JobLog(stream=io.StringIO()))
        job = worker.run_one(job_id)
    finally:
        q.close()
    assert job is not None and job.status == "succeeded", job
    status, result = proxy.sql("select status, result from public.ai_requests where id = %s", (req,))[0]
    assert status == "done" and result["provider"] == "anthropic" and result["usage"]["output_tokens"] == 6


def test_last_attempt_on_provider_outage_marks_request_failed(proxy: Proxy) -> None:
    uid, h = proxy.user()
    req = queue(proxy, uid, model="gpt-fail500", key_id=add_key(proxy, h, "openai"))
    out = run_ai_request(ctx_for(proxy, req, attempt=3), {"request_id": req})
    assert out is not None and out["status"] == "failed"
    assert proxy.sql("select status from public.ai_requests where id = %s", (req,)) == [("failed",)]


def test_bad_payload_is_permanent() -> None:
    from workers.jobs.errors import PermanentJobError

    ctx = JobContext(
        job_id=uuid.uuid4(),
        kind="ai_request",
        owner_id=None,
        attempt=1,
        settings=Settings(),
        database_url="postgresql://x",
        heartbeat=lambda: None,
        should_stop=lambda: False,
    )
    with pytest.raises(PermanentJobError):
        run_ai_request(ctx, {"request_id": "nope"})
    with pytest.raises(PermanentJobError):
        run_ai_request(
            JobContext(**{**ctx.__dict__, "database_url": None}), {"request_id": str(uuid.uuid4())}
        )
