"""The graph model of DESIGN.md §3 as plain values shared by every store: nodes, edges, subgraphs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "NODE_TYPES",
    "NODE_KEYS",
    "ENTITY_TYPES",
    "EDGE_TYPES",
    "node_id",
    "split_node_id",
    "Node",
    "Edge",
    "Subgraph",
    "GraphPath",
    "EntityProfile",
    "TimelineEvent",
    "MAX_DEPTH",
    "DEFAULT_NODE_CAP",
    "MAX_NODE_CAP",
]

# Limits of the graph queries every store enforces (`QueryLimitError` beyond them).
MAX_DEPTH = 3
DEFAULT_NODE_CAP = 500
MAX_NODE_CAP = 5000

# Node label -> unique key property.
NODE_KEYS: dict[str, str] = {
    "Person": "psn_no",
    "Practitioner": "prac_psn_code",
    "Institution": "fixmedins_code",
    "Pharmacy": "fixmedins_code",
    "Drug": "hilist_code",
    "Phone": "hash",
    "Address": "key",
    "Visit": "mdtrt_id",
    "Lead": "lead_id",
}
NODE_TYPES: tuple[str, ...] = tuple(NODE_KEYS)
# Types an investigator asks about by id (profile, timeline, ego network centre).
ENTITY_TYPES: tuple[str, ...] = ("Person", "Practitioner", "Institution", "Pharmacy", "Drug", "Phone", "Address")

EDGE_TYPES: tuple[str, ...] = (
    "HAD", "AT", "ATTENDED_BY", "DISPENSED", "WORKS_AT", "USES_PHONE", "LIVES_AT",
    "VISITED", "TREATED_BY", "CO_ADMITTED", "INVOLVES", "EVIDENCED_BY",
)


def node_id(node_type: str, key: str) -> str:
    """Graph-wide node id, `Type:key` (e.g. `Person:P0001`), the same in every store."""
    return f"{node_type}:{key}"


def split_node_id(nid: str) -> tuple[str, str]:
    """Inverse of `node_id`."""
    node_type, _, key = nid.partition(":")
    return node_type, key


@dataclass
class Node:
    """A node as answered to clients: id `Type:key`, display label, properties, risk (0–1 or None)."""

    id: str
    type: str
    key: str
    label: str
    props: dict[str, Any] = field(default_factory=dict)
    risk: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Edge:
    """A relationship between two node ids; aggregated edges carry visits, amount and time span."""

    id: str
    type: str
    source: str
    target: str
    visits: int = 0
    amount: float = 0.0
    first: datetime | None = None
    last: datetime | None = None
    props: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Subgraph:
    """Nodes and edges of an answer; `truncated` says the node cap was reached."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [n.to_dict() for n in self.nodes], "edges": [e.to_dict() for e in self.edges],
                "truncated": self.truncated}


@dataclass
class GraphPath:
    """One path: node ids in order and the edges between them."""

    nodes: list[str]
    edges: list[Edge]


@dataclass
class EntityProfile:
    """What an investigator sees first about an entity: its properties and activity figures."""

    id: str
    type: str
    key: str
    label: str
    props: dict[str, Any]
    stats: dict[str, Any]


@dataclass
class TimelineEvent:
    """One visit in an entity's timeline."""

    mdtrt_id: str
    begntime: datetime
    endtime: datetime | None
    med_type: str
    psn_no: str
    fixmedins_code: str
    atddr_no: str | None
    dise_codg: str | None
    medfee_sumamt: float
    fund_pay_sumamt: float
