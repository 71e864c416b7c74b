"""`GET /api/audit`: the append-only audit log (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from fraudnet.api.deps import AuditDep, ConDep, UnscopedAdminDep
from fraudnet.api.errors import error_responses
from fraudnet.api.present import naive
from fraudnet.api.schemas import AuditOut
from fraudnet.claims.audit import query_audit, verify_audit

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["audit"], responses=error_responses(400, 401, 403))


@router.get("/audit", response_model=AuditOut, summary="Audit log / 审计日志")
def audit(audit_log: AuditDep, con: ConDep, principal: UnscopedAdminDep,
          user: Annotated[str | None, Query(max_length=64)] = None,
          entity: Annotated[str | None, Query(max_length=200, description="node id, e.g. Person:P0001")] = None,
          action: Annotated[str | None, Query(max_length=64)] = None,
          since: datetime | None = None,
          until: datetime | None = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
          verify: bool = False) -> dict:
    """Who read or changed what and when, newest first; `verify=true` also checks the keyed chain and its
    checkpoints (`chain`: ok, the first bad entry and the reason)."""
    audit_log.flush()  # entries queued by earlier requests are written first
    entries = query_audit(con, user=user or None, entity=entity or None, action=action or None,
                          since=naive(since), until=naive(until), limit=limit)
    chain = verify_audit(con).to_dict() if verify else None
    return {"items": [e.to_dict() for e in entries], "chain_ok": chain["ok"] if chain else None, "chain": chain}
