"""Lead charts by evidence-first recipe (`GET /api/charts/lead/{lead_id}`): what proves each scheme."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from fraudnet.api.deps import AuditDep, RiskDep, ScopedLeadsDep, ScopedStoreDep, UserDep
from fraudnet.api.errors import error_responses
from fraudnet.api.masking import mask_chart_nodes_for
from fraudnet.api.present import LEAD_ID_PATTERN, json_response, subgraph_out
from fraudnet.api.principal import person_ids
from fraudnet.api.schemas import SubgraphOut
from fraudnet.api.security import record_audit
from fraudnet.viz.communities import annotate_communities
from fraudnet.viz.recipes import lead_chart

__all__ = ["router"]

router = APIRouter(prefix="/api/charts", tags=["charts"], responses=error_responses(400, 401, 404))


@router.get("/lead/{lead_id}", response_model=SubgraphOut, summary="A lead's evidence-first chart / 线索证据图")
def lead_chart_route(lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)], audit: AuditDep, risk: RiskDep,
                     store: ScopedStoreDep, leads: ScopedLeadsDep, principal: UserDep, request: Request) -> Response:
    """The lead drawn by its kind's recipe: rings with shared phones/addresses and co-admission occasions,
    skimming with operators and bursts, resale with the drug (quantities, days of supply); evidence visits
    summarised into links whose `props.visit_ids` list them. Above 400 nodes every node also carries its
    community (`props.community`, `community_size`, `community_head`), by which the browser groups the chart."""
    lead = leads.require(lead_id)
    sub = lead_chart(lead, store, leads.con)
    out = annotate_communities(mask_chart_nodes_for(subgraph_out(sub, principal, risk.table()), principal))
    record_audit(audit, request, principal, "lead.chart", [f"Lead:{lead_id}"] + person_ids(n.id for n in sub.nodes),
                 {"nodes": len(out["nodes"]), "edges": len(out["edges"])})
    return json_response(out)
