"""Cleanup: every private.cleanup_* SQL task plus Python-level tasks, in bounded batches."""
