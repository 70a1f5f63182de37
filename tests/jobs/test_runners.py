"""Handler threads (workers/jobs/runners.py): woken one at a time, yet slow handlers still overlap."""

from __future__ import annotations

import threading
import time

import pytest

from workers.jobs.runners import Runners


def test_slow_items_run_side_by_side() -> None:
    # Four handlers that each wait for the other three: only four threads at once can finish.
    barrier = threading.Barrier(4, timeout=10)
    done: list[int] = []

    def run(item: int) -> None:
        barrier.wait()
        done.append(item)

    runners: Runners[int] = Runners(4, run)
    for item in range(4):
        runners.put(item)
    deadline = time.monotonic() + 10
    while len(done) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    runners.stop()
    assert sorted(done) == [0, 1, 2, 3]


def test_every_item_runs_once_on_at_most_size_threads() -> None:
    seen: list[int] = []
    threads: set[str] = set()
    lock = threading.Lock()

    def run(item: int) -> None:
        with lock:
            seen.append(item)
            threads.add(threading.current_thread().name)

    runners: Runners[int] = Runners(3, run)
    for item in range(2000):
        runners.put(item)
    deadline = time.monotonic() + 10
    while len(seen) < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    runners.stop()
    assert sorted(seen) == list(range(2000))
    assert 1 <= len(threads) <= 3


def test_stop_drops_items_not_started_and_refuses_new_ones() -> None:
    release = threading.Event()
    started: list[int] = []

    def run(item: int) -> None:
        started.append(item)
        release.wait(10)

    runners: Runners[int] = Runners(1, run)
    runners.put(1)
    runners.put(2)  # waits behind the first: the only runner is busy
    deadline = time.monotonic() + 10
    while not started and time.monotonic() < deadline:
        time.sleep(0.01)
    runners.stop()
    release.set()
    time.sleep(0.2)
    assert started == [1]
    with pytest.raises(RuntimeError, match="stopped"):
        runners.put(3)
