"""Ingest benchmark: time `ingest_folder` on a generated city, rows per second and peak memory.

Usage: `.venv/bin/python -m bench.ingest CITY_DIR WORKSPACE` (the workspace is emptied first); prints one JSON
line. Generate the M tier with `.venv/bin/fraudnet generate --persons 200000 --seed 1 --out /tmp/city_m`.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path

from fraudnet.claims.store import ClaimsStore
from fraudnet.ingest.pipeline import ingest_folder

__all__ = ["run"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(city_dir: Path, workspace: Path) -> dict:
    """Ingest `city_dir` into a fresh claims store in `workspace`, then re-ingest it (must change nothing).

    Returns seconds, rows read/loaded, rows per second, per-file seconds, the re-ingest seconds, CPU seconds
    of the first ingest (user + system, all threads: a figure that does not depend on other load on the
    machine) and the process's peak RSS in MiB.
    """
    city_dir, workspace = Path(city_dir), Path(workspace)
    if (workspace / "claims.duckdb").exists():
        shutil.rmtree(workspace)
    started = time.perf_counter()
    cpu0 = _cpu()
    with ClaimsStore.open(workspace) as store:
        report = ingest_folder(city_dir, store)
        seconds = time.perf_counter() - started
        cpu_seconds = round(_cpu() - cpu0, 2)
        counts = store.table_counts()
        t0 = time.perf_counter()
        again = ingest_folder(city_dir, store)
        reingest_seconds = time.perf_counter() - t0
    rows = report.rows_read
    per_file = {f.file_name: round(f.seconds, 2) for f in report.files}
    return {
        "ok": report.ok,
        "errors": report.errors,
        "seconds": round(seconds, 2),
        "rows_read": rows,
        "rows_loaded": report.rows_loaded,
        "rows_rejected": report.rows_rejected,
        "rows_per_second": round(rows / seconds) if seconds else None,
        "per_file_seconds": per_file,
        "visit_fact_rows": report.visit_fact_rows,
        "table_counts": counts,
        "reingest_seconds": round(reingest_seconds, 2),
        "reingest_unchanged": len(again.already_ingested) == len(report.files),
        "db_size_mib": round((workspace / "claims.duckdb").stat().st_size / 2**20, 1),
        "cpu_seconds": cpu_seconds,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__)
        return 2
    print(json.dumps(run(Path(args[0]), Path(args[1])), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
