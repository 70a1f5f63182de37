-- API comments: the `comment on` text the generated API reference (docs/api.md,
-- `backline gen api-docs`) shows for every exposed table column and RPC that had
-- none. Comments only: no table, column, function, grant or policy changes.
-- Frontend developers read these next to the types (supabase/types/database.ts);
-- "set by the database" marks columns no API role may write.

-- identity ---------------------------------------------------------------------------

comment on column public.profiles.id is
  'The user''s id (auth.users.id, the token''s sub claim). Set at sign-up.';
comment on column public.profiles.created_at is 'When the profile was created (at sign-up). Set by the database.';
comment on column public.profiles.updated_at is 'When the profile last changed. Set by the database.';

comment on column public.plans.id is 'Plan key, e.g. free or pro (profiles.plan refers to it).';
comment on column public.plans.name is 'Plan name to show to users.';
comment on column public.plans.created_at is 'When the plan was added.';
comment on column public.plans.updated_at is 'When the plan''s limits last changed.';

comment on column public.audit_log.id is 'Sequence number of the entry (increasing).';
comment on column public.audit_log.user_id is
  'The user the event is about; null after that user was erased (the entry stays).';
comment on column public.audit_log.created_at is 'When the event was recorded.';

-- library ----------------------------------------------------------------------------

comment on column public.document_kinds.id is
  'Kind key (2-40 characters of a-z, 0-9 and _), e.g. loop, song, folder, item.';
comment on column public.document_kinds.description is 'What documents of this kind hold (up to 500 characters).';
comment on column public.document_kinds.created_at is 'When the kind was registered.';
comment on column public.document_kinds.updated_at is 'When the kind''s settings last changed.';

comment on column public.document_kind_limits.kind is 'The document kind (document_kinds.id).';
comment on column public.document_kind_limits.plan is 'The plan (plans.id).';
comment on column public.document_kind_limits.max_documents is
  'Most live documents of this kind one user on this plan may hold.';

comment on column public.documents.id is 'Document id; generated when omitted.';
comment on column public.documents.owner_id is
  'The owning user. Defaults to the caller; the policies accept no other id.';
comment on column public.documents.kind is 'The document kind (document_kinds.id); decides validation and limits.';
comment on column public.documents.title is 'Title, up to 200 characters.';
comment on column public.documents.created_at is 'When the document was created. Set by the database.';
comment on column public.documents.updated_at is 'When the document last changed. Set by the database.';

comment on column public.backups.id is 'Backup id.';
comment on column public.backups.owner_id is 'The owning user. Set by the database.';
comment on column public.backups.version is 'Backup version of this user, 1 for the first upload, +1 for each next one.';
comment on column public.backups.size_bytes is 'Ciphertext size in bytes. Set by the database.';
comment on column public.backups.created_at is 'When the version was uploaded.';

comment on column public.sync_conflicts.id is 'Conflict id (pass it to rpc resolve_conflict).';
comment on column public.sync_conflicts.owner_id is 'The user whose change collided. Set by the database.';
comment on column public.sync_conflicts.document_id is 'The document the change was for.';
comment on column public.sync_conflicts.change_id is 'The client''s change_id from sync_push.';
comment on column public.sync_conflicts.strategy is 'The sync_push strategy in force: server_wins, client_wins or manual.';
comment on column public.sync_conflicts.base_version is 'The document version the client''s change was based on.';
comment on column public.sync_conflicts.client_title is 'Title in the client''s change.';
comment on column public.sync_conflicts.client_body is 'Body in the client''s change.';
comment on column public.sync_conflicts.client_deleted is 'True when the client''s change was a delete.';
comment on column public.sync_conflicts.server_version is 'The server''s version of the document when the change arrived.';
comment on column public.sync_conflicts.server_title is 'The server copy''s title when the change arrived.';
comment on column public.sync_conflicts.server_body is 'The server copy''s body when the change arrived.';
comment on column public.sync_conflicts.server_deleted is 'True when the server copy was deleted (tombstone).';
comment on column public.sync_conflicts.status is 'open (waiting for resolve_conflict) or resolved.';
comment on column public.sync_conflicts.resolution is
  'How it was resolved: keep_mine, keep_theirs, merged, or client_wins (applied by the strategy).';
comment on column public.sync_conflicts.created_at is 'When the conflict was detected.';
comment on column public.sync_conflicts.resolved_at is 'When it was resolved; null while open.';

comment on column public.sync_receipts.owner_id is 'The user who pushed the change.';
comment on column public.sync_receipts.change_id is 'The client''s change_id (1-100 characters).';
comment on column public.sync_receipts.result is 'The result sync_push returned for this change, returned again on a retry.';
comment on column public.sync_receipts.created_at is 'When the change was applied.';

