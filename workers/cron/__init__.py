"""Cron: 5-field expressions (workers.cron.expr) and exactly-once firing of private.cron_schedules."""
