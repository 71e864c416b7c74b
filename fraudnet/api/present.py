"""Translation between HTTP and the library: id/filter parsing, and graph/lead values into response dicts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import orjson
import pydantic_core
from fastapi import Response

from fraudnet.api.principal import Principal, mask_node
from fraudnet.errors import InvalidRequestError
from fraudnet.graph.model import ENTITY_TYPES, NODE_TYPES, Edge, Node, Subgraph
from fraudnet.screening.clock import response_clock
from fraudnet.screening.settings import response_hours

__all__ = [
    "parse_node_id",
    "parse_types",
    "naive",
    "node_out",
    "edge_out",
    "subgraph_out",
    "lead_summary_out",
    "node_risk",
    "shown_node",
    "RiskTable",
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


# (entity type, key) → risk figures of the active leads (`fraudnet.api.lead_queries.RiskIndex`).
RiskTable = dict[tuple[str, str], dict[str, Any]]
RISK_TYPES = {"Person": "Person", "Practitioner": "Practitioner", "Institution": "Institution",
              "Pharmacy": "Institution"}


def node_risk(table: RiskTable, node: Node) -> float | None:
    """The node's risk score shown in graph answers: its own, else from `table` (0.0 for an entity no active lead
    names), None for types that carry no risk."""
    if node.risk is not None:
        return node.risk
    risk_type = RISK_TYPES.get(node.type)
    if risk_type is None:
        return None
    found = table.get((risk_type, node.key))
    return found["score"] if found else 0.0


def node_out(node: Node, principal: Principal, risk: RiskTable) -> dict[str, Any]:
    """A node as JSON for the caller: masked per role, risk filled from the active leads."""
    shown = mask_node(node, principal)
    return {"id": shown.id, "type": shown.type, "key": shown.key, "label": shown.label, "props": dict(shown.props),
            "risk": node_risk(risk, node)}


def edge_out(edge: Edge) -> dict[str, Any]:
    return {"id": edge.id, "type": edge.type, "source": edge.source, "target": edge.target, "visits": edge.visits,
            "amount": edge.amount, "first": edge.first, "last": edge.last, "props": dict(edge.props)}


def subgraph_out(sub: Subgraph, principal: Principal, risk: RiskTable) -> dict[str, Any]:
    """`{nodes, edges, truncated}` for the caller: nodes as `node_out` dicts, edges as the `Edge` values
    themselves (for `json_response`, which writes a dataclass as the dict `edge_out` would give)."""
    nodes = [shown_node(mask_node(n, principal), node_risk(risk, n)) for n in sub.nodes]
    return {"nodes": nodes, "edges": list(sub.edges), "truncated": bool(sub.truncated)}


def shown_node(shown: Node, risk: float | None) -> dict[str, Any]:
    """A masked node as the graph answers write it."""
    return {"id": shown.id, "type": shown.type, "key": shown.key, "label": shown.label, "props": shown.props,
            "risk": risk}


def render_subgraph(sub: Subgraph, principal: Principal, risk: RiskTable) -> tuple[dict[str, Any], bytes]:
    """`subgraph_out` and its JSON body as `json_response` writes it."""
    out = subgraph_out(sub, principal, risk)
    return out, json_body(out)


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


def masked_subgraph(sub: Subgraph, principal: Principal, risk: RiskTable) -> Subgraph:
    """The subgraph with nodes masked per role and risk filled (for exports)."""
    nodes = []
    for n in sub.nodes:
        shown = mask_node(n, principal)
        nodes.append(Node(id=shown.id, type=shown.type, key=shown.key, label=shown.label, props=dict(shown.props),
                          risk=node_risk(risk, n)))
    return Subgraph(nodes=nodes, edges=list(sub.edges), truncated=sub.truncated)


_SUMMARY_KEYS = ("lead_id", "kind", "severity", "score", "persons", "practitioners", "institutions",
                 "evidence_count", "amount_at_risk", "period_start", "period_end", "explanation_zh",
                 "explanation_en", "status", "assignee", "model_probability", "expected_recovery")


def lead_summary_out(row: dict[str, Any]) -> dict[str, Any]:
    """A lead-list row in the API's summary shape."""
    out = {k: row.get(k) for k in _SUMMARY_KEYS}
    if out.get("evidence_count") is None:
        out["evidence_count"] = len(row.get("evidence") or [])
    out.update(response_clock(row, response_hours()))  # red leads: on site by, overdue (fraudnet.screening.clock)
    return out


def lead_entities(lead: dict[str, Any]) -> list[str]:
    """Node ids an audited lead read or change concerns: the lead and its persons."""
    return [f"Lead:{lead['lead_id']}"] + [f"Person:{p}" for p in lead.get("persons") or []]


__all__ += ["masked_subgraph", "lead_entities", "json_response", "json_body", "render_subgraph"]
