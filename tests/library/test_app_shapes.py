"""The sketchpad's real loop and song bodies (#13 item 2), as the sketchpad's user via act_as.

Accepted exactly as the app sends them; every malformed field refused with 22023 and a
message naming the field's path; old-shape documents still read, updated and forked; a song
block without a loop reference refused in both shapes; isPublic and visibility one fact.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import loop_body, sketchpad_loop, sketchpad_song, song_body

INSERT = "insert into public.documents (kind, title, body) values (%s, 'x', %s) returning id, visibility"


def insert_as(db: psycopg.Connection[Any], user: uuid.UUID, kind: str, body: Any) -> tuple[str, str]:
    with keep_as(db, user) as cur:
        row = cur.execute(INSERT, (kind, json.dumps(body))).fetchone()
    return str(row[0]), row[1]


def refused(db: psycopg.Connection[Any], user: uuid.UUID, kind: str, body: Any) -> str:
    """The 22023 message for a body, checking nothing was stored."""
    with act_as(db, user) as cur, pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        cur.execute(INSERT, (kind, json.dumps(body)))
    assert db.execute("select count(*) from public.documents where owner_id = %s", (user,)).fetchone() == (0,)
    return err.value.diag.message_primary or ""


@pytest.mark.parametrize("length", [1, 2, 4, 8])
def test_the_sketchpads_loop_is_accepted(db, make_user, length):
    alice = make_user()
    body = sketchpad_loop(length=length)
    body["iconSequence"].append({"step": 15, "soundId": "drum-hat", "velocity": 0})
    doc, visibility = insert_as(db, alice, "loop", body)
    stored = db.execute("select body from public.documents where id = %s", (doc,)).fetchone()[0]
    assert stored == body and visibility == "private"


def test_the_sketchpads_song_is_accepted(db, make_user):
    alice = make_user()
    loops = [insert_as(db, alice, "loop", sketchpad_loop(n))[0] for n in ("A", "B")]
    doc, _ = insert_as(db, alice, "song", sketchpad_song(loops))
    body = db.execute("select body from public.documents where id = %s", (doc,)).fetchone()[0]
    assert [b["loopId"] for b in body["timeline"]] == loops


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


DELETE = object()

LOOP_CASES = [
    (["name"], "", "loop name must be a string of 1-100 characters"),
    (["name"], "n" * 101, "loop name must be a string of 1-100 characters"),
    (["length"], 3, "loop length must be 1, 2, 4 or 8"),
    (["length"], "4", "loop length must be 1, 2, 4 or 8"),
    (["length"], DELETE, "loop body is missing length"),
    (["color"], "orange", "loop color must look like #RRGGBB"),
    (["color"], "#FFAA0", "loop color must look like #RRGGBB"),
    (["isPublic"], "yes", "loop isPublic must be true or false"),
    (["bpm"], 120, "loop body has unknown field(s) bpm"),
    (["chordProgression"], {}, "loop chordProgression must be an array"),
    (["chordProgression", 1], "Am7", "loop chordProgression[1] must be a JSON object"),
    (["chordProgression", 1, "bar"], -1, "loop chordProgression[1].bar must be a non-negative integer"),
    (["chordProgression", 1, "bar"], 1.5, "loop chordProgression[1].bar must be a non-negative integer"),
    (["chordProgression", 1, "bar"], "1", "loop chordProgression[1].bar must be a non-negative integer"),
    (["chordProgression", 0, "chord"], "", "loop chordProgression[0].chord must be a string of 1-32"),
    (["chordProgression", 0, "roman"], 1, "loop chordProgression[0].roman must be a string"),
    (["chordProgression", 0, "root"], None, "loop chordProgression[0].root must be a string of 1-8"),
    (["chordProgression", 0, "quality"], ["maj7"], "loop chordProgression[0].quality must be a string"),
    (["chordProgression", 0, "root"], DELETE, "loop chordProgression[0] is missing root"),
    (["chordProgression", 0, "beat"], 2, "loop chordProgression[0] has unknown field(s) beat"),
    (["iconSequence"], None, "loop iconSequence must be an array"),
    (["iconSequence", 1, "step"], -4, "loop iconSequence[1].step must be a non-negative integer"),
    (["iconSequence", 1, "soundId"], "", "loop iconSequence[1].soundId must be a string of 1-64"),
    (["iconSequence", 0, "velocity"], 1.01, "loop iconSequence[0].velocity must be a number from 0 to 1"),
    (["iconSequence", 0, "velocity"], -0.1, "loop iconSequence[0].velocity must be a number from 0 to 1"),
    (["iconSequence", 0, "velocity"], "0.8", "loop iconSequence[0].velocity must be a number from 0 to 1"),
    (["iconSequence", 0, "note"], 60, "loop iconSequence[0].note must be a string of 1-8 characters"),
    (["iconSequence", 0, "note"], None, "loop iconSequence[0].note must be a string of 1-8 characters"),
    (["iconSequence", 1, "velocity"], DELETE, "loop iconSequence[1] is missing velocity"),
]


@pytest.mark.parametrize(("path", "value", "message"), LOOP_CASES, ids=[m for _, _, m in LOOP_CASES])
def test_a_malformed_loop_is_refused_naming_the_field(db, make_user, path, value, message):
    body = sketchpad_loop()
    _set(path, value)(body)
    assert refused(db, make_user(), "loop", body).startswith(message)


def test_a_loop_with_too_many_cells_is_refused(db, make_user):
    body = sketchpad_loop()
    body["chordProgression"] = [copy.deepcopy(body["chordProgression"][0]) for _ in range(65)]
    assert "at most 64 chord cells" in refused(db, make_user(), "loop", body)


SONG_CASES = [
    (["name"], DELETE, "song body is missing name"),
    (["bpm"], 19, "song bpm must be a number from 20 to 300"),
    (["bpm"], 301, "song bpm must be a number from 20 to 300"),
    (["timeSignature"], "6/8", 'song timeSignature must be "4/4" or "3/4"'),
    (["totalBars"], -1, "song totalBars must be a non-negative integer"),
    (["totalBars"], 2.5, "song totalBars must be a non-negative integer"),
    (["isPublic"], 1, "song isPublic must be true or false"),
    (["timeline"], {}, "song timeline must be an array"),
    (["timeline", 0], {}, "song timeline[0] is missing id, loopId, startBar, duration"),
    (["timeline", 1, "loopId"], DELETE, "song timeline[1] is missing loopId"),
    (["timeline", 1, "loopId"], "loop-abc", "song timeline[1].loopId must be the id (a uuid) of a loop"),
    (["timeline", 1, "loopId"], None, "song timeline[1].loopId must be the id (a uuid) of a loop"),
    (["timeline", 1, "startBar"], -1, "song timeline[1].startBar must be a non-negative integer"),
    (["timeline", 1, "startBar"], 4.5, "song timeline[1].startBar must be a non-negative integer"),
    (["timeline", 0, "duration"], 0, "song timeline[0].duration must be a positive integer"),
    (["timeline", 0, "duration"], "4", "song timeline[0].duration must be a positive integer"),
    (["timeline", 1, "id"], "block-1", "song timeline[1].id block-1 is used by an earlier block"),
    (["timeline", 0, "id"], 7, "song timeline[0].id must be a string of 1-100 characters"),
    (["timeline", 0, "bar"], 0, "song timeline[0] has unknown field(s) bar"),
]


@pytest.mark.parametrize(("path", "value", "message"), SONG_CASES, ids=[m for _, _, m in SONG_CASES])
def test_a_malformed_song_is_refused_naming_the_field(db, make_user, path, value, message):
    body = sketchpad_song([str(uuid.uuid4()), str(uuid.uuid4())])
    _set(path, value)(body)
    assert refused(db, make_user(), "song", body).startswith(message)


def test_a_block_without_a_loop_reference_is_refused_in_both_shapes(db, make_user):
    """Was accepted: `not private.library_is_uuid(null)` is NULL, so the bad-block test never matched."""
    alice = make_user()
    assert "song timeline[0] is missing" in refused(
        db, alice, "song", dict(sketchpad_song([]), timeline=[{}])
    )
    legacy = dict(song_body([]), timeline=[{}])
    assert (
        refused(db, alice, "song", legacy)
        == "every song timeline block must reference a loop by its id (loop_id)"
    )
    legacy["timeline"] = [{"bar": 0}]
    assert refused(db, alice, "song", legacy).startswith("every song timeline block must reference a loop")


def test_documents_in_the_old_shape_are_still_read_updated_and_forked(db, make_user):
    alice, bob = make_user(), make_user()
    old = loop_body("Old")
    doc, _ = insert_as(db, alice, "loop", old)
    song, _ = insert_as(db, alice, "song", song_body([doc]))
    with keep_as(db, alice) as cur:
        cur.execute(
            "update public.documents set body = %s, visibility = 'public' where id = %s",
            (json.dumps(dict(old, bars=8)), doc),
        )
        assert cur.execute("select body->>'bars' from public.documents where id = %s", (doc,)).fetchone() == (
            "8",
        )
        assert cur.execute("select count(*) from public.documents where id = %s", (song,)).fetchone() == (1,)
    with keep_as(db, bob) as cur:
        fork = cur.execute("select body from public.fork_document(%s)", (doc,)).fetchone()[0]
    assert fork["bars"] == 8 and "isPublic" not in fork


# == isPublic <-> visibility ==

VIS = "select visibility, body->'isPublic' from public.documents where id = %s"


def test_is_public_publishes_and_strangers_see_it_only_then(db, make_user):
    alice, stranger = make_user(), make_user()
    public, visibility = insert_as(db, alice, "loop", sketchpad_loop("Shared", is_public=True))
    private, _ = insert_as(db, alice, "loop", sketchpad_loop("Mine", is_public=False))
    assert visibility == "public"
    with act_as(db, stranger) as cur:
        seen = {
            r[0] for r in cur.execute("select id::text from public.documents where owner_id = %s", (alice,))
        }
    assert seen == {public}
    with act_as(db, None, "anon") as cur:
        assert cur.execute("select count(*) from public.documents where id = %s", (private,)).fetchone() == (
            0,
        )


def test_is_public_and_visibility_follow_each_other(db, make_user):
    alice = make_user()
    doc, _ = insert_as(db, alice, "loop", sketchpad_loop())
    with keep_as(db, alice) as cur:
        cur.execute("update public.documents set visibility = 'public' where id = %s", (doc,))
        assert cur.execute(VIS, (doc,)).fetchone() == ("public", True)
        cur.execute(
            "update public.documents set body = jsonb_set(body, '{isPublic}', 'false') where id = %s", (doc,)
        )
        assert cur.execute(VIS, (doc,)).fetchone() == ("private", False)
        cur.execute("update public.documents set visibility = 'unlisted' where id = %s", (doc,))
        assert cur.execute(VIS, (doc,)).fetchone() == ("unlisted", False)
        cur.execute(
            "update public.documents set body = jsonb_set(body, '{name}', '\"B\"') where id = %s", (doc,)
        )
        assert cur.execute(VIS, (doc,)).fetchone() == ("unlisted", False)
    # Insert: isPublic decides (an explicit 'public' with isPublic false is private).
    with keep_as(db, alice) as cur:
        row = cur.execute(
            "insert into public.documents (kind, body, visibility) values ('loop', %s, 'public')"
            " returning id",
            (json.dumps(sketchpad_loop()),),
        ).fetchone()
        assert cur.execute(VIS, (row[0],)).fetchone() == ("private", False)


def test_an_update_where_is_public_and_visibility_disagree_is_refused(db, make_user):
    alice = make_user()
    doc, _ = insert_as(db, alice, "loop", sketchpad_loop())
    with act_as(db, alice) as cur, pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        cur.execute(
            "update public.documents set visibility = 'unlisted',"
            " body = jsonb_set(body, '{isPublic}', 'true') where id = %s",
            (doc,),
        )
    assert "isPublic (true) and visibility (unlisted) disagree" in str(err.value)
    assert db.execute(VIS, (doc,)).fetchone() == ("private", False)


def test_a_fork_of_a_public_loop_starts_private(db, make_user):
    alice, bob = make_user(), make_user()
    doc, _ = insert_as(db, alice, "loop", sketchpad_loop(is_public=True))
    with keep_as(db, bob) as cur:
        fork = cur.execute(
            "select id, visibility, body->'isPublic' from public.fork_document(%s)", (doc,)
        ).fetchone()
    assert fork[1:] == ("private", False)
