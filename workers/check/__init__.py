"""Schema validation for ``backline db check``: SQL lints in ``lints/``, run by ``runner``."""

from workers.check.runner import DEFAULT_EXPOSED, Finding, has_errors, run_checks

__all__ = ["DEFAULT_EXPOSED", "Finding", "has_errors", "run_checks"]