-- sharing ----------------------------------------------------------------------------

comment on column public.share_links.id is 'Share link id (pass it to rpc revoke_share_link).';
comment on column public.share_links.document_id is 'The shared document.';
comment on column public.share_links.owner_id is 'The document''s owner, who created the link. Set by the database.';
comment on column public.share_links.token_hash is 'sha256 of the token; never readable through the API.';
comment on column public.share_links.open_count is 'How many times the link was opened (rpc open_share).';
comment on column public.share_links.last_opened_at is 'When the link was last opened; null if never.';
comment on column public.share_links.created_at is 'When the link was created.';

comment on column public.abuse_reports.id is 'Report id.';
comment on column public.abuse_reports.document_id is 'The reported public document.';
comment on column public.abuse_reports.reporter_id is
  'The reporting user (defaults to the caller); null after that user was erased.';
comment on column public.abuse_reports.reason is 'spam, harassment, illegal, copyright or other.';
comment on column public.abuse_reports.details is 'Free text from the reporter, up to 2000 characters.';
comment on column public.abuse_reports.status is 'open, reviewed or dismissed (set by operators).';
comment on column public.abuse_reports.created_at is 'When the report was made.';

-- rooms ------------------------------------------------------------------------------

comment on column public.rooms.id is 'Room id.';
comment on column public.rooms.owner_id is
  'The owner: the creator (defaults to the caller; no other id is accepted), changed only by rpc transfer_room_ownership.';
comment on column public.rooms.title is 'Room title, 1-200 characters.';
comment on column public.rooms.created_at is 'When the room was created.';
comment on column public.rooms.updated_at is 'When the room last changed. Set by the database.';

comment on column public.room_members.room_id is 'The room.';
comment on column public.room_members.user_id is 'The member.';
comment on column public.room_members.role is 'owner (exactly one), editor (writes) or viewer (reads).';
comment on column public.room_members.invited_by is 'Who created the invite this member joined with; null for the owner.';
comment on column public.room_members.joined_at is 'When the member joined.';

comment on column public.room_invites.id is 'Invite id; delete the row to revoke the invite.';
comment on column public.room_invites.room_id is 'The room the invite joins.';
comment on column public.room_invites.role is 'Role given on accepting: editor or viewer.';
comment on column public.room_invites.created_by is 'The owner who created the invite.';
comment on column public.room_invites.expires_at is 'After this the invite cannot be accepted (410).';
comment on column public.room_invites.max_uses is 'How many users may accept the invite (1-100).';
comment on column public.room_invites.use_count is 'How many users accepted it so far. Set by the database.';
comment on column public.room_invites.created_at is 'When the invite was created.';

comment on column public.room_elements.id is 'Element id.';
comment on column public.room_elements.room_id is 'The room the element belongs to.';
comment on column public.room_elements.x is 'Horizontal position on the canvas.';
comment on column public.room_elements.y is 'Vertical position on the canvas.';
comment on column public.room_elements.width is 'Width, greater than 0.';
comment on column public.room_elements.height is 'Height, greater than 0.';
comment on column public.room_elements.created_by is 'Who created the element. Set by the database.';
comment on column public.room_elements.created_at is 'When the element was created.';
comment on column public.room_elements.updated_at is 'When the element last changed. Set by the database.';

comment on column public.room_element_connections.id is 'Connection id.';
comment on column public.room_element_connections.room_id is 'The room of both elements.';
comment on column public.room_element_connections.from_element_id is 'The element the arrow starts at (same room).';
comment on column public.room_element_connections.to_element_id is
  'The element the arrow points to (same room, not from_element_id).';
comment on column public.room_element_connections.label is 'Text on the arrow, up to 200 characters.';
comment on column public.room_element_connections.data is 'Client-owned JSON object (style, ...), up to 8 kB.';
comment on column public.room_element_connections.created_by is 'Who created the connection. Set by the database.';
comment on column public.room_element_connections.created_at is 'When the connection was created.';

comment on column public.room_chat_messages.id is 'Message number: order by it, oldest first.';
comment on column public.room_chat_messages.room_id is 'The room of the chat element.';
comment on column public.room_chat_messages.element_id is 'The chat element (kind chat) the message belongs to.';
comment on column public.room_chat_messages.author_id is
  'The member who wrote it, set by the database from the caller; null for messages the AI worker adds and after that user was erased.';
comment on column public.room_chat_messages.content is 'Message text, 1-100000 characters.';
comment on column public.room_chat_messages.model is 'The AI model that wrote an assistant message.';
comment on column public.room_chat_messages.created_at is 'When the message was added.';

