"""Stages of the large tiers: a day's increment screened on a full store, the graph projection read, and a Neo4j
first load within a time budget (the rate at that size, and how far it got).

Usage: `.venv/bin/python -m bench.scale increment CITY WORKSPACE [--full]` | `projection WORKSPACE` |
`neo4j-budget WORKSPACE SECONDS` (prints one JSON line).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["increment", "projection", "neo4j_budget"]


def increment(city: Path, workspace: Path, full: bool = False) -> dict[str, Any]:
    """One more day (the city's last day moved on, new ids: 1/365 of the tier) dropped on the ingested and screened
    store and put through one screening cycle (`fraudnet watch --once`): ingest seconds, detection seconds, total,
    the path detection took (incremental or full, `full` forces the full path) and per-detector seconds.

    A store never screened by a cycle (no incremental state) is first screened in full by a cycle over an empty
    folder: its seconds are `full_run_seconds`."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.detectors.incremental import plan_increment
    from fraudnet.generate.days import next_day
    from fraudnet.screening.cycle import screen_folder
    from fraudnet.screening.incremental import detection_watermark, record_detection
    from fraudnet.screening.settings import ScreeningSettings

    primed = None
    with ClaimsStore.open(workspace) as store:
        if plan_increment(store.con).source_batch is None:
            empty = Path(tempfile.mkdtemp(prefix="fraudnet-prime-", dir=workspace.parent))
            con = store.con
            con.execute("DELETE FROM derived_state WHERE name = 'detection'")  # screen everything loaded
            first = screen_folder(store, empty, ScreeningSettings(), trigger="bench", send=False)
            empty.rmdir()
            primed = first["detection"].get("seconds")

    drop = Path(tempfile.mkdtemp(prefix="fraudnet-day-", dir=workspace.parent))
    t0 = time.perf_counter()
    day, rows = next_day(city, drop)
    made = time.perf_counter() - t0
    with ClaimsStore.open(workspace) as store:
        if detection_watermark(store.con) is None:  # the detect stage screened everything loaded so far
            record_detection(store.con)
        report = screen_folder(store, drop, ScreeningSettings(), trigger="bench", send=False, incremental=not full)
    for f in drop.iterdir():
        f.unlink()
    drop.rmdir()
    det = report.get("detection", {})
    return {"day": day.isoformat(), "rows": rows, "make_day_seconds": round(made, 2),
            "ingest_seconds": report["ingest"].get("seconds"), "detection_seconds": det.get("seconds"),
            "detection_ran": det.get("ran"), "cycle_seconds": report["seconds"], "status": report["status"],
            "new_red": report["new_leads"]["red"], "new_orange": report["new_leads"]["orange"],
            "leads_saved": det.get("saved"), "path": det.get("path"), "path_reason": det.get("path_reason"),
            "incremental": det.get("incremental"), "full_run_seconds": primed,
            "detector_seconds": det.get("timings"),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "load": os.getloadavg()}


def projection(workspace: Path) -> dict[str, Any]:
    """The embedded graph store built from the claims store, as `fraudnet serve` does at start: seconds and size."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.config import load_settings
    from fraudnet.graph.factory import open_graph_store

    env_uri = os.environ.pop("NEO4J_URI", None)
    try:
        with ClaimsStore.open(workspace, read_only=True) as store:
            t0 = time.perf_counter()
            graph = open_graph_store(load_settings(workspace), store)
            seconds = time.perf_counter() - t0
            out = {"store": type(graph).__name__, "build_seconds": round(seconds, 2)}
            out["status"] = {k: v for k, v in vars(graph.status()).items() if isinstance(v, int | float | str | bool)}
            graph.close()
    finally:
        if env_uri is not None:
            os.environ["NEO4J_URI"] = env_uri
    return out


class _Budget(Exception):
    pass


def neo4j_budget(workspace: Path, seconds: float) -> dict[str, Any]:
    """A first load of the whole graph into an empty Neo4j (our launcher), stopped after `seconds`: rows written
    per part and the rates, so the time of the whole load can be estimated when it does not fit the budget."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.config import load_settings
    from fraudnet.graph import neo4j_server
    from fraudnet.graph.neo4j_load import clear_graph, load_graph

    settings = load_settings(workspace)
    started = None
    if not settings.neo4j_uri and not neo4j_server.running_uri(workspace):
        neo4j_server.start(workspace, port=0, heap=os.environ.get("FRAUDNET_BENCH_NEO4J_HEAP", "2g"),
                           pagecache=os.environ.get("FRAUDNET_BENCH_NEO4J_PAGECACHE", "1g"), timeout=300)
        started = workspace
    try:
        import dataclasses

        uri = settings.neo4j_uri or neo4j_server.running_uri(workspace)
        target = dataclasses.replace(settings, neo4j_uri=uri)
        clear_graph(target)
        parts: dict[str, dict[str, Any]] = {}
        t0 = time.perf_counter()
        deadline = t0 + seconds

        def progress(stage: str, done: int, total: int) -> None:
            now = time.perf_counter()
            part = parts.setdefault(stage, {"first_s": round(now - t0, 1)})
            part.update(done=int(done), total=int(total), last_s=round(now - t0, 1))
            if now > deadline:
                raise _Budget()

        finished = True
        with ClaimsStore.open(workspace) as store:
            try:
                load_graph(store, target, progress=progress, full=True)
            except _Budget:
                finished = False
        elapsed = time.perf_counter() - t0
        return {"budget_seconds": seconds, "finished": finished, "seconds": round(elapsed, 1), "parts": parts}
    finally:
        if started is not None:
            neo4j_server.stop(started)


if __name__ == "__main__":
    stage, *args = sys.argv[1:]
    if stage == "increment":
        result = increment(Path(args[0]), Path(args[1]), full="--full" in args[2:])
    elif stage == "projection":
        result = projection(Path(args[0]))
    elif stage == "neo4j-budget":
        result = neo4j_budget(Path(args[0]), float(args[1]))
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    print(json.dumps(result, default=str, ensure_ascii=False))
