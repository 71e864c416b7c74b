"""Person numbers (psn_no) as viewers see them: masked in lead answers, chart answers and exported graphs.

Names, certno and phones are masked by `security.mask_node`/`masked_props`; this module adds the person number
itself, which also appears in lead member lists, features, explanations, evidence rows and node keys/ids.
Viewers get `3101************6404` in text and a stable opaque id `Person:~<16 hex>` in exported graphs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from fraudnet.api.security import Principal
from fraudnet.graph.model import Edge, Node, Subgraph

__all__ = ["mask_psn_no", "mask_lead_for", "mask_chart_nodes_for", "pseudonymise_subgraph", "mask_text"]


def mask_psn_no(value: Any) -> Any:
    """`31010001015852496404` → `3101************6404` (first and last 4 kept); other values unchanged."""
    if not isinstance(value, str) or not value or "*" in value:
        return value
    if len(value) <= 8:
        return "*" * (len(value) - 2) + value[-2:]
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_text(text: Any, psn_nos: Iterable[str]) -> Any:
    """`text` with each of the person numbers replaced by its masked form."""
    if not isinstance(text, str) or not text:
        return text
    nos = sorted({str(p) for p in psn_nos if p}, key=len, reverse=True)
    if not nos:
        return text
    pattern = re.compile("|".join(re.escape(p) for p in nos))
    return pattern.sub(lambda m: mask_psn_no(m.group(0)), text)


def _mask_any(value: Any, nos: set[str]) -> Any:
    """Person numbers masked anywhere inside a JSON-like value (features, raised snapshot)."""
    if isinstance(value, str):
        if value in nos:
            return mask_psn_no(value)
        if value.startswith("Person:") and value[7:] in nos:
            return "Person:" + mask_psn_no(value[7:])
        return mask_text(value, nos) if any(n in value for n in nos) else value
    if isinstance(value, list | tuple):
        return [_mask_any(v, nos) for v in value]
    if isinstance(value, dict):
        return {k: _mask_any(v, nos) for k, v in value.items()}
    return value


def mask_lead_for(lead: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """The lead (summary or detail dict) as `principal` may see it: for viewers every person number masked in
    the member list, features, explanations, notes, evidence rows and the raised snapshot."""
    if principal.sees_pii:
        return lead
    nos = {str(p) for p in lead.get("persons") or [] if p}
    nos |= {str(v.get("psn_no")) for v in lead.get("evidence_visits") or [] if v.get("psn_no")}
    if not nos:
        return lead
    out = dict(lead)
    for key, value in lead.items():
        if key in ("lead_id", "kind", "severity", "status", "evidence"):
            continue
        out[key] = _mask_any(value, nos)
    return out


def mask_chart_nodes_for(out: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A chart answer (`{nodes, edges, …}` dicts) with Person keys masked for viewers (ids stay: the chart needs
    them to ask for neighbours; they are not shown)."""
    if principal.sees_pii:
        return out
    for n in out.get("nodes") or []:
        if "psn_no" in (n.get("props") or {}):  # visits name their person
            n["props"] = {**n["props"], "psn_no": mask_psn_no(n["props"]["psn_no"])}
        if n.get("type") == "Person":
            n["key"] = mask_psn_no(n.get("key"))
            if n.get("label") and n["label"] == n.get("id", "")[7:]:
                n["label"] = n["key"]
            props = dict(n.get("props") or {})
            if "psn_no" in props:
                props["psn_no"] = mask_psn_no(props["psn_no"])
            n["props"] = props
    return out


def _opaque(nid: str) -> str:
    return "Person:~" + hashlib.sha256(nid.encode("utf-8")).hexdigest()[:16]


def pseudonymise_subgraph(sub: Subgraph, principal: Principal) -> Subgraph:
    """For viewers: Person ids replaced by opaque ids, keys masked, in nodes and edge ends (exported files)."""
    if principal.sees_pii:
        return sub
    ids = {n.id: _opaque(n.id) for n in sub.nodes if n.type == "Person"}

    def node(n: Node) -> Node:
        props = {k: (mask_psn_no(v) if k == "psn_no" else v) for k, v in (n.props or {}).items()}
        if n.id not in ids:
            return replace(n, props=props) if "psn_no" in (n.props or {}) else n
        key = mask_psn_no(n.key)
        return replace(n, id=ids[n.id], key=key, label=key if n.label == n.key else n.label, props=props)

    def edge(e: Edge) -> Edge:
        s, t = ids.get(e.source, e.source), ids.get(e.target, e.target)
        if s == e.source and t == e.target:
            return e
        return replace(e, id=f"{e.type}:{s}->{t}", source=s, target=t)

    return Subgraph(nodes=[node(n) for n in sub.nodes], edges=[edge(e) for e in sub.edges], truncated=sub.truncated)
