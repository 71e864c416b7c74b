"""What the ego service is asked (`EgoQuery`) and what it answers (`EgoAnswer`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fraudnet.graph.model import DEFAULT_NODE_CAP

__all__ = ["EgoQuery", "EgoAnswer"]


@dataclass(frozen=True)
class EgoQuery:
    """An ego network request (`GraphStore.ego_network` arguments)."""

    node_id: str
    depth: int = 1
    node_types: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    max_nodes: int = DEFAULT_NODE_CAP

    @property
    def windowed(self) -> bool:
        """A time window needs the claims store (aggregates recomputed from visits)."""
        return self.since is not None or self.until is not None

    def unwindowed(self) -> dict[str, Any]:
        """The arguments of `EntityGraph.ego_index` (no window)."""
        return {"node_id": self.node_id, "depth": self.depth, "node_types": self.node_types,
                "max_nodes": self.max_nodes}


@dataclass(frozen=True)
class EgoAnswer:
    """An ego network as the response body, and what the audit log records about it."""

    body: bytes
    person_ids: list[str] = field(default_factory=list)
    nodes: int = 0
    truncated: bool = False
