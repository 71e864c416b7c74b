"""`fraudnet doctor [--repair]`: check the claims store (row counts, visit_fact watermark, orphans, quarantine)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from fraudnet.errors import FraudnetError

__all__ = ["COMMANDS", "doctor"]


def _print(health: dict[str, Any], console: Console) -> None:
    table = Table(title="claims store / 理赔库", title_justify="left")
    table.add_column("table / 表")
    table.add_column("rows / 行数", justify="right")
    for name, n in health["tables"].items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    vf = health["visit_fact"]
    mark = "none" if vf["watermark"] is None else str(vf["watermark"])
    if vf["stale"]:
        console.print(f"[red]visit_fact STALE[/red]: {vf['reason']} (watermark {mark}, latest batch "
                      f"{vf['latest_batch']}) / 派生表过期 — run `fraudnet doctor --repair`")
    else:
        console.print(f"visit_fact up to date (watermark batch {mark}, {vf['visit_fact_rows']:,} rows for "
                      f"{vf['mdtrt_rows']:,} visits) / 派生表为最新")
    orphans = {k: v for k, v in health["orphans"].items() if v}
    if orphans:
        console.print("[yellow]orphans / 孤立引用[/yellow]: " + ", ".join(f"{k} {v:,}" for k, v in orphans.items()))
    else:
        console.print("orphans / 孤立引用: none")
    q = health["quarantine"]
    console.print("quarantined rows / 隔离行: " + (", ".join(f"{k} {v:,}" for k, v in q.items()) or "none")
                  + " (`fraudnet quarantine`)")
    if health["failed_batches"]:
        console.print(f"[yellow]failed ingest batches / 失败批次[/yellow]: {health['failed_batches']:,}")


@click.command("doctor")
@click.option("--repair", is_flag=True, help="Rebuild derived tables (visit_fact) and move their watermark.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON / 输出 JSON")
@click.pass_context
def doctor(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Check the claims store and, with --repair, rebuild stale derived tables / 检查并修复理赔库.

    Exit status 1 when visit_fact is stale and was not repaired.
    """
    from fraudnet.claims.derived import bring_up_to_date, store_health
    from fraudnet.claims.store import ClaimsStore

    console = Console() if sys.stdout.isatty() else Console(width=160)
    workspace = Path((ctx.obj or {}).get("workspace") or "fraudnet-data")
    try:
        store = ClaimsStore.open(workspace, read_only=not repair, check_derived=False)
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    with store:
        before = store_health(store.con)
        out: dict[str, Any] = {"before": before}
        if repair:
            out["repair"] = bring_up_to_date(store.con, full=True)
            out["after"] = store_health(store.con)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, default=str))
    else:
        _print(before, console)
        if repair:
            console.print(f"repair / 修复: visit_fact {out['repair']}")
            _print(out["after"], console)
    final = out.get("after", before)
    sys.exit(0 if final["ok"] else 1)


COMMANDS = [doctor]
