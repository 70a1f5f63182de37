"""import_local: one call, id mapping, reference rewriting, idempotent, partial failures reported."""

from __future__ import annotations

import json

import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import folder_body, item_body, loop_body, song_body

IMPORT = "select public.import_local(%s)"


def library() -> dict:
    return {
        "song": [{"local_id": "s1", "title": "Song", "body": song_body(["l1", "l2"])}],
        "loop": [
            {"local_id": "l1", "title": "Intro", "body": loop_body("Intro")},
            {"local_id": "l2", "title": "Verse", "body": loop_body("Verse")},
        ],
        "folder": [{"local_id": "f1", "body": folder_body("Jazz")}],
        "item": [
            {"local_id": "i1", "body": item_body("Kind of Blue", folder_id="f1")},
            {"local_id": "i2", "body": item_body("Loose")},
        ],
    }


def test_import_maps_ids_and_rewrites_references(db, make_user):
    alice = make_user()
    with keep_as(db, alice) as cur:
        res = cur.execute(IMPORT, (json.dumps(library()),)).fetchone()[0]
    assert (res["created"], res["failed"], res["existing"]) == (6, 0, 0)
    m = res["mapping"]
    assert set(m) == {"song", "loop", "folder", "item"} and set(m["loop"]) == {"l1", "l2"}
    song = db.execute(
        "select body, local_id, owner_id from public.documents where id = %s", (m["song"]["s1"],)
    ).fetchone()
    assert [b["loop_id"] for b in song[0]["timeline"]] == [m["loop"]["l1"], m["loop"]["l2"]]
    assert song[1:] == ("s1", alice)
    item = db.execute(
        "select body->>'folder_id' from public.documents where id = %s", (m["item"]["i1"],)
    ).fetchone()
    assert item == (m["folder"]["f1"],)


def test_import_twice_creates_nothing_new(db, make_user):
    alice = make_user()
    db.execute("update public.plans set imports_per_hour = 5 where id = 'free'")
    with keep_as(db, alice) as cur:
        first = cur.execute(IMPORT, (json.dumps(library()),)).fetchone()[0]
    with keep_as(db, alice) as cur:
        second = cur.execute(IMPORT, (json.dumps(library()),)).fetchone()[0]
    assert (second["created"], second["existing"], second["failed"]) == (0, 6, 0)
    assert second["mapping"] == first["mapping"]
    assert db.execute("select count(*) from public.documents where owner_id = %s", (alice,)).fetchone() == (
        6,
    )


def test_partial_bad_input_reports_failures_and_stores_good_records(db, make_user):
    alice = make_user()
    lib = {
        "loop": [
            {"local_id": "ok", "body": loop_body()},
            {"local_id": "bad", "body": {**loop_body(), "bars": 5}},
            {"body": loop_body()},
            {"local_id": "ok", "body": loop_body()},
        ],
        "song": [{"local_id": "s", "body": song_body(["ghost"])}],
    }
    with keep_as(db, alice) as cur:
        res = cur.execute(IMPORT, (json.dumps(lib),)).fetchone()[0]
    assert (res["created"], res["failed"]) == (1, 4)
    errors = {(e["kind"], e["local_id"]): e["error"] for e in res["errors"]}
    assert "loop bars must be 1, 2, 4 or 8" in errors[("loop", "bad")]
    assert "local_id" in errors[("loop", None)]
    assert "appears twice" in errors[("loop", "ok")]
    assert "references unknown loop ghost" in errors[("song", "s")]
    assert list(res["mapping"]["loop"]) == ["ok"]


def test_import_respects_plan_limit_per_kind(db, make_user):
    alice = make_user()
    db.execute(
        "update public.document_kind_limits set max_documents = 1 where kind = 'loop' and plan = 'free'"
    )
    with keep_as(db, alice) as cur:
        res = cur.execute(
            IMPORT,
            (
                json.dumps(
                    {"loop": [{"local_id": "a", "body": loop_body()}, {"local_id": "b", "body": loop_body()}]}
                ),
            ),
        ).fetchone()[0]
    assert (res["created"], res["failed"]) == (1, 1)
    assert res["errors"][0]["code"] == "PT403"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "library must be a JSON object"),
        ({"widget": []}, "unknown document kind: widget"),
        ({"loop": {"local_id": "x"}}, "must be an array"),
    ],
)
def test_malformed_library_rejected_and_nothing_stored(db, make_user, payload, message):
    alice = make_user()
    with act_as(db, alice) as cur, pytest.raises(Exception) as exc:
        cur.execute(IMPORT, (json.dumps(payload),))
    assert message in str(exc.value) and exc.value.sqlstate == "22023"
    assert db.execute("select count(*) from public.documents where owner_id = %s", (alice,)).fetchone() == (
        0,
    )


def test_import_is_rate_limited_per_plan(db, make_user):
    alice = make_user()
    with keep_as(db, alice) as cur:
        cur.execute(IMPORT, (json.dumps({"loop": []}),))
    with act_as(db, alice) as cur, pytest.raises(Exception) as exc:
        cur.execute(IMPORT, (json.dumps({"loop": [{"local_id": "x", "body": loop_body()}]}),))
    assert exc.value.sqlstate == "PT429" and "retry in" in str(exc.value)
    with act_as(db, None, "anon") as cur, pytest.raises(Exception) as exc:
        cur.execute(IMPORT, (json.dumps({}),))
    assert exc.value.sqlstate == "42501"
