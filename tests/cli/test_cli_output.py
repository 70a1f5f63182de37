"""Even output (issue #14): data on stdout, one line per error, human text by default and --json,
tables never cut when piped, malformed uuids are bad usage (exit 2), unreachable databases fail fast."""

from __future__ import annotations

import json
import subprocess
import uuid

import jwt
import psycopg

from tests.helpers import backline, create_user, one_line_error
from workers.settings import DEV_JWT_SECRET

UNREACHABLE = "postgresql://u:secret@127.0.0.1:1/nothing"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Piped like `backline ... | less` or in CI: no terminal, no COLUMNS."""
    return backline(*args, unset=("COLUMNS", "SUPABASE_URL"))


def test_pool_based_commands_fail_at_once_in_one_line_when_the_database_is_unreachable():
    show = ("jobs", "show", str(uuid.uuid4()))
    for args in (("jobs", "list"), show, ("cron", "list"), ("cron", "cleanup")):
        result = run(*args, "--database-url", UNREACHABLE)
        assert result.returncode == 1, args
        line = one_line_error(result)
        assert "cannot reach postgresql://u:***@127.0.0.1:1/nothing" in line, line
        assert "secret" not in line


def test_malformed_uuids_are_bad_usage_and_change_nothing(clone_url):
    for args in (
        ("jobs", "show", "nope"),
        ("jobs", "retry", "nope"),
        ("jobs", "enqueue", "echo", "--owner", "nope"),
        ("users", "export", "nope"),
        ("users", "delete", "nope", "--yes"),
        ("token", "--user", "nope"),
    ):
        result = run(*args, "--database-url", clone_url)
        assert result.returncode == 2, (args, result.stderr)
        assert "must be a uuid" in result.stderr and "Traceback" not in result.stderr
    with psycopg.connect(clone_url) as conn:
        assert conn.execute("select count(*) from public.jobs").fetchone() == (0,)
        assert conn.execute("select count(*) from auth.users").fetchone() == (0,)


def test_unknown_user_fails_before_any_progress_bar(clone_url, tmp_path):
    ghost = str(uuid.uuid4())
    exported = run("users", "export", ghost, "--out", str(tmp_path / "x.zip"), "--database-url", clone_url)
    assert exported.returncode == 1
    assert one_line_error(exported) == f"backline: user {ghost} not found"
    assert not (tmp_path / "x.zip").exists()
    erased = run("users", "delete", ghost, "--yes", "--database-url", clone_url)
    assert erased.returncode == 1 and one_line_error(erased) == f"backline: user {ghost} not found"


def test_jobs_show_is_readable_by_default_and_json_on_request(clone_url):
    enqueued = run("jobs", "enqueue", "echo", "--payload", '{"say": "hi"}', "--database-url", clone_url)
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = enqueued.stdout.strip()
    human = run("jobs", "show", job_id, "--database-url", clone_url)
    assert human.returncode == 0, human.stderr
    assert f"id:          {job_id}" in human.stdout and "status:      queued" in human.stdout
    assert 'payload:     {"say": "hi"}' in human.stdout
    assert not human.stdout.lstrip().startswith("{")
    as_json = run("jobs", "show", job_id, "--json", "--database-url", clone_url)
    assert json.loads(as_json.stdout)["payload"] == {"say": "hi"}


def test_cron_run_is_readable_by_default_and_json_on_request(clone_url):
    human = run("cron", "run", "jobs-cleanup", "--database-url", clone_url)
    assert human.returncode == 0, human.stderr
    first = human.stdout.splitlines()[0]
    assert first.startswith("jobs-cleanup: job ") and " succeeded (attempt 1/" in first
    assert "  tasks: " in human.stdout
    as_json = run("cron", "run", "jobs-cleanup", "--json", "--database-url", clone_url)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["status"] == "succeeded"


def test_cleanup_list_is_one_readable_line_per_task(clone_url):
    listed = run("cron", "cleanup", "--list", "--database-url", clone_url)
    assert listed.returncode == 0, listed.stderr
    full = json.loads(run("cron", "cleanup", "--list", "--json", "--database-url", clone_url).stdout)
    assert len(full) > 3
    for task, description in full.items():
        [line] = [line for line in listed.stdout.splitlines() if f" {task} " in line]
        summary = line.split(task, 1)[1].strip(" │|")
        assert summary and "\n" not in summary and len(summary) <= 100
        assert description.split()[0] in summary  # the description's own words, shortened
    assert len(listed.stdout.splitlines()) <= len(full) + 4  # header and borders only


def test_piped_tables_are_not_cut_at_80_columns(clone_url):
    email = "a-rather-long-address-that-would-never-fit@some-very-long-domain-name.example.test"
    with psycopg.connect(clone_url) as conn:
        user_id = create_user(conn, email=email)
    listed = run("users", "list", "--database-url", clone_url)
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if str(user_id) in line]
    assert email in row and len(row) > 80


def test_users_list_filters_and_json(clone_url):
    with psycopg.connect(clone_url) as conn:
        named = create_user(conn, email="findme@example.test")
        anonymous = create_user(conn, anonymous=True)
        conn.execute("update public.profiles set plan = 'pro' where id = %s", (named,))
    everyone = json.loads(run("users", "list", "--json", "--database-url", clone_url).stdout)
    by_id = {row["id"]: row for row in everyone}
    assert set(by_id) == {str(named), str(anonymous)}
    assert by_id[str(named)]["plan"] == "pro" and by_id[str(named)]["anonymous"] is False
    assert by_id[str(anonymous)]["anonymous"] is True and by_id[str(anonymous)]["email"] is None
    assert set(by_id[str(named)]) == {"id", "email", "anonymous", "created", "last_sign_in", "plan"}

    def ids(*filters: str) -> list[str]:
        return [
            row["id"]
            for row in json.loads(
                run("users", "list", *filters, "--json", "--database-url", clone_url).stdout
            )
        ]

    assert ids("--anonymous") == [str(anonymous)]
    assert ids("--registered") == [str(named)]
    assert ids("--email", "FINDME") == [str(named)]
    bad = run("users", "list", "--limit", "0", "--database-url", clone_url)
    assert bad.returncode == 2


def test_token_names_its_user_and_has_json(clone_url):
    plain = run("token", "--anonymous", "--database-url", clone_url)
    assert plain.returncode == 0, plain.stderr
    claims = jwt.decode(plain.stdout.strip(), DEV_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert plain.stdout.count("\n") == 1  # stdout is the token alone: TOKEN=$(backline token ...)
    assert f"anonymous user {claims['sub']}" in plain.stderr
    as_json = run("token", "--email", "json@example.test", "--json", "--database-url", clone_url)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["email"] == "json@example.test" and data["is_anonymous"] is False
    decoded = jwt.decode(data["token"], DEV_JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert decoded["sub"] == data["user_id"]
    with psycopg.connect(clone_url) as conn:
        row = conn.execute("select email from auth.users where id = %s", (data["user_id"],)).fetchone()
    assert row == ("json@example.test",)