comment on column public.room_templates.id is 'Template id (pass it to rpc apply_template).';
comment on column public.room_templates.owner_id is
  'The creator (defaults to the caller; no other id is accepted); null for built-in templates.';
comment on column public.room_templates.kind is 'template or framework.';
comment on column public.room_templates.name is 'Template name, 1-120 characters.';
comment on column public.room_templates.description is 'What the template is for, up to 2000 characters.';
comment on column public.room_templates.visibility is 'private (owner only) or public (every signed-in user).';
comment on column public.room_templates.created_at is 'When the template was created.';
comment on column public.room_templates.updated_at is 'When the template last changed. Set by the database.';

-- files ------------------------------------------------------------------------------

comment on column public.file_links.id is 'Link id.';
comment on column public.file_links.owner_id is
  'The user who owns the linked object. Must be the caller (the policies accept no other id).';
comment on column public.file_links.bucket_id is 'The storage bucket of the object (storage.buckets.id).';
comment on column public.file_links.created_at is 'When the link was made.';

-- ai ---------------------------------------------------------------------------------

comment on column public.ai_keys.id is 'Key id (pass it as key_id to use this key).';
comment on column public.ai_keys.user_id is 'The owning user.';
comment on column public.ai_keys.provider is 'openai, anthropic, gemini or openai_compat.';
comment on column public.ai_keys.label is 'Your name for the key, up to 100 characters.';
comment on column public.ai_keys.last_used_at is 'When the key was last used for a provider call.';
comment on column public.ai_keys.created_at is 'When the key was stored.';

comment on column public.ai_prices.provider is 'openai, anthropic, gemini or openai_compat.';
comment on column public.ai_prices.model is 'Model name; * is the provider''s default price.';
comment on column public.ai_prices.input_usd_per_mtok is 'USD per million input tokens.';
comment on column public.ai_prices.output_usd_per_mtok is 'USD per million output tokens.';
comment on column public.ai_prices.usd_per_image is 'USD per generated image.';
comment on column public.ai_prices.updated_at is 'When the price was last updated.';

comment on column public.ai_requests.id is 'Request id; subscribe to its row to see the status change.';
comment on column public.ai_requests.user_id is 'The requesting user: the caller. Set by the database.';
comment on column public.ai_requests.provider is 'openai, anthropic, gemini or openai_compat.';
comment on column public.ai_requests.model is 'Provider model name, 1-200 characters.';
comment on column public.ai_requests.key_id is
  'Optional: one of your stored keys (ai_keys.id) for the worker to call the provider with.';
comment on column public.ai_requests.max_tokens is 'Most tokens to generate (1-32000); null: the provider default.';
comment on column public.ai_requests.status is 'queued, running, done (see result) or failed (see error). Set by the database.';
comment on column public.ai_requests.error is 'Why the request failed. Set by the worker.';
comment on column public.ai_requests.usage_id is 'The ai_usage row of the provider call. Set by the worker.';
comment on column public.ai_requests.created_at is 'When the request was queued.';
comment on column public.ai_requests.updated_at is 'When the status last changed.';

comment on column public.ai_usage.id is 'Usage row id.';
comment on column public.ai_usage.user_id is 'The user the call was made for.';
comment on column public.ai_usage.provider is 'The provider called.';
comment on column public.ai_usage.model is 'The model called.';
comment on column public.ai_usage.endpoint is 'generate (proxy), detect (proxy) or queue (ai_requests).';
comment on column public.ai_usage.streamed is 'True when the answer was streamed.';
comment on column public.ai_usage.input_tokens is 'Input tokens the provider counted.';
comment on column public.ai_usage.output_tokens is 'Output tokens the provider counted.';
comment on column public.ai_usage.images is 'Images generated.';
comment on column public.ai_usage.reserved_usd is 'Budget reserved for the call while in flight (USD).';
comment on column public.ai_usage.latency_ms is 'How long the provider call took, in milliseconds.';
comment on column public.ai_usage.error is 'Why the call failed (status error).';
comment on column public.ai_usage.budget_month is 'The calendar month (UTC) whose budget the call counts against.';
comment on column public.ai_usage.created_at is 'When the call started.';
comment on column public.ai_usage.finished_at is 'When the call was settled; null while pending.';

-- billing ----------------------------------------------------------------------------

comment on column public.billing_customers.user_id is 'The user.';
comment on column public.billing_customers.created_at is 'When the link was made.';

comment on column public.billing_subscriptions.subscription_id is 'Stripe subscription id (sub_...).';
comment on column public.billing_subscriptions.customer_id is 'Stripe customer id (cus_...).';
comment on column public.billing_subscriptions.user_id is 'The subscribed user.';
comment on column public.billing_subscriptions.current_period_end is 'End of the paid period Stripe last reported.';
comment on column public.billing_subscriptions.state_event_id is 'The Stripe event (evt_...) whose state this row holds.';
comment on column public.billing_subscriptions.created_at is 'When the subscription was first recorded.';
comment on column public.billing_subscriptions.updated_at is 'When the row last changed.';

