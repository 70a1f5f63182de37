"""The 'metrics' job handler runs the daily rollup and rejects bad payloads without retry."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.export.conftest import FakeJobContext
from tests.helpers import create_user
from workers.jobs.errors import PermanentJobError
from workers.settings import Settings
from workers.telemetry.jobs import run_metrics


def test_metrics_job_rolls_up_and_validates(clone_url: str, tmp_path):
    with psycopg.connect(clone_url) as conn:
        uid = create_user(conn)
        conn.execute(
            "insert into public.telemetry_events (user_id, name, occurred_at)"
            " values (%s, 'app.opened', now())",
            (uid,),
        )
    ctx = FakeJobContext(
        Settings(DATABASE_URL=clone_url, BACKLINE_DATA_DIR=str(tmp_path)),
        clone_url,
        None,
        kind="metrics",
        job_id=uuid.uuid4(),
    )
    assert run_metrics(ctx, {"days": 1}) == {"days": 1, "rollup_rows": 1}
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select sum(events) from private.telemetry_daily").fetchone()[0] == 1
    for bad in ({"days": 0}, {"days": "2"}, {"days": True}):
        with pytest.raises(PermanentJobError, match="days"):
            run_metrics(ctx, bad)
