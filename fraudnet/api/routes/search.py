"""`GET /api/search`: entities by key or (for roles that see names) by name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from fraudnet.api.deps import AuditDep, ScopesDep, UserDep
from fraudnet.api.errors import error_responses
from fraudnet.api.principal import masked_props, person_ids
from fraudnet.api.schemas import SearchOut
from fraudnet.api.security import record_audit

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["search"], responses=error_responses(401))

_NAME_PROP = {"Person": "psn_name", "Practitioner": "prac_psn_name"}


@router.get("/search", response_model=SearchOut, summary="Search entities / 搜索实体")
def search(audit: AuditDep, scopes: ScopesDep, principal: UserDep, request: Request,
           q: Annotated[str, Query(min_length=1, max_length=100)],
           limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
    """Entities whose key starts with `q` or whose name contains it. Viewers search by key only and see
    masked names."""
    hits = scopes.search(principal, q, limit, by_name=principal.sees_pii)
    if not principal.sees_pii:
        for h in hits:
            prop = _NAME_PROP.get(h["type"])
            if prop and h["label"] != h["key"]:
                h["label"] = masked_props({prop: h["label"]})[prop]
    persons = person_ids(h["id"] for h in hits)
    if persons:
        record_audit(audit, request, principal, "search", persons, {"q": q, "hits": len(hits)})
    return {"query": q, "items": hits}
