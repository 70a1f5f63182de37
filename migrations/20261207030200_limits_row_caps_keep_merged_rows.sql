-- limits: rows an account merge moves are kept even past the new owner's row cap.
-- Redefines private.row_caps_after_owner_change (latest definition:
-- 20261206090300_limits_row_caps.sql). Changed: returns early inside a
-- claim_merge_ticket transaction (private.account_merge_in_progress()).
--
-- Why (issue #13): merging an anonymous account must not lose data, and a
-- merge that stops half-way would strand rows that reference each other
-- (a document moved, its share links not). Like a plan downgrade, rows already
-- held are kept and only new ones are refused; the merge report lists every
-- cap the permanent account now exceeds (private.merge_limits_exceeded).
-- Clients cannot trigger the exception: it needs a row in
-- private.account_merges for the current transaction, written only by the claim.

create or replace function private.row_caps_after_owner_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  t private.row_cap_tables;
  v_owner uuid;
  v_counted boolean;
begin
  if private.account_merge_in_progress() then
    return null;  -- merged rows are kept past the cap and reported by the merge
  end if;
  select * into t from private.row_cap_tables c where c.table_name = tg_table_name;
  if not found then
    return null;
  end if;
  execute format('select x.%I, (%s) from jsonb_populate_record(null::public.%I, $1) x',
                 t.owner_column, coalesce(t.counted_rows, 'true'), t.table_name)
    into v_owner, v_counted using to_jsonb(new);
  if v_owner is not null and v_counted then
    perform private.row_caps_enforce(t.table_name, v_owner);
  end if;
  return null;
end;
$$;
