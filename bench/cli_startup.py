"""Benchmark: how long `backline` takes to answer before doing any work (issue #14).

Runs each command --runs times as a fresh process (`python -m workers.cli.main` with this
checkout on PYTHONPATH) and prints min / median / max wall time in ms. `--help` and
`--version` must stay under 500 ms: command modules import their heavy dependencies inside
the commands (see the rule at the top of workers/cli/main.py). The last rows show where that
cost went: a command that reads the settings, and one that also tries a database (a closed
port, so no server is needed). `--compare DIR` times another checkout of Backline (e.g. a
`git worktree` of an older commit) in the same loop, runs alternating, so load affects both.

    PYTHONPATH=. python bench/cli_startup.py [--runs 10] [--compare /tmp/backline-before]
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
CLOSED = "postgresql://u@127.0.0.1:1/x"

COMMANDS: list[tuple[str, list[str]]] = [
    ("--version", ["--version"]),
    ("--help", ["--help"]),
    ("db --help", ["db", "--help"]),
    ("jobs list --help", ["jobs", "list", "--help"]),
    ("db url (reads settings)", ["db", "url", "--database-url", CLOSED]),
    ("db status (unreachable db)", ["db", "status", "--database-url", CLOSED]),
]


def _time(root: Path, args: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SUPABASE_DB_URL")}
    env["PYTHONPATH"] = str(root)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return (time.perf_counter() - start) * 1000


def _row(label: str, times: list[float]) -> None:
    print(f"{label:<40} {min(times):7.0f} {statistics.median(times):7.0f} {max(times):7.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--compare", type=Path, help="Another Backline checkout to time alongside.")
    args = parser.parse_args()
    roots = {"": ROOT} if args.compare is None else {"now ": ROOT, "other ": args.compare.resolve()}
    for root in roots.values():
        _time(root, ["--version"])  # warm the file cache
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}; {args.runs} runs each; {sys.executable}")
    if args.compare is not None:
        print(f"now = {ROOT}, other = {args.compare.resolve()}")
    print(f"{'backline …':<40} {'min':>7} {'median':>7} {'max':>7}  (ms)")
    for label, extra in COMMANDS:
        times: dict[str, list[float]] = {tag: [] for tag in roots}
        for _ in range(args.runs):
            for tag, root in roots.items():
                times[tag].append(_time(root, extra))
        for tag in roots:
            _row(f"{tag}{label}", times[tag])
    floor: list[float] = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=False)
        floor.append((time.perf_counter() - start) * 1000)
    _row("python -c pass (interpreter floor)", floor)


if __name__ == "__main__":
    main()
