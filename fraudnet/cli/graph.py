"""`fraudnet graph ego|paths|profile|timeline`: graph queries for investigators (tables or --json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from fraudnet.errors import FraudnetError

__all__ = ["COMMANDS", "graph"]

_JSON_HELP = "Print JSON instead of tables / 输出 JSON"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _dump(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=_json_default))


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date/time (yyyy-mm-dd[ HH:MM:SS]) / 日期格式应为 yyyy-mm-dd",
                                 param_hint=name) from exc


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


@contextmanager
def _store(ctx: click.Context) -> Iterator[Any]:
    """The workspace's graph store (Neo4j when configured or running, else embedded), closed on exit."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.config import load_settings
    from fraudnet.graph.factory import open_graph_store

    workspace = Path((ctx.obj or {}).get("workspace") or "fraudnet-data")
    try:
        claims = ClaimsStore.open(workspace, read_only=True)
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        store = open_graph_store(load_settings(workspace), claims)
    except FraudnetError as exc:
        claims.close()
        raise click.ClickException(str(exc)) from exc
    try:
        yield store
    except FraudnetError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
        claims.close()


def _subgraph_tables(console: Console, sg: Any, title: str) -> None:
    nodes = Table(title=f"{title} — {len(sg.nodes)} nodes / 节点" + (" (truncated / 已截断)" if sg.truncated else ""))
    for col in ("#", "id", "type / 类型", "label / 名称"):
        nodes.add_column(col)
    for i, n in enumerate(sg.nodes):
        nodes.add_row(str(i), n.id, n.type, n.label)
    console.print(nodes)
    edges = Table(title=f"{len(sg.edges)} edges / 关系")
    for col in ("type / 类型", "source / 起点", "target / 终点", "visits / 次数", "amount / 金额", "first / 首次",
                "last / 末次"):
        edges.add_column(col)
    for e in sg.edges:
        edges.add_row(e.type, e.source, e.target, str(e.visits), _fmt(e.amount), _fmt(e.first), _fmt(e.last))
    console.print(edges)


@click.group("graph")
def graph() -> None:
    """Graph queries: ego networks, paths, profiles, timelines / 关系图查询."""


@graph.command("ego")
@click.argument("node_id")
@click.option("--depth", default=2, show_default=True, type=click.IntRange(1, 3), help="Hops / 跳数")
@click.option("--types", default=None, metavar="T1,T2", help="Keep only these node types / 仅保留这些节点类型")
@click.option("--since", default=None, metavar="DATE", help="Visits from this time on / 起始时间")
@click.option("--until", default=None, metavar="DATE", help="Visits before this time / 截止时间（不含）")
@click.option("--max-nodes", default=500, show_default=True, type=int, help="Node cap / 节点上限")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def ego(ctx: click.Context, node_id: str, depth: int, types: str | None, since: str | None, until: str | None,
        max_nodes: int, as_json: bool) -> None:
    """Ego network of NODE_ID (e.g. Person:P0001) / 实体的关系网络."""
    node_types = [t.strip() for t in types.split(",") if t.strip()] if types else None
    with _store(ctx) as store:
        sg = store.ego_network(node_id, depth=depth, node_types=node_types, since=_parse_time(since, "--since"),
                               until=_parse_time(until, "--until"), max_nodes=max_nodes)
    if as_json:
        _dump(sg.to_dict())
    else:
        _subgraph_tables(Console(), sg, f"ego {node_id} depth {depth}")


@graph.command("paths")
@click.argument("source")
@click.argument("target")
@click.option("--max-depth", default=4, show_default=True, type=click.IntRange(1, 6), help="Longest path / 最长跳数")
@click.option("--max-paths", default=10, show_default=True, type=click.IntRange(1, 1000), help="Paths / 路径数")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def paths(ctx: click.Context, source: str, target: str, max_depth: int, max_paths: int, as_json: bool) -> None:
    """Shortest paths between two entities / 两个实体间的最短路径."""
    with _store(ctx) as store:
        found = store.shortest_paths(source, target, max_depth=max_depth, max_paths=max_paths)
    if as_json:
        _dump({"paths": [{"nodes": p.nodes, "edges": [asdict(e) for e in p.edges]} for p in found]})
        return
    if not found:
        click.echo(f"No path within {max_depth} hops / {max_depth} 跳内无路径")
        return
    table = Table(title=f"{len(found)} shortest path(s) / 最短路径, {len(found[0].edges)} hops / 跳")
    table.add_column("#")
    table.add_column("path / 路径")
    for i, p in enumerate(found, 1):
        parts = [p.nodes[0]]
        for e, n in zip(p.edges, p.nodes[1:], strict=True):
            parts.append(f"-[{e.type}]- {n}")
        table.add_row(str(i), " ".join(parts))
    Console().print(table)


@graph.command("profile")
@click.argument("node_id")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def profile(ctx: click.Context, node_id: str, as_json: bool) -> None:
    """Properties and activity figures of an entity / 实体概况."""
    with _store(ctx) as store:
        prof = store.profile(node_id)
    if as_json:
        _dump(asdict(prof))
        return
    table = Table(title=f"{prof.id} {prof.label}")
    table.add_column("field / 字段")
    table.add_column("value / 值")
    for k, v in prof.props.items():
        table.add_row(k, _fmt(v))
    for k, v in prof.stats.items():
        table.add_row(f"[bold]{k}[/bold]", ", ".join(map(str, v)) if isinstance(v, list) else _fmt(v))
    Console().print(table)


@graph.command("timeline")
@click.argument("node_id")
@click.option("--since", default=None, metavar="DATE", help="From / 起始时间")
@click.option("--until", default=None, metavar="DATE", help="Before / 截止时间（不含）")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10000), help="Rows / 行数")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def timeline(ctx: click.Context, node_id: str, since: str | None, until: str | None, limit: int,
             as_json: bool) -> None:
    """Visits involving an entity, oldest first / 实体就诊时间线."""
    with _store(ctx) as store:
        events = store.timeline(node_id, since=_parse_time(since, "--since"), until=_parse_time(until, "--until"),
                                limit=limit)
    if as_json:
        _dump([asdict(e) for e in events])
        return
    table = Table(title=f"{node_id}: {len(events)} visits / 次就诊")
    for col in ("mdtrt_id", "begntime / 开始", "endtime / 结束", "med_type / 类别", "psn_no", "fixmedins_code",
                "atddr_no", "dise_codg", "medfee / 总额", "fund / 基金"):
        table.add_column(col)
    for e in events:
        table.add_row(e.mdtrt_id, _fmt(e.begntime), _fmt(e.endtime), e.med_type, e.psn_no, e.fixmedins_code,
                      e.atddr_no or "", e.dise_codg or "", _fmt(e.medfee_sumamt), _fmt(e.fund_pay_sumamt))
    Console().print(table)


COMMANDS = [graph]
