"""Neo4j load benchmark: the batched loader on the whole graph, and batched vs row-by-row on a sample of visits.

`run(workspace, settings)` WIPES the Neo4j database it is pointed at (it needs an empty one to measure a
first load); when no Neo4j is configured it starts our launcher for the workspace on a free port and stops it
afterwards. Usage: `.venv/bin/python -m bench.neo4j_load WORKSPACE [--sample 20000] [--rowwise-seconds 90]`.

1. sample: the first `sample_visits` visits (by begntime) with their persons, institutions, practitioners, fee
   lines and settlements are copied into a temporary claims store; on an empty database the batched loader
   (`fraudnet.graph.neo4j_load.load_graph`, UNWIND batches) loads its graph and the database is emptied; the
   row-by-row loader below (one MERGE statement and one transaction per row, as a naive integrator writes it)
   loads the graph of the first `rowwise_visits` visits of the same sample (default a tenth: the same mix of
   parts, in a tenth of the time), stopped after `rowwise_seconds` if it takes longer (its rate is then
   measured on the rows it did). Ratio = batched rows/s ÷ row-by-row rows/s (also per Neo4j CPU second, which
   does not depend on what else the machine runs).
2. whole graph: the database is emptied and the full graph of the workspace is loaded with the batched loader
   (relationships/s, nodes/s, seconds); a second load checks that nothing changes. The graph stays loaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from fraudnet.claims.schema import refresh_visit_fact
from fraudnet.claims.store import ClaimsStore
from fraudnet.config import Settings, load_settings
from fraudnet.graph import neo4j_load, neo4j_server
from fraudnet.graph.neo4j_load import PARTS, clear_graph, load_graph, open_driver

__all__ = ["run", "rowwise_load", "make_sample_store"]

log = logging.getLogger(__name__)


def make_sample_store(source: Path, target_ws: Path, sample_visits: int) -> ClaimsStore:
    """A claims store in `target_ws` with the first `sample_visits` visits of `source` and what they refer to."""
    store = ClaimsStore.open(target_ws)
    con = store.con
    con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    try:
        con.execute("CREATE TEMP TABLE _sample AS SELECT mdtrt_id, psn_no, fixmedins_code, atddr_no "
                    "FROM src.visit_fact ORDER BY begntime, mdtrt_id LIMIT ?", [sample_visits])
        con.execute("INSERT INTO mdtrt SELECT * FROM src.mdtrt WHERE mdtrt_id IN (SELECT mdtrt_id FROM _sample)")
        con.execute("INSERT INTO setl SELECT * FROM src.setl WHERE mdtrt_id IN (SELECT mdtrt_id FROM _sample)")
        con.execute("INSERT INTO fee_list SELECT * FROM src.fee_list "
                    "WHERE mdtrt_id IN (SELECT mdtrt_id FROM _sample)")
        con.execute("INSERT INTO psn_info SELECT * FROM src.psn_info WHERE psn_no IN (SELECT psn_no FROM _sample)")
        con.execute("INSERT INTO medins_info SELECT * FROM src.medins_info "
                    "WHERE fixmedins_code IN (SELECT fixmedins_code FROM _sample)")
        con.execute("INSERT INTO prac_info SELECT * FROM src.prac_info "
                    "WHERE prac_psn_code IN (SELECT atddr_no FROM _sample)")
        con.execute("INSERT INTO hilist SELECT * FROM src.hilist")
        refresh_visit_fact(con)
    finally:
        con.execute("DROP TABLE IF EXISTS _sample")
        con.execute("DETACH src")
    return store


def rowwise_load(store: ClaimsStore, settings: Settings, max_seconds: float = 90.0) -> dict[str, Any]:
    """The naive loader: every row of every part as its own MERGE statement in its own transaction.

    Reads the same part rows as `load_graph` (same SQL) and stops after `max_seconds`.
    """
    con = store.con
    neo4j_load._prepare(con, None)
    driver = open_driver(settings)
    rows_done = 0
    rel_rows = 0
    node_rows = 0
    total_rows = 0
    complete = True
    t0 = time.monotonic()
    try:
        with driver.session(database=settings.neo4j_database) as session:
            for part in PARTS:
                total_rows += int(con.execute(f"SELECT count(*) FROM {part.temp}").fetchall()[0][0])
            for part in PARTS:
                if not complete:
                    break
                select, props, conv = neo4j_load.send_plan(con, part)
                cypher = part.upsert_cypher(props, conv)
                for batch in neo4j_load._batches(con, f"SELECT {select} FROM {part.temp} t", 1000):
                    for row in batch:
                        session.execute_write(neo4j_load._write_tx, cypher, [row])
                        rows_done += 1
                        if part.kind == "rel":
                            rel_rows += 1
                        else:
                            node_rows += 1
                    if time.monotonic() - t0 > max_seconds:
                        complete = False
                        break
    finally:
        driver.close()
        neo4j_load._drop_temps(con)
    secs = time.monotonic() - t0
    return {"rows": rows_done, "rows_total": total_rows, "node_rows": node_rows, "relationship_rows": rel_rows,
            "seconds": round(secs, 2), "rows_per_s": round(rows_done / secs, 1) if secs else 0.0,
            "complete": complete}


def run(workspace: Path, settings: Settings, sample_visits: int = 20_000, rowwise_seconds: float = 300.0,
        batch_size: int = 20_000, rowwise_visits: int | None = None, workers: int = 2) -> dict[str, Any]:
    """Measure the batched loader (whole graph and sample) and the row-by-row loader (sample); see module doc."""
    workspace = Path(workspace)
    started: Path | None = None
    if not settings.neo4j_uri and not neo4j_server.running_uri(workspace):
        neo4j_server.start(workspace, port=0, heap=os.environ.get("FRAUDNET_BENCH_NEO4J_HEAP", "2g"),
                           pagecache=os.environ.get("FRAUDNET_BENCH_NEO4J_PAGECACHE", "1g"), timeout=300)
        started = workspace
    try:
        return _run(workspace, settings, sample_visits, rowwise_seconds, batch_size,
                    rowwise_visits or max(100, sample_visits // 10), workers)
    finally:
        if started is not None:
            neo4j_server.stop(started)


class _Cpu:
    """CPU seconds used by the Neo4j server process (if it is our launcher) and by this process.

    On a busy machine wall-clock rates mostly measure the other processes; rows per CPU second do not.
    """

    def __init__(self, workspace: Path, uri: str) -> None:
        state = neo4j_server.status(workspace)
        self.server = psutil.Process(int(state["pid"])) if state.get("running") and state.get("uri") == uri else None
        self.me = psutil.Process()

    def now(self) -> tuple[float, float]:
        s = self.server.cpu_times() if self.server is not None else None
        m = self.me.cpu_times()
        return (s.user + s.system if s else float("nan"), m.user + m.system)

    def since(self, start: tuple[float, float]) -> dict[str, float]:
        end = self.now()
        return {"server_cpu_s": round(end[0] - start[0], 2), "client_cpu_s": round(end[1] - start[1], 2)}


def _per_cpu(rows: int, cpu: dict[str, float]) -> float | None:
    s = cpu.get("server_cpu_s")
    return round(rows / s, 1) if s and s == s and s > 0 else None


def _run(workspace: Path, settings: Settings, sample_visits: int, rowwise_seconds: float,
         batch_size: int, rowwise_visits: int, workers: int) -> dict[str, Any]:
    result: dict[str, Any] = {"workspace": str(workspace), "sample_visits": sample_visits,
                              "batch_size": batch_size, "workers": workers, "cpu_count": os.cpu_count(),
                              "load_average_at_start": os.getloadavg()[0]}
    cpu = _Cpu(workspace, neo4j_load.resolve_uri(settings))
    with tempfile.TemporaryDirectory(prefix="fraudnet-bench-neo4j-") as tmp:
        sample_ws = Path(tmp) / "ws"
        sample_settings = Settings(workspace=sample_ws, neo4j_uri=neo4j_load.resolve_uri(settings),
                                   neo4j_user=settings.neo4j_user, neo4j_password=settings.neo4j_password,
                                   neo4j_database=settings.neo4j_database)
        with make_sample_store(workspace / "claims.duckdb", sample_ws, sample_visits) as sample:
            clear_graph(sample_settings)
            c0 = cpu.now()
            batched = load_graph(sample, sample_settings, batch_size=batch_size, full=True, workers=workers)
            batched_cpu = cpu.since(c0)
            clear_graph(sample_settings)
        # The row-by-row loader gets the first `rowwise_visits` visits of the same sample (same mix of parts).
        rowwise_ws = Path(tmp) / "ws-rowwise"
        with make_sample_store(workspace / "claims.duckdb", rowwise_ws, rowwise_visits) as small:
            c0 = cpu.now()
            rowwise = rowwise_load(small, sample_settings, rowwise_seconds)
            rowwise.update(cpu.since(c0))
            rowwise["visits"] = rowwise_visits
            rowwise["rows_per_server_cpu_s"] = _per_cpu(rowwise["rows"], rowwise)
            clear_graph(sample_settings)
        batched_rate = batched.rows_sent / batched.write_seconds if batched.write_seconds else 0.0
        result["sample"] = {
            "rows": batched.rows_sent,
            "batched_seconds": round(batched.write_seconds, 2),
            "batched_rows_per_s": round(batched_rate, 1),
            "batched_relationships_per_s": round(batched.relationships_per_second, 1),
            **batched_cpu,
            "batched_rows_per_server_cpu_s": _per_cpu(batched.rows_sent, batched_cpu),
            "rowwise": rowwise,
            "ratio": round(batched_rate / rowwise["rows_per_s"], 1) if rowwise["rows_per_s"] else None,
        }
        if result["sample"]["batched_rows_per_server_cpu_s"] and rowwise["rows_per_server_cpu_s"]:
            result["sample"]["ratio_per_server_cpu"] = round(
                result["sample"]["batched_rows_per_server_cpu_s"] / rowwise["rows_per_server_cpu_s"], 1)
    full_settings = Settings(workspace=workspace, neo4j_uri=neo4j_load.resolve_uri(settings),
                             neo4j_user=settings.neo4j_user, neo4j_password=settings.neo4j_password,
                             neo4j_database=settings.neo4j_database)
    with ClaimsStore.open(workspace) as store:
        clear_graph(full_settings)
        c0 = cpu.now()
        report = load_graph(store, full_settings, batch_size=batch_size, full=True, workers=workers)
        full_cpu = cpu.since(c0)
        again = load_graph(store, full_settings, batch_size=batch_size)
    result["full"] = {
        "seconds": round(report.seconds, 2),
        "prepare_seconds": round(report.prepare_seconds, 2),
        "write_seconds": round(report.write_seconds, 2),
        "nodes_created": report.nodes_created,
        "relationships_created": report.relationships_created,
        "relationships_per_s": round(report.relationships_per_second, 1),
        "load_average_at_end": os.getloadavg()[0],
        "nodes_per_s": round(report.nodes_per_second, 1),
        "overall_rows_per_s": round(report.rows_sent / report.write_seconds, 1) if report.write_seconds else 0.0,
        "parts": {p.name: {"rows": p.sent, "seconds": round(p.seconds, 2)} for p in report.parts},
        **full_cpu,
        "rows_per_server_cpu_s": _per_cpu(report.rows_sent, full_cpu),
        "relationships_per_server_cpu_s": _per_cpu(report.relationships_created, full_cpu),
        "reload_rows_sent": again.rows_sent,
        "reload_seconds": round(again.seconds, 2),
    }
    result["targets"] = {
        "relationships_per_s_50k": result["full"]["relationships_per_s"] >= 50_000,
        "batched_vs_rowwise_10x": (result["sample"]["ratio"] or 0) >= 10,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--sample", type=int, default=20_000, help="visits in the side-by-side sample")
    parser.add_argument("--rowwise-seconds", type=float, default=300.0, help="time cap of the row-by-row loader")
    parser.add_argument("--rowwise-visits", type=int, default=None,
                        help="visits for the row-by-row loader (default: a tenth of --sample)")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="batches written at once by the batched loader")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    figures = run(opts.workspace, load_settings(opts.workspace), opts.sample, opts.rowwise_seconds,
                  opts.batch_size, opts.rowwise_visits, opts.workers)
    json.dump(figures, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
