"""The FastAPI application: `create_app(settings)` wires the claims store, graph store, jobs and routers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from fraudnet import __version__
from fraudnet.api.deps import ApiContext
from fraudnet.api.errors import install_error_handlers
from fraudnet.api.jobs import JobManager
from fraudnet.api.security import _TokenCache
from fraudnet.config import Settings

__all__ = ["create_app", "open_context"]

log = logging.getLogger(__name__)

_DESCRIPTION = """Graph-based fraud network analysis for medical-insurance fund supervision (医保基金监管).

Every endpoint except `/api/health` needs `Authorization: Bearer <token>` (create one with
`fraudnet tokens create --user U --role admin|investigator|viewer`). Viewers see masked personal data and
cannot change cases. Reads of personal data and every case change are written to the audit log.
"""

_NO_UI = """<!doctype html><html lang="zh"><meta charset="utf-8"><title>fraudnet</title>
<body style="font-family:sans-serif;margin:3em"><h1>fraudnet API</h1>
<p>The link chart is not built (run <code>bash scripts/build-frontend.sh</code>). 关系图前端尚未构建。</p>
<p><a href="/docs">API documentation / 接口文档 (/docs)</a></p></body></html>"""


def open_context(settings: Settings) -> ApiContext:
    """Open the claims store (read-write, one connection) and the graph store for `settings`."""
    from fraudnet.claims.audit import ensure_tables
    from fraudnet.claims.leads import LeadStore
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.graph.factory import neo4j_settings, open_graph_store

    settings = neo4j_settings(settings) or settings  # our launcher's URI when it runs in the workspace
    claims = ClaimsStore.open(settings.workspace, read_only=False)
    try:
        ensure_tables(claims.con)
        LeadStore(claims.con)  # creates the lead tables on a fresh workspace
        graph = open_graph_store(settings, claims)
    except BaseException:
        claims.close()
        raise
    return ApiContext(settings, claims, graph, JobManager(workers=1))


def create_app(settings: Settings, context: ApiContext | None = None) -> FastAPI:
    """The API app for a workspace. The stores open when the app starts (lifespan) and close when it stops;
    pass `context` to reuse an already opened one (it is then not closed by the app)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        preset = getattr(app.state, "ctx", None)  # given to create_app or set by the caller before start-up
        own = preset is None
        ctx = preset or open_context(settings)
        app.state.ctx = ctx
        _freeze_heap()
        if settings.graph_workers and ctx.graph_workers is None:
            ctx.start_graph_workers(settings.graph_workers)
        ctx.start_projection()
        log.info("fraudnet API on workspace %s, %s graph store", settings.workspace, ctx.store_name)
        try:
            yield
        finally:
            if own:
                close_context(ctx)
                app.state.ctx = None

    app = FastAPI(title="fraudnet", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.token_cache = _TokenCache()
    if context is not None:
        app.state.ctx = context
    install_error_handlers(app)

    from fraudnet.api.routes import audit, cypher, entities, exports, graph, health, jobs, labels, leads, me, search

    for module in (health, me, leads, entities, graph, search, cypher, jobs, exports, audit, labels):
        app.include_router(module.router)
    from fraudnet.api.routes import casefiles, charts  # link chart recipes and case files

    app.include_router(charts.router)
    app.include_router(casefiles.router)

    from fraudnet.viz.assets import mount_ui

    if not mount_ui(app):
        @app.get("/", include_in_schema=False)
        def no_ui() -> HTMLResponse:
            return HTMLResponse(_NO_UI)

    return app


def _freeze_heap() -> None:
    """Exempt what start-up built (the embedded graph, caches) from Python's cyclic garbage collector.

    Those objects live as long as the server; a full collection walking them stalls every request for
    ≈ 160 ms on the M tier, which shows in the latency tail. New objects are collected as usual.
    """
    gc.collect()
    gc.freeze()


def close_context(ctx: ApiContext) -> None:
    """Stop the jobs and close the graph and claims stores."""
    for step in (ctx.stop_graph_workers, ctx.jobs.shutdown, ctx.audit.close, ctx.graph.close, ctx.close_cursors,
                 ctx.claims.close):
        try:
            step()
        except Exception:  # closing must go on through every store
            log.warning("closing %s failed", getattr(step, "__qualname__", step), exc_info=True)


__all__ += ["close_context"]
