"""Learning benchmark: reveal part of a city's truth as labels, rank the rest, against the unsupervised risk and
amount alone.

Usage: `.venv/bin/python -m bench.learning --city NAME=WORKSPACE:TRUTH [--city …] [--fractions 0.1,0.3,0.5]
[--seed 1] [--out bench/learning_results.json]`. Each WORKSPACE is a claims store after `fraudnet ingest` and
`fraudnet detect`; TRUTH its generator's `truth.json`. An institution is fraud when it is a key entity of a
planted scheme of an institution kind, a person when a key entity of a person kind (`detectors.evaluate`);
every other institution / person is clean. Per fraction, that share of each type's entities (stratified by
label) is revealed as labels; the learned ranking (model chosen by grouped CV as `fraudnet model train` does) is
fitted on them and scored on the hidden rest, beside the queue's unsupervised entity risk and ranking by fund
paid, with bootstrap 95% intervals (same resamples). A type whose revealed labels are below the product's
training minimum (20 fraud and 20 clean) is reported as such — `fraudnet model train` would not train it.
Also times a full training (choice + calibration) on the 30% labels. Exit code 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TYPES = ("Institution", "Person")


def truth_labels(data: Any, truth_path: str | Path) -> pd.DataFrame:
    """Every institution and person of the store labelled fraud (key entity of a planted scheme) or clean."""
    from fraudnet.detectors.evaluate import PERSON_KINDS, key_entities, load_truth

    truth = load_truth(truth_path)
    fraud: dict[str, set[str]] = {"Institution": set(), "Person": set()}
    for s in truth["schemes"]:
        fraud["Person" if s["kind"] in PERSON_KINDS else "Institution"] |= key_entities(s["kind"], s)
    rows = [(t, e, "fraud" if e in fraud[t] else "clean") for t in TYPES for e in data.index[t]]
    frame = pd.DataFrame(rows, columns=["entity_type", "entity_id", "label"])
    frame["decided_at"] = None
    return frame


def reveal(labels: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified random `fraction` of each (type, label) as known labels, and the hidden rest."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for _, idx in labels.groupby(["entity_type", "label"]).indices.items():
        k = int(round(fraction * len(idx)))
        mask[rng.choice(idx, k, replace=False)] = True
    return labels[mask].reset_index(drop=True), labels[~mask].reset_index(drop=True)


def run_city(name: str, workspace: str, truth: str, fractions: list[float], seed: int) -> dict[str, Any]:
    import duckdb

    from fraudnet.learning.features import EntityData
    from fraudnet.learning.model import MIN_PER_CLASS, evaluate_holdout, fit_type

    con = duckdb.connect(str(Path(workspace) / "claims.duckdb"), read_only=True)
    t0 = time.perf_counter()
    data = EntityData.load(con)
    load_s = time.perf_counter() - t0
    labels = truth_labels(data, truth)
    print(f"  {name}: features loaded in {load_s:.1f} s", file=sys.stderr)
    out: dict[str, Any] = {"city": name, "workspace": workspace, "load_seconds": round(load_s, 1),
                           "entities": {t: int((labels["entity_type"] == t).sum()) for t in TYPES},
                           "fraud": {t: int(((labels["entity_type"] == t) & (labels["label"] == "fraud")).sum())
                                     for t in TYPES}, "fractions": {}}
    for frac in fractions:
        known, hidden = reveal(labels, frac, seed)
        per_type: dict[str, Any] = {}
        for t in TYPES:
            kt = known[known["entity_type"] == t]
            nf, nc = int((kt["label"] == "fraud").sum()), int((kt["label"] == "clean").sum())
            if nf < 5 or nc < 5:
                per_type[t] = {"skipped": f"{nf} fraud / {nc} clean revealed: too few to fit"}
                continue
            t1 = time.perf_counter()
            res = evaluate_holdout(data, known, t, seed, test_labels=hidden)
            res["seconds"] = round(time.perf_counter() - t1, 1)
            res["revealed_fraud"], res["revealed_clean"] = nf, nc
            print(f"  {name} {frac:.0%} {t}: {res['seconds']} s", file=sys.stderr)
            res["below_training_minimum"] = nf < MIN_PER_CLASS or nc < MIN_PER_CLASS
            per_type[t] = res
        out["fractions"][str(frac)] = per_type
    known, _ = reveal(labels, 0.3, seed)
    t1 = time.perf_counter()
    for t in TYPES:
        kt = known[known["entity_type"] == t]
        if (kt["label"] == "fraud").sum() >= 5:
            fit_type(data, known, t, seed)
    out["train_seconds_30pct"] = round(time.perf_counter() - t1 + load_s, 1)
    con.close()
    return out


def _fmt(m: dict[str, Any], key: str) -> str:
    v, ci = m.get(key), m.get(f"{key}_ci") or [None, None]
    if v is None or v != v:
        return "-"
    return f"{v:.3f} [{ci[0]:.3f}–{ci[1]:.3f}]" if ci[0] is not None else f"{v:.3f}"


def print_results(results: list[dict[str, Any]]) -> None:
    for city in results:
        print(f"\n== {city['city']} ({city['entities']['Institution']} institutions, {city['fraud']['Institution']} "
              f"fraud; {city['entities']['Person']} persons, {city['fraud']['Person']} fraud); training on 30% "
              f"incl. features: {city['train_seconds_30pct']} s")
        print(f"{'revealed':<9} {'type':<12} {'hidden f/c':<12} {'ranking':<18} {'ROC AUC [95% CI]':<24} "
              f"{'AP [95% CI]':<24}")
        for frac, per_type in city["fractions"].items():
            for t, res in per_type.items():
                if "skipped" in res:
                    print(f"{float(frac):<9.0%} {t:<12} {res['skipped']}")
                    continue
                note = " (below training minimum)" if res.get("below_training_minimum") else ""
                for key in ("learned", "unsupervised_risk", "amount"):
                    m = res["rankings"][key]
                    label = key + (f" ({res.get('chosen')})" if key == "learned" else "")
                    print(f"{float(frac):<9.0%} {t:<12} {res['fraud']}/{res['clean']:<9} {label:<18.18} "
                          f"{_fmt(m, 'auc'):<24} {_fmt(m, 'ap'):<24}{note if key == 'learned' else ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.learning", description=__doc__.split("\n")[0])
    parser.add_argument("--city", action="append", default=[], metavar="NAME=WORKSPACE:TRUTH",
                        help="a city to measure (repeatable)")
    parser.add_argument("--fractions", default="0.1,0.3,0.5")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the results as JSON")
    parser.add_argument("--show", default=None, help="print a results file without measuring")
    args = parser.parse_args(argv)
    if args.show:
        print_results(json.loads(Path(args.show).read_text(encoding="utf-8")))
        return 0
    if not args.city:
        parser.error("give at least one --city NAME=WORKSPACE:TRUTH")
    fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
    results = []
    for spec in args.city:
        name, _, rest = spec.partition("=")
        workspace, _, truth = rest.partition(":")
        results.append(run_city(name, workspace, truth, fractions, args.seed))
        print(f"measured {name}", file=sys.stderr)
    print_results(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
