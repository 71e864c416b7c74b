"""`fraudnet ingest DIR [--neo4j]` and `fraudnet quarantine`: load export files, show rejected rows."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fraudnet.claims.store import ClaimsStore
from fraudnet.errors import FraudnetError, Neo4jUnavailableError, StoreError
from fraudnet.ingest.pipeline import ingest_folder
from fraudnet.ingest.report import IngestReport

__all__ = ["COMMANDS", "ingest", "quarantine", "print_report"]

EXIT_CONTRACT = 2  # a required table or column is missing
EXIT_FAILED = 1  # a file could not be read at all, or the Neo4j load failed

def _console() -> Console:
    """A console that is wide enough for the summary table when output is not a terminal."""
    return Console() if sys.stdout.isatty() else Console(width=160)


_STEP_TEXT = {"check": "checking / 检查", "read": "reading / 读取", "validate": "validating / 校验",
              "load": "loading / 入库", "commit": "committing / 提交", "done": "done / 完成",
              "skipped": "already ingested / 已导入"}


def print_report(report: IngestReport, console: Console) -> None:
    """Print the per-table summary, errors and where the quarantine is."""
    table = Table(title=f"ingest {report.folder} — {report.seconds:.1f}s", title_justify="left")
    for col in ("table / 表", "files", "read / 读取", "loaded / 入库", "updated / 更新", "rejected / 拒收",
                "skipped invalid / 无效", "already present / 已存在", "orphans / 孤立引用"):
        table.add_column(col, justify="left" if col.startswith(("table", "orphans")) else "right")
    for t in report.tables.values():
        orphans = ", ".join(f"{k}: {v:,}" for k, v in t.orphans.items()) or "-"
        table.add_row(t.table, str(t.files), f"{t.rows_read:,}", f"{t.rows_loaded:,}", f"{t.rows_updated:,}",
                      f"{t.rows_rejected:,}", f"{t.rows_invalid:,}", f"{t.rows_already_present:,}", orphans)
    if report.tables:
        console.print(table)
    for f in report.files:
        if f.status == "already_ingested":
            console.print(f"[dim]{f.file_name}: already ingested (same sha256), nothing changed "
                          "/ 已导入过，未改动[/dim]")
        elif f.status == "loaded" and f.encoding and f.encoding != "utf-8":
            console.print(f"[dim]{f.file_name}: encoding {f.encoding}[/dim]")
    if report.unrecognised_files:
        console.print("[dim]ignored (no contract table) / 已忽略: " + ", ".join(report.unrecognised_files) + "[/dim]")
    for msg in report.errors:
        console.print(f"[red]error:[/red] {msg}")
    rejected = report.rows_rejected
    if rejected:
        console.print(f"{rejected:,} rows rejected; see them with `fraudnet quarantine` "
                      f"(--table T, --limit N) / 拒收行见 fraudnet quarantine")
    orphan_total = sum(t.orphan_total for t in report.tables.values())
    if orphan_total:
        console.print(f"[yellow]warning:[/yellow] {orphan_total:,} loaded rows refer to persons, institutions or "
                      "visits not (yet) in the store / 存在引用缺失的记录（已入库）")
    if report.tables:
        console.print(f"visit_fact: {report.visit_fact_rows:,} visits / 就诊事实表")


@click.command("ingest")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--neo4j", "to_neo4j", is_flag=True, help="Load the graph into Neo4j afterwards (NEO4J_URI).")
@click.option("--keep-extra-columns", is_flag=True,
              help="Keep columns the contract does not know (in _extra; ID-card and mobile numbers masked and "
                   "hashed). Off by default: unknown columns are dropped.")
@click.option("--lake", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the validated tables as Parquet partitioned by region and month (for Spark).")
@click.pass_context
def ingest(ctx: click.Context, folder: Path, to_neo4j: bool, keep_extra_columns: bool,
           lake: Path | None = None) -> None:
    """Ingest a folder of export files (CSV/Parquet/XLSX) into the claims store / 导入医保数据文件夹."""
    workspace = Path(ctx.obj["workspace"])
    console = _console()
    try:
        store = ClaimsStore.open(workspace)
    except StoreError as exc:
        sys.exit(_ingest_through_server(workspace, folder, exc, keep_extra_columns, console))
    except FraudnetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_FAILED)
    with store:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[step]}"),
                      TimeElapsedColumn(), console=console, transient=False,
                      disable=not console.is_terminal) as bar:
            tasks: dict[str, int] = {}

            def progress(name: str, step: str, done: int, total: int) -> None:
                if step == "check":
                    return
                if not console.is_terminal:  # logs and pipes: one line per file and step, no bar
                    if step in ("read", "done", "skipped"):
                        console.print(f"{name}: {_STEP_TEXT.get(step, step)}")
                    return
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total, step="")
                bar.update(tasks[name], completed=done, total=total, step=_STEP_TEXT.get(step, step))

            try:
                report = ingest_folder(folder, store, progress=progress, keep_extra_columns=keep_extra_columns)
            except FraudnetError as exc:
                console.print(f"[red]error:[/red] {exc}")
                sys.exit(EXIT_FAILED)
        print_report(report, console)
        if report.contract_error:
            sys.exit(EXIT_CONTRACT)
        code = 0 if report.ok else EXIT_FAILED
        if lake is not None and report.ok:
            from fraudnet.engines.lake import write_lake

            written = write_lake(store.con, lake, [f.batch_id for f in report.files if f.batch_id is not None])
            console.print(f"lake {lake}: " + (", ".join(f"{t} {n} partitions" for t, n in written.items())
                                               or "up to date / 无新分区"))
        if to_neo4j:
            code = max(code, _load_neo4j(store, workspace, console))
    sys.exit(code)


def _ingest_through_server(workspace: Path, folder: Path, exc: StoreError, keep_extra: bool,
                           console: Console) -> int:
    """While `fraudnet serve` holds the store: the folder's contract files sent to it as an ingest job."""
    from fraudnet.cli.remote import cli_token, run_job, serving_url
    from fraudnet.ingest.readers import discover_files

    url = serving_url(exc)
    if url is None:
        console.print(f"[red]error:[/red] {exc}")
        return EXIT_FAILED
    if keep_extra:
        console.print("[red]error:[/red] --keep-extra-columns is not available through the running server; stop it "
                      "or drop the option / 运行中的服务不支持 --keep-extra-columns")
        return EXIT_FAILED
    files, _ = discover_files(folder)
    if not files:
        console.print(f"[red]error:[/red] no contract files in {folder}; nothing was sent to the running server / "
                      f"文件夹中没有可导入的数据文件。{exc}")
        return EXIT_FAILED
    try:
        with cli_token(workspace) as token:
            job = run_job(url, token, "/api/jobs/ingest", files=[f.path for f in files],
                          echo=lambda text: console.print(text, markup=False, highlight=False))
    except FraudnetError as exc2:
        console.print(f"[red]error:[/red] {exc2}")
        return EXIT_FAILED
    if job["state"] != "succeeded":
        console.print(f"[red]ingest failed / 导入失败:[/red] {job.get('error')}")
        return EXIT_FAILED
    result = job.get("result") or {}
    console.print(f"ingested by the server / 已由服务导入: {result.get('rows_loaded', 0):,} rows loaded, "
                  f"{result.get('rows_rejected', 0):,} rejected, {len(result.get('already_ingested') or [])} file(s) "
                  f"already in; visit_fact {result.get('visit_fact_rows', 0):,} visits")
    return 0


