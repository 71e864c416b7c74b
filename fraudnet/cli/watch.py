"""`fraudnet watch DIR`: the daily screening cycle over a drop folder, on a cron schedule or when files arrive."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

__all__ = ["COMMANDS", "watch", "runs"]

log = logging.getLogger(__name__)


def _screening_settings(cron: str | None, poll: float | None) -> Any:
    import dataclasses

    from fraudnet.errors import FraudnetError
    from fraudnet.screening.schedule import check_cron
    from fraudnet.screening.settings import load_screening_settings

    try:
        settings = load_screening_settings()
        if cron is not None:
            check_cron(cron, "--cron")
            settings = dataclasses.replace(settings, cron=cron)
        if poll is not None:
            settings = dataclasses.replace(settings, poll_s=poll)
    except FraudnetError as exc:
        raise click.BadParameter(str(exc)) from exc
    return settings


def _one_cycle(workspace: Path, folder: Path, screening: Any, trigger: str, notify: bool) -> dict[str, Any]:
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.config import load_settings
    from fraudnet.screening.cycle import screen_folder
    from fraudnet.screening.graph_sync import neo4j_sync

    settings = load_settings(workspace)
    with ClaimsStore.open(workspace) as store:  # held for the cycle only: other commands may write in between
        return screen_folder(store, folder, screening, trigger=trigger, graph_sync=neo4j_sync(settings), send=notify)


def _summary(report: dict[str, Any]) -> str:
    ing = report.get("ingest", {})
    det = report.get("detection", {})
    new = report.get("new_leads", {})
    detect_text = (f"screened in {det.get('seconds', 0):.1f} s ({det.get('leads', 0)} leads)" if det.get("ran")
                   else "not screened: " + str(det.get("reason", "")))
    return (f"run {report['run_id']} [{report['status']}] {report.get('trigger')}: "
            f"{ing.get('files_loaded', 0)} file(s) loaded, {ing.get('files_already_ingested', 0)} already in, "
            f"{ing.get('rows_loaded', 0):,} rows, {ing.get('rows_quarantined', 0):,} quarantined; {detect_text}; "
            f"new red {new.get('red', 0)}, new orange {new.get('orange', 0)}; {report.get('seconds', 0):.1f} s"
            + (f"; notices {report['notifications']}" if report.get("notifications") else ""))


@click.command("watch")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cron", default=None, metavar="EXPR",
              help="When to screen (5-field cron, server local time) [default: FRAUDNET_WATCH_CRON, else '0 2 * * *']")
@click.option("--poll", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Also screen when new files arrive, looking every SECONDS (0: on schedule only) "
                   "[default: FRAUDNET_WATCH_POLL, else 60]")
@click.option("--once", is_flag=True, help="Run one cycle now and exit / 立即筛查一次后退出")
@click.option("--no-notify", is_flag=True, help="Do not send webhook or e-mail notices / 不发送通知")
@click.pass_context
def watch(ctx: click.Context, folder: Path, cron: str | None, poll: float | None, once: bool,
          no_notify: bool) -> None:
    """Screen a drop folder daily: ingest new files, run detection, sync Neo4j, store a run report, notify new red
    leads / 每日筛查：导入新文件、检测、同步、生成报告并通知新增红色预警.

    The claims store is opened for each cycle only. While `fraudnet serve` runs, use `fraudnet serve --watch DIR`
    instead (the server is then the one writer).
    """
    from fraudnet.errors import FraudnetError
    from fraudnet.screening.schedule import DropFolder, next_run

    workspace = Path(ctx.obj["workspace"])
    screening = _screening_settings(cron, poll)
    if once:
        try:
            report = _one_cycle(workspace, folder, screening, "manual", not no_notify)
        except FraudnetError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(_summary(report))
        ctx.exit(0 if report["status"] == "ok" else 1)
    drop = DropFolder(folder)
    drop.mark_screened()
    due = next_run(screening.cron, datetime.now())
    click.echo(f"watching {folder} — schedule '{screening.cron}' (next {due:%Y-%m-%d %H:%M}), "
               + (f"new files looked for every {screening.poll_s:g} s" if screening.poll_s else "on schedule only")
               + " / 监视投放目录", err=True)
    tick = min(screening.poll_s or 30.0, 30.0)
    while True:
        now = datetime.now()
        trigger = "schedule" if now >= due else ("files" if screening.poll_s and drop.changed(time.monotonic())
                                                 else None)
        if trigger:
            try:
                report = _one_cycle(workspace, folder, screening, trigger, not no_notify)
                click.echo(_summary(report))
                drop.mark_screened()
            except FraudnetError as exc:  # e.g. the store held by `fraudnet serve`: try again at the next tick
                click.echo(f"screening postponed / 筛查推迟: {exc}", err=True)
            if trigger == "schedule":
                due = next_run(screening.cron, datetime.now())
        time.sleep(tick)


@click.command("runs")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--latest", is_flag=True, help="Print the latest run's whole report as JSON / 输出最近一次报告")
@click.pass_context
def runs(ctx: click.Context, limit: int, latest: bool) -> None:
    """Screening runs, newest first / 筛查运行记录."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import FraudnetError
    from fraudnet.screening.runs import RunStore

    try:
        with ClaimsStore.open(Path(ctx.obj["workspace"]), read_only=True) as store:
            if latest:
                click.echo(json.dumps(RunStore(store.con).latest(), ensure_ascii=False, indent=1))
                return
            for r in RunStore(store.con).list(limit):
                click.echo(f"{r['run_id']}  {r['started_at']:%Y-%m-%d %H:%M:%S}  {r['status']:<7} {r['trigger']:<8} "
                           f"new red {r['new_red']}, orange {r['new_orange']}  {r['folder']}")
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = [watch, runs]
