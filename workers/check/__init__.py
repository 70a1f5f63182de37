"""Schema validation for ``backline db check``: SQL lints in ``lints/``, run by ``runner``."""

from workers.check.runner import Finding, has_errors, run_checks

__all__ = ["Finding", "has_errors", "run_checks"]
