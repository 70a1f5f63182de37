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


def chat_room(proxy: Proxy, owner: uuid.UUID, **members: uuid.UUID) -> uuid.UUID:
    """A room owned by `owner` with one chat element; members as role=user_id. Returns the element id."""
    room = proxy.sql(
        "insert into public.rooms (owner_id, title) values (%s, 'ideas') returning id", (owner,)
    )[0][0]
    for role, uid in members.items():
        proxy.sql(
            "insert into public.room_members (room_id, user_id, role) values (%s, %s, %s)",
            (room, uid, role.rstrip("0123456789")),
        )
    element = proxy.sql(
        "insert into public.room_elements (room_id, kind) values (%s, 'chat') returning id", (room,)
    )[0][0]
    return uuid.UUID(str(element))


def chat_rows(proxy: Proxy, element: uuid.UUID) -> list[tuple[Any, ...]]:
    return proxy.sql(
        "select role, content, author_id, model, prompt_tokens, completion_tokens"
        " from public.room_chat_messages where element_id = %s order by id",
        (element,),
    )


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


def test_generate_appends_to_room_chat_only_for_owners_and_editors(proxy: Proxy) -> None:
    owner, h_owner = proxy.user()
    editor, h_editor = proxy.user()
    viewer, h_viewer = proxy.user()
    _, h_out = proxy.user()
    element = chat_room(proxy, owner, editor=editor, viewer=viewer)
    body = {"provider": "openai", "model": "gpt-4o-mini", "messages": MSGS, "chat_element_id": str(element)}
    for h in (h_owner, h_editor):
        ok = proxy.http.post("/v1/generate", headers=h, json={**body, "key_id": add_key(proxy, h, "openai")})
        assert ok.status_code == 200, ok.text
    rows = chat_rows(proxy, element)
    assert [r[:3] for r in rows] == [("assistant", "Hello from the fake provider.", None)] * 2
    assert rows[0][3] == "openai/gpt-4o-mini" and rows[0][5] == 6 and rows[0][4] > 0
    # Streaming appends the streamed text once the stream completed.
    with proxy.http.stream(
        "POST",
        "/v1/generate",
        headers=h_editor,
        json={**body, "stream": True, "key_id": add_key(proxy, h_editor, "openai")},
    ) as resp:
        assert resp.status_code == 200
        resp.read()
    assert len(chat_rows(proxy, element)) == 3
    # A viewer may read but not write; an outsider does not even see the element. Both are refused
    # before the provider is called, so nothing is spent.
    n = len(proxy.fake.requests)
    viewer_resp = proxy.http.post(
        "/v1/generate", headers=h_viewer, json={**body, "key_id": add_key(proxy, h_viewer, "openai")}
    )
    assert viewer_resp.status_code == 403
    out_resp = proxy.http.post(
        "/v1/generate", headers=h_out, json={**body, "key_id": add_key(proxy, h_out, "openai")}
    )
    assert out_resp.status_code == 404
    assert len(proxy.fake.requests) == n
    assert len(chat_rows(proxy, element)) == 3
    assert (
        proxy.sql("select count(*) from public.ai_usage where user_id in (%s, %s)", (viewer, editor))[0][0]
        == 2
    )


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
    uid, h = proxy.user()
    element = chat_room(proxy, uid)
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
    assert [r[:2] for r in chat_rows(proxy, element)] == [("assistant", "Hello from the fake provider.")]
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


def test_queue_request_for_a_room_the_user_cannot_write_fails_without_a_provider_call(proxy: Proxy) -> None:
    owner, _ = proxy.user()
    uid, h = proxy.user()
    element = chat_room(proxy, owner, editor=uid)
    key = add_key(proxy, h, "openai")
    # A viewer cannot even queue it (insert policy: a chat element of a room you may edit) ...
    proxy.sql("update public.room_members set role = 'viewer' where user_id = %s", (uid,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        queue(proxy, uid, key_id=key, chat_element_id=element)
    # ... and an editor demoted after queueing is refused by the worker's re-check when it runs.
    proxy.sql("update public.room_members set role = 'editor' where user_id = %s", (uid,))
    req = queue(proxy, uid, key_id=key, chat_element_id=element)
    proxy.sql("update public.room_members set role = 'viewer' where user_id = %s", (uid,))
    n = len(proxy.fake.requests)
    out = run_ai_request(ctx_for(proxy, req), {"request_id": req})
    assert out is not None and out["status"] == "failed" and "owners and editors" in out["error"]
    assert len(proxy.fake.requests) == n
    assert chat_rows(proxy, element) == []


def test_queue_request_with_a_path_escaping_model_fails_without_a_provider_call(proxy_factory: Any) -> None:
    """The row comes from the user's own insert: the model name gets the HTTP API's check, so the
    operator's Gemini key never calls another API method."""
    proxy = proxy_factory(ai_operator_keys={"gemini": "op-gemini-key"})
    uid, _ = proxy.user()
    req = queue(proxy, uid, provider="gemini", model="../../v1beta/cachedContents?x=")
    n = len(proxy.fake.requests)
    out = run_ai_request(ctx_for(proxy, req), {"request_id": req})
    assert out is not None and out["status"] == "failed" and "model" in out["error"]
    assert len(proxy.fake.requests) == n
    assert proxy.sql("select status from public.ai_requests where id = %s", (req,)) == [("failed",)]
    assert proxy.sql("select count(*) from public.ai_usage where user_id = %s", (uid,))[0][0] == 0
