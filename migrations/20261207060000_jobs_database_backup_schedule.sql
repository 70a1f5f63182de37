-- jobs: a daily database backup for self-hosted and embedded deployments.
-- Adds the job kind db_backup (workers/db/backup_job.py: pg_dump of the
-- database into BACKLINE_BACKUP_DIR, keeping the newest BACKLINE_BACKUP_KEEP)
-- and the schedule database-backup, every day at 04:30 UTC (after the 02:00
-- cleanups, before the Monday 03:00 report would matter).
-- Why: the collection tracker's nightly backup-database; a self-hosted or
-- embedded Backline has nobody else backing its database up. Hosted Supabase
-- backs its projects up itself, so with BACKLINE_BACKUP_SCHEDULE=auto (the
-- default) the job recognises a hosted database by its host name, turns this
-- schedule off and says why in its result; BACKLINE_BACKUP_SCHEDULE=on keeps it.

insert into public.job_kinds (kind, description, max_attempts, backoff_base, user_enqueueable, plan_limit_column)
values
  ('db_backup', 'Back up the database (pg_dump custom format) and keep the newest BACKLINE_BACKUP_KEEP.',
   3, interval '5 minutes', false, null);

insert into private.cron_schedules (name, schedule, job_kind, payload, description) values
  ('database-backup', '30 4 * * *', 'db_backup', '{}',
   'Daily database backup to BACKLINE_BACKUP_DIR (self-hosted and embedded; off on hosted Supabase, which backs up itself).');
