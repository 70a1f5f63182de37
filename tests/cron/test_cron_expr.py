"""The 5-field cron expression parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workers.cron.expr import CronError, CronExpr


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 2 * * *", "2026-11-25T01:59:30", "2026-11-25T02:00:00"),
        ("0 2 * * *", "2026-11-25T02:00:00", "2026-11-26T02:00:00"),  # strictly after
        ("0 */6 * * *", "2026-11-25T06:00:00", "2026-11-25T12:00:00"),
        ("0 */6 * * *", "2026-11-25T23:10:00", "2026-11-26T00:00:00"),
        ("0 3 * * 1", "2026-11-25T00:00:00", "2026-11-30T03:00:00"),  # next Monday
        ("0 3 * * mon", "2026-11-30T03:00:00", "2026-12-07T03:00:00"),
        ("30 3 * * *", "2026-12-31T23:59:00", "2027-01-01T03:30:00"),
        ("*/15 9-10 * * *", "2026-11-25T10:50:00", "2026-11-26T09:00:00"),
        ("0 0 29 feb *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 0 1 * 0", "2026-11-25T00:00:00", "2026-11-29T00:00:00"),  # day-of-month OR Sunday
        ("0 0 * * 7", "2026-11-25T00:00:00", "2026-11-29T00:00:00"),  # 7 is Sunday too
        ("@weekly", "2026-11-25T00:00:00", "2026-11-29T00:00:00"),
        ("5,10 1 * jan-mar *", "2026-11-25T00:00:00", "2027-01-01T01:05:00"),
    ],
)
def test_next_after(expr: str, after: str, expected: str) -> None:
    assert CronExpr.parse(expr).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    ("expr", "error"),
    [
        ("0 2 * *", "needs 5 fields"),
        ("60 * * * *", "outside 0-59"),
        ("* 24 * * *", "outside 0-23"),
        ("* * 0 * *", "outside 1-31"),
        ("* * * 13 *", "outside 1-12"),
        ("*/0 * * * *", "bad step"),
        ("5-1 * * * *", "runs backwards"),
        ("x * * * *", "not a number"),
        ("1,,2 * * * *", "empty list item"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_bad_expressions_are_rejected_with_a_reason(expr: str, error: str) -> None:
    with pytest.raises(CronError, match=error):
        CronExpr.parse(expr).next_after(at("2026-01-01T00:00:00"))


def test_matches() -> None:
    expr = CronExpr.parse("0 2 * * *")
    assert expr.matches(at("2026-11-25T02:00:00")) and not expr.matches(at("2026-11-25T02:01:00"))
