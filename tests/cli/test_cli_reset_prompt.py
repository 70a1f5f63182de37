"""`backline db reset` asks before wiping data and keeps the read meter as it was (issue #14)."""

from __future__ import annotations

import json
import os
import pty

import psycopg

from tests.helpers import backline


def _has_table(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()
    return bool(row and row[0])


def test_reset_without_a_terminal_and_without_yes_refuses_with_exit_2(clone_url):
    with psycopg.connect(clone_url) as conn:
        conn.execute("create table public.keep_me (id int)")
    refused = backline("db", "reset", "--force", "--database-url", clone_url)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing was reset" in lines[0] and "--yes" in lines[0]
    assert _has_table(clone_url, "public.keep_me")


def test_reset_asks_on_a_terminal_and_no_keeps_everything(clone_url):
    with psycopg.connect(clone_url) as conn:
        conn.execute("create table public.keep_me (id int)")
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"n\n")
        answered = backline("db", "reset", "--force", "--database-url", clone_url, stdin=terminal)
    finally:
        os.close(controller)
        os.close(terminal)
    assert answered.returncode == 1
    assert "Drop every table" in answered.stdout  # the question
    assert "not confirmed: nothing was reset" in answered.stderr
    assert _has_table(clone_url, "public.keep_me")


def test_reset_with_yes_rebuilds_and_switches_the_read_meter_on_again(clone_url):
    enabled = backline("db", "read-meter", "enable", "--json", "--database-url", clone_url)
    assert enabled.returncode == 0, enabled.stderr
    before = json.loads(enabled.stdout)
    assert before["enabled"] is True
    with psycopg.connect(clone_url) as conn:
        conn.execute("create table public.scratch (id int)")
    done = backline("db", "reset", "--force", "--yes", "--database-url", clone_url)
    assert done.returncode == 0, done.stderr
    assert "read meter switched on again" in done.stderr
    assert not _has_table(clone_url, "public.scratch")
    status = backline("db", "read-meter", "status", "--json", "--database-url", clone_url)
    assert json.loads(status.stdout) == before


def test_reset_leaves_an_off_meter_off(clone_url):
    done = backline("db", "reset", "--force", "--yes", "--no-seed", "--database-url", clone_url)
    assert done.returncode == 0, done.stderr
    assert "read meter" not in done.stderr
    status = backline("db", "read-meter", "status", "--json", "--database-url", clone_url)
    assert json.loads(status.stdout)["enabled"] is False
