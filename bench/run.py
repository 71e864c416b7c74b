"""Benchmark driver: generates the S and M tiers and prints generate, ingest, Neo4j load, detection and API figures.

Each stage runs in its own Python process so that its peak memory is measured alone (os.wait4 rusage).
Usage: `.venv/bin/python -m bench.run [--tiers S,M] [--seed 1] [--out bench/results] [--skip neo4j,api]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TIERS = {"S": 20_000, "M": 200_000, "L": 2_000_000}
STAGES = ("generate", "ingest", "neo4j", "detect", "quality", "increment", "projection", "api")


def run_stage(stage: str, args: list[str]) -> dict:
    """Run `python -m bench.stage STAGE ARGS` in a child process; return its JSON figures plus peak RSS."""
    cmd = [sys.executable, "-m", "bench.stage", stage, *args]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"stage {stage} exited {proc.returncode}", "output_tail": out[-2000:]}
    figures = json.loads(lines[-1])
    figures["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    figures["process_wall_s"] = round(wall, 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiers", default="S,M")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--skip", default="", help="comma-separated stages to skip: " + ",".join(STAGES))
    parser.add_argument("--reuse", action="store_true", help="reuse an already generated city of the tier")
    parser.add_argument("--neo4j-budget", type=float, default=None, metavar="SECONDS",
                        help="instead of the Neo4j stage (sample, row-by-row, whole graph), a first load of the whole "
                             "graph stopped after SECONDS, run last (its rate at a tier too large to load in full)")
    parser.add_argument("--delete-after", action="store_true",
                        help="delete each tier's city and workspace once its figures are written")
    opts = parser.parse_args(argv)
    skip = {s for s in opts.skip.split(",") if s}
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, dict] = {}
    for tier in [t.strip().upper() for t in opts.tiers.split(",") if t.strip()]:
        persons = TIERS[tier]
        city = out / f"city-{tier}-{opts.seed}"
        ws = out / f"ws-{tier}-{opts.seed}"
        tier_report: dict[str, dict] = {}
        report[tier] = tier_report
        print(f"\n### tier {tier}: {persons:,} persons (seed {opts.seed})", flush=True)
        if "generate" not in skip and not (opts.reuse and (city / "truth.json").exists()):
            tier_report["generate"] = run_stage("generate", [str(persons), str(opts.seed), str(city)])
            _show("generate", tier_report["generate"])
            _write(out, report)
        if "ingest" not in skip:
            tier_report["ingest"] = run_stage("ingest", [str(city), str(ws)])
            _show("ingest", tier_report["ingest"])
            _write(out, report)
        if "neo4j" not in skip and opts.neo4j_budget is None:
            tier_report["neo4j"] = run_stage("neo4j", [str(ws)])
            _show("neo4j", tier_report["neo4j"])
            _write(out, report)
        if "detect" not in skip:
            tier_report["detect"] = run_stage("detect", [str(ws)])
            _show("detect", tier_report["detect"])
            _write(out, report)
        if "quality" not in skip:
            tier_report["quality"] = run_stage("quality", [str(ws), str(city / "truth.json")])
            _show("quality", tier_report["quality"])
            _write(out, report)
        if "increment" not in skip:
            tier_report["increment"] = run_stage("increment", [str(city), str(ws)])
            _show("increment", tier_report["increment"])
            _write(out, report)
        if "projection" not in skip:
            tier_report["projection"] = run_stage("projection", [str(ws)])
            _show("projection", tier_report["projection"])
            _write(out, report)
        if "api" not in skip:
            tier_report["api"] = run_stage("api", [str(ws)])
            _show("api", tier_report["api"])
            _write(out, report)
        if "neo4j" not in skip and opts.neo4j_budget is not None:
            tier_report["neo4j_budget"] = run_stage("neo4j_budget", [str(ws), str(opts.neo4j_budget)])
            _show("neo4j_budget", tier_report["neo4j_budget"])
            _write(out, report)
        _write(out, report)
        if opts.delete_after:
            import shutil

            shutil.rmtree(city, ignore_errors=True)
            shutil.rmtree(ws, ignore_errors=True)
    path = _write(out, report)
    print(f"\nfigures written to {path}")
    return 0


_STAMP = time.strftime("%Y%m%d-%H%M%S")


def _write(out: Path, report: dict) -> Path:
    """The figures so far (rewritten after each tier, so a long run that stops keeps what it measured)."""
    path = out / f"bench-{_STAMP}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    return path


def _show(stage: str, figures: dict) -> None:
    print(f"  [{stage}]")
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"    {key}:")
            for k2, v2 in value.items():
                print(f"      {k2}: {v2}")
        else:
            print(f"    {key}: {value}")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
