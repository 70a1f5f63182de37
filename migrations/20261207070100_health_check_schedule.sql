-- health: the health-check job kind and its 5-minute cron schedule.
-- Adds public.job_kinds 'health_check' and private.cron_schedules 'health-check'.
-- Why: collection tracker "ping endpoints every 5 minutes" and "Slack
-- notifications". The job runs every `backline health` check and posts each
-- check's failure and recovery once to BACKLINE_ALERT_WEBHOOK_URL (or logs it),
-- keeping state in private.health_alerts. One attempt more than once: a run
-- that could not deliver is retried once, then the next run (5 minutes later)
-- tries again from the same state, so a failed delivery is never lost.

insert into public.job_kinds (kind, description, max_attempts, backoff_base)
values ('health_check', 'Run the health checks; post failures and recoveries to the alert webhook.', 2,
        interval '30 seconds');

insert into private.cron_schedules (name, schedule, job_kind, payload, description)
values ('health-check', '*/5 * * * *', 'health_check', '{}',
        'Health checks every 5 minutes; alerts and recoveries to BACKLINE_ALERT_WEBHOOK_URL.');
