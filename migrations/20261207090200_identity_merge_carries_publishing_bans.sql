-- identity: the account merge carries a publishing ban over (issues #13, #14).
--
-- private.publishing_bans (moderation, 20261207080100) holds one row per
-- account, so its user_id is a unique key and the merge claim refuses to run
-- without a rule for it. A ban of the anonymous account moves to the
-- permanent one, so a merge cannot shed a ban; a ban the permanent account
-- already has is kept as it is.
insert into private.merge_rules (table_name, column_name, strategy, bypass_trigger, why) values
  ('private.publishing_bans', 'user_id', 'permanent_wins', null,
   'One ban per account: an anonymous account''s ban moves to the permanent one (a merge never sheds a ban); '
   'the permanent account''s own ban is kept.');
