"""The API's FastAPI dependencies, one per service, and their typed `Annotated` aliases (the FastAPI full-stack
template's `deps.py`). Routers declare what they use: `store: StoreDep`, `leads: ScopedLeadsDep`, `ego: EgoDep`.

The services live on `app.state.services` (`fraudnet.api.context.ApiServices`, opened by the app's lifespan).
The dependencies are async only to run on the event loop: FastAPI would otherwise hand each to a worker thread,
several thread hops per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from fraudnet.api.claims_access import ClaimsAccess, ThreadCursor
from fraudnet.api.context import ApiServices
from fraudnet.api.ego import EgoService
from fraudnet.api.graph_holder import GraphStoreHolder
from fraudnet.api.jobs import JobManager
from fraudnet.api.lead_queries import LeadQueries, RiskIndex
from fraudnet.api.principal import CASE_ROLES, Principal
from fraudnet.api.scope import ScopedLeads, Scopes
from fraudnet.api.security import authenticate, check_role
from fraudnet.claims.audit import AuditLog
from fraudnet.config import Settings
from fraudnet.errors import PermissionDeniedError
from fraudnet.graph.store import GraphQueries, GraphStore

__all__ = [
    "get_services", "get_settings", "get_claims", "get_con", "get_graph", "get_store", "get_leads", "get_risk",
    "get_scopes", "get_ego", "get_audit", "get_jobs", "get_principal", "require_roles", "get_scoped_store",
    "get_scoped_leads", "get_unscoped_admin",
    "SettingsDep", "ClaimsDep", "ConDep", "GraphDep", "StoreDep", "LeadsDep", "RiskDep", "ScopesDep", "EgoDep",
    "AuditDep", "JobsDep", "UserDep", "EditorDep", "AdminDep", "ScopedStoreDep", "ScopedLeadsDep",
    "UnscopedAdminDep",
]


def _services(request: Request) -> ApiServices:
    return request.app.state.services


async def get_services(request: Request) -> ApiServices:
    return _services(request)


async def get_settings(request: Request) -> Settings:
    return _services(request).settings


async def get_claims(request: Request) -> ClaimsAccess:
    """The claims store with its per-thread cursors, job cursor and write lock."""
    return _services(request).claims


async def get_con(request: Request) -> ThreadCursor:
    """The claims store connection for this request: calls go to the calling thread's own cursor."""
    return _services(request).claims.con


async def get_graph(request: Request) -> GraphStoreHolder:
    """The holder of the graph store (for jobs that replace or refresh it)."""
    return _services(request).graph


async def get_store(request: Request) -> GraphStore:
    """The current graph store (embedded or Neo4j), unscoped."""
    return _services(request).graph.store


async def get_leads(request: Request) -> LeadQueries:
    """The lead store with its cached pages and version (unscoped: for jobs and case changes' bookkeeping)."""
    return _services(request).leads


async def get_risk(request: Request) -> RiskIndex:
    """Entity risk from the active leads."""
    return _services(request).leads.risk


async def get_scopes(request: Request) -> Scopes:
    return _services(request).scopes


async def get_ego(request: Request) -> EgoService:
    return _services(request).ego


async def get_audit(request: Request) -> AuditLog:
    return _services(request).audit


async def get_jobs(request: Request) -> JobManager:
    return _services(request).jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClaimsDep = Annotated[ClaimsAccess, Depends(get_claims)]
ConDep = Annotated[ThreadCursor, Depends(get_con)]
GraphDep = Annotated[GraphStoreHolder, Depends(get_graph)]
StoreDep = Annotated[GraphStore, Depends(get_store)]
LeadsDep = Annotated[LeadQueries, Depends(get_leads)]
RiskDep = Annotated[RiskIndex, Depends(get_risk)]
ScopesDep = Annotated[Scopes, Depends(get_scopes)]
EgoDep = Annotated[EgoService, Depends(get_ego)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]


async def get_principal(request: Request, settings: SettingsDep, audit: AuditDep) -> Principal:
    """The caller of a `Authorization: Bearer <token>` request; 401 for a missing, unknown, expired or revoked
    token (`fraudnet.api.security.authenticate`)."""
    return await authenticate(request, settings, audit)


UserDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only the given roles through (PermissionDeniedError, 403, otherwise)."""

    async def check(principal: UserDep) -> Principal:
        return check_role(principal, roles)

    return check


EditorDep = Annotated[Principal, Depends(require_roles(*CASE_ROLES))]
AdminDep = Annotated[Principal, Depends(require_roles("admin"))]


async def get_scoped_store(scopes: ScopesDep, principal: UserDep) -> GraphQueries:
    """The graph store as the caller may read it (`fraudnet.api.scope`)."""
    return scopes.graph(principal)


async def get_scoped_leads(scopes: ScopesDep, principal: UserDep) -> ScopedLeads:
    """The lead store as the caller may use it."""
    return scopes.leads(principal)


async def get_unscoped_admin(principal: AdminDep) -> Principal:
    """An admin whose token sees the whole workspace (Cypher and the audit log read all of it)."""
    if principal.scope is not None:
        raise PermissionDeniedError(
            f"a token limited to {principal.scope.describe()} may not do this (Cypher and the audit log "
            "read the whole workspace) / 受限令牌无权执行此操作")
    return principal


ScopedStoreDep = Annotated[GraphQueries, Depends(get_scoped_store)]
ScopedLeadsDep = Annotated[ScopedLeads, Depends(get_scoped_leads)]
UnscopedAdminDep = Annotated[Principal, Depends(get_unscoped_admin)]
