"""`backline --help`/`--version` stay fast because command modules import lazily; --debug; completion.

Issue #14: every command took 2-3 s, `--help` included, from import time. Timings are measured
by bench/cli_startup.py, never here; this checks the cause: what importing the CLI loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from tests.helpers import backline, one_line_error
from workers.settings import PROJECT_ROOT

# Modules that cost tens to hundreds of milliseconds each; none is needed to parse arguments.
HEAVY = (
    "psycopg",
    "psycopg_pool",
    "pydantic",
    "pydantic_settings",
    "rich.console",
    "httpx",
    "jwt",
    "cryptography",
    "aiohttp",
    "starlette",
    "uvicorn",
    "workers.settings",
    "workers.db.connect",
    "workers.jobs.queue",
    "workers.export.rights",
    "workers.ai.keys",
)


def test_importing_the_cli_loads_no_heavy_module():
    code = (
        "import json, sys; import workers.cli.main;"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], "import these inside the command (see workers/cli/main.py)"


def test_version_and_help_answer():
    version = backline("--version")
    assert version.returncode == 0 and version.stdout.startswith("backline ")
    helped = backline("--help")
    assert helped.returncode == 0
    for option in ("--version", "--debug", "--install-completion", "--show-completion"):
        assert option in helped.stdout


def test_shell_completion_script_is_printed():
    result = backline("--show-completion", "bash")
    assert result.returncode == 0, result.stderr
    assert "_BACKLINE_COMPLETE" in result.stdout or "complete" in result.stdout


def _commands(group, path=()):  # type: ignore[no-untyped-def]
    yield path
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*path, name))


def test_no_help_screen_shows_a_bool_placeholder():
    import typer.main

    from workers.cli.main import app

    root = typer.main.get_command(app)
    runner = CliRunner()
    paths = list(_commands(root))
    assert len(paths) > 20
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path


def test_debug_prints_the_traceback_instead_of_one_line():
    url = "postgresql://u:p@127.0.0.1:1/nothing"
    plain = backline("db", "status", "--database-url", url)
    assert plain.returncode == 1 and "cannot reach" in one_line_error(plain)
    debug = backline("--debug", "db", "status", "--database-url", url)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "DatabaseUnavailable" in debug.stderr
    by_env = backline("db", "status", "--database-url", url, env={"BACKLINE_DEBUG": "1"})
    assert "Traceback" in by_env.stderr


def test_constants_copied_to_stay_light_match_their_source():
    """jobs/workers/ai keep small copies of constants so --help need not import the runtime."""
    from workers.cli import ai, jobs, workers
    from workers.jobs.logs import LOG_FORMATS
    from workers.jobs.models import JOB_STATUSES

    assert jobs.JOB_STATUSES == JOB_STATUSES
    assert workers.LOG_FORMATS == LOG_FORMATS and ai.LOG_FORMATS == LOG_FORMATS
