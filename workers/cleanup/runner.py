"""Run cleanup tasks in bounded batches: each batch is its own short transaction.

A task runs batch after batch until one returns fewer items than the batch
size (so a task that keeps finding work stops after `max_batches`). A dry run
calls each task once with `dry_run_limit` and deletes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.cleanup.tasks import PYTHON_TASKS, CleanupContext, PythonCleanup
from workers.errors import BacklineError
from workers.jobs.queue import Queue

DEFAULT_MAX_BATCHES = 10_000


@dataclass
class TaskResult:
    task: str
    count: int = 0
    batches: int = 0
    items: list[str] = field(default_factory=list)
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "count": self.count, "batches": self.batches, "truncated": self.truncated}


def available_tasks(queue: Queue, python_tasks: Mapping[str, PythonCleanup] | None = None) -> dict[str, str]:
    """Task name -> description: SQL tasks from the catalog plus Python tasks."""
    tasks = dict(queue.list_cleanups())
    for name, fn in (PYTHON_TASKS if python_tasks is None else python_tasks).items():
        tasks.setdefault(name, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "python task")
    return dict(sorted(tasks.items()))


def select_tasks(available: Mapping[str, str], tasks: Any, exclude: Any = None) -> list[str]:
    """Resolve a selection: None/"all" means every task; names must exist."""
    excluded = set(exclude or [])
    if tasks is None or tasks == "all" or tasks == ["all"]:
        return [t for t in available if t not in excluded]
    if isinstance(tasks, str):
        tasks = [tasks]
    unknown = [t for t in tasks if t not in available]
    if unknown:
        raise BacklineError(
            f"unknown cleanup task(s): {', '.join(unknown)}; available: {', '.join(available) or 'none'}"
        )
    return [t for t in tasks if t not in excluded]


def run_cleanups(
    queue: Queue,
    ctx: CleanupContext,
    tasks: list[str],
    *,
    batch_size: int,
    dry_run: bool,
    dry_run_limit: int = 1000,
    max_batches: int = DEFAULT_MAX_BATCHES,
    python_tasks: Mapping[str, PythonCleanup] | None = None,
    on_batch: Callable[[str, list[str]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_items: bool = True,
) -> list[TaskResult]:
    """Run each task; `on_batch(task, items)` after every batch (progress, heartbeats)."""
    if batch_size < 1:
        raise BacklineError("batch size must be at least 1")
    registry = PYTHON_TASKS if python_tasks is None else python_tasks
    sql_tasks = set(queue.list_cleanups())
    results: list[TaskResult] = []
    for task in tasks:
        result = TaskResult(task)
        results.append(result)
        size = dry_run_limit if dry_run else batch_size
        while True:
            if should_stop and should_stop():
                return results
            if task in sql_tasks:
                items = queue.run_cleanup(task, size, dry_run)
            elif task in registry:
                items = registry[task](ctx, size, dry_run)
            else:
                raise BacklineError(f"unknown cleanup task: {task}")
            result.batches += 1
            result.count += len(items)
            if keep_items:
                result.items.extend(items)
            if on_batch:
                on_batch(task, items)
            if dry_run:
                result.truncated = len(items) >= size
                break
            if len(items) < size:
                break
            if result.batches >= max_batches:
                result.truncated = True
                break
    return results
