"""`POST /api/cypher`: read-only Cypher for admins, in Neo4j mode only (READ access mode, row limit, timeout)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fraudnet.api.deps import AuditDep, StoreDep, UnscopedAdminDep
from fraudnet.api.errors import error_responses, status_for
from fraudnet.api.schemas import CypherIn, CypherOut
from fraudnet.api.security import record_audit
from fraudnet.errors import CypherNotSupportedError, FraudnetError
from fraudnet.graph.cypher_guard import check_read_only

__all__ = ["router", "CYPHER_TIMEOUT_S"]

router = APIRouter(prefix="/api", tags=["cypher"], responses=error_responses(400, 401, 403, 409, 503))

CYPHER_TIMEOUT_S = 15.0


@router.post("/cypher", response_model=CypherOut, summary="Read-only Cypher (admin, Neo4j) / 只读 Cypher")
def cypher(body: CypherIn, audit: AuditDep, store: StoreDep, principal: UnscopedAdminDep, request: Request) -> dict:
    """Run one read-only, parameterised Cypher statement: write clauses are refused (400 naming the clause),
    the statement runs in a READ transaction with a row limit and a 15 s timeout. 409 outside Neo4j mode;
    403 for a token limited to regions or cases."""
    if not store.supports_cypher:  # a mode of the server, not a refused statement: answered before the audit
        raise CypherNotSupportedError(store.name)
    detail = {"query": body.query[:2000], "params": sorted(body.params)}
    try:
        check_read_only(body.query)
        result = store.run_read_cypher(body.query, body.params, limit=body.limit, timeout=CYPHER_TIMEOUT_S)
    except FraudnetError as exc:  # refused and failed statements are audited too
        record_audit(audit, request, principal, "cypher", [], {**detail, "refused": str(exc)[:500]},
                     status_code=status_for(exc)[0])
        raise
    record_audit(audit, request, principal, "cypher", [],
                 {**detail, "rows": len(result["rows"]), "truncated": result["truncated"]})
    return result
