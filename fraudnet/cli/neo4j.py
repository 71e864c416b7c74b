"""`fraudnet neo4j start|stop|status|load|sync-leads`: run the bundled Neo4j 5.26 and load the graph into it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fraudnet.config import Settings, load_settings
from fraudnet.errors import FraudnetError, Neo4jUnavailableError

__all__ = ["COMMANDS", "neo4j"]

EXIT_FAILED = 1


def _console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=140)


def _settings(ctx: click.Context) -> Settings:
    return load_settings(Path(ctx.obj["workspace"]))


@click.group("neo4j")
def neo4j() -> None:
    """Run the bundled Neo4j 5.26 and load the fraud graph into it / 运行内置 Neo4j 并加载图数据."""


@neo4j.command("start")
@click.option("--port", type=click.IntRange(0, 65535), default=7687, show_default=True,
              help="Bolt port on 127.0.0.1 (0: a free port chosen by the OS).")
@click.option("--heap", default="2g", show_default=True, help="JVM heap (-Xmx), e.g. 2g, 4g.")
@click.option("--pagecache", default="512m", show_default=True, help="Neo4j page cache, e.g. 512m, 2g.")
@click.option("--timeout", type=float, default=180, show_default=True, help="Seconds to wait for Bolt.")
@click.pass_context
def start_cmd(ctx: click.Context, port: int, heap: str, pagecache: str, timeout: float) -> None:
    """Start Neo4j for the workspace with authentication: NEO4J_PASSWORD, else a password generated into
    WORKSPACE/neo4j/password (mode 0600) / 启动 Neo4j（启用认证）."""
    from fraudnet.graph import neo4j_server

    console = _console()
    settings = _settings(ctx)
    try:
        password = settings.neo4j_password or neo4j_server.workspace_password(settings.workspace, create=True)
        with console.status("starting Neo4j 5.26 (first run builds the launcher with Maven) / 正在启动 Neo4j…"):
            info = neo4j_server.start(settings.workspace, port=port, heap=heap, password=password,
                                      timeout=timeout, pagecache=pagecache)
    except FraudnetError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=False)
        sys.exit(EXIT_FAILED)
    console.print(f"Neo4j running at {info.uri} (pid {info.pid}), data in {info.home} / Neo4j 已启动")
    console.print(f"log: {info.log_path}")
    console.print("To use it from other shells / 在其他终端中使用:")
    console.print(f"  export NEO4J_URI={info.uri}", markup=False, highlight=False)
    console.print(f"  export NEO4J_USER={settings.neo4j_user}", markup=False, highlight=False)
    generated = neo4j_server.password_path(settings.workspace)
    if info.auth and not os.environ.get("NEO4J_PASSWORD") and generated.exists():
        console.print(f"  export NEO4J_PASSWORD=$(cat {generated})   (generated, mode 0600; fraudnet commands on "
                      "this workspace read it themselves / 自动生成的密码)", markup=False, highlight=False)
    elif info.auth:
        console.print("  export NEO4J_PASSWORD=...   (the password you started it with / 启动时的密码)",
                      markup=False, highlight=False)
    else:
        console.print("  (authentication off, Bolt bound to 127.0.0.1 only; set NEO4J_PASSWORD before "
                      "`neo4j start` to enable it / 未启用认证，仅监听本机)", markup=False, highlight=False)


@neo4j.command("stop")
@click.pass_context
def stop_cmd(ctx: click.Context) -> None:
    """Stop the workspace's Neo4j (clean shutdown) / 停止 Neo4j."""
    from fraudnet.graph import neo4j_server

    console = _console()
    settings = _settings(ctx)
    with console.status("stopping Neo4j / 正在停止…"):
        stopped = neo4j_server.stop(settings.workspace)
    console.print("Neo4j stopped / 已停止" if stopped else "Neo4j was not running / Neo4j 未运行")


@neo4j.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Show whether the workspace's Neo4j runs (exit 1 if not) / 查看 Neo4j 状态."""
    from fraudnet.graph import neo4j_server

    settings = _settings(ctx)
    info = neo4j_server.status(settings.workspace)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2, default=str))
    else:
        console = _console()
        if info["running"]:
            console.print(f"running / 运行中: {info['uri']} pid {info['pid']} bolt={'up' if info['bolt'] else 'down'} "
                          f"auth={'on' if info.get('auth') else 'off'} rss={info.get('rss_mb', '?')} MB "
                          f"since {info.get('started_at', '?')}", markup=False)
            console.print(f"home: {info['home']}  log: {info.get('log_path')}", markup=False)
        elif info.get("stale"):
            console.print(f"not running (stale server.json, pid {info.get('pid')}) / 未运行", markup=False)
        else:
            console.print("not running / 未运行")
    sys.exit(0 if info["running"] else EXIT_FAILED)


