"""`backline jobs ...` and `backline workers run` argument handling."""

from __future__ import annotations

import json
import uuid

import psycopg
from typer.testing import CliRunner

from workers.cli.main import app


def invoke(url: str, *args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, [*args, "--database-url", url])
    return result.exit_code, result.stdout, result.exception


def test_enqueue_list_show_and_retry(clone_url: str) -> None:
    code, out, _ = invoke(clone_url, "jobs", "enqueue", "echo", "--payload", '{"fail_permanently": "bad"}')
    assert code == 0
    job_id = uuid.UUID(out.strip())
    code, _, _ = invoke(clone_url, "workers", "run", "echo", "--once", "--no-cron")
    assert code == 0
    code, out, _ = invoke(clone_url, "jobs", "list", "--status", "failed", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert row["id"] == str(job_id) and row["last_error"] == "bad"
    code, out, _ = invoke(clone_url, "jobs", "show", str(job_id), "--json")
    assert code == 0 and json.loads(out)["payload"] == {"fail_permanently": "bad"}
    code, out, _ = invoke(clone_url, "jobs", "retry", str(job_id))
    assert code == 0 and "queued again" in out
    with psycopg.connect(clone_url) as conn:
        assert conn.execute(
            "select status, attempts from public.jobs where id = %s", (job_id,)
        ).fetchone() == (
            "queued",
            0,
        )


def test_bad_input_exits_non_zero_and_changes_nothing(clone_url: str) -> None:
    assert invoke(clone_url, "jobs", "retry", "not-a-uuid")[0] == 2
    code, _, exc = invoke(clone_url, "jobs", "retry", str(uuid.uuid4()))
    assert code == 1 and "does not exist" in str(exc)
    code, _, exc = invoke(clone_url, "jobs", "enqueue", "no_such_kind")
    assert code == 1 and "unknown job kind" in str(exc)
    assert invoke(clone_url, "jobs", "enqueue", "echo", "--payload", "[1]")[0] == 2
    assert invoke(clone_url, "jobs", "list", "--status", "bogus")[0] == 2
    code, _, exc = invoke(clone_url, "workers", "run", "no_such_kind", "--once")
    assert code == 1 and "no handler registered" in str(exc)
    assert invoke(clone_url, "workers", "run", "--once", "--log-format", "xml")[0] == 2
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select count(*) from public.jobs").fetchone() == (0,)
