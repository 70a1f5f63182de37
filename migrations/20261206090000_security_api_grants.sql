-- security: API privileges that hold whatever the platform's default privileges.
-- Adds no objects; replaces the API roles' privileges on every table, sequence
-- and function in `public` with exactly what clients need.
--
-- Why: Supabase comes in two flavours (DESIGN.md, "Platform facts"). New hosted
-- projects grant new `public` objects to nobody; `supabase start`, self-hosted
-- stacks and projects created before the 2026 change run
--   alter default privileges for role postgres in schema public
--     grant all on tables|sequences|functions to anon, authenticated, service_role
-- so every table the migrations created there started with table-wide SELECT,
-- INSERT, UPDATE, DELETE (and TRUNCATE, REFERENCES, TRIGGER) for all three API
-- roles. The earlier migrations added column grants on top but never took the
-- table-wide ones away: on those stacks a user could PATCH their own
-- profiles.plan, documents.fork_count or version, and anon could read every
-- plan and storage_used.
--
-- The idiom every migration follows from here on (docs/privileges.md):
--   revoke all on table public.x from anon, authenticated, service_role;
--   grant <privileges> [(<columns>)] on table public.x to <role>;  -- exactly what policies need
--   revoke execute on function public.f(...) from public, anon, authenticated, service_role;
--   grant execute on function public.f(...) to <role>;
-- Columns the database maintains (owners after insert, plan, storage_used,
-- counters, versions, timestamps, token hashes) get no INSERT/UPDATE grant for
-- anon or authenticated. tests/security/privileges.toml declares the result and
-- tests/security/test_privilege_contract.py compares it with the catalog in both
-- flavours, so a new object without a declaration fails CI.
--
-- Compared with the grants the migrations gave before, four tables lose
-- table-wide INSERT for `authenticated` in favour of the columns a client
-- writes: privacy_consents, sync_conflicts, sync_receipts and file_links no
-- longer accept a client-chosen created_at (or updated_at).

-- public.abuse_reports
revoke all on table public.abuse_reports from anon, authenticated, service_role;
grant select, insert, update, delete on table public.abuse_reports to service_role;
grant insert (document_id, reporter_id, reason, details) on table public.abuse_reports to authenticated;

-- public.ai_keys
revoke all on table public.ai_keys from anon, authenticated, service_role;
grant select, delete on table public.ai_keys to authenticated, service_role;

-- public.ai_prices
revoke all on table public.ai_prices from anon, authenticated, service_role;
grant select on table public.ai_prices to anon, authenticated, service_role;
grant insert, update, delete on table public.ai_prices to service_role;

-- public.ai_requests
revoke all on table public.ai_requests from anon, authenticated, service_role;
grant select, delete on table public.ai_requests to authenticated, service_role;
grant insert, update on table public.ai_requests to service_role;
grant insert (provider, model, key_id, messages, max_tokens, chat_element_id) on table public.ai_requests to authenticated;

-- public.ai_usage
revoke all on table public.ai_usage from anon, authenticated, service_role;
grant select on table public.ai_usage to authenticated, service_role;

-- public.audit_log
revoke all on table public.audit_log from anon, authenticated, service_role;
grant select on table public.audit_log to authenticated, service_role;
grant insert on table public.audit_log to service_role;

-- public.backups
revoke all on table public.backups from anon, authenticated, service_role;
grant select on table public.backups to authenticated, service_role;
grant insert, update, delete on table public.backups to service_role;

-- public.billing_customers
revoke all on table public.billing_customers from anon, authenticated, service_role;
grant select on table public.billing_customers to authenticated, service_role;

-- public.billing_subscriptions
revoke all on table public.billing_subscriptions from anon, authenticated, service_role;
grant select on table public.billing_subscriptions to authenticated, service_role;

-- public.document_kind_limits
revoke all on table public.document_kind_limits from anon, authenticated, service_role;
grant select on table public.document_kind_limits to anon, authenticated, service_role;
grant insert, update, delete on table public.document_kind_limits to service_role;

