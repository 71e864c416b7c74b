"""Translation between HTTP and the library: id/filter parsing, and graph/lead values into response dicts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from operator import itemgetter
from typing import Any

import orjson
import pydantic_core
from fastapi import Response

from fraudnet.api.deps import ApiContext
from fraudnet.api.security import Principal, mask_node
from fraudnet.errors import InvalidRequestError
from fraudnet.graph.model import ENTITY_TYPES, NODE_TYPES, Edge, Node, Subgraph

__all__ = [
    "parse_node_id",
    "parse_types",
    "naive",
    "node_out",
    "edge_out",
    "subgraph_out",
    "lead_summary_out",
    "LEAD_ID_PATTERN",
    "NODE_ID_PATTERN",
]

LEAD_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
NODE_ID_PATTERN = r"^[A-Za-z]+:.+$"
_KEY_RE = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,128}$")


def parse_node_id(value: str, field: str = "node_id", types: Iterable[str] = ENTITY_TYPES) -> tuple[str, str]:
    """`Type:key` → (type, key); InvalidRequestError naming the field for a malformed id or unknown type."""
    allowed = tuple(types)
    if not isinstance(value, str) or ":" not in value:
        raise InvalidRequestError(f"{field} {value!r} is not a node id of the form Type:key (e.g. Person:P0001)",
                                  field=field)
    node_type, _, key = value.partition(":")
    if node_type not in allowed:
        raise InvalidRequestError(f"{field} {value!r}: type {node_type!r} is not one of {', '.join(allowed)}",
                                  field=field)
    if not _KEY_RE.match(key) or key != key.strip():
        raise InvalidRequestError(f"{field} {value!r}: key {key!r} is empty, too long or has invalid characters",
                                  field=field)
    return node_type, key


def parse_types(value: str | None, field: str = "types") -> list[str] | None:
    """Comma-separated node types → list (None when empty); InvalidRequestError for an unknown type."""
    if value is None or not value.strip():
        return None
    types = [t.strip() for t in value.split(",") if t.strip()]
    bad = [t for t in types if t not in NODE_TYPES]
    if bad:
        raise InvalidRequestError(f"{field}: {bad[0]!r} is not a node type ({', '.join(NODE_TYPES)})", field=field)
    return types


def naive(value: datetime | None) -> datetime | None:
    """Stored times are naive local times: an offset given by a client is dropped."""
    if value is None:
        return None
    return value.replace(tzinfo=None)


_RISK_TYPES = {"Person": "Person", "Practitioner": "Practitioner", "Institution": "Institution",
               "Pharmacy": "Institution"}


def _risk(table: dict[tuple[str, str], dict[str, Any]], node: Node) -> float | None:
    if node.risk is not None:
        return node.risk
    risk_type = _RISK_TYPES.get(node.type)
    if risk_type is None:
        return None
    found = table.get((risk_type, node.key))
    return found["score"] if found else 0.0


def node_out(node: Node, principal: Principal, ctx: ApiContext, con: Any,
             risk: dict[tuple[str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """A node as JSON for the caller: masked per role, risk filled from the active leads."""
    shown = mask_node(node, principal)
    return {"id": shown.id, "type": shown.type, "key": shown.key, "label": shown.label, "props": dict(shown.props),
            "risk": _risk(risk if risk is not None else ctx.risk.table(con), node)}


def edge_out(edge: Edge) -> dict[str, Any]:
    return {"id": edge.id, "type": edge.type, "source": edge.source, "target": edge.target, "visits": edge.visits,
            "amount": edge.amount, "first": edge.first, "last": edge.last, "props": dict(edge.props)}


def subgraph_out(sub: Subgraph, principal: Principal, ctx: ApiContext, con: Any) -> dict[str, Any]:
    """`{nodes, edges, truncated}` for the caller: nodes as `node_out` dicts, edges as the `Edge` values
    themselves (for `json_response`, which writes a dataclass as the dict `edge_out` would give)."""
    return _subgraph_dict(sub, principal, ctx.risk.table(con))


def _subgraph_dict(sub: Subgraph, principal: Principal, risk: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    nodes = [_shown_node(mask_node(n, principal), _risk(risk, n)) for n in sub.nodes]
    return {"nodes": nodes, "edges": list(sub.edges), "truncated": bool(sub.truncated)}


def _shown_node(shown: Node, risk: float | None) -> dict[str, Any]:
    """A masked node as the graph answers write it."""
    return {"id": shown.id, "type": shown.type, "key": shown.key, "label": shown.label, "props": shown.props,
            "risk": risk}


def render_subgraph(sub: Subgraph, principal: Principal,
                    risk: dict[tuple[str, str], dict[str, Any]]) -> tuple[dict[str, Any], bytes]:
    """`subgraph_out` given the entity risk table, and its JSON body as `json_response` writes it (used by the
    graph worker processes, which have no claims store)."""
    out = _subgraph_dict(sub, principal, risk)
    return out, json_body(out)


class EgoRenderer:
    """Ego answers of the embedded store written from per-node and per-edge JSON kept between calls.

    Gives the same bytes as `render_subgraph(store.ego_network(...), ...)`, but a node or edge already written
    for an earlier answer costs a list lookup instead of objects built, masked and serialised again (most of an
    ego answer's cost). Node JSON with its risk is kept per risk table: pass a new table object when risk
    changes (tables are not modified in place). For one thread (a graph worker process); what is kept is
    dropped once it passes `limit` entries.
    """

    def __init__(self, store: Any, limit: int = 1_000_000) -> None:
        self._store = store
        self._limit = limit
        # sees personal data? → node position → (JSON up to the risk value, risk key or None, fixed risk)
        self._heads: dict[bool, dict[int, tuple[bytes, tuple[str, str] | None, float | None]]] = {True: {},
                                                                                                   False: {}}
        # The same with the risk of `_risk_table` written in: node position → whole node JSON.
        self._nodes = {True: _Kept(store.node_count), False: _Kept(store.node_count)}
        self._risk_table: Any = None
        self._edges = _Kept(store.edge_count)

    def render(self, principal: Principal, risk: dict[tuple[str, str], dict[str, Any]],
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

    def _write_nodes(self, principal: Principal, risk: dict[tuple[str, str], dict[str, Any]],
                     positions: list[int], nodes: list[bytes | None]) -> None:
        """Fill the None entries of `nodes` (JSON of the nodes at `positions`) and keep them."""
        heads = self._heads[principal.sees_pii]
        if len(heads) + len(positions) > self._limit:
            heads.clear()
        new = [p for p in dict.fromkeys(p for p, b in zip(positions, nodes, strict=True) if b is None)
               if p not in heads]
        for p, node in zip(new, self._store.nodes_at(new), strict=True):
            head = json_body(_shown_node(mask_node(node, principal), None))
            risk_type = _RISK_TYPES.get(node.type)
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


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def json_body(content: Any) -> bytes:
    """`content` as JSON bytes: orjson writes dicts, lists, dataclasses (fields in order), ISO 8601 datetimes
    and NaN/inf as null; what it cannot (e.g. integers beyond 64 bits) goes through pydantic-core, which gives
    the same JSON otherwise."""
    try:
        return orjson.dumps(content, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # orjson.JSONEncodeError
        return pydantic_core.to_json(content, fallback=_json_default, inf_nan_mode="null")


def json_response(content: Any, status_code: int = 200) -> Response:
    """A JSON response serialised directly (large graph answers; their shape is the route's response model)."""
    return Response(json_body(content), status_code=status_code, media_type="application/json")


def masked_subgraph(sub: Subgraph, principal: Principal, ctx: ApiContext, con: Any) -> Subgraph:
    """The subgraph with nodes masked per role and risk filled (for exports)."""
    nodes = []
    risk = ctx.risk.table(con)
    for n in sub.nodes:
        shown = mask_node(n, principal)
        nodes.append(Node(id=shown.id, type=shown.type, key=shown.key, label=shown.label, props=dict(shown.props),
                          risk=_risk(risk, n)))
    return Subgraph(nodes=nodes, edges=list(sub.edges), truncated=sub.truncated)


_SUMMARY_KEYS = ("lead_id", "kind", "severity", "score", "persons", "practitioners", "institutions",
                 "evidence_count", "amount_at_risk", "period_start", "period_end", "explanation_zh",
                 "explanation_en", "status", "assignee", "model_probability", "expected_recovery")


def lead_summary_out(row: dict[str, Any]) -> dict[str, Any]:
    """A lead-list row in the API's summary shape."""
    out = {k: row.get(k) for k in _SUMMARY_KEYS}
    if out.get("evidence_count") is None:
        out["evidence_count"] = len(row.get("evidence") or [])
    return out


def lead_entities(lead: dict[str, Any]) -> list[str]:
    """Node ids an audited lead read or change concerns: the lead and its persons."""
    return [f"Lead:{lead['lead_id']}"] + [f"Person:{p}" for p in lead.get("persons") or []]


__all__ += ["masked_subgraph", "lead_entities", "json_response", "json_body", "render_subgraph", "EgoRenderer"]
