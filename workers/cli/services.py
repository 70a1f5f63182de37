"""Background services `backline up` starts and `backline down` stops (workers, AI proxy).

Each service is this same CLI in a detached process; its pid and log live in
<BACKLINE_DATA_DIR>/services/, so a later command can find and stop it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Service:
    name: str
    args: tuple[str, ...]


class Services:
    """Start, find and stop detached service processes for one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir.expanduser().resolve() / "services"

    def pid(self, name: str) -> int | None:
        try:
            pid = int((self.dir / f"{name}.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def log_path(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def start(self, service: Service, env: dict[str, str]) -> tuple[int, bool]:
        """Start the service unless it runs. Returns (pid, started_now)."""
        running = self.pid(service.name)
        if running is not None:
            return running, False
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(service.name), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli.main", *service.args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,
            )
        (self.dir / f"{service.name}.pid").write_text(str(proc.pid))
        return proc.pid, True

    def stop(self, name: str, timeout: float = 30.0) -> bool:
        """SIGTERM (the workers drain), then SIGKILL after `timeout`. Returns whether it ran."""
        pid = self.pid(name)
        (self.dir / f"{name}.pid").unlink(missing_ok=True)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        return True

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.dir.glob("*.pid")) if self.dir.exists() else []
