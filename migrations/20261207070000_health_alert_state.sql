-- health: alert state of `backline health` checks. Adds private.health_alerts.
-- Why: the health-check schedule runs every 5 minutes, possibly on several
-- worker processes at once, and must post one alert when a check goes bad and
-- one recovery when it is good again, never the same alert every run. The
-- state of each check (what it last was, and whether the alert channel was
-- told it is bad) lives here; a worker takes a check's row with
-- `select ... for update skip locked` for the time it decides and posts, so
-- two processes never both announce the same transition. Operators and
-- workers only: no API role reads or writes it (schema private, service_role
-- for RPC-less deployments as private.cron_schedules).

-- == tables ==
create table private.health_alerts (
  check_name text primary key
    constraint health_alerts_check_name_format check (check_name ~ '^[a-z][a-z0-9_]{1,39}$'),
  status text not null
    constraint health_alerts_status_known check (status in ('ok', 'warn', 'fail')),
  detail text not null default ''
    constraint health_alerts_detail_length check (length(detail) <= 2000),
  value jsonb,
  status_since timestamptz not null default now(),
  checked_at timestamptz not null default now(),
  alerting boolean not null default false,
  notified_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create trigger health_alerts_set_updated_at before update on private.health_alerts
  for each row execute function private.set_updated_at();

-- == grants and row level security ==
revoke all on table private.health_alerts from anon, authenticated, service_role;
grant select, insert, update on table private.health_alerts to service_role;
alter table private.health_alerts enable row level security;

-- == comments ==
comment on table private.health_alerts is
  'Last result of each `backline health` check and whether an alert about it is open; one row per check.';
comment on column private.health_alerts.status is
  'ok | warn | fail as last observed by the health-check schedule.';
comment on column private.health_alerts.status_since is
  'When the check last went from ok to not ok, or back (a recovery says how long it was bad).';
comment on column private.health_alerts.alerting is
  'True once an alert (check not ok) was delivered and until its recovery is delivered.';
comment on column private.health_alerts.notified_at is
  'When the last alert or recovery for this check was delivered (webhook or log).';
