"""`fraudnet generate`: write a synthetic city (contract tables + truth.json) for demos, tests and benchmarks."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

__all__ = ["COMMANDS", "generate"]


@click.command("generate")
@click.option("--persons", "-n", type=click.IntRange(min=500), default=20000, show_default=True,
              help="Number of insured persons / 参保人数.")
@click.option("--seed", "-s", type=int, default=42, show_default=True, help="Random seed (same seed, same bytes).")
@click.option("--out", "-o", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder / 输出目录.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--days", type=click.IntRange(min=90, max=3660), default=365, show_default=True,
              help="Length of the period in days / 数据天数.")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default="2025-01-01", show_default=True,
              help="First day of the period / 起始日期.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def generate(persons: int, seed: int, out: Path, fmt: str, days: int, start: datetime, quiet: bool) -> None:
    """Generate a synthetic city with planted fraud schemes / 生成含植入欺诈模式的模拟城市数据."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from fraudnet.generate.city import generate_city

    console = Console()
    start_day = start.date() if isinstance(start, datetime) else date.fromisoformat(str(start))
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, disable=quiet, transient=False) as bar:
        task = bar.add_task("generate / 生成", total=100)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, description=stage, completed=round(fraction * 100))

        summary = generate_city(out, persons=persons, seed=seed, fmt=fmt, days=days, start=start_day,
                                progress=progress)
    table = Table(title=f"city of {persons:,} persons (seed {seed}) → {out}  [{summary.seconds:.1f} s]")
    table.add_column("table / 数据表")
    table.add_column("rows / 行数", justify="right")
    for name, count in summary.counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    kinds = Table(title="planted schemes / 植入模式 (truth.json)")
    kinds.add_column("kind / 类型")
    kinds.add_column("count / 数量", justify="right")
    for kind, count in sorted(summary.schemes.items()):
        kinds.add_row(kind, str(count))
    for kind, count in sorted(summary.lookalikes.items()):
        kinds.add_row(f"look-alike / 正常相似: {kind}", str(count))
    console.print(kinds)


COMMANDS = [generate]
