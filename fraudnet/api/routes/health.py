"""`GET /api/health`: liveness, version and which graph store answers (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter

from fraudnet import __version__
from fraudnet.api.deps import CtxDep
from fraudnet.api.schemas import HealthOut

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Service health / 服务状态")
def health(ctx: CtxDep) -> HealthOut:
    """Status, version, the graph store in use, whether Neo4j is configured and reachable, and the state of its
    in-memory projection (ego networks)."""
    store = "neo4j" if ctx.store_name == "neo4j" else "embedded"
    uri = ctx.neo4j_uri()
    status = getattr(ctx.graph, "projection_status", None)
    return HealthOut(status="ok", version=__version__, store=store,
                     neo4j={"configured": bool(uri), "reachable": ctx.neo4j_reachable() if uri else False,
                            "uri": uri, "projection": status() if status is not None else None},
                     graph_workers=ctx.graph_workers.alive if ctx.graph_workers is not None else 0)