-- public.document_kinds
revoke all on table public.document_kinds from anon, authenticated, service_role;
grant select on table public.document_kinds to anon, authenticated, service_role;
grant insert, update, delete on table public.document_kinds to service_role;

-- public.documents
revoke all on table public.documents from anon, authenticated, service_role;
grant select on table public.documents to anon, authenticated, service_role;
grant insert, update, delete on table public.documents to service_role;
grant insert (id, owner_id, kind, title, body, visibility, local_id) on table public.documents to authenticated;
grant update (title, body, visibility, deleted_at) on table public.documents to authenticated;

-- public.file_links
revoke all on table public.file_links from anon, authenticated, service_role;
grant select, delete on table public.file_links to authenticated, service_role;
grant insert on table public.file_links to service_role;
grant insert (id, owner_id, bucket_id, object_name, ref_kind, ref_id) on table public.file_links to authenticated;
grant update on table public.file_links to service_role;

-- public.job_kinds
revoke all on table public.job_kinds from anon, authenticated, service_role;
grant select on table public.job_kinds to anon, authenticated, service_role;
grant insert, update, delete on table public.job_kinds to service_role;

-- public.jobs
revoke all on table public.jobs from anon, authenticated, service_role;
grant select on table public.jobs to authenticated, service_role;
grant insert, update, delete on table public.jobs to service_role;
grant insert (kind, payload, owner_id) on table public.jobs to authenticated;

-- public.plans
revoke all on table public.plans from anon, authenticated, service_role;
grant select on table public.plans to anon, authenticated, service_role;
grant insert, update, delete on table public.plans to service_role;

-- public.privacy_consents
revoke all on table public.privacy_consents from anon, authenticated, service_role;
grant select on table public.privacy_consents to authenticated, service_role;
grant insert on table public.privacy_consents to service_role;
grant insert (user_id, telemetry) on table public.privacy_consents to authenticated;
grant update, delete on table public.privacy_consents to service_role;
grant update (telemetry) on table public.privacy_consents to authenticated;

-- public.profiles
revoke all on table public.profiles from anon, authenticated, service_role;
grant select, insert, update, delete on table public.profiles to service_role;
grant select (id, username, display_name, avatar_url, bio, is_anonymous, created_at, updated_at) on table public.profiles to anon, authenticated;
grant update (username, display_name, avatar_url, bio) on table public.profiles to authenticated;

-- public.room_chat_messages
revoke all on table public.room_chat_messages from anon, authenticated, service_role;
grant select on table public.room_chat_messages to authenticated, service_role;
grant insert, update, delete on table public.room_chat_messages to service_role;
grant insert (room_id, element_id, role, content) on table public.room_chat_messages to authenticated;

-- public.room_element_connections
revoke all on table public.room_element_connections from anon, authenticated, service_role;
grant select, delete on table public.room_element_connections to authenticated, service_role;
grant insert, update on table public.room_element_connections to service_role;
grant insert (id, room_id, from_element_id, to_element_id, label, data) on table public.room_element_connections to authenticated;
grant update (label, data) on table public.room_element_connections to authenticated;

-- public.room_elements
revoke all on table public.room_elements from anon, authenticated, service_role;
grant select, delete on table public.room_elements to authenticated, service_role;
grant insert, update on table public.room_elements to service_role;
grant insert (id, room_id, kind, x, y, width, height, z_index, data, image_path) on table public.room_elements to authenticated;
grant update (kind, x, y, width, height, z_index, data, image_path) on table public.room_elements to authenticated;

-- public.room_invites
revoke all on table public.room_invites from anon, authenticated, service_role;
grant delete on table public.room_invites to authenticated, service_role;
grant select, insert, update on table public.room_invites to service_role;
grant select (id, room_id, role, created_by, expires_at, max_uses, use_count, created_at) on table public.room_invites to authenticated;