-- jobs -------------------------------------------------------------------------------

comment on column public.job_kinds.kind is 'Job kind key (2-40 characters of a-z, 0-9 and _), e.g. export, thumbnail.';
comment on column public.job_kinds.description is 'What jobs of this kind do.';
comment on column public.job_kinds.backoff_max is 'Longest delay between retries.';
comment on column public.job_kinds.created_at is 'When the kind was registered.';
comment on column public.job_kinds.updated_at is 'When the kind''s settings last changed.';

comment on column public.jobs.id is 'Job id (rpc enqueue_job returns it).';
comment on column public.jobs.kind is 'The job kind (job_kinds.kind).';
comment on column public.jobs.owner_id is 'The user the job works for; null for system jobs (cron).';
comment on column public.jobs.priority is 'Claim order among due jobs, -100 to 100; higher first.';
comment on column public.jobs.max_attempts is 'Attempts before the job is parked as dead (from its kind).';
comment on column public.jobs.created_at is 'When the job was enqueued.';
comment on column public.jobs.updated_at is 'When the job last changed.';
comment on column public.jobs.finished_at is 'When the job reached succeeded, failed or dead; null before.';

-- privacy ----------------------------------------------------------------------------

comment on column public.privacy_consents.user_id is 'The user.';
comment on column public.privacy_consents.updated_at is 'When the choice last changed.';
comment on column public.privacy_consents.created_at is 'When the first choice was made.';

comment on column public.telemetry_event_types.name is
  'Event name: 2-4 dot-separated parts of a-z, 0-9 and _, e.g. app.opened.';
comment on column public.telemetry_event_types.description is 'What the event means, 1-300 characters.';
comment on column public.telemetry_event_types.created_at is 'When the event type was added.';

comment on column public.telemetry_events.id is 'Event number.';
comment on column public.telemetry_events.user_id is 'The user who sent the event.';
comment on column public.telemetry_events.name is 'The event type (telemetry_event_types.name).';
comment on column public.telemetry_events.received_at is 'When the server received the event.';

-- RPCs -------------------------------------------------------------------------------

comment on function public.revoke_share_link(uuid) is
  'Revoke one of your share links by id: open_share then answers 410. A link that is not yours, unknown or already revoked: PT404.';

comment on function public.job_enqueue(text, jsonb, uuid, timestamptz, integer) is
  'Service role only: enqueue a job of any kind (p_owner: the user it works for, null for system jobs). Returns the job id.';
comment on function public.job_claim(text, text[], integer, interval) is
  'Service role only: claim up to p_limit due jobs of p_kinds (all kinds when null or empty) for a lease of p_lease.';
comment on function public.job_claim_id(uuid, text, interval) is
  'Service role only: claim one queued job by id for a lease; no row when it is not queued or locked.';
comment on function public.job_heartbeat(uuid, text, interval) is
  'Service role only: extend the lease of a running job this worker holds; returns the new lease end. A lost lease is PT409.';
comment on function public.job_complete(uuid, text, jsonb) is
  'Service role only: mark a running job this worker holds succeeded with its result; returns finished_at. A lost lease is PT409.';
comment on function public.job_fail(uuid, text, text, boolean) is
  'Service role only: record a failed attempt: retry after backoff, dead after max_attempts, failed at once when p_retry is false. Returns the new status.';
comment on function public.job_release(uuid, text) is
  'Service role only: hand a running job back at worker shutdown (the attempt is not counted). Returns queued.';
comment on function public.job_retry(uuid) is
  'Service role only: queue a dead or failed job again with attempts reset (PT404 unknown job, PT409 not dead or failed).';
comment on function public.cron_list() is 'Service role only: every cron schedule with its next and last run.';
comment on function public.cron_fire(text, timestamptz, timestamptz) is
  'Service role only: enqueue the job of a due schedule and move it to p_next, once per due time; null when another runner fired it.';
comment on function public.cron_set_next(text, timestamptz, timestamptz) is
  'Service role only: set a schedule''s next run if it is still p_expected; false when it changed meanwhile.';
comment on function public.cron_run_now(text) is
  'Service role only: enqueue a schedule''s job now, outside its schedule (PT404 for an unknown name). Returns the job id.';
comment on function public.list_cleanups() is 'Service role only: every cleanup task with its function and description.';
comment on function public.run_cleanup(text, integer, boolean) is
  'Service role only: run one batch of one cleanup task; returns the items deleted (or, with p_dry_run, that would be).';
