-- limits: the music sketchpad's free tier as its design states it, and the
-- collection tracker's values one documented call away.
--
-- Why (issue #13 item 1): the sketchpad specifies 100 MB of samples, 1,000
-- loops and 100 songs for free users; Backline shipped 200 loops and 50
-- songs. The collection tracker specifies 1 GB per user. The two designs
-- disagree, so the sketchpad's numbers are the defaults and an operator of a
-- tracker deployment switches with one call:
--
--   select private.apply_limit_profile('collection_tracker');
--
-- which sets the free plan's storage to 1 GiB (and 'sketchpad' sets it back).
-- Token lifetime, the other difference, is supabase/config.toml's
-- [auth] jwt_expiry (3600, the tracker's 86400 commented next to it).
-- docs/limits.md, "App defaults".
--
-- Adds: new free-plan rows of document_kind_limits (loop 1000, song 100),
-- private.apply_limit_profile(text).

-- == values ==
update public.document_kind_limits set max_documents = 1000 where kind = 'loop' and plan = 'free';
update public.document_kind_limits set max_documents = 100 where kind = 'song' and plan = 'free';
update public.plans set storage_bytes = 100 * 1024 * 1024 where id = 'free';

-- == functions (schema private: not exposed) ==
-- Operators (SQL as the database owner, or the service role) switch the free
-- plan between the apps' specified limits. Returns what it set.
create function private.apply_limit_profile(p_profile text) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_storage bigint;
begin
  v_storage := case p_profile
    when 'sketchpad' then 100::bigint * 1024 * 1024
    when 'collection_tracker' then 1024::bigint * 1024 * 1024
  end;
  if v_storage is null then
    raise exception 'unknown limit profile: %', coalesce(p_profile, 'null') using errcode = '22023',
      hint = 'Use sketchpad (100 MB per free user, the default) or collection_tracker (1 GB per free user).';
  end if;
  update public.plans set storage_bytes = v_storage where id = 'free';
  return jsonb_build_object('profile', p_profile, 'plan', 'free', 'storage_bytes', v_storage);
end;
$$;
revoke execute on function private.apply_limit_profile(text) from public, anon, authenticated, service_role;
grant execute on function private.apply_limit_profile(text) to service_role;

-- == comments ==
comment on function private.apply_limit_profile(text) is
  'Operators: set the free plan''s storage to an app''s specified limit: sketchpad (100 MB, the default) '
  'or collection_tracker (1 GB). Returns {profile, plan, storage_bytes}. docs/limits.md "App defaults".';
