"""Benchmark: export of one user with 100,000 rows and 100 MB of files (time, MB/s, peak RSS).

Usage: PYTHONPATH=. python bench/export.py [--rows 100000] [--files 100] [--file-mb 1]
Target: DATABASE_URL, else the embedded server in BACKLINE_DATA_DIR. A scratch
database is created, migrated, filled, exported and dropped. The export runs
in a child process so its peak RSS is measured alone (target < 200 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import create_user  # noqa: E402
from workers.db.connect import resolve_url  # noqa: E402
from workers.gen.contract import scratch_database  # noqa: E402
from workers.platform.local_storage import LocalStorage  # noqa: E402
from workers.settings import Settings, get_settings  # noqa: E402


def fill(url: str, storage_root: Path, rows: int, files: int, file_mb: int) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        uid = create_user(conn, email="bench@example.test")
        conn.execute("insert into storage.buckets (id, name) values ('bench', 'bench')")
        audit = rows // 10
        conn.execute(
            "insert into public.audit_log (user_id, action, details)"
            " select %s, 'bench.event', jsonb_build_object('n', g, 'note', repeat('x', 120))"
            " from generate_series(1, %s) g",
            (uid, audit),
        )
        conn.execute(
            "insert into public.telemetry_events (user_id, name, occurred_at, props)"
            " select %s, 'feature.used', now() - make_interval(secs => g),"
            " jsonb_build_object('feature', 'f' || (g %% 50), 'ms', g %% 997, 'pad', repeat('y', 100))"
            " from generate_series(1, %s) g",
            (uid, rows - audit),
        )
    storage = LocalStorage(
        url, storage_root, jwt_secret="bench-secret-with-at-least-32-chars!!", public_url="http://x"
    )
    block = os.urandom(1024 * 1024)
    for i in range(files):
        chunks = (block[j:] + block[:j] for j in range(i, i + file_mb))
        storage.upload("bench", f"{uid}/files/f{i:04d}.bin", chunks, content_type="application/octet-stream")
    storage.close()
    return uid


def child(url: str, data_dir: str, user_id: str, out: str) -> None:
    """Run the export and print its numbers as JSON (measured in this process only)."""
    from workers.export.rights import export_to_file
    from workers.platform.factory import make_adapters

    settings = Settings(DATABASE_URL=url, BACKLINE_DATA_DIR=data_dir)
    adapters = make_adapters(settings, url)
    start = time.perf_counter()
    summary = export_to_file(url, adapters, uuid.UUID(user_id), Path(out))
    seconds = time.perf_counter() - start
    adapters.close()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024, **summary.as_dict()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--file-mb", type=int, default=1)
    parser.add_argument(
        "--child", nargs=4, metavar=("URL", "DATA_DIR", "USER", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    admin = resolve_url(get_settings())
    with scratch_database(admin) as url, tempfile.TemporaryDirectory(prefix="backline-bench-") as tmp:
        t0 = time.perf_counter()
        uid = fill(url, Path(tmp) / "storage", args.rows, args.files, args.file_mb)
        took = time.perf_counter() - t0
        print(f"filled {args.rows} rows and {args.files * args.file_mb} MB in {took:.1f}s", file=sys.stderr)
        out = Path(tmp) / "export.zip"
        done = subprocess.run(
            [sys.executable, __file__, "--child", url, tmp, str(uid), str(out)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        result = json.loads(done.stdout)
    total_rows = sum(result["rows"].values())
    mb = (result["file_bytes"]) / 1e6
    print(f"rows exported      {total_rows:,}")
    print(f"files              {result['files']} ({mb:.1f} MB)")
    print(f"archive            {result['archive_bytes'] / 1e6:.1f} MB")
    print(f"time               {result['seconds']:.2f} s")
    rate = result["archive_bytes"] / 1e6 / result["seconds"]
    print(f"throughput         {rate:.1f} MB/s (archive written)")
    print(f"rows/s             {total_rows / result['seconds']:,.0f}")
    print(f"peak RSS (export)  {result['peak_rss_mb']:.1f} MB (target < 200 MB)")


if __name__ == "__main__":
    main()
