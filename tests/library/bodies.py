"""Sample bodies of the shipped kinds and small test helpers."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from tests.helpers import act_as


def loop_body(name: str = "Intro", bars: int = 4, color: str = "#FFAA00") -> dict[str, Any]:
    return {"name": name, "bars": bars, "color": color, "chords": ["C", "G", "Am", "F"], "icons": ["drum"]}


def song_body(loop_ids: list[str], bpm: int = 120) -> dict[str, Any]:
    return {
        "name": "Song",
        "bpm": bpm,
        "time_signature": "4/4",
        "timeline": [{"loop_id": lid, "bar": i * 4} for i, lid in enumerate(loop_ids)],
    }


def folder_body(name: str = "Vinyl") -> dict[str, Any]:
    return {"name": name}


def item_body(
    name: str = "Blue Train", folder_id: str | None = None, notes: str = "", tags: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "notes": notes}
    if folder_id:
        body["folder_id"] = folder_id
    if tags is not None:
        body["tags"] = tags
    return body


def sqlstate_of(cur: psycopg.Cursor[Any], query: str, params: Any = None) -> str | None:
    """Run one statement; the SQLSTATE it failed with, or None.

    Use it as the last statement of an act_as block.
    """
    try:
        cur.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def committed(
    conn: psycopg.Connection[Any], user_id: Any, query: str, params: Any = None, role: str = "authenticated"
) -> Any:
    """Run one request as the user in its own committed transaction (like one PostgREST call)."""
    with act_as(conn, user_id, role, rollback=False) as cur:
        cur.execute(query, params)
        return cur.fetchone()[0] if cur.description else None


def settle(conn: psycopg.Connection[Any], timeout: float = 30.0) -> None:
    """Wait until every transaction that started before now has finished.

    sync_pull holds back changes while an older transaction is still running
    anywhere in the cluster (that is what makes it never skip one); on a
    shared test cluster other sessions' transactions can be in flight, so a
    test that expects its own just-committed changes waits for them first.
    """
    mark = int(conn.execute("select pg_current_xact_id()::text").fetchone()[0])
    conn.commit()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        xmin = int(conn.execute("select pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()[0])
        conn.commit()
        if xmin > mark:
            return
        time.sleep(0.02)
    raise AssertionError("an older transaction in the cluster stayed open for more than the timeout")


def sketchpad_loop(name: str = "Intro", length: int = 4, is_public: bool = False) -> dict[str, Any]:
    """A loop exactly as the music sketchpad sends it (issue #13)."""
    return {
        "name": name,
        "length": length,
        "chordProgression": [
            {"bar": 0, "chord": "C maj7", "roman": "I", "root": "C", "quality": "maj7"},
            {"bar": 1, "chord": "A min7", "roman": "vi", "root": "A", "quality": "min7"},
        ],
        "iconSequence": [
            {"step": 0, "soundId": "synth-lead", "velocity": 0.8, "note": "C4"},
            {"step": 4, "soundId": "drum-kick", "velocity": 1.0},
        ],
        "color": "#FFAA00",
        "isPublic": is_public,
    }


def sketchpad_song(loop_ids: list[str], bpm: int = 120, is_public: bool = False) -> dict[str, Any]:
    """A song exactly as the music sketchpad sends it: blocks reference loops by id."""
    return {
        "name": "Song",
        "bpm": bpm,
        "timeSignature": "4/4",
        "timeline": [
            {"id": f"block-{i + 1}", "loopId": lid, "startBar": i * 4, "duration": 4}
            for i, lid in enumerate(loop_ids)
        ],
        "totalBars": 4 * len(loop_ids),
        "isPublic": is_public,
    }
