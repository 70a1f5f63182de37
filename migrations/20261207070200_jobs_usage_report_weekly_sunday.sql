-- jobs: the weekly usage report runs Sunday 00:00 UTC and is delivered.
-- Changes private.cron_schedules 'usage-report' (was Mondays 03:00 UTC) and
-- the description of job kind 'usage_report'.
-- Why: issue #13 item 8, the collection tracker's schedule ("weekly report,
-- Sunday 00:00 UTC"), and the report goes to the operators' alert channel
-- (BACKLINE_ALERT_WEBHOOK_URL) as a readable summary, besides the job result.
-- The schedule's next run follows the edit (trigger cron_schedules_follow_edits).

update private.cron_schedules
   set schedule = '0 0 * * 0',
       description = 'Weekly usage summary (Sundays 00:00 UTC), posted to the alert webhook.'
 where name = 'usage-report';

update public.job_kinds
   set description = 'Weekly usage summary: posted to the alert webhook (or logged) and stored as the job result.'
 where kind = 'usage_report';
