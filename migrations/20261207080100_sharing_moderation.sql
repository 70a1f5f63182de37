-- sharing: moderation of abuse reports: takedowns, publishing bans, owner
-- notifications. Adds columns to public.abuse_reports (resolution), tables
-- private.document_takedowns, private.publishing_bans, public.notifications,
-- the triggers that enforce takedowns and bans, the share-link-open audit
-- event, and the operator RPCs public.moderation_reports,
-- public.moderation_report and public.moderation_resolve_report (service
-- role only: the admin UI and `backline reports`).
--
-- Why (issue #14, sketchpad: "report button + manual review", "TOS disclaimer
-- + takedown process"): reports were stored and never handled. An operator
-- now resolves a report as
--   dismiss  nothing changes for the document;
--   hide     takedown: the document becomes private and locked (its owner
--            keeps it and can still edit it, but cannot make it public or
--            unlisted again, nor share it), every share link of it is
--            revoked, and so are the public copies of its forks (below);
--   ban      the same takedown, and the owner may no longer publish at all:
--            no document becomes public or unlisted, no share link is
--            created (PT403 with a message saying why); existing public
--            documents of the owner stay as they are (hide them one by one).
-- Forks: a fork copies the body, so the taken-down content lives on in every
-- fork (and fork of a fork). Forks that are public or unlisted become private,
-- their links are revoked, and every fork is locked like the source: nothing
-- is deleted (the fork's owner keeps their copy and their edits), but the
-- copy cannot be re-published around the takedown. Each affected owner gets a
-- notification (public.notifications, readable only by them).
-- Audit trail: the report keeps who resolved it (resolved_by: the operator's
-- name), when and why (resolution_note, required for hide and ban); the
-- takedown rows keep the same; audit_log gets moderation.* entries for each
-- affected owner; audit_changes records every row change.
-- Other open reports of the same document are closed with the same
-- resolution by a hide or ban.
-- Row caps: notifications are written only by the database (moderation
-- decisions), takedowns and bans only by operators: none is user-writable.

-- == tables ==
alter table public.abuse_reports drop constraint abuse_reports_status_valid;
alter table public.abuse_reports add constraint abuse_reports_status_valid
  check (status in ('open', 'reviewed', 'dismissed', 'hidden', 'banned'));
alter table public.abuse_reports
  add column resolved_at timestamptz,
  add column resolved_by text constraint abuse_reports_resolved_by_length check (length(resolved_by) <= 200),
  add column resolution_note text constraint abuse_reports_resolution_note_length
    check (length(resolution_note) <= 2000);
create index abuse_reports_document_id_status_idx on public.abuse_reports (document_id, status);

create table private.document_takedowns (
  document_id uuid primary key references public.documents (id) on delete cascade,
  report_id uuid references public.abuse_reports (id) on delete set null,
  source_document_id uuid references public.documents (id) on delete set null,
  reason text not null constraint document_takedowns_reason_length check (length(reason) between 1 and 2000),
  taken_down_by text not null constraint document_takedowns_by_length check (length(taken_down_by) between 1 and 200),
  created_at timestamptz not null default now()
);
create index document_takedowns_report_id_idx on private.document_takedowns (report_id);
create index document_takedowns_source_document_id_idx on private.document_takedowns (source_document_id);

create table private.publishing_bans (
  user_id uuid primary key references auth.users (id) on delete cascade,
  report_id uuid references public.abuse_reports (id) on delete set null,
  reason text not null constraint publishing_bans_reason_length check (length(reason) between 1 and 2000),
  banned_by text not null constraint publishing_bans_by_length check (length(banned_by) between 1 and 200),
  created_at timestamptz not null default now()
);
create index publishing_bans_report_id_idx on private.publishing_bans (report_id);

create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null constraint notifications_kind_format check (kind ~ '^[a-z][a-z0-9_.]{1,62}$'),
  message text not null constraint notifications_message_length check (length(message) between 1 and 4000),
  data jsonb not null default '{}'::jsonb constraint notifications_data_object check (jsonb_typeof(data) = 'object'),
  read_at timestamptz,
  created_at timestamptz not null default now()
);
create index notifications_user_id_created_at_idx on public.notifications (user_id, created_at desc);

select private.audit_attach('public.abuse_reports');  -- again: it has new columns
select private.audit_attach('public.notifications');
select private.audit_attach('private.publishing_bans');

-- == functions (schema private: not exposed) ==

-- Publishing means: a document becomes public or unlisted, or gets a share link.
create function private.publishing_refusal(p_owner uuid, p_document_id uuid) returns void
language plpgsql stable security definer set search_path = ''
as $$
begin
  if exists (select 1 from private.publishing_bans b where b.user_id = p_owner) then
    raise exception 'publishing is suspended for this account after a moderation decision'
      using errcode = 'PT403',
      hint = 'Documents stay private; see your notifications for the reason, or contact support to appeal.';
  end if;
  if p_document_id is not null
     and exists (select 1 from private.document_takedowns t where t.document_id = p_document_id) then
    raise exception 'document % was taken down after a moderation decision and cannot be published or shared',
      p_document_id using errcode = 'PT403',
      hint = 'It stays in your library as private; see your notifications, or contact support to appeal.';
  end if;
end;
$$;
revoke execute on function private.publishing_refusal(uuid, uuid) from public, anon, authenticated, service_role;

create function private.documents_publishing_check() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.publishing_refusal(new.owner_id, new.id);
  return new;
end;
$$;
revoke execute on function private.documents_publishing_check() from public, anon, authenticated, service_role;

create trigger documents_publishing_check_insert before insert on public.documents
  for each row when (new.visibility <> 'private')
  execute function private.documents_publishing_check();
create trigger documents_publishing_check_update before update of visibility on public.documents
  for each row when (new.visibility <> 'private' and new.visibility is distinct from old.visibility)
  execute function private.documents_publishing_check();

create function private.share_links_publishing_check() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.publishing_refusal(new.owner_id, new.document_id);
  return new;
end;
$$;
revoke execute on function private.share_links_publishing_check() from public, anon, authenticated, service_role;

create trigger share_links_publishing_check before insert on public.share_links
  for each row execute function private.share_links_publishing_check();

-- Share-link opens: one audit_log entry for the link's owner (who opened it:
-- the role only, never another user's id).
create function private.share_links_audit_open() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform private.audit(new.owner_id, 'share.opened', jsonb_build_object(
    'share_link_id', new.id, 'document_id', new.document_id, 'by', private.audit_actor()));
  return null;
end;
$$;
revoke execute on function private.share_links_audit_open() from public, anon, authenticated, service_role;

create trigger share_links_audit_open after update of open_count on public.share_links
  for each row when (new.open_count > old.open_count)
  execute function private.share_links_audit_open();

-- == RPCs for operators (public, security invoker, service role only) ==

create function public.moderation_reports(p_status text default 'open', p_limit integer default 50)
returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  if p_status is not null and p_status not in ('open', 'reviewed', 'dismissed', 'hidden', 'banned') then
    raise exception 'status must be open, reviewed, dismissed, hidden or banned (or null for all)'
      using errcode = '22023';
  end if;
  if p_limit is null or p_limit not between 1 and 1000 then
    raise exception 'limit must be between 1 and 1000' using errcode = '22023';
  end if;
  return coalesce((
    select jsonb_agg(jsonb_build_object(
             'id', r.id, 'document_id', r.document_id, 'reason', r.reason, 'status', r.status,
             'created_at', r.created_at, 'resolved_at', r.resolved_at, 'resolved_by', r.resolved_by,
             'document_title', d.title, 'owner_id', d.owner_id,
             'reports_of_document', (select count(*) from public.abuse_reports x where x.document_id = r.document_id))
           order by r.created_at, r.id)
      from (select * from public.abuse_reports a
             where p_status is null or a.status = p_status
             order by a.created_at, a.id limit p_limit) r
      join public.documents d on d.id = r.document_id), '[]'::jsonb);
end;
$$;
revoke execute on function public.moderation_reports(text, integer) from public, anon, authenticated, service_role;
grant execute on function public.moderation_reports(text, integer) to service_role;

create function public.moderation_report(p_report_id uuid) returns jsonb
language plpgsql stable set search_path = ''
as $$
declare
  v jsonb;
begin
  select jsonb_build_object(
           'id', r.id, 'reason', r.reason, 'details', r.details, 'status', r.status,
           'reporter_id', r.reporter_id, 'created_at', r.created_at, 'resolved_at', r.resolved_at,
           'resolved_by', r.resolved_by, 'resolution_note', r.resolution_note,
           'document', jsonb_build_object('id', d.id, 'kind', d.kind, 'title', d.title, 'body', d.body,
             'visibility', d.visibility, 'owner_id', d.owner_id, 'deleted_at', d.deleted_at,
             'forked_from', d.forked_from, 'fork_count', d.fork_count, 'view_count', d.view_count),
           'taken_down', exists (select 1 from private.document_takedowns t where t.document_id = d.id),
           'owner_banned', exists (select 1 from private.publishing_bans b where b.user_id = d.owner_id),
           'other_reports', coalesce((select jsonb_agg(jsonb_build_object('id', x.id, 'reason', x.reason,
                                        'status', x.status, 'created_at', x.created_at) order by x.created_at)
                                        from public.abuse_reports x
                                       where x.document_id = r.document_id and x.id <> r.id), '[]'::jsonb))
    into v
    from public.abuse_reports r join public.documents d on d.id = r.document_id
   where r.id = p_report_id;
  if v is null then
    raise exception 'abuse report % not found', p_report_id using errcode = 'PT404',
      hint = 'List reports with moderation_reports() (backline reports list).';
  end if;
  return v;
end;
$$;
revoke execute on function public.moderation_report(uuid) from public, anon, authenticated, service_role;
grant execute on function public.moderation_report(uuid) to service_role;

create function public.moderation_resolve_report(
  p_report_id uuid, p_action text, p_note text default null, p_moderator text default null
) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  r public.abuse_reports;
  v_owner uuid;
  v_status text;
  v_note text := nullif(trim(p_note), '');
  v_by text := nullif(trim(p_moderator), '');
  v_hidden uuid[] := '{}'::uuid[];
  v_links integer := 0;
  v_notified integer := 0;
  v_closed integer := 0;
  n record;
begin
  if p_action is null or p_action not in ('dismiss', 'hide', 'ban') then
    raise exception 'action must be dismiss, hide or ban' using errcode = '22023';
  end if;
  if v_by is null or length(v_by) > 200 then
    raise exception 'the moderator''s name is required (1-200 characters)' using errcode = '22023',
      hint = 'It is kept with the decision as the audit trail.';
  end if;
  if p_action <> 'dismiss' and v_note is null then
    raise exception 'a reason is required to % a document', p_action using errcode = '22023',
      hint = 'The owner is told the reason in their notification.';
  end if;
  if length(v_note) > 2000 then
    raise exception 'the reason is at most 2000 characters' using errcode = '22023';
  end if;
  select * into r from public.abuse_reports a where a.id = p_report_id for update;
  if not found then
    raise exception 'abuse report % not found', p_report_id using errcode = 'PT404',
      hint = 'List reports with moderation_reports() (backline reports list).';
  end if;
  if r.status <> 'open' then
    raise exception 'abuse report % is already resolved (%)', p_report_id, r.status using errcode = 'PT409',
      hint = 'Each report is resolved once.';
  end if;
  v_status := case p_action when 'dismiss' then 'dismissed' when 'hide' then 'hidden' else 'banned' end;
  select d.owner_id into v_owner from public.documents d where d.id = r.document_id;

  if p_action in ('hide', 'ban') then
    -- the document and every fork below it (fork of a fork too)
    for n in
      with recursive tree (id, depth) as (
        select r.document_id, 0
        union all
        select d.id, t.depth + 1 from public.documents d join tree t on d.forked_from = t.id where t.depth < 100
      )
      select d.id, d.owner_id, d.visibility, t.depth from tree t join public.documents d on d.id = t.id
    loop
      insert into private.document_takedowns (document_id, report_id, source_document_id, reason, taken_down_by)
      values (n.id, r.id, case when n.depth > 0 then r.document_id end, v_note, v_by)
      on conflict (document_id) do nothing;
      if n.visibility <> 'private' or n.depth = 0 then
        update public.documents set visibility = 'private' where id = n.id and visibility <> 'private';
        v_hidden := v_hidden || n.id;
      end if;
      with revoked as (
        update public.share_links set revoked_at = now() where document_id = n.id and revoked_at is null returning 1
      ) select v_links + count(*) into v_links from revoked;
      if n.depth = 0 or n.visibility <> 'private' then
        insert into public.notifications (user_id, kind, message, data)
        values (n.owner_id, case when n.depth = 0 then 'moderation.takedown' else 'moderation.fork_takedown' end,
                case when n.depth = 0
                     then format('Your document was taken down after a report and is now private: %s', v_note)
                     else format('Your fork of a document that was taken down is now private: %s', v_note) end,
                jsonb_build_object('document_id', n.id, 'report_id', r.id, 'source_document_id',
                                   case when n.depth > 0 then r.document_id end));
        perform private.audit(n.owner_id, 'moderation.takedown', jsonb_build_object(
          'document_id', n.id, 'report_id', r.id, 'reason', v_note, 'moderator', v_by,
          'fork_of', case when n.depth > 0 then r.document_id end));
        v_notified := v_notified + 1;
      end if;
    end loop;
  end if;

  if p_action = 'ban' then
    insert into private.publishing_bans (user_id, report_id, reason, banned_by)
    values (v_owner, r.id, v_note, v_by)
    on conflict (user_id) do nothing;
    insert into public.notifications (user_id, kind, message, data)
    values (v_owner, 'moderation.ban',
            format('Publishing is suspended for your account (no public or unlisted documents, no share links): %s', v_note),
            jsonb_build_object('report_id', r.id));
    perform private.audit(v_owner, 'moderation.ban', jsonb_build_object(
      'report_id', r.id, 'reason', v_note, 'moderator', v_by));
  end if;

  update public.abuse_reports
     set status = v_status, resolved_at = now(), resolved_by = v_by, resolution_note = v_note
   where id = r.id;
  if p_action <> 'dismiss' then
    with closed as (
      update public.abuse_reports
         set status = v_status, resolved_at = now(), resolved_by = v_by,
             resolution_note = format('closed with report %s', r.id)
       where document_id = r.document_id and status = 'open' and id <> r.id
      returning 1
    ) select count(*) into v_closed from closed;
  end if;
  perform private.audit(null, 'moderation.report_resolved', jsonb_build_object(
    'report_id', r.id, 'document_id', r.document_id, 'owner_id', v_owner, 'resolution', v_status,
    'reason', v_note, 'moderator', v_by));
  return jsonb_build_object('report_id', r.id, 'status', v_status, 'document_id', r.document_id,
    'owner_id', v_owner, 'documents_hidden', to_jsonb(v_hidden), 'share_links_revoked', v_links,
    'owners_notified', v_notified, 'owner_banned', p_action = 'ban', 'other_reports_closed', v_closed);
end;
$$;
revoke execute on function public.moderation_resolve_report(uuid, text, text, text)
  from public, anon, authenticated, service_role;
grant execute on function public.moderation_resolve_report(uuid, text, text, text) to service_role;

-- == grants and row level security ==
revoke all on table private.document_takedowns from anon, authenticated, service_role;
grant select, insert on private.document_takedowns to service_role;
revoke all on table private.publishing_bans from anon, authenticated, service_role;
grant select, insert, delete on private.publishing_bans to service_role;

revoke all on table public.notifications from anon, authenticated, service_role;
grant select on public.notifications to authenticated;
grant update (read_at) on public.notifications to authenticated;
grant select, insert, update, delete on public.notifications to service_role;
alter table public.notifications enable row level security;

create policy "users read their own notifications" on public.notifications
  for select to authenticated using (user_id = (select auth.uid()));
create policy "users mark their own notifications read" on public.notifications
  for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

-- == comments ==
comment on column public.abuse_reports.status is
  'open, then dismissed, hidden (document taken down) or banned (taken down and owner banned from publishing); '
  'reviewed: legacy.';
comment on column public.abuse_reports.resolved_at is 'When an operator resolved the report.';
comment on column public.abuse_reports.resolved_by is 'The operator who resolved it (name given to moderation_resolve_report).';
comment on column public.abuse_reports.resolution_note is 'Why: the reason given by the operator (required for hide and ban).';
comment on table private.document_takedowns is
  'Documents taken down by moderation (and their forks): private and locked, never re-published or shared.';
comment on table private.publishing_bans is
  'Accounts banned from publishing: no public/unlisted documents, no share links (PT403).';
comment on table public.notifications is
  'Messages to a user from the database (moderation decisions). Owners read them and set read_at.';
comment on column public.notifications.id is 'The notification''s id.';
comment on column public.notifications.user_id is 'Who it is for (the only reader).';
comment on column public.notifications.created_at is 'When the database wrote it.';
comment on column public.notifications.kind is 'moderation.takedown, moderation.fork_takedown, moderation.ban, ...';
comment on column public.notifications.message is 'Human-readable text, shown as is.';
comment on column public.notifications.data is 'Ids the message is about (document_id, report_id, ...).';
comment on column public.notifications.read_at is 'Set by the user when read (the only column they may change).';
comment on function public.moderation_reports(text, integer) is
  'Operators (service role): abuse reports of a status (default open; null: all), oldest first.';
comment on function public.moderation_report(uuid) is
  'Operators (service role): one abuse report with its document, other reports, takedown and ban state. PT404 if unknown.';
comment on function public.moderation_resolve_report(uuid, text, text, text) is
  'Operators (service role): resolve an open report: dismiss, hide (takedown of the document and its forks, '
  'links revoked, owners notified) or ban (hide + the owner may no longer publish). Reason required for hide/ban. '
  'PT404 unknown report, PT409 already resolved, 22023 bad input.';
