"""Benchmark: how long `backline` takes to answer before doing any work (issue #14).

Runs each command --runs times as a fresh process (the console script next to this
interpreter, else `python -m workers.cli.main`) and prints min / median / max wall time in
ms. `--help` and `--version` must stay under 500 ms: command modules import their heavy
dependencies inside the commands (see the rule at the top of workers/cli/main.py). The
last rows show where that cost went: a command that reads the settings, and one that
also opens a database connection (to a closed port, so no server is needed).

    PYTHONPATH=. python bench/cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: list[tuple[str, list[str]]] = [
    ("backline --version", ["--version"]),
    ("backline --help", ["--help"]),
    ("backline db --help", ["db", "--help"]),
    ("backline jobs list --help", ["jobs", "list", "--help"]),
    ("backline db url (settings)", ["db", "url", "--database-url", "postgresql://u@127.0.0.1:1/x"]),
    ("backline db status (unreachable)", ["db", "status", "--database-url", "postgresql://u@127.0.0.1:1/x"]),
]


def _argv() -> list[str]:
    script = Path(sys.executable).parent / "backline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "workers.cli.main"]


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SUPABASE_DB_URL")}
    env["PYTHONPATH"] = str(ROOT)
    base = _argv()
    _time([*base, "--version"], env)  # warm the file cache
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}; {args.runs} runs each of {' '.join(base)}")
    print(f"{'command':<36} {'min':>7} {'median':>7} {'max':>7}  (ms)")
    for label, extra in COMMANDS:
        _row(label, [_time([*base, *extra], env) for _ in range(args.runs)])
    floor = [_time([sys.executable, "-c", "pass"], env) for _ in range(args.runs)]
    _row("python -c pass (interpreter floor)", floor)


def _row(label: str, times: list[float]) -> None:
    print(f"{label:<36} {min(times):7.0f} {statistics.median(times):7.0f} {max(times):7.0f}")


if __name__ == "__main__":
    main()
