"""The cleanup runner: discovers every private.cleanup_* function, batches, dry runs, Python tasks, CLI."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from workers.cleanup.runner import available_tasks, run_cleanups, select_tasks
from workers.cleanup.tasks import CleanupContext
from workers.cli.main import app
from workers.errors import BacklineError
from workers.jobs.queue_sql import SqlQueue
from workers.settings import Settings

WIDGETS = """
create table private.widgets (id integer primary key, expired boolean not null);
insert into private.widgets select n, n <= 5 from generate_series(1, 8) n;
create function private.cleanup_widgets(p_batch_size integer, p_dry_run boolean)
returns table (item text) language plpgsql as $$
begin
  insert into private.widget_calls values (p_batch_size, p_dry_run);
  if p_dry_run then
    return query select 'widget ' || w.id from private.widgets w
      where w.expired order by w.id limit p_batch_size;
    return;
  end if;
  return query with gone as (
    delete from private.widgets w where w.id in (
      select id from private.widgets where expired order by id limit p_batch_size) returning w.id)
    select 'widget ' || g.id from gone g;
end $$;
create table private.widget_calls (batch integer, dry boolean);
-- Looks like a cleanup but has the wrong signature: not a task.
create function private.cleanup_nothing(p_days integer) returns integer language sql as $$ select 1 $$;
"""


@pytest.fixture
def widgets_url(clone_url: str) -> str:
    with psycopg.connect(clone_url, autocommit=True) as conn:
        conn.execute(WIDGETS)
    return clone_url


def ctx() -> CleanupContext:
    return CleanupContext(Settings(_env_file=None), None)  # type: ignore[call-arg]


def test_runner_discovers_new_modules_tasks_and_batches_until_a_short_batch(widgets_url: str) -> None:
    queue = SqlQueue(widgets_url)
    try:
        tasks = available_tasks(queue, python_tasks={})
        assert {"jobs", "rate_limit_events", "widgets"} <= set(tasks) and "nothing" not in tasks
        [result] = run_cleanups(queue, ctx(), ["widgets"], batch_size=2, dry_run=False, python_tasks={})
    finally:
        queue.close()
    assert (result.count, result.batches) == (5, 3)
    assert result.items == [f"widget {n}" for n in range(1, 6)]
    with psycopg.connect(widgets_url) as conn:
        assert conn.execute("select array_agg(id order by id) from private.widgets").fetchone() == (
            [6, 7, 8],
        )
        assert conn.execute("select batch, dry from private.widget_calls").fetchall() == [(2, False)] * 3


def test_dry_run_lists_and_deletes_nothing(widgets_url: str) -> None:
    queue = SqlQueue(widgets_url)
    try:
        [result] = run_cleanups(
            queue, ctx(), ["widgets"], batch_size=2, dry_run=True, dry_run_limit=3, python_tasks={}
        )
    finally:
        queue.close()
    assert result.items == ["widget 1", "widget 2", "widget 3"] and result.truncated
    with psycopg.connect(widgets_url) as conn:
        assert conn.execute("select count(*) from private.widgets").fetchone() == (8,)


def test_python_tasks_use_the_same_contract(clone_url: str) -> None:
    calls: list[tuple[int, bool]] = []
    pending = ["a", "b", "c"]

    def files(context: CleanupContext, batch_size: int, dry_run: bool) -> list[str]:
        calls.append((batch_size, dry_run))
        batch = pending[:batch_size]
        if not dry_run:
            del pending[:batch_size]
        return [f"object {x}" for x in batch]

    queue = SqlQueue(clone_url)
    try:
        hooks = {"orphaned_files": files}
        assert "orphaned_files" in available_tasks(queue, python_tasks=hooks)
        [dry] = run_cleanups(queue, ctx(), ["orphaned_files"], batch_size=2, dry_run=True, python_tasks=hooks)
        [real] = run_cleanups(
            queue, ctx(), ["orphaned_files"], batch_size=2, dry_run=False, python_tasks=hooks
        )
    finally:
        queue.close()
    assert dry.count == 3 and real.count == 3 and pending == []
    assert calls == [(1000, True), (2, False), (2, False)]


def test_selection_rejects_unknown_tasks() -> None:
    available = {"jobs": "", "widgets": ""}
    assert select_tasks(available, "all", ["jobs"]) == ["widgets"]
    with pytest.raises(BacklineError, match="unknown cleanup task"):
        select_tasks(available, ["jobs", "nope"])


def test_cli_dry_run_prints_items_and_a_summary(widgets_url: str) -> None:
    result = CliRunner().invoke(
        app, ["cron", "cleanup", "widgets", "--dry-run", "--database-url", widgets_url]
    )
    assert result.exit_code == 0, result.output
    assert "widgets: widget 1" in result.output and "would delete 5" in result.output
    with psycopg.connect(widgets_url) as conn:
        assert conn.execute("select count(*) from private.widgets").fetchone() == (8,)
    result = CliRunner().invoke(
        app, ["cron", "cleanup", "widgets", "--batch-size", "2", "--json", "--database-url", widgets_url]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tasks"][0]["count"] == 5 and data["tasks"][0]["batches"] == 3
    result = CliRunner().invoke(app, ["cron", "cleanup", "nope", "--database-url", widgets_url])
    assert result.exit_code == 1 and "unknown cleanup task" in str(result.exception)


def test_cleanup_job_kind_runs_tasks_and_reports_counts(widgets_url: str) -> None:
    from tests.jobs.jobtools import enqueue, job_row
    from workers.cleanup.handler import run_cleanup_job
    from workers.jobs.worker import Worker

    job_id = enqueue(widgets_url, "cleanup", {"tasks": ["widgets", "jobs"], "batch_size": 2})
    queue = SqlQueue(widgets_url)
    try:
        Worker(
            queue,
            {"cleanup": run_cleanup_job},
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            cron=False,
        ).run(once=True)
    finally:
        queue.close()
    row = job_row(widgets_url, job_id)
    assert row["status"] == "succeeded", row["last_error"]
    assert row["result"] == {"dry_run": False, "tasks": {"widgets": 5, "jobs": 0}}
