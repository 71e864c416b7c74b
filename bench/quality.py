"""Detection quality harness: generate → perturb → ingest → detect → evaluate over generators, sizes, seeds.

Usage: `.venv/bin/python -m bench.quality [--quick] [--generators product,indep] [--sizes 20000,200000]
[--seeds 1,2] [--perturb none,drop_fee_lines,renamed,day_times,volume_x10,volume_div10]
[--out bench/quality_results.json] [--compare bench/quality_results.json] [--cache DIR] [--fraudnet-root DIR]`;
`--show FILE [--compare FILE]` prints the figures of a results file without measuring.

For each (generator, size, seed, perturbation) it prints per kind: planted schemes, recall and precision of the
red+orange leads, red/orange counts and the red share, the look-alikes flagged red/orange, red+orange leads of
kinds nothing was planted for against the planted scheme count, and the detection wall time; with `--compare`
the previous figures and the change beside them; then whether tiers mean the same at each size (red share per
kind side by side) and a PASS/FAIL line per target (recall ≥ 0.9 and precision ≥ 0.8 per planted kind, no
look-alike red, unplanted red+orange < planted schemes; after a perturbation that removed data, no false
red+orange leads in the kinds that lost it). Exit code 0 whatever the figures (it is a benchmark).
Precision is printed "—" for a kind without red or orange leads.

Generated and perturbed cities are cached under `--cache` (default /tmp/quality/cache), keyed by generator,
size, seed and a fingerprint of the generator's source. Ingest and detection run in a child process per city
(fresh workspace, removed after), with `--fraudnet-root` as the fraudnet to test (default: this checkout) — so
an older commit's detectors can be measured on the same cities, evaluated by this checkout's `evaluate`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["main", "run_config", "figures", "targets"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "quality" / "cache"
PERTURBATION_NAMES = ("none", "drop_fee_lines", "renamed", "day_times", "volume_x10", "volume_div10")
GENERATORS = ("product", "indep")
RECALL_FLOOR = 0.9
PRECISION_FLOOR = 0.8
LEAD_FIELDS = ("kind", "severity", "score", "persons", "practitioners", "institutions", "evidence", "amount_at_risk")


# ---------------------------------------------------------------------------------------------- cities
def _generator_files(generator: str) -> list[Path]:
    if generator == "product":
        return sorted((ROOT / "fraudnet" / "generate").glob("*.py"))
    if generator == "indep":
        return sorted((ROOT / "bench" / "cities").glob("*.py"))
    raise ValueError(f"unknown generator {generator!r}; choose from {', '.join(GENERATORS)}")


def generator_fingerprint(generator: str) -> str:
    """A short hash of the generator's source files: a changed generator gets new cached cities."""
    digest = hashlib.sha256()
    for path in _generator_files(generator):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def generator_available(generator: str) -> bool:
    if generator == "indep":
        return (ROOT / "bench" / "cities" / "indep.py").is_file()
    return generator in GENERATORS


def _generate(generator: str, persons: int, seed: int, out: Path) -> None:
    if generator == "product":
        from fraudnet.generate.city import generate_city

        generate_city(out, persons=persons, seed=seed)
    else:
        from bench.cities.indep import generate

        generate(persons, seed, out)


def _newest_cached(generator: str, persons: int, seed: int, cache: Path) -> str | None:
    """The fingerprint of the most recently generated cached city for these parameters, if any."""
    done = sorted(cache.glob(f"{generator}-p{persons}-s{seed}-*/city/.complete"), key=lambda p: p.stat().st_mtime)
    return done[-1].parent.parent.name.rsplit("-", 1)[1] if done else None


