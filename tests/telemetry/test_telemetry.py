"""Telemetry: consent gates ingestion, batches are validated whole, hourly caps, rollups, retention."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.helpers import act_as

MakeUser = Callable[..., uuid.UUID]


def consent(db: psycopg.Connection, uid: uuid.UUID, value: bool = True) -> None:
    with act_as(db, uid, rollback=False) as cur:
        cur.execute("select telemetry from public.set_privacy_consent(telemetry => %s)", (value,))
        assert cur.fetchone()[0] is value


def ingest(db: psycopg.Connection, uid: uuid.UUID | None, events: Any, role: str = "authenticated") -> int:
    with act_as(db, uid, role) as cur:
        return cur.execute("select public.ingest_telemetry(%s::jsonb)", (json.dumps(events),)).fetchone()[0]


def count_events(db: psycopg.Connection, uid: uuid.UUID) -> int:
    return db.execute("select count(*) from public.telemetry_events where user_id = %s", (uid,)).fetchone()[0]


def test_consent_is_required_and_can_be_withdrawn(db, make_user: MakeUser):
    uid = make_user()
    with pytest.raises(errors.InsufficientPrivilege, match="consent not given"):
        ingest(db, uid, [{"name": "app.opened"}])
    consent(db, uid)
    with act_as(db, uid, rollback=False) as cur:
        assert (
            cur.execute(
                "select public.ingest_telemetry(%s::jsonb)",
                (json.dumps([{"name": "app.opened"}, {"name": "feature.used", "props": {"f": 1}}]),),
            ).fetchone()[0]
            == 2
        )
    assert count_events(db, uid) == 2
    consent(db, uid, False)
    with pytest.raises(errors.InsufficientPrivilege):
        ingest(db, uid, [{"name": "app.opened"}])
    with pytest.raises(errors.InsufficientPrivilege):
        ingest(db, None, [{"name": "app.opened"}], role="anon")


def test_consent_rows_are_private_to_their_owner(db, make_user: MakeUser):
    owner, stranger = make_user(), make_user()
    consent(db, owner)
    with act_as(db, stranger) as cur:
        assert cur.execute("select count(*) from public.privacy_consents").fetchone()[0] == 0
    with act_as(db, stranger) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("insert into public.privacy_consents (user_id, telemetry) values (%s, true)", (owner,))
    with act_as(db, stranger) as cur:
        cur.execute("update public.privacy_consents set telemetry = false where user_id = %s", (owner,))
        assert cur.rowcount == 0
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select * from public.privacy_consents")
    with act_as(db, None, "service_role") as cur:
        assert (
            cur.execute(
                "select telemetry from public.privacy_consents where user_id = %s", (owner,)
            ).fetchone()[0]
            is True
        )


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ({"name": "app.opened"}, "JSON array"),
        ([], "1 to 100"),
        ([{"name": "app.opened"}] * 101, "1 to 100"),
        ([{"name": "app.opened"}, {"name": "no.such_event"}], "unknown event name no.such_event"),
        ([{"name": "app.opened", "props": [1]}], "props must be an object"),
        ([{"name": "app.opened", "props": {"x": "y" * 5000}}], "exceed 4096 bytes"),
        ([{"name": "app.opened", "at": "yesterday-ish"}], "ISO timestamp"),
        ([{"name": "app.opened", "at": "2001-01-01T00:00:00Z"}], "last 7 days"),
        ([{"name": "app.opened", "user_id": "someone"}], "unknown event field"),
        (["app.opened"], "must be an object"),
    ],
)
def test_bad_batches_are_refused_whole(db, make_user: MakeUser, events, message):
    uid = make_user()
    consent(db, uid)
    with pytest.raises(errors.InvalidParameterValue, match=message):
        ingest(db, uid, events)
    assert count_events(db, uid) == 0


def test_hourly_cap_per_user_answers_429(db, make_user: MakeUser):
    uid, other = make_user(), make_user()
    db.execute("update public.plans set telemetry_events_per_hour = 150 where id = 'free'")
    for u in (uid, other):
        consent(db, u)
    batch = [{"name": "feature.used"}] * 100
    with act_as(db, uid, rollback=False) as cur:
        cur.execute("select public.ingest_telemetry(%s::jsonb)", (json.dumps(batch),))
    with pytest.raises(psycopg.Error) as err:
        ingest(db, uid, batch)
    assert err.value.sqlstate == "PT429" and "at most 150 events per hour" in str(err.value)
    assert count_events(db, uid) == 100
    assert ingest(db, other, batch) == 100  # another user's budget is separate


def test_users_read_only_their_own_events(db, make_user: MakeUser):
    a, b = make_user(), make_user()
    consent(db, a)
    with act_as(db, a, rollback=False) as cur:
        cur.execute('select public.ingest_telemetry(\'[{"name": "room.joined"}]\'::jsonb)')
    with act_as(db, a) as cur:
        assert cur.execute("select count(*) from public.telemetry_events").fetchone()[0] == 1
    with act_as(db, b) as cur:
        assert cur.execute("select count(*) from public.telemetry_events").fetchone()[0] == 0
    with act_as(db, a) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(
            "insert into public.telemetry_events (user_id, name, occurred_at)"
            " values (%s, 'app.opened', now())",
            (a,),
        )
    with act_as(db, None, "anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("select * from public.telemetry_events")


def _insert_event(db, uid, name, occurred, received="now()"):
    db.execute(
        f"insert into public.telemetry_events (user_id, name, occurred_at, received_at)"
        f" values (%s, %s, {occurred}, {received})",
        (uid, name),
    )


def test_daily_rollup_counts_events_and_users_idempotently(db, make_user: MakeUser):
    a, b = make_user(), make_user()
    db.execute("delete from public.telemetry_events")
    db.execute("delete from private.telemetry_daily")
    db.execute("set local timezone = 'UTC'")
    for uid in (a, a, b):
        _insert_event(db, uid, "app.opened", "now()")
    _insert_event(db, a, "app.opened", "now() - interval '1 day'")
    _insert_event(db, a, "app.opened", "now() - interval '5 days'")  # outside p_days = 2
    for _ in range(2):
        db.execute("select private.telemetry_rollup_daily(2)")
    rows = db.execute(
        "select day - current_date, events, users from private.telemetry_daily"
        " where name = 'app.opened' order by day"
    ).fetchall()
    assert rows == [(-1, 1, 1), (0, 3, 2)]
    with pytest.raises(errors.InvalidParameterValue):
        db.execute("select private.telemetry_rollup_daily(0)")


def test_rollup_and_cleanup_are_for_the_service_role_only(db, make_user: MakeUser):
    uid = make_user()
    for fn in ("private.telemetry_rollup_daily(1)", "private.cleanup_telemetry(10, true)"):
        with act_as(db, uid) as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(f"select * from {fn}")
        with act_as(db, None, "service_role") as cur:
            cur.execute(f"select * from {fn}")


def test_cleanup_deletes_only_events_past_retention_in_batches(db, make_user: MakeUser):
    uid = make_user()
    db.execute("delete from public.telemetry_events")
    for _ in range(3):
        _insert_event(db, uid, "app.opened", "now() - interval '100 days'", "now() - interval '100 days'")
    _insert_event(db, uid, "app.closed", "now() - interval '89 days'", "now() - interval '89 days'")
    dry = db.execute("select item from private.cleanup_telemetry(10, true)").fetchall()
    assert len(dry) == 3 and all("app.opened" in r[0] for r in dry)
    assert count_events(db, uid) == 4
    assert len(db.execute("select item from private.cleanup_telemetry(2, false)").fetchall()) == 2
    assert len(db.execute("select item from private.cleanup_telemetry(10, false)").fetchall()) == 1
    assert db.execute("select name from public.telemetry_events where user_id = %s", (uid,)).fetchall() == [
        ("app.closed",)
    ]
