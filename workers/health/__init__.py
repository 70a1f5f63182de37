"""Health checks (`backline health`), their alerts and the weekly usage report's delivery.

checks.py runs the checks; alerts.py keeps each check's alert state in
private.health_alerts and announces transitions once; webhook.py delivers
messages (Slack-compatible webhook, or the log); messages.py words them;
job.py is the `health_check` job handler the 5-minute schedule runs.
"""
