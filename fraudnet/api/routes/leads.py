"""Leads (线索): the queue with filters, one lead with its evidence, case actions, and the lead's subgraph."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from fraudnet.api.deps import AuditDep, ClaimsDep, EditorDep, LeadsDep, RiskDep, ScopedLeadsDep, ScopedStoreDep, UserDep
from fraudnet.api.errors import error_responses
from fraudnet.api.lead_clock import renew_at_deadlines, with_clock
from fraudnet.api.lead_graph import lead_subgraph
from fraudnet.api.masking import mask_lead_for
from fraudnet.api.present import (
    LEAD_ID_PATTERN,
    json_body,
    json_response,
    lead_entities,
    lead_summary_out,
    subgraph_out,
)
from fraudnet.api.principal import Principal, person_ids
from fraudnet.api.schemas import (
    AssignIn,
    KindCountOut,
    LeadOut,
    LeadPageOut,
    NoteIn,
    StatusIn,
    SubgraphOut,
)
from fraudnet.api.scope import ScopedLeads
from fraudnet.api.security import record_audit

__all__ = ["router"]

router = APIRouter(prefix="/api/leads", tags=["leads"], responses=error_responses(400, 401, 404))

LeadId = Annotated[str, Path(pattern=LEAD_ID_PATTERN, description="Lead id, e.g. L3F2A…")]


def _detail(store: ScopedLeads, lead_id: str) -> dict:
    lead = with_clock(store.require(lead_id))
    lead["evidence_visits"] = store.evidence_visits(lead.get("evidence") or [])
    return lead


@router.get("", response_model=LeadPageOut, summary="Lead queue / 线索列表")
def list_leads(
    audit: AuditDep, leads: ScopedLeadsDep, queries: LeadsDep, principal: UserDep, request: Request,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    severity: Annotated[str | None, Query(max_length=100, description="comma list of red, orange, yellow")] = None,
    institution: Annotated[str | None, Query(max_length=100)] = None,
    person: Annotated[str | None, Query(max_length=100)] = None,
    practitioner: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    min_amount: Annotated[float | None, Query(ge=0, le=1e15)] = None,
    sort: Annotated[str, Query(max_length=30, description="priority (expected recovery once a model has scored "
                                                          "the leads, else score), score, expected_recovery, amount, "
                                                          "severity, period_start, period_end; prefix - for "
                                                          "descending")] = "-priority",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """Active leads matching the filters, sorted and paginated."""
    sev = [s.strip() for s in severity.split(",") if s.strip()] if severity else None

    if not principal.sees_pii:  # viewers: person numbers masked, past the shared page cache
        rows, total = leads.list(kind=kind or None, severity=sev, institution=institution or None,
                                 person=person or None, practitioner=practitioner or None, status=status or None,
                                 date_from=date_from, date_to=date_to, min_amount=min_amount, sort=sort,
                                 offset=(page - 1) * page_size, limit=page_size)
        items = [mask_lead_for(lead_summary_out(r), principal) for r in rows]
        body = json_body({"items": items, "total": total, "page": page, "page_size": page_size})
    else:
        renew_at_deadlines(queries)  # cached items carry `overdue`: renewed when a response deadline passes
        body, total = leads.lead_page(
            lambda row: json_body(lead_summary_out(row)), {"page": page, "page_size": page_size},
            kind=kind or None, severity=sev, institution=institution or None, person=person or None,
            practitioner=practitioner or None, status=status or None, date_from=date_from, date_to=date_to,
            min_amount=min_amount, sort=sort, offset=(page - 1) * page_size, limit=page_size)
    if person:
        record_audit(audit, request, principal, "leads.list", [f"Person:{person}"],
                     {"filter": "person", "results": total})
    return Response(body, media_type="application/json")


@router.get("/kinds", response_model=list[KindCountOut], summary="Lead kinds with counts / 线索类型统计")
def lead_kinds(leads: ScopedLeadsDep, principal: UserDep) -> list[dict]:
    """Active lead counts per kind, with the red/orange/yellow split."""
    return leads.kinds()


@router.get("/{lead_id}", response_model=LeadOut, summary="One lead / 线索详情")
def get_lead(lead_id: LeadId, audit: AuditDep, leads: ScopedLeadsDep, principal: UserDep,
             request: Request) -> dict:
    """All contract fields, features, status, assignee, notes, history and the evidence visits."""
    lead = _detail(leads, lead_id)
    record_audit(audit, request, principal, "lead.read", lead_entities(lead),
                 {"evidence_visits": len(lead["evidence_visits"])})
    return mask_lead_for(lead, principal)


class _CaseChange:
    """What a case change uses: the scoped lead store, the write lock, the lead caches and the audit log."""

    def __init__(self, leads: ScopedLeadsDep, claims: ClaimsDep, queries: LeadsDep, audit: AuditDep) -> None:
        self.leads, self.claims, self.queries, self.audit = leads, claims, queries, audit


CaseChangeDep = Annotated[_CaseChange, Depends(_CaseChange)]


def _change(case: _CaseChange, principal: Principal, request: Request, lead_id: str, action: str,
            fn: Callable[[ScopedLeads], object], detail: dict) -> dict:
    """Apply one case change under the write lock, then audit it with the status before and after."""
    store = case.leads
    with case.claims.writing():
        before = store.require(lead_id)
        try:
            fn(store)
        finally:
            case.queries.changed()
    lead = _detail(store, lead_id)
    record_audit(case.audit, request, principal, action, lead_entities(lead),
                 {"from": before.get("status"), "to": lead.get("status"), **detail})
    return lead


@router.post("/{lead_id}/status", response_model=LeadOut, responses=error_responses(403, 503),
             summary="Change a lead's status / 变更线索状态")
def set_status(lead_id: LeadId, body: StatusIn, case: CaseChangeDep, principal: EditorDep,
               request: Request) -> dict:
    """new → reviewing → confirmed | dismissed | referred (reopen to reviewing). Investigators and admins."""
    return _change(case, principal, request, lead_id, "lead.status",
                   lambda s: s.set_status(lead_id, body.status, principal.user, body.comment),
                   {"comment": body.comment})


@router.post("/{lead_id}/assign", response_model=LeadOut, responses=error_responses(403, 503),
             summary="Assign a lead / 分派线索")
def assign(lead_id: LeadId, body: AssignIn, case: CaseChangeDep, principal: EditorDep,
           request: Request) -> dict:
    """Set or clear (null) the assignee. Investigators and admins."""
    return _change(case, principal, request, lead_id, "lead.assign",
                   lambda s: s.assign(lead_id, body.assignee, principal.user), {"assignee": body.assignee})


@router.post("/{lead_id}/notes", response_model=LeadOut, responses=error_responses(403, 503),
             summary="Add a note / 添加备注")
def add_note(lead_id: LeadId, body: NoteIn, case: CaseChangeDep, principal: EditorDep,
             request: Request) -> dict:
    """Append a note (notes are never edited or deleted). Investigators and admins."""
    return _change(case, principal, request, lead_id, "lead.note",
                   lambda s: s.add_note(lead_id, body.text, principal.user), {"chars": len(body.text)})


@router.get("/{lead_id}/graph", response_model=SubgraphOut, summary="The lead's subgraph / 线索关系图")
def lead_graph(lead_id: LeadId, audit: AuditDep, risk: RiskDep, store: ScopedStoreDep, leads: ScopedLeadsDep,
               principal: UserDep, request: Request, include_visits: bool = True) -> Response:
    """The lead's members, the relationships among them, its evidence visits (`props.evidence = true`) and,
    with `include_visits`, the other visits connecting members."""
    found = lead_subgraph(leads, store, lead_id, include_visits)
    out = subgraph_out(found.subgraph, principal, risk.table())
    record_audit(audit, request, principal, "lead.graph",
                 [f"Lead:{lead_id}"] + person_ids(n["id"] for n in out["nodes"]),
                 {"nodes": len(out["nodes"]), "edges": len(out["edges"])})
    return json_response(out)
