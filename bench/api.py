"""API latency benchmark: p50/p95 of the lead list and of 2-hop ego networks (≤ 500 nodes) with 20 clients.

Targets (DESIGN.md §8): lead list p95 < 50 ms; 2-hop ego network p95 < 150 ms, with 20 concurrent clients.

- `run(base_url_or_app, tokens, clients=20, requests=2000)` measures a running server (base URL) or a FastAPI
  app (served by uvicorn in a background thread on a free port).
- `run_both(workspace)` runs it on the embedded store and on a real Neo4j (our launcher) loaded from the workspace.
- `run_workspace(workspace, neo4j=None, ...)` creates a temporary token, starts `fraudnet serve` on the workspace
  as a subprocess (embedded store, or Neo4j when `neo4j=(uri, user, password)`), measures, stops, revokes.

Usage: `.venv/bin/python -m bench.api WORKSPACE [--clients 20] [--requests 2000] [--budget 180]
[--both | --neo4j-uri bolt://… [--neo4j-projection 1,0] | --graph-workers 0,3]`. In Neo4j mode the measurement
starts once the server has read its in-memory projection (`--neo4j-projection 0`: Cypher for every ego). Each
endpoint stops starting requests after `--budget` seconds (a slow store then reports fewer than `--requests`; `n`
says how many).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

__all__ = ["run", "run_workspace", "run_both", "TARGETS_MS"]

TARGETS_MS = {"lead_list": 50.0, "ego_2hop": 150.0}
_SORTS = ("-score", "-amount", "-severity", "period_start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_app_in_thread(app: Any) -> tuple[str, Callable[[], None]]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    return url, stop


def _percentiles(samples_ms: list[float], wall_s: float) -> dict[str, float]:
    ordered = sorted(samples_ms)
    n = len(ordered)

    def pct(p: float) -> float:
        return round(ordered[min(n - 1, max(0, int(round(p * (n - 1)))))], 2)

    return {"n": n, "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": round(ordered[-1], 2),
            "mean_ms": round(statistics.fmean(ordered), 2), "throughput_rps": round(n / wall_s, 1)}


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol to time GET requests.

    A load generator on the same 2-core machine as the server takes CPU from it; asyncio streams cost about a
    tenth of a thread-per-client httpx client per request, so the figures are the server's, not the client's.
    """

    def __init__(self, host: str, port: int, auth: str, timeout: float) -> None:
        self.host, self.port, self.auth, self.timeout = host, port, auth, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: {self.auth}\r\n"
                          "Accept: application/json\r\n\r\n".encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), self.timeout)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            body = await asyncio.wait_for(self.reader.readexactly(int(headers["content-length"])), self.timeout)
        else:  # chunked
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def _measure_async(base_url: str, paths: list[str], headers: dict[str, str], clients: int, timeout: float,
                         budget_s: float | None = None) -> tuple[dict[str, float], list[int]]:
    host, _, port = base_url.split("://", 1)[1].partition(":")
    latencies: list[float] = []
    sizes: list[int] = []
    errors: list[str] = []
    kept: list[bytes] = []
    queue = iter(enumerate(paths))

    async def client() -> None:
        conn = _Connection(host, int(port or 80), headers["Authorization"], timeout)
        try:
            for i, path in queue:
                if budget_s is not None and time.perf_counter() - started > budget_s:
                    cut.append(i)
                    break
                t0 = time.perf_counter()
                try:
                    status, body = await conn.get(path)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors.append(f"{type(exc).__name__} {path}")
                    await conn.close()
                    continue
                ms = (time.perf_counter() - t0) * 1000
                if status != 200:
                    errors.append(f"{status} {path}")
                    continue
                latencies.append(ms)
                if i % 10 == 0 and body[:20].find(b'"nodes"') >= 0:
                    kept.append(body)  # node counts are read after the timed run
        finally:
            await conn.close()

    cut: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    if not latencies:
        raise RuntimeError(f"all {len(errors)} requests failed, e.g. {errors[:3]}")
    sizes = [len(json.loads(body)["nodes"]) for body in kept]
    stats = _percentiles(latencies, wall)
    stats["failed"] = len(errors)
    if errors:
        stats["failed_examples"] = errors[:3]
    if cut:
        stats["stopped_after_s"] = budget_s
    return stats, sizes


