"""Benchmark of the synthetic city generator: seconds and rows per second for one city size."""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from fraudnet.generate.city import generate_city

__all__ = ["run"]


def run(persons: int, seed: int, out_dir: Path) -> dict:
    """Generate a city of `persons` into `out_dir` and return timings (seconds, rows/s, CPU seconds, MiB written)."""
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    summary = generate_city(Path(out_dir), persons=persons, seed=seed)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    rows = sum(summary.counts.values())
    size = sum(p.stat().st_size for p in summary.files if p.exists())
    return {
        "persons": persons, "seed": seed, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
        "rows": rows, "rows_per_s": round(rows / seconds), "visits": summary.counts.get("mdtrt", 0),
        "visits_per_s": round(summary.counts.get("mdtrt", 0) / seconds), "mib_written": round(size / 2**20, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "counts": summary.counts, "schemes": summary.schemes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=None, help="output folder (default: a temporary folder, removed after)")
    opts = parser.parse_args(argv)
    if opts.out:
        figures = run(opts.persons, opts.seed, Path(opts.out))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            figures = run(opts.persons, opts.seed, Path(tmp))
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
