-- library: the same select policy for signed-in users on public.documents, in a
-- shape that is cheaper to plan.
--
-- What: "users read their own and public documents" keeps its meaning (a
-- signed-in user sees every row they own, live or tombstoned, plus every
-- public live row of anyone) but is written as
--   case when owner_id = (select auth.uid()) then true
--        else visibility = 'public' and deleted_at is null end
-- instead of
--   owner_id = (select auth.uid()) or (visibility = 'public' and deleted_at is null)
-- Both give the same result for every row: own row -> true; otherwise the
-- public-and-live test (auth.uid() null -> else branch -> public live rows
-- only, where the OR gave null = hidden for the rest). No other policy,
-- grant or role changes; anon keeps its own policy.
--
-- Why: RLS made "my 50 newest documents" (an index scan on
-- documents_owner_id_created_at_idx, bench/sync.py) cost a fixed 0.03-0.06 ms
-- more per request than the same query as service_role, and most of it was
-- planning the policy's top-level OR: the planner matches each OR arm against
-- each of the 11 indexes of documents to build bitmap-OR paths (the public arm
-- matches the three partial explore indexes, so it also runs predicate proofs) and
-- estimates the OR's selectivity, on every request that is planned (every
-- request without prepared statements, and prepared ones PostgreSQL keeps on
-- custom plans). A CASE is not an OR clause, so none of that happens.
-- Measured on a 1M-document table (PG 18, server side, planned every time):
-- RLS overhead +29..35 us with the OR, +17..19 us with the CASE (the
-- (select auth.uid()) initplan alone: +14..15 us); with a cached plan
-- unchanged (+5..6 us: the initplan's auth.uid() call and the row filter).
-- The planner cannot use a CASE to pick an index, which costs nothing here:
-- the policy alone never made an index scan worth it (30% of rows are public),
-- and every library query and RPC filters by owner_id, id or visibility itself.
-- Its selectivity estimate becomes the default 0.5 instead of ~0.3, which also
-- fixes the bigger cost: with the OR, "my 50 newest" was estimated at 31 rows
-- (< limit 50), its generic plan looked dearer than a custom one (191.75 vs
-- 189.98), so PostgREST's prepared statement was re-planned on every request
-- (bench, PG 18: 1.55-1.72x vs service_role; PG 15: 2.0x). With the CASE the
-- generic plan wins as it does for service_role: 1.08-1.17x (PG 18).

alter policy "users read their own and public documents" on public.documents
  using (
    case when owner_id = (select auth.uid()) then true
         else visibility = 'public' and deleted_at is null
    end
  );
