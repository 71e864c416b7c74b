"""Subgraph exports: GraphML with typed attribute keys (Gephi, i2 Analyst's Notebook, Neo4j Bloom) and JSON.

GraphML layout: one `<key>` per attribute with `attr.type` inferred from the values (`boolean`, `long`,
`double`, else `string`); node attributes `type`, `key`, `label`, `risk` and every `props` entry (prefixed
names never clash: a prop called `type` is written as `prop_type`); edge attributes `type`, `visits`,
`amount`, `first`, `last` and the edge props. Datetimes are ISO 8601 strings, lists and dicts JSON text.
Node ids are the graph-wide `Type:key` ids, so charts exported twice merge cleanly on import.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from xml.etree import ElementTree as ET

from fraudnet.graph.model import Edge, Node, Subgraph

__all__ = ["subgraph_to_graphml", "subgraph_to_json", "GRAPHML_MEDIA_TYPE"]

GRAPHML_MEDIA_TYPE = "application/graphml+xml"
_NS = "http://graphml.graphdrawing.org/xmlns"
_NODE_FIXED = ("type", "key", "label", "risk")
_EDGE_FIXED = ("type", "visits", "amount", "first", "last")


def _plain(value: Any) -> Any:
    """JSON-friendly value: datetimes as ISO strings, numpy scalars as Python numbers."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, list | tuple | dict | str):
        try:
            return value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _graphml_type(values: Iterable[Any]) -> str:
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("boolean")
        elif isinstance(v, int):
            kinds.add("long")
        elif isinstance(v, float):
            kinds.add("double")
        else:
            kinds.add("string")
    if kinds == {"boolean"}:
        return "boolean"
    if kinds == {"long"}:
        return "long"
    if kinds and kinds <= {"long", "double"}:
        return "double"
    return "string"


def _text(value: Any, gtype: str) -> str:
    if gtype == "boolean":
        return "true" if value else "false"
    if gtype == "long":
        return str(int(value))
    if gtype == "double":
        return repr(float(value))
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _node_attrs(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"type": node.type, "key": node.key, "label": node.label, "risk": node.risk}
    for k, v in (node.props or {}).items():
        out[f"prop_{k}" if k in _NODE_FIXED else str(k)] = _plain(v)
    return out


def _edge_attrs(edge: Edge) -> dict[str, Any]:
    out: dict[str, Any] = {"type": edge.type, "visits": int(edge.visits or 0), "amount": float(edge.amount or 0.0),
                           "first": _plain(edge.first), "last": _plain(edge.last)}
    for k, v in (edge.props or {}).items():
        out[f"prop_{k}" if k in _EDGE_FIXED else str(k)] = _plain(v)
    return out


def _declare_keys(root: ET.Element, domain: str, rows: list[dict[str, Any]], prefix: str) -> dict[str, tuple[str, str]]:
    names: list[str] = []
    for row in rows:
        for name in row:
            if name not in names:
                names.append(name)
    keys: dict[str, tuple[str, str]] = {}
    for i, name in enumerate(names):
        gtype = _graphml_type(row.get(name) for row in rows)
        key_id = f"{prefix}{i}"
        ET.SubElement(root, "key", {"id": key_id, "for": domain, "attr.name": name, "attr.type": gtype})
        keys[name] = (key_id, gtype)
    return keys


def _add_data(parent: ET.Element, attrs: dict[str, Any], keys: dict[str, tuple[str, str]]) -> None:
    for name, value in attrs.items():
        if value is None:
            continue
        key_id, gtype = keys[name]
        data = ET.SubElement(parent, "data", {"key": key_id})
        data.text = _text(value, gtype)


def subgraph_to_graphml(sub: Subgraph, graph_id: str = "fraudnet") -> bytes:
    """The subgraph as a GraphML document (UTF-8 bytes) with typed node and edge attribute keys."""
    ET.register_namespace("", _NS)
    root = ET.Element("graphml", {"xmlns": _NS})
    node_rows = [_node_attrs(n) for n in sub.nodes]
    edge_rows = [_edge_attrs(e) for e in sub.edges]
    node_keys = _declare_keys(root, "node", node_rows, "n")
    edge_keys = _declare_keys(root, "edge", edge_rows, "e")
    graph = ET.SubElement(root, "graph", {"id": graph_id, "edgedefault": "directed"})
    present = set()
    for node, attrs in zip(sub.nodes, node_rows, strict=True):
        if node.id in present:
            continue
        present.add(node.id)
        el = ET.SubElement(graph, "node", {"id": node.id})
        _add_data(el, attrs, node_keys)
    for edge, attrs in zip(sub.edges, edge_rows, strict=True):
        if edge.source not in present or edge.target not in present:
            continue  # GraphML readers reject edges to undeclared nodes
        el = ET.SubElement(graph, "edge", {"id": edge.id, "source": edge.source, "target": edge.target})
        _add_data(el, attrs, edge_keys)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    # ElementTree writes the default namespace itself; keep a single xmlns attribute.
    body = body.replace(f' xmlns="{_NS}" xmlns="{_NS}"', f' xmlns="{_NS}"')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def subgraph_to_json(sub: Subgraph) -> bytes:
    """The subgraph as JSON (`{nodes, edges, truncated}`, the API's shape), UTF-8 bytes."""
    return json.dumps(_plain(sub.to_dict()), ensure_ascii=False, indent=1).encode("utf-8")
