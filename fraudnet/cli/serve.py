"""`fraudnet serve`: the investigation API and the link chart over the workspace (uvicorn)."""

from __future__ import annotations

import click

__all__ = ["COMMANDS", "serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn log level.")
@click.option("--graph-workers", type=click.IntRange(0, 64), default=None,
              help="Processes answering ego networks beside the server (over the embedded store, or over the "
                   "Neo4j projection once it is read; Linux) [default: FRAUDNET_GRAPH_WORKERS, else one per CPU, "
                   "at most 8; 0 = answer in the server process].")
@click.option("--neo4j-projection/--no-neo4j-projection", default=None,
              help="With Neo4j: answer ego networks from an in-memory projection of its entity graph, read in the "
                   "background and again after each load [default: FRAUDNET_NEO4J_PROJECTION, else on].")
@click.option("--watch", "watch", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="Screen this drop folder on a schedule and when files arrive (ingest, detection, Neo4j sync, run "
                   "report at /api/runs/latest, notices of new red leads) / 监视投放目录，定时筛查")
@click.option("--watch-cron", default=None, metavar="EXPR",
              help="Schedule of --watch (5-field cron) [default: FRAUDNET_WATCH_CRON, else '0 2 * * *']")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, log_level: str, graph_workers: int | None,
          neo4j_projection: bool | None, watch: str | None, watch_cron: str | None) -> None:
    """Serve the API (/api, docs at /docs) and the link chart (/) for the workspace.

    启动调查接口（/api，文档 /docs）与关系图前端（/）。Create tokens first: `fraudnet tokens create`.
    """
    import dataclasses
    import os

    import uvicorn

    from fraudnet.api.app import close_services, create_app, open_services
    from fraudnet.api.ego import default_worker_count
    from fraudnet.config import load_settings
    from fraudnet.errors import FraudnetError

    try:
        settings = load_settings(ctx.obj["workspace"])
        if graph_workers is None and not os.environ.get("FRAUDNET_GRAPH_WORKERS", "").strip():
            graph_workers = default_worker_count()
        if graph_workers is not None:
            settings = dataclasses.replace(settings, graph_workers=graph_workers)
        if neo4j_projection is not None:
            settings = dataclasses.replace(settings, neo4j_projection=neo4j_projection)
        screening = None
        if watch is not None:
            from fraudnet.cli.watch import _screening_settings

            screening = _screening_settings(watch_cron, None)
        services = open_services(settings)
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    watcher = None
    try:
        app = create_app(settings, services=services)
        if screening is not None:
            from pathlib import Path

            from fraudnet.screening.service import ScreeningService

            watcher = ScreeningService(services, Path(watch), screening)
            app.state.screening = watcher
            watcher.start()
            click.echo(f"watching {watch}: schedule '{screening.cron}', next {watcher.next_due:%Y-%m-%d %H:%M}"
                       + (f", new files looked for every {screening.poll_s:g} s" if screening.poll_s else "")
                       + " / 监视投放目录", err=True)
        store = services.graph.store
        workers = settings.graph_workers
        if store.projection() is None:  # Neo4j: the workers wait for the projection
            when = (" once the projection is read (/api/health) / 投影读入后启动" if settings.neo4j_projection
                    else " (none without the projection)")
            workers_text = f"{workers if settings.neo4j_projection else 0} graph worker process(es){when}"
        else:
            workers_text = f"{workers} graph worker process(es)"
        click.echo(f"fraudnet API on http://{host}:{port}/ (docs /docs) — workspace {settings.workspace}, "
                   f"{store.name} graph store / 图存储 {store.name}, {workers_text}", err=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        if watcher is not None:
            watcher.stop()
        close_services(services)


COMMANDS = [serve]
