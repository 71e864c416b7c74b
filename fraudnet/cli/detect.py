"""`fraudnet detect`, `fraudnet leads export|list`, `fraudnet scores export` and `fraudnet evaluate`."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fraudnet.errors import FraudnetError

__all__ = ["COMMANDS", "detect", "leads", "scores", "evaluate_cmd", "coverage_lines"]

SEVERITY_ORDER = ("red", "orange", "yellow")
SEVERITY_STYLE = {"red": "bold red", "orange": "dark_orange", "yellow": "yellow"}
SEVERITY_ZH = {"red": "红", "orange": "橙", "yellow": "黄"}


def _console() -> Console:
    """A console; when output is not a terminal (pipes, logs) wide enough for the kind names."""
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 130))


def _workspace(ctx: click.Context) -> Path:
    return Path((ctx.obj or {}).get("workspace") or "fraudnet-data")


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


def _open_store(ctx: click.Context, read_only: bool = False) -> Any:
    from fraudnet.claims.store import ClaimsStore

    try:
        return ClaimsStore.open(_workspace(ctx), read_only=read_only)
    except FraudnetError as exc:
        _fail(exc)


def _parse_date(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date (yyyy-mm-dd) / 日期格式应为 yyyy-mm-dd",
                                 param_hint=name) from exc


# ---------------------------------------------------------------------------------------------- detect
@click.command("detect")
@click.option("--only", "only", multiple=True, metavar="KIND",
              help="Run only these kinds (repeatable; families `rule`, `anomaly` allowed) / 仅运行指定类型")
@click.option("--since", default=None, metavar="DATE", help="Only evidence from this date on / 仅检查此日期后的数据")
@click.option("--no-sync", is_flag=True, help="Do not sync leads to Neo4j even when configured / 不同步到 Neo4j")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="Query engine: embedded DuckDB, or Apache Spark (pip install 'fraudnet[spark]') / 计算引擎")
@click.option("--master", default=None, metavar="URL",
              help="Spark master: local[2] (default), spark://HOST:7077, yarn / Spark 集群地址")
@click.option("--lake", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Spark reads this Parquet lake (fraudnet ingest --lake) instead of the claims store's tables")
@click.pass_context
def detect(ctx: click.Context, only: tuple[str, ...], since: str | None, no_sync: bool, engine: str = "duckdb",
           master: str | None = None, lake: Path | None = None) -> None:
    """Screen the claims store with every detector and store the leads / 运行全部检测器并保存线索.

    With `--engine spark` the detectors' SQL runs on Spark (the claims tables exported to Parquet, or the lake);
    the leads, with the same ids, are saved to the claims store as usual."""
    from fraudnet.claims.leads import LeadStore
    from fraudnet.detectors.registry import resolve_kinds, run_detectors

    console = _console()
    since_dt = _parse_date(since, "--since")
    if engine == "duckdb" and (master or lake):
        raise click.BadParameter("--master and --lake need --engine spark / 需配合 --engine spark",
                                 param_hint="--engine")
    try:
        kinds = resolve_kinds(list(only) or None)
    except FraudnetError as exc:
        raise click.BadParameter(str(exc), param_hint="--only") from exc
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.errors import StoreError

    try:
        store = ClaimsStore.open(_workspace(ctx))
    except StoreError as exc:  # held by `fraudnet serve`: the server runs the detection as its job
        ctx.exit(_detect_through_server(console, ctx, exc, kinds if only else None, since_dt))
    except FraudnetError as exc:
        _fail(exc)
    try:
        if not store.table_counts().get("mdtrt"):
            raise click.ClickException("the claims store has no visits; run `fraudnet ingest DIR` first / "
                                       "理赔库中没有就诊数据，请先运行 fraudnet ingest")
        started = time.perf_counter()
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console,
                      transient=False) as bar:
            task = bar.add_task("detect 检测", total=len(kinds))

            def progress(kind: str, done: int, total: int, n: int | None, seconds: float | None) -> None:
                if n is None:
                    bar.update(task, description=f"{kind} …")
                else:
                    bar.update(task, completed=done, description=f"{kind}: {n} leads {seconds:.1f}s")

            spark = None
            if engine == "spark":
                from fraudnet.engines import make_engine

                bar.update(task, description=f"{engine}: starting / 启动 …")
                try:
                    spark = make_engine("spark", store.con, master=master, lake=lake)
                except FraudnetError as exc:  # a master URL that is none, a lake that is none
                    _fail(exc)
            try:
                run = run_detectors(store.con, only=kinds, progress=progress, since=since_dt, engine=spark)
            finally:
                if spark is not None:
                    spark.close()
            bar.update(task, description="detect 检测 done")
        ok_kinds = [k for k in run.kinds if k not in run.errors]
        # an incremental run (--since) sees only recent evidence: it adds and updates, it does not retire
        saved = LeadStore(store.con).save_run(list(run), ok_kinds, retire=since_dt is None,
                                              coverage=run.coverage_summary())
        if since_dt is None and not only and not run.errors:  # a full run: the screening cycle's watermark moves
            from fraudnet.screening.incremental import record_detection

            record_detection(store.con)
        total_s = time.perf_counter() - started
        _print_summary(console, run, saved, total_s)
        for line in coverage_lines(run):
            console.print(line, style="yellow", markup=False, highlight=False)
        for kind, message in run.errors.items():
            console.print(f"[red]detector {kind} failed / 检测器失败: {message}[/red]")
        if not no_sync:
            _sync_neo4j(console, ctx, store)
    finally:
        store.close()
    if run.errors:
        ctx.exit(1)


def _detect_through_server(console: Console, ctx: click.Context, exc: Exception, only: list[str] | None,
                           since: datetime | None) -> int:
    """While `fraudnet serve` holds the store: the detection sent to it as a job (leads saved by the server)."""
    from fraudnet.cli.remote import cli_token, run_job, serving_url

    url = serving_url(exc)  # type: ignore[arg-type]
    if url is None:
        raise click.ClickException(str(exc))
    if since is not None:
        raise click.ClickException("--since is not available through the running server / 运行中的服务不支持 --since")
    try:
        with cli_token(_workspace(ctx)) as token:
            job = run_job(url, token, "/api/jobs/detect", body={"only": only} if only else {},
                          echo=lambda text: console.print(text, markup=False, highlight=False))
    except FraudnetError as exc2:
        raise click.ClickException(str(exc2)) from exc2
    if job["state"] != "succeeded":
        raise click.ClickException(f"detection failed / 检测失败: {job.get('error')}")
    result = job.get("result") or {}
    saved = result.get("saved") or {}
    console.print(f"detected by the server / 已由服务检测: {result.get('leads', 0)} leads "
                  f"{result.get('by_severity', {})}; lead store: {saved.get('new', 0)} new, "
                  f"{saved.get('updated', 0)} updated, {saved.get('retired', 0)} retired (run {saved.get('run_id')})")
    return 1 if result.get("errors") else 0


def coverage_lines(run: Any) -> list[str]:
    """One line per detector left out, or per data detail some institutions lack, with the reason in English and
    Chinese, e.g. "rule:bed_hanging: 2,092 institutions without per-day fee lines, skipped /
    2,092家机构无逐日费用明细，未筛查"."""
    lines = []
    for kind in run.kinds:
        skip = getattr(run, "skipped", {}).get(kind)
        if skip:
            lines.append(f"{kind}: {skip['reason_en']} / {skip['reason_zh']}")
            continue
        for info in getattr(run, "abstained", {}).get(kind, {}).values():
            lines.append(f"{kind}: {info['reason_en']} / {info['reason_zh']}")
    return lines