def prepare_city(generator: str, persons: int, seed: int, perturbation: str, cache: Path,
                 reuse_cached: bool = False) -> tuple[Path, dict]:
    """The folder of the (cached) city for these parameters, generating and perturbing it when missing; and how
    long each step took (0 when cached) with the generator's fingerprint. With `reuse_cached` the newest cached
    city is taken whatever generator version made it (before/after comparisons on the very same cities)."""
    fingerprint = (reuse_cached and _newest_cached(generator, persons, seed, cache)) or generator_fingerprint(generator)
    base = cache / f"{generator}-p{persons}-s{seed}-{fingerprint}"
    times: dict = {"generate_seconds": 0.0, "perturb_seconds": 0.0, "generator_fingerprint": fingerprint}
    city = base / "city"
    if not (city / ".complete").exists():
        shutil.rmtree(city, ignore_errors=True)
        t0 = time.perf_counter()
        _generate(generator, persons, seed, city)
        times["generate_seconds"] = round(time.perf_counter() - t0, 2)
        (city / ".complete").write_text("ok")
    if perturbation == "none":
        return city, times
    perturb_fp = hashlib.sha256((ROOT / "bench" / "perturb.py").read_bytes()).hexdigest()[:8]
    out = base / f"{perturbation}-{perturb_fp}"
    if not (out / ".complete").exists():
        from bench.perturb import perturb

        t0 = time.perf_counter()
        perturb(city, out, perturbation, seed)
        times["perturb_seconds"] = round(time.perf_counter() - t0, 2)
        (out / ".complete").write_text("ok")
    return out, times


# ---------------------------------------------------------------------------------------------- worker
def worker(city: Path, workspace: Path, leads_out: Path) -> dict:
    """Ingest `city` into a fresh `workspace`, run every detector, write the leads (JSON lines) to `leads_out`;
    returns timings. Runs in the child process, importing only fraudnet (the one under test)."""
    import fraudnet
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.detectors.registry import run_detectors
    from fraudnet.ingest.pipeline import ingest_folder

    shutil.rmtree(workspace, ignore_errors=True)
    t0 = time.perf_counter()
    with ClaimsStore.open(workspace) as store:
        report = ingest_folder(city, store)
        ingest_s = time.perf_counter() - t0
        visits = int(store.con.execute("SELECT count(*) FROM visit_fact").fetchone()[0])
        t1, c1 = time.perf_counter(), time.process_time()
        run = run_detectors(store.con)
        detect_s, detect_cpu = time.perf_counter() - t1, time.process_time() - c1
    with leads_out.open("w", encoding="utf-8") as fh:
        for lead in run:
            fh.write(json.dumps({f: getattr(lead, f) for f in LEAD_FIELDS}, ensure_ascii=False, default=str) + "\n")
    return {"fraudnet": fraudnet.__file__, "ingest_seconds": round(ingest_s, 2), "ingest_ok": report.ok,
            "rows_rejected": report.rows_rejected, "visits": visits, "detect_seconds": round(detect_s, 2),
            "detect_cpu_seconds": round(detect_cpu, 2), "detector_seconds": run.timings, "errors": run.errors}


