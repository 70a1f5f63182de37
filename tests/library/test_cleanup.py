"""Cleanups: bounded batches, dry run lists without deleting, only expired rows go."""

from __future__ import annotations

import json

from tests.helpers import act_as, keep_as


def test_cleanup_tombstones_share_links_and_conflicts(db, make_user, make_doc):
    alice = make_user()
    old, recent, live = make_doc(alice), make_doc(alice), make_doc(alice)
    db.execute("update public.documents set deleted_at = now() - interval '40 days' where id = %s", (old,))
    db.execute("update public.documents set deleted_at = now() - interval '1 day' where id = %s", (recent,))
    with keep_as(db, alice) as cur:
        links = [cur.execute("select public.create_share_link(%s)", (live,)).fetchone()[0] for _ in range(3)]
    db.execute(
        "update public.share_links set revoked_at = now() - interval '8 days' where id = %s",
        (links[0]["id"],),
    )
    db.execute(
        "update public.share_links set expires_at = now() - interval '9 days' where id = %s",
        (links[1]["id"],),
    )
    for age in (40, 2):
        db.execute(
            "insert into public.sync_conflicts (owner_id, document_id, change_id, strategy, server_version,"
            " server_title, server_body, status, resolution, resolved_at) values (%s, %s, 'c', 'manual', 1,"
            " 't', '{}', 'resolved', 'keep_theirs', now() - make_interval(days => %s))",
            (alice, live, age),
        )

    dry = [r[0] for r in db.execute("select item from private.cleanup_tombstones(10, true)")]
    assert len(dry) == 1 and str(old) in dry[0]
    assert db.execute("select count(*) from public.documents where id = %s", (old,)).fetchone() == (1,)
    assert len(db.execute("select item from private.cleanup_tombstones(10, false)").fetchall()) == 1
    assert db.execute(
        "select count(*) from public.documents where id in (%s, %s)", (old, recent)
    ).fetchone() == (1,)

    assert (
        len(db.execute("select * from private.cleanup_share_links(1, false)").fetchall()) == 1
    )  # batch bound
    assert len(db.execute("select * from private.cleanup_share_links(10, false)").fetchall()) == 1
    assert db.execute("select count(*) from public.share_links").fetchone()[0] >= 1
    assert db.execute(
        "select count(*) from public.share_links where id = %s", (links[2]["id"],)
    ).fetchone() == (1,)

    items = [r[0] for r in db.execute("select item from private.cleanup_sync_conflicts(10, false)")]
    assert len(items) == 1 and "keep_theirs" in items[0]
    assert db.execute(
        "select count(*) from public.sync_conflicts where owner_id = %s", (alice,)
    ).fetchone() == (1,)


def test_cleanups_are_for_service_role_only(db, make_user):
    alice = make_user()
    for fn in ("cleanup_tombstones", "cleanup_share_links", "cleanup_sync_conflicts"):
        with act_as(db, alice) as cur:
            try:
                cur.execute(f"select * from private.{fn}(1, true)")
                outcome = None
            except Exception as exc:
                outcome = exc.sqlstate
        assert outcome == "42501", fn
        with act_as(db, None, "service_role") as cur:
            assert cur.execute(f"select count(*) from private.{fn}(1, true)").fetchone()[0] >= 0
    assert json
