"""DuckDB against Spark local[2]: every detector on one ingested city, each engine in its own process.

Usage: `.venv/bin/python -m bench.spark [--persons 20000] [--seed 1] [--repeat 3] [--spark-repeat 1]
[--workspace WS] [--out bench/spark_results.json]`. Without `--workspace` the city is generated and ingested
under /tmp. Prints medians, the Spark/DuckDB ratio, per-detector seconds and peak RSS (the process tree: Python
and, for Spark, its JVM), and checks the two engines' leads are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["main", "one_run"]


def _tree_rss() -> int:
    import psutil

    me = psutil.Process()
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _tree_cpu() -> float:
    """CPU seconds (user + system) of this process and its live children (the Spark JVM)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def one_run(workspace: Path, engine: str, master: str = "local[2]", driver_memory: str = "2g") -> dict:
    """One detection run on `engine` (in this process); seconds (total, start-up, per detector), CPU seconds and
    peak RSS of the process tree (Python and the JVM), and the leads (id → score) to compare."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.detectors.registry import run_detectors

    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss())
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        with ClaimsStore.open(workspace, read_only=True) as store:
            eng = None
            if engine == "spark":
                from fraudnet.engines.spark import SparkEngine

                eng = SparkEngine.from_store(store.con, master=master, driver_memory=driver_memory)
            startup = time.perf_counter() - t0
            try:
                run = run_detectors(store.con, engine=eng)
                cpu = _tree_cpu()  # before the JVM stops
            finally:
                if eng is not None:
                    eng.close()
            visits = int(store.con.execute("SELECT count(*) FROM visit_fact").fetchall()[0][0])
    finally:
        stop.set()
        sampler.join()
    return {"engine": engine, "seconds": round(time.perf_counter() - t0, 3), "startup_seconds": round(startup, 3),
            "cpu_seconds": round(cpu, 1),
            "detect_seconds": run.seconds, "detectors": run.timings, "errors": run.errors, "visits": visits,
            "peak_rss_mb": round(peak[0] / 2**20, 1), "leads": {ld.lead_id: ld.score for ld in run},
            "kinds": {ld.lead_id: ld.kind for ld in run}}


def _child(workspace: Path, engine: str, master: str, driver_memory: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.spark", "--one", engine, "--workspace", str(workspace),
                          "--master", master, "--driver-memory", driver_memory], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _city(persons: int, seed: int) -> Path:
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.generate.city import generate_city
    from fraudnet.ingest.pipeline import ingest_folder

    root = Path(tempfile.mkdtemp(prefix=f"bench-spark-{persons}-"))
    generate_city(root / "city", persons=persons, seed=seed)
    with ClaimsStore.open(root / "ws") as store:
        if not ingest_folder(root / "city", store).ok:
            raise RuntimeError("ingest failed")
    return root / "ws"


def _differences(duck: dict, sparks: list[dict], limit: int = 50) -> list[dict]:
    """The leads that differ between DuckDB's first run and each Spark run: a lead only one engine gives, or a
    score apart by more than 1e-9 (id, kind, scores; at most `limit`), so that a `same_leads: false` names them."""
    out: list[dict] = []
    for i, r in enumerate(sparks):
        d, s = duck["leads"], r["leads"]
        kinds = {**duck.get("kinds", {}), **r.get("kinds", {})}
        for lead_id in sorted(set(d) | set(s)):
            a, b = d.get(lead_id), s.get(lead_id)
            if a is None or b is None or abs(a - b) > 1e-9:
                out.append({"spark_run": i + 1, "lead_id": lead_id, "kind": kinds.get(lead_id), "duckdb": a,
                            "spark": b})
    return out[:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="DuckDB runs")
    parser.add_argument("--spark-repeat", type=int, default=1, help="Spark runs")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="2g", help="Spark driver memory (local mode: all of Spark)")
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--one", choices=["duckdb", "spark"], default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.one:
        print(json.dumps(one_run(opts.workspace, opts.one, opts.master, opts.driver_memory)))
        return 0
    ws = opts.workspace or _city(opts.persons, opts.seed)
    runs: dict[str, list[dict]] = {"duckdb": [], "spark": []}
    for engine, n in (("duckdb", opts.repeat), ("spark", opts.spark_repeat)):
        for i in range(n):
            r = _child(ws, engine, opts.master, opts.driver_memory)
            runs[engine].append(r)
            print(f"{engine} run {i + 1}: {r['seconds']:.1f} s (start-up {r['startup_seconds']:.1f} s), "
                  f"CPU {r['cpu_seconds']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB, {len(r['leads'])} leads",
                  flush=True)
    med = {e: statistics.median(r["seconds"] for r in rs) for e, rs in runs.items()}
    det = {e: statistics.median(r["detect_seconds"] for r in rs) for e, rs in runs.items()}
    same = all(r["leads"].keys() == runs["duckdb"][0]["leads"].keys()
               and all(abs(r["leads"][k] - v) <= 1e-9 for k, v in runs["duckdb"][0]["leads"].items())
               for r in runs["spark"])
    differences = _differences(runs["duckdb"][0], runs["spark"])
    per_detector = {k: {e: statistics.median(r["detectors"][k] for r in rs) for e, rs in runs.items()}
                    for k in runs["duckdb"][0]["detectors"]}
    report = {
        "visits": runs["duckdb"][0]["visits"], "master": opts.master, "runs": {e: len(rs) for e, rs in runs.items()},
        "median_seconds": med, "median_detect_seconds": det,
        "ratio_spark_over_duckdb": round(med["spark"] / med["duckdb"], 2),
        "ratio_detect_only": round(det["spark"] / det["duckdb"], 2),
        "spark_startup_seconds": statistics.median(r["startup_seconds"] for r in runs["spark"]),
        "median_cpu_seconds": {e: statistics.median(r["cpu_seconds"] for r in rs) for e, rs in runs.items()},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb": {e: max(r["peak_rss_mb"] for r in rs) for e, rs in runs.items()},
        "per_detector_seconds": per_detector, "same_leads": same, "differences": differences,
        "errors": {e: rs[0]["errors"] for e, rs in runs.items()},
    }
    print(json.dumps({k: v for k, v in report.items() if k != "per_detector_seconds"}, indent=2))
    for kind, t in per_detector.items():
        print(f"  {kind:28s} duckdb {t['duckdb']:7.2f} s   spark {t['spark']:7.2f} s   "
              f"×{t['spark'] / max(t['duckdb'], 1e-3):.0f}")
    if opts.out:
        opts.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
