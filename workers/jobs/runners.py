"""The threads a worker runs its handlers on.

A worker hands each claimed job to a fixed set of daemon threads (daemon, so a handler stuck past
the drain never keeps the process alive). Waking a sleeping thread costs more than a no-op job, so
runners are woken one at a time: handing a job over wakes a runner only when none is already on
its way, and a runner that takes a job wakes the next one only while more jobs are waiting. A
batch of fast handlers then runs on the one or two runners that are awake, and slow handlers
still start side by side (each runner wakes the next before it runs its own job).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Runners(Generic[T]):
    """Up to `size` threads that call `run(item)` for each item given to `put`."""

    def __init__(self, size: int, run: Callable[[T], None], name: str = "job-runner") -> None:
        self._size = max(1, size)
        self._run = run
        self._name = name
        self._cond = threading.Condition()
        self._pending: deque[T] = deque()
        self._threads = 0
        self._idle = 0  # runners waiting for work
        self._waking = 0  # runners notified that have not taken work yet
        self._closed = False

    def put(self, item: T) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("runners are stopped")
            self._pending.append(item)
            if self._idle == 0 and self._threads < self._size:
                self._threads += 1
                threading.Thread(target=self._loop, name=f"{self._name}-{self._threads}", daemon=True).start()
            else:
                self._wake_one()

    def stop(self) -> None:
        """Let every runner finish its current item and exit; items not started are dropped."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()

    def _wake_one(self) -> None:
        # Called with the lock held: one runner on its way is enough; it wakes the next.
        if self._pending and self._waking == 0 and self._idle > self._waking:
            self._waking += 1
            self._cond.notify()

    def _loop(self) -> None:
        while (item := self._take()) is not None:
            self._run(item[0])

    def _take(self) -> tuple[T] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._idle += 1
                try:
                    self._cond.wait()
                finally:
                    self._idle -= 1
                    self._waking = max(0, self._waking - 1)
            if self._closed:
                return None
            item = self._pending.popleft()
            self._wake_one()
            return (item,)
