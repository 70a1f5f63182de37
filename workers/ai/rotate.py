"""Re-wrap every stored data key under the current master key, in small batches.

No downtime: the proxy keeps every configured master key, so rows wrapped by
either the old or the new key decrypt during the run; each batch is one short
transaction (FOR UPDATE SKIP LOCKED), and a row being deleted concurrently is
simply skipped. Run it after adding the new key and making it current; remove
the old key from configuration once it reports 0 rows left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.ai.keys import MasterKeys, Sealed
from workers.ai.store import aad_for
from workers.db.connect import connect

BATCH_SQL = """
select s.key_id, k.user_id, s.master_key_id, s.wrapped_dek, s.ciphertext
  from private.ai_key_secrets s join public.ai_keys k on k.id = s.key_id
 where s.master_key_id <> %s
 order by s.key_id
 limit %s
   for update of s skip locked
"""


def pending_count(database_url: str, master: MasterKeys) -> int:
    with connect(database_url) as conn:
        row: Any = conn.execute(
            "select count(*) from private.ai_key_secrets where master_key_id <> %s", (master.current,)
        ).fetchone()
    return int(row[0]) if row else 0


def rotate_master_key(
    database_url: str,
    master: MasterKeys,
    *,
    batch_size: int = 200,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Re-wrap all rows not under master.current; returns how many were re-wrapped."""
    done = 0
    with connect(database_url) as conn:
        while True:
            with conn.transaction():
                rows: list[Any] = conn.execute(BATCH_SQL, (master.current, batch_size)).fetchall()
                for key_id, user_id, kid, wrapped, ciphertext in rows:
                    aad = aad_for(str(key_id), str(user_id))
                    new = master.rewrap(Sealed(str(kid), bytes(wrapped), bytes(ciphertext)), aad)
                    conn.execute(
                        "update private.ai_key_secrets set master_key_id = %s, wrapped_dek = %s,"
                        " rotated_at = now() where key_id = %s",
                        (new.master_key_id, new.wrapped_dek, key_id),
                    )
            done += len(rows)
            if progress:
                progress(len(rows))
            if len(rows) < batch_size:
                return done
