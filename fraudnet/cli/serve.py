"""`fraudnet serve`: the investigation API and the link chart over the workspace (uvicorn)."""

from __future__ import annotations

import click

__all__ = ["COMMANDS", "serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn log level.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, log_level: str) -> None:
    """Serve the API (/api, docs at /docs) and the link chart (/) for the workspace.

    启动调查接口（/api，文档 /docs）与关系图前端（/）。Create tokens first: `fraudnet tokens create`.
    """
    import uvicorn

    from fraudnet.api.app import close_context, create_app, open_context
    from fraudnet.config import load_settings
    from fraudnet.errors import FraudnetError

    settings = load_settings(ctx.obj["workspace"])
    try:
        context = open_context(settings)
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        app = create_app(settings, context=context)
        store = context.store_name
        click.echo(f"fraudnet API on http://{host}:{port}/ (docs /docs) — workspace {settings.workspace}, "
                   f"{store} graph store / 图存储 {store}", err=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        close_context(context)


COMMANDS = [serve]
