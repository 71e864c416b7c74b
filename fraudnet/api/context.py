"""`ApiServices`: the services one API server runs on, opened together (`open_services`) and closed together
(`close_services`). Routers never see this object: each takes the services it needs through `fraudnet.api.deps`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from fraudnet.api.claims_access import ClaimsAccess
from fraudnet.api.ego import EgoService
from fraudnet.api.graph_holder import GraphStoreHolder
from fraudnet.api.jobs import JobManager
from fraudnet.api.lead_queries import LeadQueries
from fraudnet.api.scope import Scopes
from fraudnet.claims.audit import AuditLog, ensure_tables
from fraudnet.claims.leads import LeadStore
from fraudnet.claims.store import ClaimsStore
from fraudnet.config import Settings
from fraudnet.graph.factory import neo4j_settings, open_graph_store

__all__ = ["ApiServices", "open_services", "close_services"]

log = logging.getLogger(__name__)


@dataclass
class ApiServices:
    """What the routers' dependencies hand out: settings, the claims store, the graph store, the lead queries, the
    scope views, the ego service, background jobs and the audit writer."""

    settings: Settings
    claims: ClaimsAccess
    graph: GraphStoreHolder
    leads: LeadQueries
    scopes: Scopes
    ego: EgoService
    jobs: JobManager
    audit: AuditLog
    started: float = field(default_factory=time.time)

    @classmethod
    def over(cls, settings: Settings, claims: ClaimsStore, graph: GraphStoreHolder | None = None,
             jobs: JobManager | None = None) -> ApiServices:
        """The services over an open claims store and graph store (the graph store opened for `settings` when not
        given)."""
        access = ClaimsAccess(claims)
        holder = graph or GraphStoreHolder(open_graph_store(settings, claims))
        leads = LeadQueries(access)
        scopes = Scopes(access, holder, leads)
        return cls(settings=settings, claims=access, graph=holder, leads=leads, scopes=scopes,
                   ego=EgoService(settings, holder, leads, scopes), jobs=jobs or JobManager(workers=1),
                   audit=AuditLog(access.cursor))


def open_services(settings: Settings) -> ApiServices:
    """Open the claims store (read-write, one connection) and the graph store for `settings`."""
    settings = neo4j_settings(settings) or settings  # our launcher's URI when it runs in the workspace
    claims = ClaimsStore.open(settings.workspace, read_only=False)
    try:
        ensure_tables(claims.con)
        LeadStore(claims.con)  # creates the lead tables on a fresh workspace
        return ApiServices.over(settings, claims)
    except BaseException:
        claims.close()
        raise


def close_services(services: ApiServices) -> None:
    """Stop the workers and jobs, flush the audit log, close the graph and claims stores."""
    for step in (services.ego.stop, services.jobs.shutdown, services.audit.close, services.graph.close,
                 services.claims.close):
        try:
            step()
        except Exception:  # closing must go on through every store
            log.warning("closing %s failed", getattr(step, "__qualname__", step), exc_info=True)
