-- rooms: the per-plan cap on canvas elements in one room.
-- Why: the ideas canvas limits a free room to 100 elements (source design);
-- a paid plan raises it. The cap follows the plan of the room's owner.

alter table public.plans
  add column room_elements_max integer not null default 100
  constraint plans_room_elements_max_nonnegative check (room_elements_max >= 0);

update public.plans set room_elements_max = 100 where id = 'free';
update public.plans set room_elements_max = 5000 where id = 'pro';

comment on column public.plans.room_elements_max is
  'Canvas elements one room may hold; the room owner''s plan decides.';