-- public.room_members
revoke all on table public.room_members from anon, authenticated, service_role;
grant select, delete on table public.room_members to authenticated, service_role;
grant insert, update on table public.room_members to service_role;
grant update (role) on table public.room_members to authenticated;

-- public.room_templates
revoke all on table public.room_templates from anon, authenticated, service_role;
grant select on table public.room_templates to anon, authenticated, service_role;
grant delete on table public.room_templates to authenticated, service_role;
grant insert, update on table public.room_templates to service_role;
grant insert (owner_id, kind, name, description, visibility, elements, connections) on table public.room_templates to authenticated;
grant update (kind, name, description, visibility, elements, connections) on table public.room_templates to authenticated;

-- public.rooms
revoke all on table public.rooms from anon, authenticated, service_role;
grant select, delete on table public.rooms to authenticated, service_role;
grant insert, update on table public.rooms to service_role;
grant insert (owner_id, title, settings) on table public.rooms to authenticated;
grant update (title, settings) on table public.rooms to authenticated;

-- public.share_links
revoke all on table public.share_links from anon, authenticated, service_role;
grant select, insert, update, delete on table public.share_links to service_role;
grant select (id, document_id, owner_id, expires_at, revoked_at, open_count, last_opened_at, created_at) on table public.share_links to authenticated;
grant insert (document_id, owner_id, token_hash, expires_at) on table public.share_links to authenticated;
grant update (revoked_at) on table public.share_links to authenticated;

-- public.sync_conflicts
revoke all on table public.sync_conflicts from anon, authenticated, service_role;
grant select on table public.sync_conflicts to authenticated, service_role;
grant insert on table public.sync_conflicts to service_role;
-- sync_push (security invoker) records conflicts, already resolved ones for client_wins.
grant insert (id, owner_id, document_id, change_id, strategy, base_version, client_title, client_body,
              client_deleted, server_version, server_title, server_body, server_deleted,
              status, resolution, resolved_at)
  on table public.sync_conflicts to authenticated;
grant update, delete on table public.sync_conflicts to service_role;
grant update (status, resolution, resolved_at) on table public.sync_conflicts to authenticated;

-- public.sync_receipts
revoke all on table public.sync_receipts from anon, authenticated, service_role;
grant select on table public.sync_receipts to authenticated, service_role;
grant insert on table public.sync_receipts to service_role;
grant insert (owner_id, change_id, result) on table public.sync_receipts to authenticated;
grant update, delete on table public.sync_receipts to service_role;

-- public.telemetry_event_types
revoke all on table public.telemetry_event_types from anon, authenticated, service_role;
grant select on table public.telemetry_event_types to anon, authenticated, service_role;
grant insert, update, delete on table public.telemetry_event_types to service_role;

-- public.telemetry_events
revoke all on table public.telemetry_events from anon, authenticated, service_role;
grant select on table public.telemetry_events to authenticated, service_role;
grant insert, delete on table public.telemetry_events to service_role;

-- == sequences: they back identity columns, which draw ids without a sequence grant ==
revoke all on sequence public.audit_log_id_seq from anon, authenticated, service_role;
revoke all on sequence public.room_chat_messages_id_seq from anon, authenticated, service_role;
revoke all on sequence public.telemetry_events_id_seq from anon, authenticated, service_role;

