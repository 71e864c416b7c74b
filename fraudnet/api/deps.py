"""The API's runtime context (claims store, graph store, jobs, locks) and its typed FastAPI dependencies."""

from __future__ import annotations

import copy
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from fraudnet.config import Settings
from fraudnet.errors import StoreError
from fraudnet.graph.store import GraphStore

__all__ = [
    "ApiContext",
    "RiskIndex",
    "get_ctx",
    "get_con",
    "get_store",
    "CtxDep",
    "ConDep",
    "StoreDep",
    "LeadsDep",
    "ThreadCursor",
    "get_leads",
]

log = logging.getLogger(__name__)

# A case change waits this long for a running job's writes before answering 503 (retry later).
WRITE_LOCK_TIMEOUT_S = 30.0


class RiskIndex:
    """Entity risk (`fraudnet.detectors.risk`; with the model's probability and expected recovery once a model has
    scored the store) looked up by node id.

    Loaded lazily from the lead store and dropped whenever leads or decisions change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], dict[str, Any]] | None = None

    def invalidate(self) -> None:
        with self._lock:
            self._rows = None

    def _load(self, con: Any) -> dict[tuple[str, str], dict[str, Any]]:
        from fraudnet.claims.leads import MODEL_RISK_COLUMNS, LeadStore

        frame = LeadStore(con).entity_scores()
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for rec in frame.to_dict("records"):
            kinds = rec.get("top_kinds") or ""
            row = {
                "score": float(rec["score"]), "leads": int(rec["leads"]),
                "amount_at_risk": float(rec["amount_at_risk"] or 0.0),
                "top_kinds": [k for k in str(kinds).split(";") if k],
            }
            for name in MODEL_RISK_COLUMNS:  # the model's figures beside the unsupervised risk, once it scored
                value = rec.get(name)
                if value is not None and value == value:
                    row[name] = value
            rows[(str(rec["entity_type"]), str(rec["entity_id"]))] = row
        return rows

    def table(self, con: Any) -> dict[tuple[str, str], dict[str, Any]]:
        """(entity type, key) → risk; Pharmacy entities are under "Institution" (as in the lead store)."""
        with self._lock:
            if self._rows is None:
                self._rows = self._load(con)
            return self._rows

    def lookup(self, con: Any, node_type: str, key: str) -> dict[str, Any] | None:
        """Risk of one entity (Pharmacy counts as Institution), or None when no active lead involves it."""
        risk_type = "Institution" if node_type == "Pharmacy" else node_type
        return self.table(con).get((risk_type, key))


class ThreadCursor:
    """A stand-in for a DuckDB connection that forwards every call to the calling thread's own cursor.

    FastAPI may resolve a dependency on one worker thread and run the endpoint on another; resolving the cursor
    at call time keeps each thread on its own cursor (DuckDB connections must not be shared across threads).
    """

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx.thread_cursor(), name)


class ApiContext:
    """Everything the routes share: settings, the claims store (one DuckDB connection), the graph store.

    Requests use a cursor each (`cursor()`); writes (case changes, jobs) hold `write_lock`. The graph store is
    replaced after an ingest job (`swap_graph_store`).
    """

    def __init__(self, settings: Settings, claims: Any, graph: GraphStore, jobs: Any) -> None:
        self.settings = settings
        self.claims = claims
        self._graph = graph
        self._graph_lock = threading.Lock()
        self.jobs = jobs
        self.write_lock = threading.RLock()
        self.risk = RiskIndex()
        self.started = time.time()
        self._neo4j_probe: tuple[float, bool] = (0.0, False)
        self._job_store: Any = None
        self._local = threading.local()
        self._cursors: list[Any] = []
        self.con = ThreadCursor(self)
        self._leads: Any = None
        self._page_lock = threading.Lock()
        self._pages: dict[tuple, tuple[int, bytes, int]] = {}
        self._items: dict[str, bytes] = {}  # lead id → rendered list item, valid for `_items_version`
        self._items_version = -1
        self._index_lock = threading.Lock()
        self._index: tuple[int, Any] | None = None  # (leads version, LeadIndex)
        self.leads_version = 0
        self.graph_workers: Any = None  # fraudnet.api.graph_workers.GraphWorkers when started
        self._graph_worker_count = 0
        from fraudnet.claims.audit import AuditLog

        self.audit = AuditLog(self.cursor)

    @property
    def graph(self) -> GraphStore:
        with self._graph_lock:
            return self._graph

    def start_graph_workers(self, count: int) -> int:
        """Fork `count` graph worker processes over the current store (`fraudnet.api.graph_workers`); only for
        the embedded store where fork is available. Returns how many run."""
        from fraudnet.api.graph_workers import GraphWorkers, forking_available

        self.stop_graph_workers()
        self._graph_worker_count = count
        source = self.graph.projection()  # the embedded store, or Neo4j's projection once it is read
        if count < 1 or source is None or not forking_available():
            return 0
        gc.freeze()  # the graph is shared with the workers: keep the collector from touching (copying) it
        self.graph_workers = GraphWorkers(source, count)
        return count

    def start_projection(self) -> bool:
        """With Neo4j, read its entity graph into memory in the background for ego networks (re-read after each
        load; graph workers re-forked over each new one). False when the store has no projection or it is off."""
        graph = self.graph
        start = getattr(graph, "start_projection", None)
        if start is None or not self.settings.neo4j_projection:
            return False

        def renew_workers() -> None:
            if self.graph is graph and self._graph_worker_count:
                self.start_graph_workers(self._graph_worker_count)

        start(self.settings.neo4j_projection_poll_s, renew_workers)
        return True

    def stop_graph_workers(self) -> None:
        workers, self.graph_workers = self.graph_workers, None
        if workers is not None:
            workers.close()

    def swap_graph_store(self, new: GraphStore) -> None:
        """Answer from `new` from now on and close the old store (graph workers are re-forked over `new`)."""
        had_workers = self.graph_workers is not None
        self.stop_graph_workers()  # requests answer in-process until the new workers run
        with self._graph_lock:
            old, self._graph = self._graph, new
        gc.freeze()  # the new store lives until the next swap (see fraudnet.api.app._freeze_heap)
        if had_workers:
            self.start_graph_workers(self._graph_worker_count)
        if old is not new:
            try:
                old.close()
            except Exception:  # closing a replaced store must not fail the job that replaced it
                log.warning("closing the replaced graph store failed", exc_info=True)

    def cursor(self) -> Any:
        """A new DuckDB cursor on the claims store (DuckDB connections are not shared across threads)."""
        try:
            return self.claims.con.cursor()
        except Exception as exc:
            raise StoreError(f"claims store {getattr(self.claims, 'path', '')}: cannot open a cursor ({exc})") from exc

    def thread_cursor(self) -> Any:
        """This thread's cursor on the claims store (created on first use, closed with the context)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.cursor()
            self._local.cursor = cur
            with self._graph_lock:
                self._cursors.append(cur)
        return cur

    def close_cursors(self) -> None:
        """Close every thread and job cursor (at shutdown)."""
        with self._graph_lock:
            cursors, self._cursors = self._cursors, []
            if self._job_store is not None:
                cursors.append(self._job_store.con)
                self._job_store = None
        for cur in cursors:
            try:
                cur.close()
            except Exception:  # pragma: no cover - closing a cursor twice is harmless
                pass

    @property
    def leads(self) -> Any:
        """The LeadStore, answering through the calling thread's cursor (tables created once)."""
        if self._leads is None:
            from fraudnet.claims.leads import LeadStore

            self._leads = LeadStore(self.con)
        return self._leads

    def lead_page(self, render_row: Callable[[dict], bytes], envelope: dict[str, Any],
                  **query: Any) -> tuple[bytes, int]:
        """A page of `LeadStore.list(**query)` as the JSON body `{"items": [render_row(row), …], "total": …,
        **envelope}`; returns (body, total).

        Until the leads or decisions change (`leads_changed`), bodies are answered from a small cache, pages are
        chosen from an in-memory `LeadIndex` of the active leads, and each lead's item is rendered once: a new
        filter or page costs no query but the items not rendered yet.
        """
        key = (tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in query.items())),
               tuple(sorted(envelope.items())))
        with self._page_lock:
            version = self.leads_version
            hit = self._pages.get(key)
        if hit is not None and hit[0] == version:
            return hit[1], hit[2]
        ids, total = self._lead_index(version).page_ids(**query)
        with self._page_lock:
            items = self._items if self._items_version == version else {}
        missing = [i for i in ids if i not in items]
        if missing:
            fresh = {i: render_row(row) for i, row in self.leads.summaries(missing).items()}
            with self._page_lock:
                if self._items_version != version or len(self._items) > 100_000:
                    self._items, self._items_version = {}, version
                if version == self.leads_version:
                    self._items.update(fresh)
        else:
            fresh = {}
        rows = [row for row in (fresh.get(i) or items.get(i) for i in ids) if row is not None]
        body = b"".join((b'{"items":[', b",".join(rows), b"],", orjson.dumps({"total": total, **envelope})[1:]))
        with self._page_lock:
            if version == self.leads_version:
                if len(self._pages) >= 1024:
                    self._pages.clear()
                self._pages[key] = (version, body, total)
        return body, total

    def _lead_index(self, version: int) -> Any:
        """The `LeadIndex` of the active leads, rebuilt once per leads version (see `lead_page`)."""
        from fraudnet.claims.leads import LeadIndex

        with self._index_lock:
            if self._index is None or self._index[0] != version:
                self._index = (version, LeadIndex(self.con))
            return self._index[1]

    def leads_changed(self) -> None:
        """Call after any change to leads or decisions: drops cached pages and entity risk."""
        self.risk.invalidate()  # before the version moves: whoever reads the new version gets the new table
        with self._page_lock:
            self.leads_version += 1
            self._pages.clear()

    def job_store(self) -> Any:
        """The ClaimsStore as the job thread uses it: a shallow copy answering through one cursor of its own.

        Kept for the life of the app (jobs run one at a time on one worker thread), so that per-connection
        state the ingest registers (its DuckDB functions) is registered once.
        """
        with self._graph_lock:
            if self._job_store is None:
                store = copy.copy(self.claims)
                store.con = self.cursor()
                self._job_store = store
            return self._job_store

    @contextmanager
    def writing(self, timeout: float = WRITE_LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the write lock; StoreError (503) if a job keeps it longer than `timeout` seconds."""
        if not self.write_lock.acquire(timeout=timeout):
            raise StoreError(f"the claims store is busy with a running job for more than {timeout:.0f} s; retry later "
                      "(数据库正被后台任务写入，请稍后重试)")
        try:
            yield
        finally:
            self.write_lock.release()

    @property
    def store_name(self) -> str:
        return getattr(self.graph, "name", "embedded")

    def neo4j_uri(self) -> str:
        uri = self.settings.neo4j_uri
        if not uri:
            uri = getattr(self.graph, "uri", "") or getattr(getattr(self.graph, "settings", None), "neo4j_uri", "")
        return uri or ""

    def neo4j_reachable(self) -> bool:
        """Whether Bolt answers at the configured URI (checked at most every 5 s)."""
        uri = self.neo4j_uri()
        if not uri:
            return False
        checked, ok = self._neo4j_probe
        if time.time() - checked < 5.0:
            return ok
        ok = _probe_neo4j(self, uri)
        self._neo4j_probe = (time.time(), ok)
        return ok


def _probe_neo4j(ctx: ApiContext, uri: str) -> bool:
    graph = ctx.graph
    ping = getattr(graph, "ping", None)
    if callable(ping):
        try:
            return bool(ping())
        except Exception:
            return False
    driver = getattr(graph, "driver", None) or getattr(graph, "_driver", None)
    if driver is not None:
        try:
            driver.verify_connectivity()
            return True
        except Exception:
            return False
    import neo4j

    s = ctx.settings
    try:
        with neo4j.GraphDatabase.driver(uri, auth=(s.neo4j_user, s.neo4j_password) if s.neo4j_password else None,
                                        connection_timeout=2.0) as drv:
            drv.verify_connectivity()
        return True
    except Exception:
        return False


async def get_ctx(request: Request) -> ApiContext:
    """The app's ApiContext. (These dependencies are async only to run on the event loop: FastAPI would
    otherwise hand each to a worker thread, several thread hops per request.)"""
    return request.app.state.ctx


async def get_con(request: Request) -> Any:
    """The claims store connection for this request: calls go to the calling thread's own cursor."""
    return request.app.state.ctx.con


async def get_leads(request: Request) -> Any:
    """The lead store (`fraudnet.claims.leads.LeadStore`) over the calling thread's cursor."""
    return request.app.state.ctx.leads


async def get_store(request: Request) -> GraphStore:
    """The current graph store (embedded or Neo4j)."""
    return request.app.state.ctx.graph


CtxDep = Annotated[ApiContext, Depends(get_ctx)]
ConDep = Annotated[Any, Depends(get_con)]
StoreDep = Annotated[GraphStore, Depends(get_store)]
LeadsDep = Annotated[Any, Depends(get_leads)]
