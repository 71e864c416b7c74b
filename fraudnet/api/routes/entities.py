"""Entities: profile with risk, timeline of visits, leads involving the entity."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from fraudnet.api.deps import AuditDep, RiskDep, ScopedLeadsDep, ScopedStoreDep, UserDep
from fraudnet.api.errors import error_responses
from fraudnet.api.present import lead_summary_out, naive, parse_node_id
from fraudnet.api.principal import mask_profile
from fraudnet.api.schemas import EntityLeadsOut, EntityOut, TimelineOut
from fraudnet.api.security import record_audit
from fraudnet.errors import InvalidRequestError

__all__ = ["router"]

router = APIRouter(prefix="/api/entities", tags=["entities"], responses=error_responses(400, 401, 404))

NodeId = Annotated[str, Path(min_length=3, max_length=200, description="Type:key, e.g. Person:P0001")]


def _audited_entities(node: str, extra: list[str] | None = None) -> list[str]:
    return [node, *(extra or [])]


@router.get("/{node_id}", response_model=EntityOut, summary="Entity profile and risk / 实体画像与风险")
def entity(node_id: NodeId, audit: AuditDep, risk: RiskDep, store: ScopedStoreDep, principal: UserDep,
           request: Request) -> dict:
    """Properties (masked for viewers), activity figures and risk from the active leads."""
    node_type, key = parse_node_id(node_id)
    profile = mask_profile(store.profile(node_id), principal)
    found = risk.lookup(node_type, key) or {"score": 0.0, "leads": 0, "amount_at_risk": 0.0, "top_kinds": []}
    extra = [f"Person:{k}" for k in (profile.stats or {}).get("person_keys", [])[:100]]
    record_audit(audit, request, principal, "entity.profile", _audited_entities(node_id, extra))
    return {"profile": asdict(profile), "risk": found}


@router.get("/{node_id}/timeline", response_model=TimelineOut, summary="Visit timeline / 就诊时间线")
def timeline(node_id: NodeId, audit: AuditDep, store: ScopedStoreDep, principal: UserDep, request: Request,
             since: datetime | None = None, until: datetime | None = None,
             limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
    """Visits involving the entity in [since, until), oldest first."""
    parse_node_id(node_id)
    since, until = naive(since), naive(until)
    if since and until and until < since:
        raise InvalidRequestError(f"until {until} is before since {since}", field="until")
    events = store.timeline(node_id, since=since, until=until, limit=limit)
    persons = sorted({f"Person:{e.psn_no}" for e in events if e.psn_no})
    record_audit(audit, request, principal, "entity.timeline", _audited_entities(node_id, persons),
                 {"events": len(events)})
    return {"node_id": node_id, "items": [asdict(e) for e in events], "limit": limit}


@router.get("/{node_id}/leads", response_model=EntityLeadsOut, summary="Leads involving the entity / 相关线索")
def entity_leads(node_id: NodeId, audit: AuditDep, leads: ScopedLeadsDep, principal: UserDep,
                 request: Request) -> dict:
    """Active leads naming the person, practitioner or institution/pharmacy, highest score first."""
    node_type, key = parse_node_id(node_id)
    if node_type not in ("Person", "Practitioner", "Institution", "Pharmacy"):
        return {"node_id": node_id, "items": []}
    rows = leads.leads_for_entity(node_type, key)
    if node_type == "Person":
        record_audit(audit, request, principal, "entity.leads", [node_id], {"leads": len(rows)})
    return {"node_id": node_id, "items": [lead_summary_out(r) for r in rows]}
