"""Exports: leads (CSV/XLSX/JSONL, the contract's columns), entity risk scores, subgraphs (GraphML/JSON)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from fraudnet.api.deps import AuditDep, RiskDep, ScopedLeadsDep, ScopedStoreDep, UserDep
from fraudnet.api.errors import error_responses
from fraudnet.api.lead_graph import lead_subgraph
from fraudnet.api.lead_queries import RiskIndex
from fraudnet.api.masking import mask_lead_for, mask_psn_no, pseudonymise_subgraph
from fraudnet.api.present import LEAD_ID_PATTERN, masked_subgraph, parse_node_id
from fraudnet.api.principal import Principal, person_ids
from fraudnet.api.schemas import SubgraphExportIn
from fraudnet.api.security import record_audit
from fraudnet.claims.audit import AuditLog
from fraudnet.exports.graphml import GRAPHML_MEDIA_TYPE, subgraph_to_graphml, subgraph_to_json
from fraudnet.exports.leads import leads_to_bytes
from fraudnet.exports.scores import scores_to_bytes
from fraudnet.graph.model import NODE_TYPES, Subgraph

__all__ = ["router"]

router = APIRouter(prefix="/api/exports", tags=["exports"], responses=error_responses(400, 401, 404))

MAX_EXPORT_LEADS = 100_000
_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "graphml": GRAPHML_MEDIA_TYPE,
    "json": "application/json",
}


def _download(data: bytes, stem: str, fmt: str) -> Response:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(content=data, media_type=_MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{stem}-{stamp}.{fmt}"'})


@router.get("/leads", summary="Export leads / 导出线索", response_class=Response,
            responses={200: {"description": "The leads file", "content": {
                "text/csv": {}, "application/x-ndjson": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}})
def export_leads(
    audit: AuditDep, leads: ScopedLeadsDep, principal: UserDep, request: Request,
    format: Literal["csv", "xlsx", "jsonl"] = "csv",
    kind: Annotated[str | None, Query(max_length=100)] = None,
    severity: Annotated[str | None, Query(max_length=100)] = None,
    institution: Annotated[str | None, Query(max_length=100)] = None,
    person: Annotated[str | None, Query(max_length=100)] = None,
    practitioner: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    min_amount: Annotated[float | None, Query(ge=0, le=1e15)] = None,
    sort: Annotated[str, Query(max_length=30)] = "-priority",
) -> Response:
    """The leads matching the list filters, with the contract's columns (CSV in UTF-8 with BOM for Excel)."""
    sev = [s.strip() for s in severity.split(",") if s.strip()] if severity else None
    rows, total = leads.list(
        kind=kind or None, severity=sev, institution=institution or None, person=person or None,
        practitioner=practitioner or None, status=status or None, date_from=date_from, date_to=date_to,
        min_amount=min_amount, sort=sort, offset=0, limit=MAX_EXPORT_LEADS)
    data = leads_to_bytes([mask_lead_for(r, principal) for r in rows], format)
    persons = sorted({f"Person:{p}" for r in rows for p in r.get("persons") or []})
    record_audit(audit, request, principal, "export.leads", persons,
                 {"format": format, "leads": len(rows), "total": total})
    return _download(data, "fraudnet-leads", format)


@router.get("/scores", summary="Export entity risk scores / 导出风险评分", response_class=Response,
            responses={200: {"description": "The scores file", "content": {
                "text/csv": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}})
def export_scores(audit: AuditDep, leads: ScopedLeadsDep, principal: UserDep, request: Request,
                  format: Literal["csv", "xlsx"] = "csv") -> Response:
    """Risk per person, practitioner and institution from the active leads."""
    frame = leads.entity_scores()
    persons = [f"Person:{k}" for k in frame.loc[frame["entity_type"] == "Person", "entity_id"].astype(str)]
    if not principal.sees_pii:  # viewers: person numbers masked
        frame = frame.copy()
        is_person = frame["entity_type"] == "Person"
        frame.loc[is_person, "entity_id"] = frame.loc[is_person, "entity_id"].astype(str).map(mask_psn_no)
    data = scores_to_bytes(frame, format)
    record_audit(audit, request, principal, "export.scores", persons, {"format": format, "rows": len(frame)})
    return _download(data, "fraudnet-scores", format)


def _subgraph_file(audit: AuditLog, risk: RiskIndex, principal: Principal, request: Request, sub: Subgraph,
                   fmt: str, stem: str, detail: dict) -> Response:
    shown = pseudonymise_subgraph(masked_subgraph(sub, principal, risk.table()), principal)
    data = subgraph_to_graphml(shown) if fmt == "graphml" else subgraph_to_json(shown)
    record_audit(audit, request, principal, "export.subgraph", person_ids(n.id for n in sub.nodes),
                 {"format": fmt, "nodes": len(sub.nodes), "edges": len(sub.edges), **detail})
    return _download(data, stem, fmt)


_SUB_RESPONSES = {200: {"description": "GraphML or JSON file", "content": {GRAPHML_MEDIA_TYPE: {},
                                                                              "application/json": {}}}}


@router.get("/subgraph", summary="Export a lead's subgraph / 导出线索子图", response_class=Response,
            responses=_SUB_RESPONSES)
def export_lead_subgraph(
    audit: AuditDep, risk: RiskDep, store: ScopedStoreDep, leads: ScopedLeadsDep, principal: UserDep,
    request: Request, lead_id: Annotated[str, Query(pattern=LEAD_ID_PATTERN)],
    format: Literal["graphml", "json"] = "graphml",
    include_visits: bool = True,
) -> Response:
    """The lead's members, relationships and evidence visits as GraphML (Gephi, i2, Bloom) or JSON."""
    sub = lead_subgraph(leads, store, lead_id, include_visits).subgraph
    return _subgraph_file(audit, risk, principal, request, sub, format, f"fraudnet-{lead_id}", {"lead_id": lead_id})


@router.post("/subgraph", summary="Export a subgraph of entities / 导出子图", response_class=Response,
             responses=_SUB_RESPONSES)
def export_subgraph(body: SubgraphExportIn, audit: AuditDep, risk: RiskDep, store: ScopedStoreDep,
                    principal: UserDep, request: Request) -> Response:
    """The given entities, the relationships among them and (optionally) the visits connecting them."""
    for i, nid in enumerate(body.node_ids):
        parse_node_id(nid, f"node_ids[{i}]", types=[t for t in NODE_TYPES if t not in ("Visit", "Lead")])
    sub = store.subgraph(body.node_ids, include_visits=body.include_visits)
    return _subgraph_file(audit, risk, principal, request, sub, body.format, "fraudnet-subgraph",
                          {"members": len(body.node_ids)})
