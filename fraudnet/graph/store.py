"""The `GraphStore` protocol: the graph queries every backend (Neo4j, embedded) answers identically, and the
capabilities the application uses, each named here with what a backend without it answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from fraudnet.claims.store import ClaimsStore
from fraudnet.graph.entity_graph import EntityGraph
from fraudnet.graph.model import (
    DEFAULT_NODE_CAP,
    MAX_DEPTH,
    MAX_NODE_CAP,
    EntityProfile,
    GraphPath,
    Subgraph,
    TimelineEvent,
)

__all__ = ["GraphQueries", "GraphStore", "StoreStatus", "GraphRefresh", "ProgressFn", "MAX_DEPTH",
           "DEFAULT_NODE_CAP", "MAX_NODE_CAP"]

# `progress(stage, done, total)` as the Neo4j loader reports it.
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class StoreStatus:
    """What `/api/health` says about a graph store."""

    store: str  # "embedded" or "neo4j"
    uri: str = ""  # the Bolt URI of a Neo4j store ("" for the embedded store)
    reachable: bool = False  # Neo4j answers at `uri` (False for the embedded store)
    projection: dict[str, Any] | None = None  # the in-memory projection's state; None for a store without one


@dataclass(frozen=True)
class GraphRefresh:
    """The answer of `GraphStore.refreshed`: the store to answer from from now on (the same object when it was
    brought up to date in place) and a summary of what was done, for the ingest job's result."""

    store: GraphStore
    summary: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class GraphQueries(Protocol):
    """Read queries over the fraud graph. Node ids are `Type:key` (see `graph.model.node_id`).

    Every method raises `NotFoundError` for an unknown entity and `QueryLimitError` for a request over
    the limits (depth > MAX_DEPTH, node cap > MAX_NODE_CAP). Answers are deterministic: the same data
    gives the same nodes and edges, in the same order, on every store. A scoped principal's view of a store
    (`fraudnet.api.scope.ScopedGraphStore`) answers these and nothing else.
    """

    name: str  # the store named in not-found messages ("embedded", "neo4j")

    def profile(self, node_id: str) -> EntityProfile:
        """Properties and activity figures (visits, amount, first/last, counterparties) of one entity."""
        ...

    def ego_network(
        self,
        node_id: str,
        depth: int = 1,
        node_types: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        max_nodes: int = DEFAULT_NODE_CAP,
    ) -> Subgraph:
        """Entities within `depth` hops over the aggregated entity relationships.

        The time window keeps only visits whose begntime lies in [since, until) and recomputes the
        aggregated edges from them; `node_types` keeps only those node types (the centre always stays).
        Nodes are added layer by layer in a fixed order until `max_nodes`; `truncated` tells if it was hit.
        """
        ...

    def shortest_paths(
        self, source_id: str, target_id: str, max_depth: int = 4, max_paths: int = 10
    ) -> list[GraphPath]:
        """All shortest paths (up to `max_paths`, fixed order) between two entities."""
        ...

    def subgraph(
        self,
        node_ids: Sequence[str],
        include_visits: bool = True,
        since: datetime | None = None,
        until: datetime | None = None,
        evidence: Sequence[str] | None = None,
    ) -> Subgraph:
        """The given entities, the relationships among them and (optionally) the visits that connect them.

        With `evidence` (mdtrt_ids), those Visit nodes are included whether or not they connect two members.
        """
        ...

    def timeline(
        self,
        node_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[TimelineEvent]:
        """Visits involving the entity, oldest first."""
        ...


@runtime_checkable
class GraphStore(GraphQueries, Protocol):
    """A graph backend as the application uses it: the read queries plus these capabilities.

    Capabilities a backend lacks are still answered, in a typed way: `supports_cypher` / `syncs_leads` say
    whether read-only Cypher and lead sync do anything, `run_read_cypher` raises `CypherNotSupportedError` (409)
    where it is not supported, `projection()` is None where there is no in-memory graph.
    """

    supports_cypher: bool  # `run_read_cypher` answers (Neo4j)
    syncs_leads: bool  # `sync_leads` writes the leads into the graph (Neo4j)

    def status(self) -> StoreStatus:
        """Which store this is, where it lives, whether it answers, and the state of its projection."""
        ...

    def projection(self) -> EntityGraph | None:
        """The in-memory entity graph ego networks without a time window are answered from: the embedded store's
        own, Neo4j's projection once read (`start_projection`); None while there is none. Graph worker processes
        share it (`fraudnet.api.ego`)."""
        ...

    def start_projection(self, poll_s: float, on_change: Callable[[], None] | None = None) -> bool:
        """Keep the projection up to date in the background (read now, again after each load; `on_change()` after
        each new one). False when the store has nothing to read (the embedded store holds its graph already)."""
        ...

    def refreshed(self, claims: ClaimsStore, progress: ProgressFn | None = None) -> GraphRefresh:
        """Bring the graph up to date after an ingest into the claims store (`claims`: as the calling thread reads
        it): Neo4j loads what changed and stays the store; the embedded store is rebuilt as a new store."""
        ...

    def sync_leads(self, leads: Sequence[dict[str, Any]]) -> int:
        """Write the leads (dicts of `Lead` fields plus `status`) into the graph; how many (0: nothing to sync to)."""
        ...

    def run_read_cypher(self, query: str, params: dict[str, Any] | None = None, limit: int = 1000,
                        timeout: float = 15.0) -> dict[str, Any]:
        """An investigator's read-only Cypher (READ access mode, row limit, timeout): `{columns, rows, truncated}`.
        Raises `CypherNotSupportedError` when `supports_cypher` is False."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
