"""`EgoService`: the one place ego networks are answered — by a graph worker process or in the server process."""

from __future__ import annotations

import gc
import logging

from fastapi.concurrency import run_in_threadpool

from fraudnet.api.ego.answer import EgoAnswer, EgoQuery
from fraudnet.api.ego.workers import GraphWorkers, forking_available
from fraudnet.api.graph_holder import GraphStoreHolder
from fraudnet.api.lead_queries import LeadQueries
from fraudnet.api.present import render_subgraph
from fraudnet.api.principal import Principal, person_ids
from fraudnet.api.scope import Scopes
from fraudnet.config import Settings
from fraudnet.graph.store import GraphStore

__all__ = ["EgoService"]

log = logging.getLogger(__name__)


class EgoService:
    """Answers `answer(query, principal) -> EgoAnswer` and owns everything its fast path needs.

    - **The fast path**: with `settings.graph_workers` > 0 and fork available, that many worker processes are
      forked over the store's in-memory graph (`GraphStore.projection()`: the embedded store's own graph, Neo4j's
      projection once read) and answer ego networks without a time window for principals without a scope, as
      JSON bytes (`fraudnet.api.ego.workers`, rendered by `fraudnet.api.ego.render.EgoRenderer`).
    - **In process**: everything else (a time window needs the claims store; a scoped principal sees a masked
      view; no workers, a worker lost or a node newer than a Neo4j projection) is answered on a thread of the
      server from the store as the principal may read it.
    - **The risk snapshot**: nodes carry the entity risk of the leads version the request saw (`LeadQueries`);
      a worker is sent the table only when its version is older.
    - **Start-up**: `start()` freezes the heap built so far (`gc.freeze`), forks the workers and starts Neo4j's
      projection; the workers are forked again over each new projection and each store swapped in after an
      ingest (`GraphStoreHolder` listener). `stop()` ends them.
    """

    def __init__(self, settings: Settings, graph: GraphStoreHolder, leads: LeadQueries, scopes: Scopes) -> None:
        self._settings = settings
        self._graph = graph
        self._leads = leads
        self._scopes = scopes
        self._workers: GraphWorkers | None = None
        self._worker_count = 0
        self._restart_after_swap = False
        graph.listen(self)

    # ---- answering -------------------------------------------------------------------------------------------
    async def answer(self, query: EgoQuery, principal: Principal) -> EgoAnswer:
        """The ego network of `query` as the response body for `principal`. Awaiting a worker holds no thread."""
        workers = self._workers
        if workers is not None and principal.scope is None and not query.windowed:
            version = self._leads.version  # read before the table: a table newer than its label is only re-sent
            answer = await workers.ego_json(query.unwindowed(), principal, version, self._leads.risk.table)
            if answer is not None:
                return answer
        return await run_in_threadpool(self.answer_here, query, principal)

    def answer_here(self, query: EgoQuery, principal: Principal) -> EgoAnswer:
        """The answer computed in this process (the reference the workers' bytes equal)."""
        sub = self._scopes.graph(principal).ego_network(query.node_id, query.depth, query.node_types, query.since,
                                                        query.until, query.max_nodes)
        out, body = render_subgraph(sub, principal, self._leads.risk.table())
        return EgoAnswer(body, person_ids(n["id"] for n in out["nodes"]), len(out["nodes"]), out["truncated"])

    # ---- the fast path's life --------------------------------------------------------------------------------
    @property
    def workers(self) -> GraphWorkers | None:
        """The running worker processes, or None (answers in process)."""
        return self._workers

    @property
    def workers_alive(self) -> int:
        workers = self._workers
        return workers.alive if workers is not None else 0

    def start(self) -> None:
        """At server start: freeze the heap, fork the workers, start reading Neo4j's projection."""
        _freeze_heap()
        if self._settings.graph_workers and self._workers is None:
            self.start_workers(self._settings.graph_workers)
        if self._settings.neo4j_projection:
            store = self._graph.store
            store.start_projection(self._settings.neo4j_projection_poll_s, lambda: self._projection_changed(store))

    def start_workers(self, count: int) -> int:
        """Fork `count` workers over the current store's in-memory graph; how many run (0 where there is no graph
        yet or fork is unavailable)."""
        self.stop()
        self._worker_count = count
        graph = self._graph.store.projection()
        if count < 1 or graph is None or not forking_available():
            return 0
        gc.freeze()  # the graph is shared with the workers: keep the collector from touching (copying) it
        self._workers = GraphWorkers(graph, count)
        return count

    def stop(self) -> None:
        """Stop the workers (requests are answered in process meanwhile)."""
        workers, self._workers = self._workers, None
        if workers is not None:
            workers.close()

    def _projection_changed(self, store: GraphStore) -> None:
        """A new Neo4j projection is in use: fork the workers again over it (if the store is still the one)."""
        if self._graph.store is store and self._worker_count:
            self.start_workers(self._worker_count)

    # ---- GraphStoreHolder listener ---------------------------------------------------------------------------
    def store_replacing(self) -> None:
        self._restart_after_swap = self._workers is not None
        self.stop()

    def store_replaced(self, store: GraphStore) -> None:
        if self._restart_after_swap:
            self.start_workers(self._worker_count)


def _freeze_heap() -> None:
    """Exempt what start-up built (the embedded graph, caches) from Python's cyclic garbage collector.

    Those objects live as long as the server; a full collection walking them stalls every request for
    ≈ 160 ms on the M tier, which shows in the latency tail. New objects are collected as usual.
    """
    gc.collect()
    gc.freeze()
