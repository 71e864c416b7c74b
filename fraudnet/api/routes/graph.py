"""Graph queries: ego network, shortest paths between two entities, subgraph of chosen entities."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from fraudnet.api.deps import AuditDep, EgoDep, RiskDep, ScopedStoreDep, UserDep
from fraudnet.api.ego import EgoQuery
from fraudnet.api.errors import error_responses
from fraudnet.api.present import edge_out, json_response, naive, node_out, parse_node_id, parse_types, subgraph_out
from fraudnet.api.principal import person_ids
from fraudnet.api.schemas import PathsOut, SubgraphIn, SubgraphOut
from fraudnet.api.security import record_audit
from fraudnet.errors import InvalidRequestError
from fraudnet.graph.model import DEFAULT_NODE_CAP, MAX_DEPTH, MAX_NODE_CAP, NODE_TYPES
from fraudnet.viz.communities import annotate_communities

__all__ = ["router"]

router = APIRouter(prefix="/api/graph", tags=["graph"], responses=error_responses(400, 401, 404))

MAX_PATH_DEPTH = 6
MAX_PATHS = 10


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    since, until = naive(since), naive(until)
    if since and until and until < since:
        raise InvalidRequestError(f"until {until} is before since {since}", field="until")
    return since, until


@router.get("/ego/{node_id}", response_model=SubgraphOut, summary="Ego network / 关系网络")
async def ego(
    node_id: Annotated[str, Path(min_length=3, max_length=200)], ego_service: EgoDep, audit: AuditDep,
    principal: UserDep, request: Request,
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 1,
    types: Annotated[str | None, Query(max_length=200, description="comma list, e.g. Person,Institution")] = None,
    since: datetime | None = None, until: datetime | None = None,
    max_nodes: Annotated[int, Query(ge=1, le=MAX_NODE_CAP)] = DEFAULT_NODE_CAP,
) -> Response:
    """Entities within `depth` hops (1–3), optionally only of `types` and over visits in [since, until),
    at most `max_nodes` (≤ 5000; `truncated` says the cap was hit)."""
    parse_node_id(node_id)
    node_types = parse_types(types)
    since, until = _window(since, until)
    answer = await ego_service.answer(EgoQuery(node_id, depth, node_types, since, until, max_nodes), principal)
    if answer.person_ids:
        record_audit(audit, request, principal, "graph.ego", [node_id, *answer.person_ids],
                     {"depth": depth, "nodes": answer.nodes, "truncated": answer.truncated})
    return Response(answer.body, media_type="application/json")


@router.get("/paths", response_model=PathsOut, summary="Shortest paths / 最短路径")
def paths(
    audit: AuditDep, risk: RiskDep, store: ScopedStoreDep, principal: UserDep, request: Request,
    source: Annotated[str, Query(min_length=3, max_length=200)],
    target: Annotated[str, Query(min_length=3, max_length=200)],
    max_depth: Annotated[int, Query(ge=1, le=MAX_PATH_DEPTH)] = 4,
) -> Response:
    """All shortest paths (at most 10) between two entities over the entity graph."""
    parse_node_id(source, "source")
    parse_node_id(target, "target")
    found = store.shortest_paths(source, target, max_depth=max_depth, max_paths=MAX_PATHS)
    ids = list(dict.fromkeys(n for p in found for n in p.nodes)) or [source, target]
    sub = store.subgraph(ids, include_visits=False)
    table = risk.table()
    nodes = [node_out(n, principal, table) for n in sub.nodes]
    persons = person_ids(n["id"] for n in nodes)
    if persons:
        record_audit(audit, request, principal, "graph.paths", [source, target, *persons],
                     {"paths": len(found)})
    return json_response({"paths": [{"nodes": p.nodes, "edges": [edge_out(e) for e in p.edges]} for p in found],
                          "nodes": nodes})


@router.post("/subgraph", response_model=SubgraphOut, summary="Subgraph of entities / 子图")
def subgraph(body: SubgraphIn, audit: AuditDep, risk: RiskDep, store: ScopedStoreDep, principal: UserDep,
             request: Request) -> Response:
    """The entities, the relationships among them and (optionally) the visits connecting them; above 400 nodes
    each node carries its community (`props.community`, `community_size`, `community_head`)."""
    for i, nid in enumerate(body.node_ids):
        parse_node_id(nid, f"node_ids[{i}]", types=[t for t in NODE_TYPES if t not in ("Visit", "Lead")])
    since, until = _window(body.since, body.until)
    sub = store.subgraph(body.node_ids, include_visits=body.include_visits, since=since, until=until)
    out = annotate_communities(subgraph_out(sub, principal, risk.table()))
    persons = person_ids(n["id"] for n in out["nodes"])
    if persons:
        record_audit(audit, request, principal, "graph.subgraph", persons,
                     {"members": len(body.node_ids), "nodes": len(out["nodes"])})
    return json_response(out)
