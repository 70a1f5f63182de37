-- Development seed data (loaded by `backline up` on the embedded default,
-- `backline db reset` and `supabase db reset`). Idempotent. Never production data.

-- A signed-up demo user and an anonymous one; profiles are created by trigger.
insert into auth.users (id, aud, role, email, is_anonymous, raw_user_meta_data, created_at, updated_at)
values
  ('00000000-0000-4000-8000-000000000001', 'authenticated', 'authenticated',
   'demo@backline.local', false, '{"display_name": "Demo"}', now(), now()),
  ('00000000-0000-4000-8000-000000000002', 'authenticated', 'authenticated',
   null, true, '{}', now(), now())
on conflict (id) do nothing;

update public.profiles set username = 'demo'
 where id = '00000000-0000-4000-8000-000000000001' and username is null;