def _measure(base_url: str, paths: list[str], headers: dict[str, str], clients: int, timeout: float = 120.0,
             budget_s: float | None = None) -> tuple[dict[str, float], list[int]]:
    """Send every path once over `clients` concurrent keep-alive connections (closed loop: each client sends its
    next request when the previous answer has arrived); latencies and the node counts of sampled subgraphs.
    With `budget_s`, no request starts after that many seconds (`n` then says how many were measured)."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    return runner(_measure_async(base_url, paths, headers, clients, timeout, budget_s))


def _lead_query(i: int, kinds: list[str]) -> str:
    """The i-th lead-list request: the queue as investigators page through it, with varied sorts, severities,
    kinds, amounts and pages (a few hundred distinct queries, so the server's page cache misses often)."""
    query = f"/api/leads?sort={_SORTS[i % 4]}&page={1 + (i // 4) % 5}&page_size=50"
    if i % 3 == 1:
        query += "&severity=red,orange"
    if kinds and i % 5 in (1, 3):
        query += f"&kind={kinds[(i // 5) % len(kinds)]}"
    if i % 7 == 2:
        query += f"&min_amount={1000 * (1 + (i // 7) % 5)}"
    return query


def run(base_url_or_app: Any, tokens: dict[str, str], clients: int = 20, requests: int = 2000,
        timeout: float = 120.0, budget_s: float | None = 180.0) -> dict[str, Any]:
    """p50/p95 latency of `GET /api/leads` (page of 50, varied sorts/filters) and of `GET /api/graph/ego/{person}
    ?depth=2&max_nodes=500` with `clients` concurrent clients, `requests` requests each; plus targets met."""
    stop: Callable[[], None] | None = None
    if isinstance(base_url_or_app, str):
        base_url = base_url_or_app.rstrip("/")
    else:
        base_url, stop = _serve_app_in_thread(base_url_or_app)
    token = tokens.get("investigator") or tokens.get("admin") or next(iter(tokens.values()))
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    try:
        with httpx.Client(base_url=base_url, timeout=timeout, limits=limits) as client:
            health = client.get("/api/health").json()
            store = health["store"]
            persons: list[str] = []
            for page_no in range(1, 6):
                page = client.get(f"/api/leads?page_size=500&page={page_no}&sort=-amount", headers=headers).json()
                persons += [p for item in page["items"] for p in item["persons"]]
            persons = list(dict.fromkeys(persons))[:1000]
            if not persons:
                raise RuntimeError("no leads with persons in the workspace; run `fraudnet detect` first")
            kinds = [k["kind"] for k in client.get("/api/leads/kinds", headers=headers).json()]
            lead_urls = [_lead_query(i, kinds) for i in range(requests)]
            ego_urls = [f"/api/graph/ego/Person:{persons[i % len(persons)]}?depth=2&max_nodes=500"
                        for i in range(requests)]
        _measure(base_url, lead_urls[: clients * 2] + ego_urls[: clients * 2], headers, clients, timeout)  # warm-up
        lead_stats, _ = _measure(base_url, lead_urls, headers, clients, timeout, budget_s)
        ego_stats, sizes = _measure(base_url, ego_urls, headers, clients, timeout, budget_s)
    finally:
        if stop is not None:
            stop()
    ego_stats["mean_nodes"] = round(statistics.fmean(sizes), 1) if sizes else 0
    ego_stats["max_nodes"] = max(sizes) if sizes else 0
    return {
        "store": store, "graph_workers": health.get("graph_workers", 0), "clients": clients, "requests": requests,
        "distinct_centres": len(set(ego_urls)),
        "distinct_lead_queries": len(set(lead_urls)),
        "lead_list": lead_stats, "ego_2hop": ego_stats, "targets_p95_ms": TARGETS_MS,
        "meets_targets": lead_stats["p95_ms"] < TARGETS_MS["lead_list"]
        and ego_stats["p95_ms"] < TARGETS_MS["ego_2hop"] and not lead_stats["failed"] and not ego_stats["failed"],
        "load_average_1m": round(os.getloadavg()[0], 1), "cpu_count": os.cpu_count(),
    }


def _wait_for_projection(url: str, graph_workers: int | None, limit_s: float = 900.0) -> dict[str, Any]:
    """In Neo4j mode, wait until the server's projection is read and its graph workers run; its status and the
    seconds waited."""
    started = time.monotonic()
    while True:
        health = httpx.get(url + "/api/health", timeout=10).json()
        status = health["neo4j"].get("projection") or {"state": "off"}
        workers_up = graph_workers == 0 or health.get("graph_workers", 0) > 0
        if status["state"] in ("off", "failed") or (status["state"] == "ready" and workers_up):
            return {**status, "waited_s": round(time.monotonic() - started, 1)}
        if time.monotonic() - started > limit_s:
            raise RuntimeError(f"the Neo4j projection was not ready within {limit_s:.0f} s: {status}")
        time.sleep(0.5)


class _RssSampler:
    """Peak memory of a process and its children (the server and its forked graph workers), sampled every 2 s: the
    sum of their proportional set sizes (PSS: pages shared by the forks counted once in all), and the server's own
    resident set."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self._peak = 0
        self._peak_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        while not self._stop.wait(2.0):
            try:
                procs = [self._proc, *self._proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        info = p.memory_full_info()
                        total += getattr(info, "pss", info.rss)
                    except psutil.Error:
                        pass
                self._peak = max(self._peak, total)
                self._peak_server = max(self._peak_server, self._proc.memory_info().rss)
            except psutil.Error:
                return

    def peak_mib(self) -> dict[str, float]:
        return {"pss_sum": round(self._peak / 2**20, 1), "server_rss": round(self._peak_server / 2**20, 1)}

    def stop(self) -> None:
        self._stop.set()


def run_workspace(workspace: Path, neo4j: tuple[str, str, str] | None = None, clients: int = 20,
                  requests: int = 2000, database: str = "neo4j", timeout: float = 120.0,
                  budget_s: float | None = 180.0, graph_workers: int | None = None,
                  neo4j_projection: bool = True) -> dict[str, Any]:
    """Serve `workspace` with `fraudnet serve` (a subprocess) and run the benchmark against it.

    `graph_workers` is passed as `serve --graph-workers` (None: the server's default, one per CPU).
    In Neo4j mode the measurement starts once the server has read its projection (`neo4j_projection=False`:
    `serve --no-neo4j-projection`, every ego network by Cypher).

    With `neo4j=(uri, user, password)` the server uses Neo4j (the graph must be loaded already); otherwise the
    server's environment has no NEO4J_* variables (the embedded store, unless a launcher runs in the workspace).
    """
    from fraudnet.claims.audit import create_token, revoke_token
    from fraudnet.claims.store import ClaimsStore

    workspace = Path(workspace)
    with ClaimsStore.open(workspace) as store:
        token = create_token(store.con, "bench", "investigator")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    if neo4j:
        env.update(NEO4J_URI=neo4j[0], NEO4J_USER=neo4j[1], NEO4J_PASSWORD=neo4j[2], NEO4J_DATABASE=database)
    port = _free_port()
    command = [sys.executable, "-m", "fraudnet", "-w", str(workspace), "serve", "--port", str(port)]
    if graph_workers is not None:
        command += ["--graph-workers", str(graph_workers)]
    if neo4j:
        command += ["--neo4j-projection" if neo4j_projection else "--no-neo4j-projection"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    sampler = _RssSampler(proc.pid)
    # the embedded store is built before the server answers: 213 s at the L tier (2M persons), so allow 15 min;
    # a server that exits is reported at once
    startup_s = float(os.environ.get("FRAUDNET_BENCH_STARTUP_S", "900"))
    t_start = time.perf_counter()
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"fraudnet serve exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"fraudnet serve did not answer within {startup_s:g} s")
            time.sleep(0.2)
        startup_seconds = round(time.perf_counter() - t_start, 1)
        projection = _wait_for_projection(url, graph_workers) if neo4j else None
        started = time.perf_counter()
        result = run(url, {"investigator": token}, clients=clients, requests=requests, timeout=timeout,
                     budget_s=budget_s)
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["server_startup_seconds"] = startup_seconds
        result["server_peak_memory_mib"] = sampler.peak_mib()  # server and its graph workers together
        if projection is not None:
            result["neo4j_projection"] = projection
        return result
    finally:
        sampler.stop()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with ClaimsStore.open(workspace) as store:
            revoke_token(store.con, token)


def run_both(workspace: Path, clients: int = 20, requests: int = 2000, heap: str = "1g",
             timeout: float = 120.0, budget_s: float | None = 180.0) -> dict[str, Any]:
    """The benchmark on the embedded store, then on a real Neo4j (our launcher, started in a temporary folder
    and loaded from a copy of the workspace's claims store); returns `{"embedded": …, "neo4j": …}`."""
    import secrets
    import shutil
    import tempfile

    from fraudnet.claims.store import ClaimsStore
    from fraudnet.config import Settings
    from fraudnet.graph import neo4j_server
    from fraudnet.graph.neo4j_load import load_graph

    out: dict[str, Any] = {"embedded": run_workspace(workspace, None, clients=clients, requests=requests,
                                                     timeout=timeout, budget_s=budget_s)}
    with tempfile.TemporaryDirectory(prefix="fraudnet-bench-api-") as tmp:
        copy = Path(tmp) / "ws"
        copy.mkdir()
        for name in ("claims.duckdb", "claims.duckdb.wal", "secret.key"):
            if (Path(workspace) / name).exists():
                shutil.copy2(Path(workspace) / name, copy / name)
        neo_home = Path(tmp) / "neo4j-ws"
        password = secrets.token_urlsafe(12)
        info = neo4j_server.start(neo_home, port=0, heap=heap, password=password, timeout=300)
        try:
            settings = Settings(workspace=copy, neo4j_uri=info.uri, neo4j_password=password)
            started = time.perf_counter()
            with ClaimsStore.open(copy) as store:
                load_graph(store, settings)
            load_s = round(time.perf_counter() - started, 1)
            out["neo4j"] = run_workspace(copy, (info.uri, "neo4j", password), clients=clients, requests=requests,
                                         timeout=timeout, budget_s=budget_s)
            out["neo4j"]["graph_load_s"] = load_s
            # The same Neo4j with every ego network answered by Cypher, for the ratio (a shorter budget: it is slow).
            out["neo4j_cypher_only"] = run_workspace(copy, (info.uri, "neo4j", password), clients=clients,
                                                     requests=requests, timeout=timeout,
                                                     budget_s=min(budget_s or 90.0, 90.0), neo4j_projection=False)
        finally:
            neo4j_server.stop(neo_home)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--budget", type=float, default=180.0,
                        help="seconds per measured endpoint after which no new request starts (0: no limit)")
    parser.add_argument("--neo4j-uri", default="")
    parser.add_argument("--neo4j-user", default="neo4j")
    parser.add_argument("--neo4j-password", default=os.environ.get("NEO4J_PASSWORD", ""))
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds")
    parser.add_argument("--both", action="store_true",
                        help="embedded store, then our launcher's Neo4j loaded from a copy of the workspace")
    parser.add_argument("--neo4j-projection", default="1",
                        help="with --neo4j-uri: comma list of 1/0, the server with and/or without its Neo4j "
                             "projection, measured one after the other (e.g. 1,0)")
    parser.add_argument("--graph-workers", default="",
                        help="comma list of `serve --graph-workers` values to measure one after the other, e.g. 0,2 "
                             "(embedded store; default: the server's default only)")
    opts = parser.parse_args(argv)
    if opts.graph_workers:
        counts = [int(c) for c in opts.graph_workers.split(",") if c.strip()]
        result = {f"graph_workers={c}": run_workspace(opts.workspace, None, clients=opts.clients,
                                                      requests=opts.requests, timeout=opts.timeout,
                                                      budget_s=opts.budget or None, graph_workers=c)
                  for c in counts}
    elif opts.both:
        result = run_both(opts.workspace, clients=opts.clients, requests=opts.requests, timeout=opts.timeout,
                          budget_s=opts.budget or None)
    elif opts.neo4j_uri:
        neo = (opts.neo4j_uri, opts.neo4j_user, opts.neo4j_password)
        result = {f"neo4j_projection={flag}": run_workspace(opts.workspace, neo, clients=opts.clients,
                                                            requests=opts.requests, timeout=opts.timeout,
                                                            budget_s=opts.budget or None, neo4j_projection=flag == "1")
                  for flag in (f.strip() for f in opts.neo4j_projection.split(",")) if flag in ("0", "1")}
    else:
        result = run_workspace(opts.workspace, None, clients=opts.clients, requests=opts.requests,
                               timeout=opts.timeout, budget_s=opts.budget or None)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
