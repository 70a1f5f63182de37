"""Exceptions of the job runtime. Handlers raise the first two; the queue raises LeaseLost."""

from __future__ import annotations

from workers.errors import BacklineError


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad input): the job is parked as 'failed' at once."""


class JobInterrupted(Exception):
    """Raised by a handler that stopped early because `ctx.should_stop()` said so.

    The job goes back to the queue and the attempt does not count.
    """


class LeaseLost(BacklineError):
    """The worker no longer holds the job's lease (it expired and the job was re-queued or taken)."""


class QueueError(BacklineError):
    """The queue refused a call (unknown job, bad argument, permission)."""