-- == functions: execute per role, never left to PUBLIC ==
revoke execute on function public.accept_room_invite(p_token text) from public, anon, authenticated, service_role;
grant execute on function public.accept_room_invite(p_token text) to authenticated;
revoke execute on function public.apply_template(p_room_id uuid, p_template_id uuid) from public, anon, authenticated, service_role;
grant execute on function public.apply_template(p_room_id uuid, p_template_id uuid) to authenticated, service_role;
revoke execute on function public.create_room_invite(p_room_id uuid, p_role text, p_expires_in interval, p_max_uses integer) from public, anon, authenticated, service_role;
grant execute on function public.create_room_invite(p_room_id uuid, p_role text, p_expires_in interval, p_max_uses integer) to authenticated;
revoke execute on function public.create_share_link(p_document_id uuid, p_expires_in_days integer) from public, anon, authenticated, service_role;
grant execute on function public.create_share_link(p_document_id uuid, p_expires_in_days integer) to authenticated;
revoke execute on function public.cron_fire(p_name text, p_due timestamp with time zone, p_next timestamp with time zone) from public, anon, authenticated, service_role;
grant execute on function public.cron_fire(p_name text, p_due timestamp with time zone, p_next timestamp with time zone) to service_role;
revoke execute on function public.cron_list() from public, anon, authenticated, service_role;
grant execute on function public.cron_list() to service_role;
revoke execute on function public.cron_run_now(p_name text) from public, anon, authenticated, service_role;
grant execute on function public.cron_run_now(p_name text) to service_role;
revoke execute on function public.cron_set_next(p_name text, p_expected timestamp with time zone, p_next timestamp with time zone) from public, anon, authenticated, service_role;
grant execute on function public.cron_set_next(p_name text, p_expected timestamp with time zone, p_next timestamp with time zone) to service_role;
revoke execute on function public.delete_document(p_id uuid) from public, anon, authenticated, service_role;
grant execute on function public.delete_document(p_id uuid) to authenticated, service_role;
revoke execute on function public.enqueue_job(kind text, payload jsonb) from public, anon, authenticated, service_role;
grant execute on function public.enqueue_job(kind text, payload jsonb) to authenticated, service_role;
revoke execute on function public.explore(p_kind text, p_sort text, p_query text, p_after text, p_limit integer) from public, anon, authenticated, service_role;
grant execute on function public.explore(p_kind text, p_sort text, p_query text, p_after text, p_limit integer) to anon, authenticated, service_role;
revoke execute on function public.fork_document(p_document_id uuid, p_share_token text, p_title text) from public, anon, authenticated, service_role;
grant execute on function public.fork_document(p_document_id uuid, p_share_token text, p_title text) to authenticated;
revoke execute on function public.get_backup(p_version integer) from public, anon, authenticated, service_role;
grant execute on function public.get_backup(p_version integer) to authenticated;
revoke execute on function public.import_local(p_library jsonb) from public, anon, authenticated, service_role;
grant execute on function public.import_local(p_library jsonb) to authenticated;
revoke execute on function public.ingest_telemetry(events jsonb) from public, anon, authenticated, service_role;
grant execute on function public.ingest_telemetry(events jsonb) to authenticated;
revoke execute on function public.job_claim(p_worker text, p_kinds text[], p_limit integer, p_lease interval) from public, anon, authenticated, service_role;
grant execute on function public.job_claim(p_worker text, p_kinds text[], p_limit integer, p_lease interval) to service_role;
revoke execute on function public.job_claim_id(p_id uuid, p_worker text, p_lease interval) from public, anon, authenticated, service_role;
grant execute on function public.job_claim_id(p_id uuid, p_worker text, p_lease interval) to service_role;
revoke execute on function public.job_complete(p_id uuid, p_worker text, p_result jsonb) from public, anon, authenticated, service_role;
grant execute on function public.job_complete(p_id uuid, p_worker text, p_result jsonb) to service_role;
revoke execute on function public.job_enqueue(p_kind text, p_payload jsonb, p_owner uuid, p_run_after timestamp with time zone, p_priority integer) from public, anon, authenticated, service_role;
grant execute on function public.job_enqueue(p_kind text, p_payload jsonb, p_owner uuid, p_run_after timestamp with time zone, p_priority integer) to service_role;
revoke execute on function public.job_fail(p_id uuid, p_worker text, p_error text, p_retry boolean) from public, anon, authenticated, service_role;
grant execute on function public.job_fail(p_id uuid, p_worker text, p_error text, p_retry boolean) to service_role;
revoke execute on function public.job_heartbeat(p_id uuid, p_worker text, p_lease interval) from public, anon, authenticated, service_role;
grant execute on function public.job_heartbeat(p_id uuid, p_worker text, p_lease interval) to service_role;
revoke execute on function public.job_release(p_id uuid, p_worker text) from public, anon, authenticated, service_role;
grant execute on function public.job_release(p_id uuid, p_worker text) to service_role;
revoke execute on function public.job_retry(p_id uuid) from public, anon, authenticated, service_role;
grant execute on function public.job_retry(p_id uuid) to service_role;
revoke execute on function public.leave_room(p_room_id uuid) from public, anon, authenticated, service_role;
grant execute on function public.leave_room(p_room_id uuid) to authenticated;
revoke execute on function public.link_document_file(p_document_id uuid, p_bucket_id text, p_object_name text) from public, anon, authenticated, service_role;
grant execute on function public.link_document_file(p_document_id uuid, p_bucket_id text, p_object_name text) to authenticated, service_role;
revoke execute on function public.list_cleanups() from public, anon, authenticated, service_role;
grant execute on function public.list_cleanups() to service_role;
revoke execute on function public.my_profile() from public, anon, authenticated, service_role;
grant execute on function public.my_profile() to authenticated;
revoke execute on function public.open_share(p_token text) from public, anon, authenticated, service_role;
grant execute on function public.open_share(p_token text) to anon, authenticated, service_role;
revoke execute on function public.public_profile(p_username text, p_limit integer) from public, anon, authenticated, service_role;
grant execute on function public.public_profile(p_username text, p_limit integer) to anon, authenticated, service_role;
revoke execute on function public.request_account_deletion() from public, anon, authenticated, service_role;
grant execute on function public.request_account_deletion() to authenticated;
revoke execute on function public.request_export() from public, anon, authenticated, service_role;
grant execute on function public.request_export() to authenticated;
revoke execute on function public.resolve_conflict(p_conflict_id uuid, p_resolution text, p_body jsonb, p_title text) from public, anon, authenticated, service_role;
grant execute on function public.resolve_conflict(p_conflict_id uuid, p_resolution text, p_body jsonb, p_title text) to authenticated;
revoke execute on function public.restore_backup(p_version integer, p_if_version integer) from public, anon, authenticated, service_role;
grant execute on function public.restore_backup(p_version integer, p_if_version integer) to authenticated;
revoke execute on function public.revoke_share_link(p_id uuid) from public, anon, authenticated, service_role;
grant execute on function public.revoke_share_link(p_id uuid) to authenticated;
revoke execute on function public.run_cleanup(p_task text, p_batch_size integer, p_dry_run boolean) from public, anon, authenticated, service_role;
grant execute on function public.run_cleanup(p_task text, p_batch_size integer, p_dry_run boolean) to service_role;
revoke execute on function public.set_privacy_consent(telemetry boolean) from public, anon, authenticated, service_role;
grant execute on function public.set_privacy_consent(telemetry boolean) to authenticated;
revoke execute on function public.sync_pull(p_cursor text, p_limit integer) from public, anon, authenticated, service_role;
grant execute on function public.sync_pull(p_cursor text, p_limit integer) to authenticated;
revoke execute on function public.sync_push(p_changes jsonb, p_strategy text) from public, anon, authenticated, service_role;
grant execute on function public.sync_push(p_changes jsonb, p_strategy text) to authenticated;
revoke execute on function public.transfer_room_ownership(p_room_id uuid, p_new_owner uuid) from public, anon, authenticated, service_role;
grant execute on function public.transfer_room_ownership(p_room_id uuid, p_new_owner uuid) to authenticated;
revoke execute on function public.upload_backup(p_ciphertext text, p_nonce text, p_kdf jsonb, p_if_version integer) from public, anon, authenticated, service_role;
grant execute on function public.upload_backup(p_ciphertext text, p_nonce text, p_kdf jsonb, p_if_version integer) to authenticated;
