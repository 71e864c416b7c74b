"""Detection benchmark: every detector's seconds on an ingested workspace, and detection quality when truth exists.

Usage: `.venv/bin/python -m bench.detect WORKSPACE [--truth CITY/truth.json] [--only KIND ...] [--no-save]`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fraudnet.claims.store import ClaimsStore

__all__ = ["run"]


def run(workspace: Path, truth: Path | None = None, only: list[str] | None = None, save: bool = True) -> dict:
    """Run all (or `only`) detectors on the claims store of `workspace`; return per-detector and total seconds,
    lead counts per kind and severity, and — with a truth.json — the evaluation per planted kind. With `save`
    (default, as `fraudnet detect` does) the leads are stored with the lead store, timed as `save_seconds`;
    without it the store is opened read-only."""
    from fraudnet.detectors.registry import run_detectors

    started = time.perf_counter()
    with ClaimsStore.open(workspace, read_only=not save) as store:
        visits = int(store.con.execute("SELECT count(*) FROM visit_fact").fetchone()[0])
        run_ = run_detectors(store.con, only=only)
        out: dict = {
            "workspace": str(workspace), "visits": visits, "detectors_seconds": run_.timings,
            "detectors_cpu_seconds": run_.cpu_timings, "total_seconds": run_.seconds,
            "total_cpu_seconds": round(sum(run_.cpu_timings.values()), 3), "leads": len(run_),
            "leads_by_kind": {k: {s: sum(1 for lead in run_ if lead.kind == k and lead.severity == s)
                                  for s in ("red", "orange", "yellow")} for k in run_.kinds},
            "errors": run_.errors,
        }
        if save:
            from fraudnet.claims.leads import LeadStore

            t0 = time.perf_counter()
            out["lead_store"] = LeadStore(store.con).save_run(list(run_), [k for k in run_.kinds
                                                                          if k not in run_.errors])
            out["save_seconds"] = round(time.perf_counter() - t0, 3)
    if truth is not None:
        from fraudnet.detectors.evaluate import evaluate, load_truth

        result = evaluate(list(run_), load_truth(truth))
        out["quality"] = {k: {m: v[m] for m in ("planted", "leads_red_orange", "recall", "precision")}
                          for k, v in result["kinds"].items() if v["planted"]}
        out["lookalikes_flagged"] = {k: v["flagged"] for k, v in result["lookalikes"].items()}
    out["wall_seconds"] = round(time.perf_counter() - started, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--truth", type=Path, default=None)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--no-save", dest="save", action="store_false", help="open the store read-only")
    opts = parser.parse_args(argv)
    print(json.dumps(run(opts.workspace, opts.truth, opts.only, opts.save), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
