"""`EgoRenderer`: ego answers of an in-memory entity graph written from per-node and per-edge JSON kept between
calls (what a graph worker process runs)."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from fraudnet.api.present import RISK_TYPES, RiskTable, json_body, shown_node
from fraudnet.api.principal import Principal, mask_node
from fraudnet.graph.entity_graph import EntityGraph

__all__ = ["EgoRenderer"]


class EgoRenderer:
    """Ego answers of an in-memory entity graph (the embedded store, a Neo4j projection) written from per-node and
    per-edge JSON kept between calls.

    Gives the same bytes as `render_subgraph(store.ego_network(...), ...)`, but a node or edge already written
    for an earlier answer costs a list lookup instead of objects built, masked and serialised again (most of an
    ego answer's cost). Node JSON with its risk is kept per risk table: pass a new table object when risk
    changes (tables are not modified in place). For one thread (a graph worker process); what is kept is
    dropped once it passes `limit` entries.
    """

    def __init__(self, store: EntityGraph, limit: int = 1_000_000) -> None:
        self._store = store
        self._limit = limit
        # sees personal data? → node position → (JSON up to the risk value, risk key or None, fixed risk)
        self._heads: dict[bool, dict[int, tuple[bytes, tuple[str, str] | None, float | None]]] = {True: {},
                                                                                                   False: {}}
        # The same with the risk of `_risk_table` written in: node position → whole node JSON.
        self._nodes = {True: _Kept(store.node_count), False: _Kept(store.node_count)}
        self._risk_table: RiskTable | None = None
        self._edges = _Kept(store.edge_count)

    def render(self, principal: Principal, risk: RiskTable,
               **query: Any) -> tuple[bytes, list[str], int, bool]:
        """(body, Person ids, node count, truncated) of `store.ego_index(**query)` for `principal`."""
        found = self._store.ego_index(**query)
        if risk is not self._risk_table:
            self._nodes[True].clear()
            self._nodes[False].clear()
            self._risk_table = risk
        pii = principal.sees_pii
        positions = found.nodes.tolist()
        nodes = self._nodes[pii].get(positions, self._limit)
        if None in nodes:
            self._write_nodes(principal, risk, positions, nodes)
        edge_positions = found.edges.tolist()
        edges = self._edges.get(edge_positions, self._limit)
        if None in edges:
            missing = [i for i, b in enumerate(edges) if b is None]
            for i, edge in zip(missing, self._store.edges_at([edge_positions[i] for i in missing]), strict=True):
                edges[i] = json_body(edge)
                self._edges.put(edge_positions[i], edges[i])
        persons = self._store.person_ids_at(found.nodes)
        body = b"".join((b'{"nodes":[', b",".join(nodes), b'],"edges":[', b",".join(edges), b'],"truncated":',
                         b"true" if found.truncated else b"false", b"}"))
        return body, persons, len(positions), bool(found.truncated)

    def _write_nodes(self, principal: Principal, risk: RiskTable,
                     positions: list[int], nodes: list[bytes | None]) -> None:
        """Fill the None entries of `nodes` (JSON of the nodes at `positions`) and keep them."""
        heads = self._heads[principal.sees_pii]
        if len(heads) + len(positions) > self._limit:
            heads.clear()
        new = [p for p in dict.fromkeys(p for p, b in zip(positions, nodes, strict=True) if b is None)
               if p not in heads]
        for p, node in zip(new, self._store.nodes_at(new), strict=True):
            head = json_body(shown_node(mask_node(node, principal), None))
            risk_type = RISK_TYPES.get(node.type)
            heads[p] = (head[:-len(b"null}")], (risk_type, node.key) if risk_type else None, node.risk)
        kept = self._nodes[principal.sees_pii]
        for i, p in enumerate(positions):
            if nodes[i] is not None:
                continue
            head, risk_key, fixed = heads[p]
            if fixed is not None:
                whole = head + json_body(fixed) + b"}"
            elif risk_key is None:
                whole = head + b"null}"
            else:
                entry = risk.get(risk_key)
                whole = head + (json_body(entry["score"]) if entry else b"0.0") + b"}"
            kept.put(p, whole)
            nodes[i] = whole


class _Kept:
    """JSON kept per node or edge position: a list indexed by position (None: not written yet). Looking up an
    answer's 1,500 positions in a list is a C loop over pointers; in a dict of a million entries it was a sixth of a
    graph worker's time."""

    __slots__ = ("items", "count", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[bytes | None] = [None] * size
        self.count = 0

    def get(self, positions: list[int], limit: int) -> list[bytes | None]:
        """The kept JSON of `positions` (None where missing); forgets everything first when more than `limit`
        entries could then be kept."""
        if self.count + len(positions) > limit:
            self.clear()
        if len(positions) > 1:
            return list(itemgetter(*positions)(self.items))
        return [self.items[p] for p in positions]

    def put(self, position: int, body: bytes) -> None:
        if self.items[position] is None:
            self.count += 1
        self.items[position] = body

    def clear(self) -> None:
        if self.count:
            self.items = [None] * self.size
            self.count = 0
