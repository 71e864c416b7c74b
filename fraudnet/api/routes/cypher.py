"""`POST /api/cypher`: read-only Cypher for admins, in Neo4j mode only (READ access mode, row limit, timeout)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fraudnet.api.deps import CtxDep, StoreDep
from fraudnet.api.errors import error_responses, status_for
from fraudnet.api.schemas import CypherIn, CypherOut
from fraudnet.api.scope import UnscopedAdminDep
from fraudnet.api.security import record_audit
from fraudnet.errors import ConfigError, FraudnetError
from fraudnet.graph.cypher_guard import check_read_only

__all__ = ["router", "CYPHER_TIMEOUT_S"]

router = APIRouter(prefix="/api", tags=["cypher"], responses=error_responses(400, 401, 403, 409, 503))

CYPHER_TIMEOUT_S = 15.0


@router.post("/cypher", response_model=CypherOut, summary="Read-only Cypher (admin, Neo4j) / 只读 Cypher")
def cypher(body: CypherIn, ctx: CtxDep, store: StoreDep, principal: UnscopedAdminDep, request: Request) -> dict:
    """Run one read-only, parameterised Cypher statement: write clauses are refused (400 naming the clause),
    the statement runs in a READ transaction with a row limit and a 15 s timeout. 409 outside Neo4j mode;
    403 for a token limited to regions or cases."""
    if ctx.store_name != "neo4j":
        raise ConfigError("Cypher needs the Neo4j graph store; this server uses the embedded store "
                          "(set NEO4J_URI or start `fraudnet neo4j start`) / 仅 Neo4j 模式支持 Cypher 查询")
    detail = {"query": body.query[:2000], "params": sorted(body.params)}
    try:
        check_read_only(body.query)
        result = store.run_read_cypher(body.query, body.params, limit=body.limit,  # type: ignore[attr-defined]
                                       timeout=CYPHER_TIMEOUT_S)
    except FraudnetError as exc:  # refused and failed statements are audited too
        record_audit(ctx, request, principal, "cypher", [], {**detail, "refused": str(exc)[:500]},
                     status_code=status_for(exc)[0])
        raise
    record_audit(ctx, request, principal, "cypher", [],
                 {**detail, "rows": len(result["rows"]), "truncated": result["truncated"]})
    return result
