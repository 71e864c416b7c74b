"""`GET /api/health`: liveness, version and which graph store answers (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter

from fraudnet import __version__
from fraudnet.api.deps import EgoDep, StoreDep
from fraudnet.api.schemas import HealthOut

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Service health / 服务状态")
def health(store: StoreDep, ego: EgoDep) -> HealthOut:
    """Status, version, the graph store in use, whether Neo4j is configured and reachable, and the state of its
    in-memory projection (ego networks)."""
    status = store.status()
    return HealthOut(status="ok", version=__version__, store=status.store,
                     neo4j={"configured": bool(status.uri), "reachable": status.reachable, "uri": status.uri,
                            "projection": status.projection},
                     graph_workers=ego.workers_alive)