def _print_summary(console: Console, run: Any, saved: dict, seconds: float) -> None:
    table = Table(title="leads by kind and severity / 各类线索（红/橙/黄）")
    table.add_column("kind 类型", no_wrap=True)
    for sev in SEVERITY_ORDER:
        table.add_column(f"{sev} {SEVERITY_ZH[sev]}", justify="right", style=SEVERITY_STYLE[sev])
    table.add_column("total 合计", justify="right")
    table.add_column("amount 涉嫌金额", justify="right")
    table.add_column("seconds 用时", justify="right")
    for kind in run.kinds:
        kl = [lead for lead in run if lead.kind == kind]
        table.add_row(kind, *[str(sum(1 for lead in kl if lead.severity == s)) for s in SEVERITY_ORDER],
                      str(len(kl)), f"{sum(lead.amount_at_risk for lead in kl):,.2f}",
                      f"{run.timings.get(kind, 0.0):.2f}")
    table.add_row("[bold]all 全部", *[f"[bold]{sum(1 for lead in run if lead.severity == s)}" for s in SEVERITY_ORDER],
                  f"[bold]{len(run)}", f"[bold]{sum(lead.amount_at_risk for lead in run):,.2f}",
                  f"[bold]{run.seconds:.2f}")
    console.print(table)
    console.print(f"lead store 线索库: {saved['new']} new 新增, {saved['updated']} updated 更新, "
                  f"{saved['retired']} retired 失效, {saved['inherited']} inherited decisions 继承处理结果"
                  + (f", {saved['covered']} already held by active leads 已有线索涵盖" if saved.get("covered") else "")
                  + f" (run {saved['run_id']}); total {seconds:.1f} s")


