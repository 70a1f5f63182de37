"""Benchmark: a member loading one room among 10,000, versus the service role.

Seeds a fresh migrated database with 10,000 rooms (1,000 owners, 3 members
per room, 10 elements and 10 chat messages per room), plus one target room
with 100 elements, 99 connections and 1,000 chat messages. Then times the
queries a frontend makes to open the room (room, members, elements,
connections, chat history) as a member through RLS (`act_as`, exactly like
PostgREST) and as service_role (no RLS), and prints the medians and the ratio
(target: member <= 1.5x service role).

    PYTHONPATH=$PWD python bench/rooms.py [--database-url ADMIN_URL] [--repeat 200]

Without --database-url (or DATABASE_URL) it uses the embedded server in
.backline-bench. The benchmark database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from workers.db.embedded import EmbeddedServer
from workers.db.impersonate import act_as
from workers.gen.contract import scratch_database
from workers.settings import PROJECT_ROOT

ROOMS = 10_000
OWNERS = 1_000

LOAD_QUERIES = (
    "select id, title, settings, owner_id from public.rooms where id = %(room)s",
    "select user_id, role from public.room_members where room_id = %(room)s",
    "select id, kind, x, y, width, height, z_index, data, version from public.room_elements"
    " where room_id = %(room)s order by z_index",
    "select id, from_element_id, to_element_id, label from public.room_element_connections"
    " where room_id = %(room)s",
    "select id, role, author_id, content from public.room_chat_messages"
    " where room_id = %(room)s and element_id = %(chat)s order by id",
)


def seed(conn: psycopg.Connection[Any]) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Seed everything; returns (target room, its chat element, a member)."""
    conn.execute(
        """
        insert into auth.users (id, aud, role, email, created_at, updated_at)
        select gen_random_uuid(), 'authenticated', 'authenticated', 'u' || g || '@bench.test', now(), now()
          from generate_series(1, %s) g""",
        (OWNERS * 2,),
    )
    conn.execute(
        "create temp table bench_users as select id, row_number() over (order by id) n from auth.users"
    )
    conn.execute("update public.profiles set plan = 'pro'")
    # Triggers (owner membership, element cap, stamps) are off while bulk seeding; we insert what they would.
    conn.execute("set session_replication_role = replica")
    conn.execute(
        """
        insert into public.rooms (id, owner_id, title)
        select gen_random_uuid(), u.id, 'Room ' || g
          from generate_series(1, %s) g join bench_users u on u.n = 1 + (g %% %s)""",
        (ROOMS, OWNERS),
    )
    conn.execute("""
        insert into public.room_members (room_id, user_id, role)
        select r.id, r.owner_id, 'owner' from public.rooms r""")
    conn.execute(
        """
        insert into public.room_members (room_id, user_id, role)
        select r.id, u.id, case when k = 1 then 'editor' else 'viewer' end
          from (select id, owner_id, row_number() over (order by id) rn from public.rooms) r
          cross join generate_series(1, 2) k
          join bench_users u on u.n = 1 + %s + ((r.rn * 7 + k) %% %s)""",
        (OWNERS, OWNERS),
    )
    conn.execute("""
        insert into public.room_elements (room_id, kind, x, y, data, created_by, updated_by)
        select r.id, case when k = 1 then 'chat' else 'note' end, k * 10, k * 10, '{"text": "idea"}',
               r.owner_id, r.owner_id
          from public.rooms r cross join generate_series(1, 10) k""")
    conn.execute("""
        insert into public.room_chat_messages (room_id, element_id, role, author_id, content)
        select e.room_id, e.id, 'user', null, 'message ' || k
          from public.room_elements e cross join generate_series(1, 10) k where e.kind = 'chat'""")
    target, owner = conn.execute("select id, owner_id from public.rooms order by id limit 1").fetchone()  # type: ignore[misc]
    conn.execute(
        """
        insert into public.room_elements (room_id, kind, x, y, data, created_by, updated_by)
        select %s, 'note', k, k, '{"text": "more"}', %s, %s from generate_series(1, 90) k""",
        (target, owner, owner),
    )
    chat = conn.execute(
        "select id from public.room_elements where room_id = %s and kind = 'chat'", (target,)
    ).fetchone()[0]  # type: ignore[index]
    conn.execute(
        """
        insert into public.room_element_connections (room_id, from_element_id, to_element_id)
        select %s, f, t from (
          select a.id f, lead(a.id) over (order by a.id) t from public.room_elements a where a.room_id = %s
        ) pairs where t is not null""",
        (target, target),
    )
    conn.execute(
        """
        insert into public.room_chat_messages (room_id, element_id, role, author_id, content)
        select %s, %s, case when k %% 2 = 0 then 'assistant' else 'user' end, null, repeat('text ', 40)
          from generate_series(1, 990) k""",
        (target, chat),
    )
    conn.execute("set session_replication_role = origin")
    member = conn.execute(
        "select user_id from public.room_members where room_id = %s and role = 'viewer' limit 1", (target,)
    ).fetchone()[0]  # type: ignore[index]
    conn.execute("analyze")
    return target, chat, member


def time_load(
    conn: psycopg.Connection[Any], user: uuid.UUID | None, role: str, params: dict[str, Any], repeat: int
) -> tuple[float, list[int]]:
    samples: list[float] = []
    counts: list[int] = []
    for _ in range(repeat):
        with act_as(conn, user, role) as cur:
            start = time.perf_counter()
            counts = [len(cur.execute(q, params).fetchall()) for q in LOAD_QUERIES]
            samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    admin = (
        args.database_url or EmbeddedServer(Path(PROJECT_ROOT / ".backline-bench")).ensure_running().tcp_url()
    )
    with scratch_database(admin) as url, psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        room, chat, member = seed(conn)
        conn.commit()
        print(
            f"seeded in {time.perf_counter() - t0:.1f}s:",
            ", ".join(
                f"{t} {conn.execute(f'select count(*) from public.{t}').fetchone()[0]}"  # type: ignore[index]
                for t in ("rooms", "room_members", "room_elements", "room_chat_messages")
            ),
        )
        params = {"room": room, "chat": chat}
        time_load(conn, member, "authenticated", params, 20)  # warm up
        member_ms, member_counts = time_load(conn, member, "authenticated", params, args.repeat)
        service_ms, service_counts = time_load(conn, None, "service_role", params, args.repeat)
        assert member_counts == service_counts, (member_counts, service_counts)
        print(f"rows loaded (room, members, elements, connections, messages): {member_counts}")
        print(f"member (RLS):  {member_ms:.2f} ms median of {args.repeat}")
        print(f"service_role:  {service_ms:.2f} ms median of {args.repeat}")
        print(f"ratio:         {member_ms / service_ms:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
