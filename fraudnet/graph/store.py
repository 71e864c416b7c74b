"""The `GraphStore` protocol: the graph queries every backend (Neo4j, embedded) answers identically."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from fraudnet.graph.model import EntityProfile, GraphPath, Subgraph, TimelineEvent

__all__ = ["GraphStore", "MAX_DEPTH", "DEFAULT_NODE_CAP", "MAX_NODE_CAP"]

MAX_DEPTH = 3
DEFAULT_NODE_CAP = 500
MAX_NODE_CAP = 5000


@runtime_checkable
class GraphStore(Protocol):
    """Read queries over the fraud graph. Node ids are `Type:key` (see `graph.model.node_id`).

    Every method raises `NotFoundError` for an unknown entity and `QueryLimitError` for a request over
    the limits (depth > MAX_DEPTH, node cap > MAX_NODE_CAP). Answers are deterministic: the same data
    gives the same nodes and edges, in the same order, on every store.
    """

    name: str

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

    def close(self) -> None:
        """Release connections."""
        ...