def _sync_neo4j(console: Console, ctx: click.Context, store: Any) -> None:
    from fraudnet.config import load_settings

    settings = load_settings(_workspace(ctx))
    uri = settings.neo4j_uri
    if not uri:
        try:
            from fraudnet.graph.neo4j_server import running_uri

            uri = running_uri(settings.workspace) or ""
        except ImportError:
            uri = ""
    if not uri:
        return
    from fraudnet.claims.leads import LeadStore
    from fraudnet.errors import Neo4jUnavailableError
    from fraudnet.graph.neo4j_load import sync_leads

    full = LeadStore(store.con).all_leads()
    try:
        n = sync_leads(full, settings, replace=True)
    except Neo4jUnavailableError as exc:
        console.print(f"[yellow]Neo4j sync skipped, leads are in the claims store / 未同步到 Neo4j: {exc}[/yellow]")
        return
    console.print(f"synced {n} leads to Neo4j at {uri} / 已同步 {n} 条线索到 Neo4j")


# ---------------------------------------------------------------------------------------------- leads
@click.group("leads")
def leads() -> None:
    """Lead queue: list and export / 线索列表与导出."""


def _severities_from(min_severity: str | None) -> list[str] | None:
    if not min_severity:
        return None
    return list(SEVERITY_ORDER[: SEVERITY_ORDER.index(min_severity) + 1])


@leads.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "jsonl"]), default=None,
              help="File format (default from the --out suffix, else csv) / 文件格式")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output file / 输出文件")
@click.option("--min-severity", type=click.Choice(list(SEVERITY_ORDER)), default=None,
              help="Only leads at least this severe / 最低预警等级")
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable) / 仅导出指定类型")
@click.option("--status", default=None, help="Only leads in this status / 仅导出指定状态")
@click.option("--include-retired", is_flag=True, help="Also leads no longer produced / 包括已失效线索")
@click.pass_context
def leads_export(ctx: click.Context, fmt: str | None, out: str, min_severity: str | None, kinds: tuple[str, ...],
                 status: str | None, include_retired: bool) -> None:
    """Export leads with the contract columns (CSV UTF-8 BOM, XLSX, JSON Lines) / 导出线索."""
    from fraudnet.claims.leads import LeadStore
    from fraudnet.exports.leads import write_leads

    fmt = fmt or (Path(out).suffix.lstrip(".").lower() if Path(out).suffix.lstrip(".").lower()
                  in ("csv", "xlsx", "jsonl") else "csv")
    store = _open_store(ctx, read_only=True)
    try:
        ls = LeadStore(store.con)
        rows: list[dict] = []
        for kind in (kinds or (None,)):
            got, _ = ls.list(kind=kind, severity=_severities_from(min_severity), status=status,
                             active_only=not include_retired, limit=100_000)
            rows.extend(got)
        n = write_leads(rows, out, fmt)
    except FraudnetError as exc:
        _fail(exc)
    finally:
        store.close()
    click.echo(f"wrote {n} leads to {out} ({fmt}) / 已导出 {n} 条线索")


@leads.command("list")
@click.option("--kind", default=None)
@click.option("--severity", default=None, help="Comma-separated, e.g. red,orange")
@click.option("--status", default=None)
@click.option("--institution", default=None)
@click.option("--person", default=None)
@click.option("--sort", default="-priority", show_default=True,
              help="priority (expected recovery once a model is trained, else score), score, amount, severity, "
                   "period_start; - = desc")