def _load_neo4j(store: ClaimsStore, workspace: Path, console: Console) -> int:
    from fraudnet.config import load_settings
    from fraudnet.graph.neo4j_load import load_graph

    settings = load_settings(workspace)
    try:
        result = load_graph(store, settings)
    except Neo4jUnavailableError as exc:
        console.print(f"[red]Neo4j unavailable:[/red] {exc}\nThe claims store is intact; run "
                      "`fraudnet neo4j load` once Neo4j is up. / Neo4j 不可用，理赔库数据完好，可稍后再加载图数据。")
        return EXIT_FAILED
    except FraudnetError as exc:
        console.print(f"[red]Neo4j load failed:[/red] {exc}\nThe claims store is intact. / 理赔库数据完好。")
        return EXIT_FAILED
    console.print(f"Neo4j: {result.node_rows:,} node rows, {result.relationship_rows:,} relationship rows "
                  f"in {result.seconds:.1f}s / 图数据已加载")
    return 0


@click.command("quarantine")
@click.option("--table", "table_name", default=None, help="Only rows of this table (mdtrt, setl, …).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Rows to show.")
@click.option("--batch", "batch_id", default=None, type=int, help="Only rows of this ingest batch.")
@click.pass_context
def quarantine(ctx: click.Context, table_name: str | None, limit: int, batch_id: int | None) -> None:
    """Show rows rejected by ingest, with file, row, field, value and reason / 查看隔离（拒收）记录."""
    console = _console()
    try:
        store = ClaimsStore.open(Path(ctx.obj["workspace"]), read_only=True)
    except FraudnetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_FAILED)
    with store:
        where, params = [], []
        if table_name:
            from fraudnet.contract import table_for_filename

            spec = table_for_filename(table_name)
            where.append("table_name = ?")
            params.append(spec.name if spec else table_name)
        if batch_id is not None:
            where.append("batch_id = ?")
            params.append(batch_id)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        total = int(store.sql(f"SELECT count(*) AS n FROM quarantine {clause}", params)["n"].iloc[0])
        rows = store.sql(
            f"SELECT batch_id, file_name, table_name, row_number, field, value, reason FROM quarantine {clause} "
            f"ORDER BY batch_id, row_number, field LIMIT {int(limit)}", params)
    out = Table(title=f"quarantine / 隔离记录: {len(rows):,} of {total:,}", title_justify="left")
    for col in ("batch", "file", "table", "row", "field", "value", "reason"):
        out.add_column(col, overflow="fold")
    for r in rows.itertuples(index=False):
        out.add_row(*("" if v is None or v != v else str(v) for v in r))
    console.print(out)


COMMANDS = [ingest, quarantine]
