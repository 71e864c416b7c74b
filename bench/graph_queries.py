"""Graph query latency: p50/p95 of 2-hop ego networks and profiles with N concurrent clients on one store.

Usage: `.venv/bin/python -m bench.graph_queries WORKSPACE [--store embedded|neo4j|both] [--clients 20]
[--requests 400] [--sample 200]` (Neo4j: NEO4J_URI or our launcher running in the workspace). Prints JSON.
Target (DESIGN.md §8): 2-hop ego network (≤ 500 nodes) p95 < 150 ms with 20 concurrent clients.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fraudnet.graph.store import GraphStore

__all__ = ["run", "sample_node_ids", "main"]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    idx = min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))
    return s[idx]


def _summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(_pct(ms, 0.5), 2), "p95_ms": round(_pct(ms, 0.95), 2),
            "max_ms": round(max(ms), 2) if ms else float("nan"),
            "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan")}


def run(store: GraphStore, node_ids: list[str], clients: int = 20, requests: int = 400) -> dict:
    """Fire `requests` ego-network requests (depth 2, ≤ 500 nodes) and as many profile requests from
    `clients` threads over `node_ids` (round robin); return latency percentiles and throughput.

    One warm-up pass (each node once) runs before timing.
    """
    if not node_ids:
        raise ValueError("no node ids to query")
    for nid in node_ids[: min(len(node_ids), 20)]:
        store.ego_network(nid, depth=2, max_nodes=500)
        store.profile(nid)
    lock = threading.Lock()
    ego_ms: list[float] = []
    prof_ms: list[float] = []
    sizes: list[int] = []
    truncated = 0
    errors: list[str] = []

    def one(i: int) -> None:
        nonlocal truncated
        nid = node_ids[i % len(node_ids)]
        try:
            t0 = time.perf_counter()
            sg = store.ego_network(nid, depth=2, max_nodes=500)
            t1 = time.perf_counter()
            store.profile(nid)
            t2 = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - a benchmark reports failures instead of stopping
            with lock:
                errors.append(f"{nid}: {exc}")
            return
        with lock:
            ego_ms.append((t1 - t0) * 1000)
            prof_ms.append((t2 - t1) * 1000)
            sizes.append(len(sg.nodes))
            truncated += sg.truncated

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    return {
        "store": store.name,
        "clients": clients,
        "requests": requests,
        "ego_2hop": _summary(ego_ms),
        "profile": _summary(prof_ms),
        "ego_nodes_median": statistics.median(sizes) if sizes else 0,
        "ego_truncated": truncated,
        "requests_per_s": round(2 * len(ego_ms) / wall, 1) if wall else 0.0,
        "wall_s": round(wall, 2),
        "errors": errors[:5],
        "error_count": len(errors),
        "target_ego_p95_ms": 150,
        "meets_target": bool(ego_ms) and _pct(ego_ms, 0.95) < 150,
    }


def sample_node_ids(claims: Any, n: int = 200, seed: int = 1) -> list[str]:
    """A fixed random sample of entities to query: mostly persons with visits, some institutions/practitioners."""
    rng = random.Random(seed)

    def pick(query: str, k: int) -> list[str]:
        values = sorted(str(v) for v in claims.sql(query).iloc[:, 0].tolist())
        return rng.sample(values, min(k, len(values)))

    persons = pick("SELECT DISTINCT psn_no FROM visit_fact WHERE psn_no IN (SELECT psn_no FROM psn_info)", n * 7 // 10)
    insts = pick("SELECT fixmedins_code FROM medins_info WHERE coalesce(fixmedins_type, '') <> '2'", n // 10)
    pharm = pick("SELECT fixmedins_code FROM medins_info WHERE fixmedins_type = '2'", n // 10)
    pracs = pick("SELECT prac_psn_code FROM prac_info", n // 10)
    ids = ([f"Person:{k}" for k in persons] + [f"Institution:{k}" for k in insts]
           + [f"Pharmacy:{k}" for k in pharm] + [f"Practitioner:{k}" for k in pracs])
    rng.shuffle(ids)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace")
    parser.add_argument("--store", default="embedded", choices=("embedded", "neo4j", "both"))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--sample", type=int, default=200)
    opts = parser.parse_args(argv)

    from fraudnet.claims.store import ClaimsStore
    from fraudnet.config import load_settings
    from fraudnet.graph.embedded_store import EmbeddedStore
    from fraudnet.graph.factory import neo4j_settings
    from fraudnet.graph.neo4j_store import Neo4jStore

    ws = Path(opts.workspace)
    claims = ClaimsStore.open(ws, read_only=True)
    ids = sample_node_ids(claims, opts.sample)
    out: dict[str, Any] = {"workspace": str(ws), "sampled_nodes": len(ids)}
    if opts.store in ("embedded", "both"):
        t0 = time.perf_counter()
        emb = EmbeddedStore(claims)
        out["embedded_open_s"] = round(time.perf_counter() - t0, 2)
        out["embedded"] = run(emb, ids, opts.clients, opts.requests)
        emb.close()
    if opts.store in ("neo4j", "both"):
        settings = neo4j_settings(load_settings(ws))
        if settings is None:
            print("Neo4j is not configured (NEO4J_URI) nor running in the workspace", file=sys.stderr)
            return 2
        neo = Neo4jStore(settings)
        out["neo4j"] = run(neo, ids, opts.clients, opts.requests)
        neo.close()
    claims.close()
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