@click.option("--limit", default=20, show_default=True, type=int)
@click.option("--offset", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines / 输出 JSON")
@click.pass_context
def leads_list(ctx: click.Context, kind: str | None, severity: str | None, status: str | None,
               institution: str | None, person: str | None, sort: str, limit: int, offset: int,
               as_json: bool) -> None:
    """List leads, most suspicious first / 列出线索."""
    from fraudnet.claims.leads import LeadStore

    store = _open_store(ctx, read_only=True)
    try:
        rows, total = LeadStore(store.con).list(
            kind=kind, severity=[s for s in (severity or "").split(",") if s] or None, status=status,
            institution=institution, person=person, sort=sort, limit=limit, offset=offset)
    except FraudnetError as exc:
        _fail(exc)
    finally:
        store.close()
    from fraudnet.exports.leads import default_response_hours
    from fraudnet.screening.clock import response_clock

    hours = default_response_hours()
    for row in rows:  # red leads: on site by first seen + FRAUDNET_RESPONSE_HOURS (5 h); overdue without decision
        row.update(response_clock(row, hours))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    console = _console()
    table = Table(title=f"leads 线索 {offset + 1}–{offset + len(rows)} of {total}")
    for col in ("lead_id", "kind", "severity", "score", "amount", "evidence", "status", "on site by 到场时限",
                "explanation 说明"):
        table.add_column(col, overflow="fold")
    for r in rows:
        due = r["response_due_at"]
        due_text = "" if due is None else (f"{due:%m-%d %H:%M} UTC" + (" [bold red]OVERDUE 超时[/bold red]"
                                                                         if r["overdue"] else ""))
        table.add_row(r["lead_id"], r["kind"], f"[{SEVERITY_STYLE[r['severity']]}]{r['severity']}",
                      f"{r['score']:.3f}", f"{r['amount_at_risk']:,.2f}", str(r["evidence_count"]), r["status"],
                      due_text, r["explanation_zh"][:120])
    console.print(table)


# ---------------------------------------------------------------------------------------------- scores
@click.group("scores")
def scores() -> None:
    """Entity risk scores / 实体风险评分."""


def _scores_help() -> str:
    from fraudnet.detectors.risk import RISK_FORMULA

    return ("Export entity risk scores (entity_type, entity_id, score, leads, amount_at_risk, top_kinds) / "
            "导出风险评分.\n\nEvery institution and practitioner with visits gets a score, persons when a lead names "
            f"them. Formula / 公式: {RISK_FORMULA}")


@scores.command("export", help=_scores_help())
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None)
@click.pass_context
def scores_export(ctx: click.Context, out: str, fmt: str | None) -> None:
    """Export entity risk scores (see `fraudnet.detectors.risk.RISK_FORMULA`)."""
    from fraudnet.claims.leads import LeadStore
    from fraudnet.exports.scores import write_scores

    fmt = fmt or ("xlsx" if Path(out).suffix.lower() == ".xlsx" else "csv")
    store = _open_store(ctx, read_only=True)
    try:
        frame = LeadStore(store.con).entity_scores()
        n = write_scores(frame, out, fmt)
    except FraudnetError as exc:
        _fail(exc)
    finally:
        store.close()
    click.echo(f"wrote {n} entity scores to {out} ({fmt}) / 已导出 {n} 个实体评分")


# ---------------------------------------------------------------------------------------------- evaluate
@click.command("evaluate")
@click.option("--truth", "truth_path", required=True, type=click.Path(exists=True),
              help="truth.json of a generated city (or its folder) / 生成数据的真值文件")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON / 输出 JSON")
@click.pass_context
def evaluate_cmd(ctx: click.Context, truth_path: str, as_json: bool) -> None:
    """Recall and precision of the stored leads against planted schemes / 按真值评估线索的召回率与准确率."""
    from fraudnet.claims.leads import LeadStore
    from fraudnet.detectors.evaluate import evaluate, load_truth

    try:
        truth = load_truth(truth_path)
    except FraudnetError as exc:
        _fail(exc)
    store = _open_store(ctx, read_only=True)
    try:
        rows, _ = LeadStore(store.con).list(limit=100_000)
    finally:
        store.close()
    result = evaluate(rows, truth)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=1, default=str))
        return
    print_evaluation(_console(), result)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def print_evaluation(console: Console, result: dict) -> None:
    """Print an evaluation result (from `fraudnet.detectors.evaluate.evaluate`) as tables."""
    table = Table(title="detection quality / 检测质量 (red+orange 红+橙; all 全部)")
    for col in ("kind 类型", "planted 植入", "leads", "red+orange", "recall", "precision", "recall all",
                "precision all"):
        table.add_column(col, justify="right" if col != "kind 类型" else "left")
    for kind, k in sorted(result["kinds"].items()):
        ok = k["planted"] and (k["recall"] or 0) >= 0.9 and (k["precision"] or 0) >= 0.8
        style = "green" if ok else ("red" if k["planted"] else "")
        table.add_row(kind, str(k["planted"]), str(k["leads"]), str(k["leads_red_orange"]),
                      f"[{style}]{_fmt(k['recall'])}" if style else _fmt(k["recall"]),
                      f"[{style}]{_fmt(k['precision'])}" if style else _fmt(k["precision"]),
                      _fmt(k["recall_all"]), _fmt(k["precision_all"]))
    console.print(table)
    look = Table(title="legitimate look-alikes flagged / 合法相似情形被标记")
    for col in ("kind 类型", "count 数量", "red 红", "orange 橙", "yellow 黄"):
        look.add_column(col, justify="right" if col != "kind 类型" else "left")
    for kind, v in sorted(result["lookalikes"].items()):
        look.add_row(kind, str(v["count"]), str(v["flagged"]["red"]), str(v["flagged"]["orange"]),
                     str(v["flagged"]["yellow"]))
    console.print(look)
    s = result["summary"]
    console.print(f"{s['kinds_meeting_floor']}/{s['planted_kinds']} planted kinds meet recall ≥ 0.9 and precision "
                  "≥ 0.8;"
                  f" {s['lookalikes_red']} look-alikes red; {s['leads']} leads / "
                  f"{s['kinds_meeting_floor']}/{s['planted_kinds']} 类达标")


COMMANDS = [detect, leads, scores, evaluate_cmd]