def _run_worker(city: Path, fraudnet_root: Path, scratch: Path) -> tuple[dict, list[dict]]:
    scratch.mkdir(parents=True, exist_ok=True)
    workspace = scratch / f"ws-{os.getpid()}"
    leads_out = scratch / f"leads-{os.getpid()}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(fraudnet_root)}
    # run this file by path: the child imports fraudnet from `fraudnet_root`, not from this checkout
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(city), str(workspace), str(leads_out)]
    try:
        proc = subprocess.run(cmd, env=env, cwd=str(scratch), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed on {city} (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        leads = [json.loads(line) for line in leads_out.read_text(encoding="utf-8").splitlines() if line]
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        leads_out.unlink(missing_ok=True)
    return info, leads


# ---------------------------------------------------------------------------------------------- figures
def figures(leads: list[dict], truth: dict) -> dict:
    """Per-kind, look-alike and unplanted figures of `leads` against `truth` (this checkout's `evaluate`), with
    recall over the schemes the perturbation left supported."""
    from fraudnet.detectors.evaluate import evaluate, lead_matches_scheme

    result = evaluate(leads, truth)
    unsupported = {u.get("scheme_id") for u in (truth.get("perturbation") or {}).get("unsupported", [])}
    schemes_by_kind: dict[str, list[dict]] = defaultdict(list)
    for s in truth.get("schemes", []):
        schemes_by_kind[s["kind"]].append(s)
    ev_index: dict[tuple[str, str], list[int]] = defaultdict(list)
    schemes = truth.get("schemes", [])
    for i, s in enumerate(schemes):
        for ev in s.get("evidence") or []:
            ev_index[(s["kind"], ev)].append(i)
    hit: set[int] = set()
    for lead in leads:
        if lead["severity"] not in ("red", "orange"):
            continue
        cands = {i for ev in lead.get("evidence") or [] for i in ev_index.get((lead["kind"], ev), ())}
        hit |= {i for i in cands if lead_matches_scheme(lead, schemes[i])}
    kinds: dict[str, dict] = {}
    for kind, k in result["kinds"].items():
        red, orange = k["by_severity"]["red"], k["by_severity"]["orange"]
        planted = schemes_by_kind.get(kind, [])
        supported = [i for i, s in enumerate(schemes) if s["kind"] == kind and s.get("scheme_id") not in unsupported]
        kinds[kind] = {
            "planted": k["planted"], "supported": len(supported), "recall": k["recall"], "precision": k["precision"],
            "recall_supported": (sum(1 for i in supported if i in hit) / len(supported)) if supported else None,
            "red": red, "orange": orange, "yellow": k["by_severity"]["yellow"],
            "red_share": round(red / (red + orange), 3) if red + orange else None,
            "false_red_orange": k["false_leads_red_orange"],
        }
        if planted and not kinds[kind]["supported"]:
            kinds[kind]["unsupported"] = True
    looks = {kind: {"count": v["count"], "red": v["flagged"]["red"], "orange": v["flagged"]["orange"]}
             for kind, v in result["lookalikes"].items()}
    unplanted = {kind: v["red"] + v["orange"] for kind, v in kinds.items()
                 if not v["planted"] and v["red"] + v["orange"]}
    return {"kinds": kinds, "lookalikes": looks, "unplanted_red_orange": unplanted,
            "unplanted_red_orange_total": sum(unplanted.values()), "planted_schemes": len(schemes),
            "unsupported_schemes": sorted(u for u in unsupported if u)}


def targets(fig: dict) -> dict:
    """PASS/FAIL per target; kinds the perturbation left without support are listed apart, not judged."""
    out: dict[str, Any] = {}
    failing, judged, unsupported = [], [], []
    for kind, k in sorted(fig["kinds"].items()):
        if not k["planted"]:
            continue
        if not k["supported"]:
            unsupported.append(kind)
            continue
        judged.append(kind)
        if (k["recall_supported"] or 0) < RECALL_FLOOR or (k["precision"] or 0) < PRECISION_FLOOR:
            failing.append(kind)
    out["per_kind_floor"] = {"pass": not failing, "failing": failing, "judged": judged,
                             "not_judged_unsupported": unsupported}
    # where the data was removed the promise is no false leads from the absent data, not recall
    partial = [kind for kind, k in fig["kinds"].items() if k["planted"] and k["supported"] < k["planted"]]
    if partial:
        false = {kind: fig["kinds"][kind]["false_red_orange"] for kind in sorted(partial)}
        out["no_false_leads_where_data_removed"] = {"pass": not any(false.values()), "false_red_orange": false}
    red_looks = sum(v["red"] for v in fig["lookalikes"].values())
    out["no_lookalike_red"] = {"pass": red_looks == 0, "lookalikes_red": red_looks}
    out["unplanted_below_planted"] = {"pass": fig["unplanted_red_orange_total"] < fig["planted_schemes"],
                                      "unplanted_red_orange": fig["unplanted_red_orange_total"],
                                      "planted_schemes": fig["planted_schemes"]}
    return out


def run_config(generator: str, persons: int, seed: int, perturbation: str, cache: Path,
               fraudnet_root: Path, reuse_cached: bool = False) -> dict:
    """One (generator, size, seed, perturbation): the city, its detection and its figures."""
    city, times = prepare_city(generator, persons, seed, perturbation, cache, reuse_cached)
    truth = json.loads((city / "truth.json").read_text(encoding="utf-8"))
    info, leads = _run_worker(city, fraudnet_root, cache.parent / "scratch")
    fig = figures(leads, truth)
    return {"generator": generator, "persons": persons, "seed": seed, "perturbation": perturbation,
            "city": str(city), **times, **info,
            "leads": len(leads), **fig, "targets": targets(fig),
            "perturbation_changes": {k: v for k, v in ((truth.get("perturbation") or {}).get("changes") or {}).items()
                                     if k != "institutions_dropped"}}


# ---------------------------------------------------------------------------------------------- printing
def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _delta(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    d = now - before
    return "=" if abs(d) < 0.005 else f"{d:+.2f}"


def _key(r: dict) -> tuple:
    return (r["generator"], r["persons"], r["seed"], r["perturbation"])


def print_run(r: dict, prev: dict | None) -> None:
    print(f"\n=== {r['generator']} · {r['persons']:,} persons · seed {r['seed']} · perturbation {r['perturbation']}"
          f"   (visits {r['visits']:,}, leads {r['leads']:,}; ingest {r['ingest_seconds']} s, detect "
          f"{r['detect_seconds']} s wall / {r['detect_cpu_seconds']} s CPU"
          + (f"; previous detect {prev['detect_seconds']} s" if prev else "") + ")")
    if r.get("errors"):
        print(f"    detector errors: {r['errors']}")
    if prev and prev.get("generator_fingerprint") != r["generator_fingerprint"]:
        print(f"    note: the previous figures are of another version of the generator "
              f"({prev.get('generator_fingerprint')} → {r['generator_fingerprint']}): not the same city")
    if r["unsupported_schemes"]:
        by_kind: dict[str, int] = defaultdict(int)
        for kind, k in r["kinds"].items():
            if k["planted"] and k["supported"] < k["planted"]:
                by_kind[kind] = k["planted"] - k["supported"]
        print("    no longer supported by the data (shown, not judged where no scheme is left): "
              + ", ".join(f"{k} {n}/{r['kinds'][k]['planted']}" for k, n in sorted(by_kind.items())))
    head = (f"    {'kind':28} {'plant':>5} {'supp':>4} {'recall':>6} {'r.sup':>6} {'prec':>5} {'red':>4} {'orng':>4}"
            f" {'red%':>5}")
    if prev:
        head += f" | {'prev R':>6} {'prev P':>6} {'ΔR':>6} {'ΔP':>6} {'prev r/o':>8}"
    print(head)
    pk = (prev or {}).get("kinds", {})
    for kind, k in sorted(r["kinds"].items(), key=lambda kv: (not kv[1]["planted"], kv[0])):
        if not k["planted"] and not (k["red"] + k["orange"]) and not (pk.get(kind, {}).get("red", 0)
                                                                   + pk.get(kind, {}).get("orange", 0)):
            continue
        flag = "" if k["planted"] else "  (unplanted)"
        if k.get("unsupported"):
            flag = "  (unsupported)"
        line = (f"    {kind:28} {k['planted']:>5} {k['supported']:>4} {_f(k['recall']):>6}"
                f" {_f(k['recall_supported']):>6} {_f(k['precision'] if k['red'] + k['orange'] else None):>5}"
                f" {k['red']:>4} {k['orange']:>4}"
                f" {_f(k['red_share']):>5}")
        if prev:
            p = pk.get(kind)
            if p:
                line += (f" | {_f(p['recall']):>6} {_f(p['precision']):>6} {_delta(k['recall'], p['recall']):>6}"
                         f" {_delta(k['precision'], p['precision']):>6} {p['red']:>4}/{p['orange']:<3}")
            else:
                line += f" | {'(new)':>6}"
        print(line + flag)
    look = ", ".join(f"{kind} {v['red']} red/{v['orange']} orange of {v['count']}"
                     for kind, v in sorted(r["lookalikes"].items()))
    print(f"    look-alikes flagged: {look}")
    if prev:
        pl = ", ".join(f"{kind} {v['red']}/{v['orange']}" for kind, v in sorted(prev["lookalikes"].items()))
        print(f"    previous look-alikes red/orange: {pl}")
    print(f"    unplanted red+orange: {r['unplanted_red_orange_total']} vs planted schemes {r['planted_schemes']}"
          + (f" (previous {prev['unplanted_red_orange_total']})" if prev else "")
          + ("  " + ", ".join(f"{k} {n}" for k, n in sorted(r["unplanted_red_orange"].items()))
             if r["unplanted_red_orange"] else ""))
    t = r["targets"]
    fl = t["per_kind_floor"]
    print(f"    {'PASS' if fl['pass'] else 'FAIL'}  recall ≥ {RECALL_FLOOR} and precision ≥ {PRECISION_FLOOR} per "
          f"planted kind ({len(fl['judged']) - len(fl['failing'])}/{len(fl['judged'])} kinds)"
          + (f"; failing: {', '.join(fl['failing'])}" if fl["failing"] else "")
          + (f"; not judged (data removed): {', '.join(fl['not_judged_unsupported'])}"
             if fl["not_judged_unsupported"] else ""))
    print(f"    {'PASS' if t['no_lookalike_red']['pass'] else 'FAIL'}  no look-alike red "
          f"({t['no_lookalike_red']['lookalikes_red']} red)")
    if "no_false_leads_where_data_removed" in t:
        nf = t["no_false_leads_where_data_removed"]
        print(f"    {'PASS' if nf['pass'] else 'FAIL'}  no false red+orange leads in kinds whose data was removed ("
              + ", ".join(f"{k} {n}" for k, n in nf["false_red_orange"].items()) + ")")
    u = t["unplanted_below_planted"]
    print(f"    {'PASS' if u['pass'] else 'FAIL'}  unplanted red+orange < planted schemes "
          f"({u['unplanted_red_orange']} vs {u['planted_schemes']})")


def print_tiers(runs: list[dict]) -> None:
    """Share of red among red+orange per kind at each size (summed over seeds), side by side."""
    groups: dict[tuple, dict[int, dict[str, list[int]]]] = defaultdict(lambda: defaultdict(dict))
    for r in runs:
        g = groups[(r["generator"], r["perturbation"])][r["persons"]]
        for kind, k in r["kinds"].items():
            red, orange = g.get(kind, [0, 0])
            g[kind] = [red + k["red"], orange + k["orange"]]
    for (gen, pert), by_size in sorted(groups.items()):
        sizes = sorted(by_size)
        if len(sizes) < 2:
            continue
        print(f"\n--- tiers across sizes: {gen} · {pert} — red share of red+orange (red/red+orange) per size")
        print(f"    {'kind':28} " + " ".join(f"{s:>16,}" for s in sizes))
        for kind in sorted({k for g in by_size.values() for k in g}):
            cells = []
            for s in sizes:
                red, orange = by_size[s].get(kind, [0, 0])
                cells.append(f"{(red / (red + orange)) if red + orange else float('nan'):>6.2f} ({red}/{red + orange})"
                             if red + orange else f"{'—':>16}")
            print(f"    {kind:28} " + " ".join(f"{c:>16}" for c in cells))


def print_summary(runs: list[dict]) -> None:
    print("\n=== summary (PASS/FAIL per target)")
    for r in runs:
        t = r["targets"]
        marks = " ".join(f"{name}={'PASS' if t[name]['pass'] else 'FAIL'}" for name in
                         ("per_kind_floor", "no_lookalike_red", "unplanted_below_planted",
                          "no_false_leads_where_data_removed") if name in t)
        print(f"    {r['generator']:8} {r['persons']:>8,} s{r['seed']} {r['perturbation']:14} {marks}"
              + (f"  failing: {', '.join(t['per_kind_floor']['failing'])}" if t["per_kind_floor"]["failing"] else ""))


# ---------------------------------------------------------------------------------------------- main
def _git_head(root: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        here = Path(__file__).resolve().parent  # run by path: keep bench/*.py from shadowing top-level modules
        sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != here]
        info = worker(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        print(json.dumps(info, ensure_ascii=False, default=str))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20k persons, seed 1, both generators, no perturbation")
    parser.add_argument("--generators", default="product,indep")
    parser.add_argument("--sizes", default="20000")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--perturb", default="none")
    parser.add_argument("--out", type=Path, default=None, help="write the figures here (JSON)")
    parser.add_argument("--append", action="store_true",
                        help="keep the runs already in --out (those of other configurations), replace the rest")
    parser.add_argument("--compare", type=Path, default=None, help="previous figures (JSON) to show beside")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="generated/perturbed cities")
    parser.add_argument("--fraudnet-root", type=Path, default=ROOT,
                        help="folder holding the fraudnet package to test (default: this checkout)")
    parser.add_argument("--reuse-cached", action="store_true",
                        help="take the newest cached city even if the generator changed since (same cities for a "
                             "before/after comparison)")
    parser.add_argument("--show", type=Path, default=None,
                        help="print the figures of a results file (with --compare) instead of measuring")
    parser.add_argument("--note", default=None, help="a note stored with the figures")
    opts = parser.parse_args(argv)
    previous: dict[tuple, dict] = {}
    if opts.compare and opts.compare.exists():
        prev_doc = json.loads(opts.compare.read_text(encoding="utf-8"))
        previous = {_key(r): r for r in prev_doc.get("runs", []) if "failed" not in r}
        print(f"comparing with {opts.compare} (commit {prev_doc.get('commit')}, {prev_doc.get('created')})")
    if opts.show:
        shown = json.loads(opts.show.read_text(encoding="utf-8"))
        print(f"figures of {opts.show} (commit {shown.get('commit')}, {shown.get('created')})"
              + (f": {shown['note']}" if shown.get("note") else ""))
        ok = [r for r in shown.get("runs", []) if "failed" not in r]
        for r in ok:
            print_run(r, previous.get(_key(r)))
        print_tiers(ok)
        print_summary(ok)
        return 0
    if opts.quick:
        opts.sizes, opts.seeds, opts.perturb = "20000", "1", "none"
    generators = _csv(opts.generators)
    for gen in generators:
        if gen not in GENERATORS:
            parser.error(f"--generators: unknown {gen!r} (choose from {', '.join(GENERATORS)})")
    perturbations = _csv(opts.perturb)
    for p in perturbations:
        if p not in PERTURBATION_NAMES:
            parser.error(f"--perturb: unknown {p!r} (choose from {', '.join(PERTURBATION_NAMES)})")
    sizes, seeds = [int(s) for s in _csv(opts.sizes)], [int(s) for s in _csv(opts.seeds)]
    missing = [g for g in generators if not generator_available(g)]
    if missing:
        print(f"note: generator(s) not available, skipped: {', '.join(missing)}")
        generators = [g for g in generators if g not in missing]
    fraudnet_root = opts.fraudnet_root.resolve()
    doc: dict[str, Any] = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "commit": _git_head(fraudnet_root), "fraudnet_root": str(fraudnet_root),
                           "harness_commit": _git_head(ROOT), "runs": []}
    if opts.note:
        doc["note"] = opts.note
    kept: list[dict] = []
    if opts.append and opts.out and opts.out.exists():
        kept = json.loads(opts.out.read_text(encoding="utf-8")).get("runs", [])
    started = time.perf_counter()
    for gen in generators:
        for persons in sizes:
            for seed in seeds:
                for pert in perturbations:
                    t0 = time.perf_counter()
                    try:
                        r = run_config(gen, persons, seed, pert, opts.cache, fraudnet_root, opts.reuse_cached)
                    except Exception as exc:  # a benchmark reports a broken configuration and goes on
                        print(f"\n=== {gen} · {persons:,} · seed {seed} · {pert}: FAILED — {exc}")
                        doc["runs"].append({"generator": gen, "persons": persons, "seed": seed, "perturbation": pert,
                                            "failed": str(exc)[-2000:]})
                        continue
                    r["wall_seconds"] = round(time.perf_counter() - t0, 2)
                    r["commit"] = doc["commit"]
                    doc["runs"].append(r)
                    print_run(r, previous.get(_key(r)))
                    sys.stdout.flush()
                    if opts.out:
                        _save(doc, opts.out, kept)
    ok_runs = [r for r in doc["runs"] if "failed" not in r]
    print_tiers(ok_runs)
    print_summary(ok_runs)
    print(f"\n{len(ok_runs)} of {len(doc['runs'])} configurations measured in {time.perf_counter() - started:.0f} s"
          + (f"; figures in {opts.out}" if opts.out else ""))
    if opts.out:
        _save(doc, opts.out, kept)
    return 0


def _save(doc: dict, path: Path, kept: list[dict] | None = None) -> None:
    """Write the figures; runs of `kept` (an earlier file's) whose configuration was not measured again stay."""
    if kept is not None:
        done = {_key(r) for r in doc["runs"]}
        doc = {**doc, "runs": [r for r in kept if _key(r) not in done] + doc["runs"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
