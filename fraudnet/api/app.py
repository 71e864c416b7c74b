"""The FastAPI application: `create_app(settings)` wires the services (`fraudnet.api.context`) and the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from fraudnet import __version__
from fraudnet.api.context import ApiServices, close_services, open_services
from fraudnet.api.errors import install_error_handlers
from fraudnet.api.security import TokenCache
from fraudnet.config import Settings

__all__ = ["create_app", "open_services", "close_services"]

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


def create_app(settings: Settings, services: ApiServices | None = None) -> FastAPI:
    """The API app for a workspace. The services open when the app starts (lifespan) and close when it stops;
    pass `services` to reuse already opened ones (they are then not closed by the app)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        preset = getattr(app.state, "services", None)  # given to create_app or set by the caller before start-up
        own = preset is None
        services = preset or open_services(settings)
        app.state.services = services
        services.ego.start()  # freezes the heap built so far, forks graph workers, reads Neo4j's projection
        log.info("fraudnet API on workspace %s, %s graph store", settings.workspace, services.graph.store.name)
        try:
            yield
        finally:
            if own:
                close_services(services)
                app.state.services = None

    app = FastAPI(title="fraudnet", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.token_cache = TokenCache()
    if services is not None:
        app.state.services = services
    install_error_handlers(app)

    from fraudnet.api.routes import (
        audit,
        cypher,
        entities,
        exports,
        graph,
        health,
        jobs,
        labels,
        leads,
        me,
        runs,
        search,
    )

    for module in (health, me, leads, entities, graph, search, cypher, jobs, exports, audit, labels, runs):
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