def _print_load(report: Any, console: Console) -> None:
    table = Table(title=f"graph load into {report.uri} ({'full' if report.full else 'incremental'}) "
                        f"— {report.seconds:.1f}s", title_justify="left")
    for col in ("part / 部分", "rows / 行", "sent / 发送", "deleted / 删除", "created / 新建", "seconds", "rows/s"):
        table.add_column(col, justify="left" if col.startswith("part") else "right")
    for p in report.parts:
        created = p.nodes_created if p.kind == "node" else p.relationships_created
        rate = f"{p.sent / p.seconds:,.0f}" if p.sent and p.seconds > 0 else "-"
        table.add_row(p.name, f"{p.rows:,}", f"{p.sent:,}", f"{p.deleted_rows:,}", f"{created:,}",
                      f"{p.seconds:.1f}", rate)
    console.print(table)
    console.print(
        f"nodes created / 新建节点 {report.nodes_created:,}, relationships created / 新建关系 "
        f"{report.relationships_created:,}, deleted {report.nodes_deleted:,} nodes / "
        f"{report.relationships_deleted:,} relationships; "
        f"{report.relationships_per_second:,.0f} relationships/s, {report.nodes_per_second:,.0f} nodes/s "
        f"(prepare {report.prepare_seconds:.1f}s, write {report.write_seconds:.1f}s)")
    if report.hub_lists is not None:
        h = report.hub_lists
        console.print(f"hub neighbour lists / 枢纽节点邻居表: {h.hubs:,} hubs, {h.entries:,} entries, "
                      f"{h.removed:,} old lists removed ({h.seconds:.1f}s)")
    if not report.changed:
        console.print("graph already up to date, nothing changed / 图已是最新")


@neo4j.command("load")
@click.option("--full", is_flag=True, help="Send every row again (default: only new or changed rows).")
@click.option("--batch-size", type=click.IntRange(100, 200_000), default=20_000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 8), default=2, show_default=True,
              help="Batches written at once (separate sessions).")
@click.option("--json", "as_json", is_flag=True, help="Print the load report as JSON.")
@click.option("--bulk", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write CSVs for `neo4j-admin database import full` into this folder instead of loading over "
                   "Bolt (a province's first load) / 生成离线批量导入文件")
@click.pass_context
def load_cmd(ctx: click.Context, full: bool, batch_size: int, workers: int, as_json: bool,
             bulk: Path | None = None) -> None:
    """Load the graph from the claims store into Neo4j (NEO4J_URI or our running launcher) / 加载图数据."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.graph.neo4j_load import load_graph

    console = _console()
    settings = _settings(ctx)
    if bulk is not None:
        from fraudnet.graph.neo4j_bulk import write_bulk_csv

        try:
            with ClaimsStore.open(settings.workspace, read_only=True) as store:
                export = write_bulk_csv(store.con, bulk, database=settings.neo4j_database)
        except FraudnetError as exc:
            console.print(f"[red]error:[/red] {exc}", markup=False)
            sys.exit(EXIT_FAILED)
        for name, (_, data, rows) in {**export.nodes, **export.relationships}.items():
            console.print(f"{name}: {rows:,} rows → {data}", markup=False)
        console.print("on the Neo4j server, database stopped / 在 Neo4j 服务器上（数据库停止时）运行:")
        click.echo(export.command())
        return
    try:
        store = ClaimsStore.open(settings.workspace)
    except FraudnetError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=False)
        sys.exit(EXIT_FAILED)
    with store:
        try:
            with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, disable=as_json) as bar:
                tasks: dict[str, Any] = {}

                def progress(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(stage, total=max(total, 1))
                    bar.update(tasks[stage], completed=done if total else 1, total=max(total, 1))

                report = load_graph(store, settings, progress=progress, batch_size=batch_size, full=full,
                                    workers=workers)
        except Neo4jUnavailableError as exc:
            console.print(f"[red]Neo4j unavailable:[/red] {exc}", markup=False)
            console.print("the claims store is intact / 理赔库未受影响")
            sys.exit(EXIT_FAILED)
        except FraudnetError as exc:
            console.print(f"[red]error:[/red] {exc}", markup=False)
            sys.exit(EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        _print_load(report, console)


@neo4j.command("sync-leads")
@click.option("--all", "all_leads", is_flag=True, help="Also retired leads (default: active leads only).")
@click.pass_context
def sync_leads_cmd(ctx: click.Context, all_leads: bool) -> None:
    """Copy the lead store's leads into Neo4j as Lead nodes linked to entities and visits / 同步线索到 Neo4j."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.graph.neo4j_load import sync_leads

    console = _console()
    settings = _settings(ctx)
    try:
        with ClaimsStore.open(settings.workspace) as store:
            leads = _lead_dicts(store, all_leads)
        n = sync_leads(leads, settings, replace=not all_leads)
    except FraudnetError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=False)
        sys.exit(EXIT_FAILED)
    console.print(f"{n:,} leads synced to Neo4j / 已同步线索")


def _lead_dicts(store: Any, all_leads: bool) -> list[dict[str, Any]]:
    """Leads of the claims store's lead store as dicts (empty if no detection ran yet)."""
    from fraudnet.claims.leads import LeadStore

    return LeadStore(store.con).all_leads(active_only=not all_leads)


COMMANDS = [neo4j]
