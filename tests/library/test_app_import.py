"""import_local with the sketchpad's own export (#13 item 2): every reference at its new id.

The export is `{"loops": [...], "songs": [...]}`, each record the app's body plus its local
`id` (and timestamps); songs reference loops by local id. After the import every loopId of
every stored song is the id of one of the user's live loops, and a record whose reference
cannot be resolved is reported failed and not stored.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import sketchpad_loop, sketchpad_song

IMPORT = "select public.import_local(%s)"


@pytest.fixture(autouse=True)
def several_imports_an_hour(db: psycopg.Connection[Any]) -> None:
    db.execute("update public.plans set imports_per_hour = 10 where id = 'free'")


def export() -> dict[str, Any]:
    loops = [
        dict(
            sketchpad_loop("Intro"), id="loop-abc", createdAt="2026-11-01T10:00:00Z", updatedAt="2026-11-02"
        ),
        dict(sketchpad_loop("Chorus", length=8, is_public=True), id="loop-def"),
    ]
    songs = [
        dict(sketchpad_song(["loop-abc", "loop-def", "loop-abc"]), id="song-1", createdAt="2026-11-03"),
        dict(sketchpad_song(["loop-def"], is_public=True), id="song-2"),
    ]
    return {"version": 1, "exportedAt": "2026-12-07T00:00:00Z", "loops": loops, "songs": songs}


def import_as(db: psycopg.Connection[Any], user: uuid.UUID, library: Any) -> dict[str, Any]:
    with keep_as(db, user) as cur:
        return dict(cur.execute(IMPORT, (json.dumps(library),)).fetchone()[0])


def dangling_references(db: psycopg.Connection[Any], user: uuid.UUID) -> list[tuple[str, str]]:
    """(song, loopId) pairs of the user's songs whose loopId is not one of the user's live loops."""
    return db.execute(
        "select s.local_id, b->>'loopId' from public.documents s, jsonb_array_elements(s.body->'timeline') b"
        " where s.owner_id = %s and s.kind = 'song' and not exists (select 1 from public.documents l"
        "   where l.id::text = b->>'loopId' and l.owner_id = s.owner_id and l.kind = 'loop'"
        "     and l.deleted_at is null)",
        (user,),
    ).fetchall()


def test_the_sketchpads_export_round_trips_with_every_reference_rewritten(db, make_user):
    alice = make_user()
    res = import_as(db, alice, export())
    assert (res["created"], res["failed"], res["errors"]) == (4, 0, [])
    loops, songs = res["mapping"]["loop"], res["mapping"]["song"]
    assert set(loops) == {"loop-abc", "loop-def"} and set(songs) == {"song-1", "song-2"}
    song1 = db.execute("select body, title, local_id from public.documents where id = %s", (songs["song-1"],))
    body, title, local_id = song1.fetchone()
    assert [b["loopId"] for b in body["timeline"]] == [
        loops["loop-abc"],
        loops["loop-def"],
        loops["loop-abc"],
    ]
    assert (title, local_id) == ("Song", "song-1")
    assert set(body) == {"name", "bpm", "timeSignature", "timeline", "totalBars", "isPublic"}
    assert dangling_references(db, alice) == []
    # The body is the app's, without the record's id and timestamps; isPublic became visibility.
    intro = db.execute("select body, visibility from public.documents where id = %s", (loops["loop-abc"],))
    assert intro.fetchone() == (sketchpad_loop("Intro"), "private")
    vis = db.execute(
        "select local_id, visibility from public.documents where owner_id = %s order by local_id", (alice,)
    ).fetchall()
    assert vis == [
        ("loop-abc", "private"),
        ("loop-def", "public"),
        ("song-1", "private"),
        ("song-2", "public"),
    ]
    # Again: nothing new, same mapping.
    again = import_as(db, alice, export())
    assert (again["created"], again["existing"], again["mapping"]) == (0, 4, res["mapping"])


def test_a_song_whose_loop_is_missing_or_failed_is_reported_not_stored(db, make_user):
    alice = make_user()
    library = export()
    library["loops"][1]["length"] = 3  # loop-def is invalid: it fails, so songs using it must fail too
    library["songs"].append(dict(sketchpad_song(["loop-zzz"]), id="song-3"))
    res = import_as(db, alice, library)
    failed = {(e["kind"], e["local_id"]): e for e in res["errors"]}
    assert set(failed) == {("loop", "loop-def"), ("song", "song-1"), ("song", "song-2"), ("song", "song-3")}
    assert failed[("loop", "loop-def")]["error"].startswith("loop length must be 1, 2, 4 or 8")
    assert failed[("song", "song-1")]["error"] == "references unknown loop loop-def"
    assert failed[("song", "song-3")]["code"] == "22023"
    assert (res["created"], res["failed"]) == (1, 4)
    assert dangling_references(db, alice) == []


def test_a_uuid_reference_must_be_one_of_your_own_loops(db, make_user):
    alice, bob = make_user(), make_user()
    bobs = import_as(db, bob, {"loops": [dict(sketchpad_loop(is_public=True), id="b1")]})["mapping"]["loop"][
        "b1"
    ]
    mine = import_as(db, alice, {"loops": [dict(sketchpad_loop(), id="a1")]})["mapping"]["loop"]["a1"]
    unknown = str(uuid.uuid4())
    res = import_as(
        db,
        alice,
        {
            "songs": [
                dict(sketchpad_song([mine]), id="ok"),
                dict(sketchpad_song([bobs]), id="bobs"),
                dict(sketchpad_song([unknown]), id="nowhere"),
            ]
        },
    )
    assert res["created"] == 1 and set(res["mapping"]["song"]) == {"ok"}
    errors = {e["local_id"]: e["error"] for e in res["errors"]}
    assert errors == {
        "bobs": f"references loop {bobs}, which is neither in this import nor in your library",
        "nowhere": f"references loop {unknown}, which is neither in this import nor in your library",
    }
    assert dangling_references(db, alice) == []


def test_an_old_shape_song_in_the_generic_import_is_rewritten_too(db, make_user):
    alice = make_user()
    res = import_as(
        db,
        alice,
        {
            "loop": [{"local_id": "l1", "body": sketchpad_loop()}],
            "song": [
                {"local_id": "s1", "body": sketchpad_song(["l1"])},
                {
                    "local_id": "s2",
                    "body": {
                        "name": "Old",
                        "bpm": 90,
                        "time_signature": "3/4",
                        "timeline": [{"loop_id": "l1", "bar": 0}],
                    },
                },
                {"local_id": "s3", "body": {"bpm": 90, "time_signature": "3/4", "timeline": [{}]}},
            ],
        },
    )
    assert res["created"] == 3 and [e["local_id"] for e in res["errors"]] == ["s3"]
    new = res["mapping"]["loop"]["l1"]
    rows = dict(
        db.execute(
            "select local_id, body from public.documents where kind = 'song' and owner_id = %s", (alice,)
        ).fetchall()
    )
    assert rows["s1"]["timeline"][0]["loopId"] == new and rows["s2"]["timeline"][0]["loop_id"] == new


@pytest.mark.parametrize(
    ("library", "message"),
    [
        ({"loops": {}}, "export.loops must be an array of loops"),
        ({"loops": [], "presets": []}, "a sketchpad export holds loops and songs, not presets"),
        (
            {"songs": [], "settings": {"theme": "dark"}},
            "a sketchpad export holds loops and songs, not settings",
        ),
    ],
)
def test_a_malformed_export_is_refused_and_nothing_stored(db, make_user, library, message):
    alice = make_user()
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        cur.execute(IMPORT, (json.dumps(library),))
    assert err.value.diag.message_primary == message
    assert db.execute("select count(*) from public.documents where owner_id = %s", (alice,)).fetchone() == (
        0,
    )


def test_export_records_without_an_id_are_reported(db, make_user):
    alice = make_user()
    res = import_as(db, alice, {"loops": [sketchpad_loop(), "not a loop"]})
    assert res["created"] == 0 and res["failed"] == 2
    assert {e["error"] for e in res["errors"]} == {"every record needs a local_id of 1-200 characters"}
