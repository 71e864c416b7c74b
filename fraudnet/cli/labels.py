"""`fraudnet labels import|list`: past case outcomes (违规/正常) the model learns from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

__all__ = ["COMMANDS", "labels"]


def _user() -> str:
    return os.environ.get("FRAUDNET_USER") or os.environ.get("USER") or "cli"


@click.group("labels")
def labels() -> None:
    """Case outcomes used as labels (违规/正常 结论) / 案件结论标签."""


@labels.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def labels_import(ctx: click.Context, file: str) -> None:
    """Load a CSV/XLSX of outcomes: entity_type (Person|Practitioner|Institution / 实体类型), entity_id (编号),
    label fraud|clean (结论 违规/正常), optional decided_at (日期), source (来源), note (备注).
    Bad rows are quarantined with row, field and reason; importing the same file again changes nothing."""
    from fraudnet.claims.audit import append_audit, ensure_tables
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import FraudnetError
    from fraudnet.learning.labels import import_labels

    try:
        with ClaimsStore.open(ctx.obj["workspace"], read_only=False) as store:
            report = import_labels(store.con, file, user=_user())
            ensure_tables(store.con)
            append_audit(store.con, _user(), "labels.import", role="admin",
                         detail={"file": Path(file).name, **{k: v for k, v in report.to_dict().items()
                                                              if k != "problems"}})
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    if report.already_imported:
        click.echo(f"{report.file_name}: already imported (import {report.import_id}); nothing changed / "
                   "该文件已导入，未作更改")
        return
    click.echo(f"{report.file_name}: {report.rows_read} rows read; {report.loaded} new, {report.updated} updated, "
               f"{report.unchanged} unchanged, {report.quarantined} quarantined / 读取 {report.rows_read} 行，新增 "
               f"{report.loaded}，更新 {report.updated}，未变 {report.unchanged}，隔离 {report.quarantined}")
    if report.not_in_store:
        click.echo(f"{report.not_in_store} labelled entities are not in the claims store yet (kept; used once their "
                   "data is ingested) / 部分实体尚无理赔数据")
    for p in report.problems[:20]:
        click.echo(f"  row {p['row']}: {p['field']}={p['value']!r}: {p['reason']}", err=True)


@labels.command("list")
@click.option("--type", "entity_type", default=None, help="Person, Practitioner or Institution / 实体类型")
@click.option("--imported-only", is_flag=True, help="Without labels from lead decisions / 不含线索结论")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines / 输出 JSON")
@click.pass_context
def labels_list(ctx: click.Context, entity_type: str | None, imported_only: bool, limit: int, as_json: bool) -> None:
    """Labels (imported outcomes and lead decisions), newest first, with counts per type. 列出标签。"""
    from rich.console import Console
    from rich.table import Table

    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import FraudnetError
    from fraudnet.learning.labels import all_labels, list_labels

    try:
        with ClaimsStore.open(ctx.obj["workspace"], read_only=True) as store:
            frame = list_labels(store.con, entity_type) if imported_only else all_labels(store.con, entity_type)
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        for rec in frame.head(limit).to_dict("records"):
            click.echo(json.dumps(rec, ensure_ascii=False, default=str))
        return
    counts = frame.groupby(["entity_type", "label"]).size().to_dict() if len(frame) else {}
    click.echo("; ".join(f"{t} {lab}: {n}" for (t, lab), n in sorted(counts.items())) or "no labels / 暂无标签")
    table = Table(title=f"Labels / 标签 ({len(frame)})", title_justify="left")
    for col in ("entity_type", "entity_id", "label", "decided_at", "source", "origin", "decided_by"):
        table.add_column(col)
    for rec in frame.head(limit).to_dict("records"):
        table.add_row(*[("-" if rec[c] is None or rec[c] != rec[c] else str(rec[c]))
                        for c in ("entity_type", "entity_id", "label", "decided_at", "source", "origin",
                                  "decided_by")])
    Console(width=140).print(table)


COMMANDS = [labels]
