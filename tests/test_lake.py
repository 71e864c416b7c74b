"""`fraudnet ingest DIR --lake PATH`: validated tables as Parquet partitioned by region and month, idempotent."""

from __future__ import annotations

from pathlib import Path

import duckdb
from click.testing import CliRunner

from fraudnet.cli import main
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table


def _run(ws: Path, *args: str):  # noqa: ANN202 - click Result
    return CliRunner().invoke(main, ["-w", str(ws), *args], catch_exceptions=False)


def _lake_rows(lake: Path, table: str) -> list[tuple]:
    return duckdb.sql(f"SELECT mdtrt_id, region, month FROM read_parquet('{lake}/{table}/*/*/*.parquet', "
                      "hive_partitioning = true) ORDER BY ALL").fetchall()


def test_lake_holds_the_validated_rows_by_region_and_month_and_reingest_adds_nothing(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    header, rows = MINIMAL_ROWS["mdtrt"]
    bad = list(rows[3])
    bad[4] = "2025-02-30 08:00:00"  # quarantined by the ingest: never in the store, never in the lake
    write_table(src / "mdtrt.csv", header, [*rows[:3], bad])
    ws, lake = tmp_path / "ws", tmp_path / "lake"
    res = _run(ws, "ingest", str(src), "--lake", str(lake))
    assert res.exit_code == 0, res.output
    assert "visit_fact" in res.output and "partitions" in res.output
    got = _lake_rows(lake, "mdtrt")
    assert [r[0] for r in got] == [r[0] for r in rows[:3]]  # MD001..MD003, not the rejected MD004
    assert all(len(str(r[1])) == 6 and str(r[2]).startswith("2025-") for r in got)  # institution region
    assert [r[0] for r in _lake_rows(lake, "visit_fact")] == [r[0] for r in got]
    fee = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/fee_list/*/*/*.parquet')").fetchall()[0][0]
    with duckdb.connect(str(next(ws.glob("*.duckdb"))), read_only=True) as con:
        assert fee == con.execute("SELECT count(*) FROM fee_list").fetchall()[0][0]
        cols = {r[0] for r in con.execute("DESCRIBE fee_list").fetchall()}
    lake_cols = {r[0] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{lake}/fee_list/*/*/*.parquet')")
                 .fetchall()}
    assert lake_cols - {"region", "month"} == {c for c in cols if not c.startswith("_")}  # bookkeeping: store
    files = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))
    again = _run(ws, "ingest", str(src), "--lake", str(lake))
    assert again.exit_code == 0 and "up to date" in again.output
    assert sorted(p.relative_to(lake) for p in lake.rglob("*.parquet")) == files
    # the corrected row arrives in a new file: its partition is rewritten, with no duplicate of the others
    fixed = tmp_path / "fix"
    fixed.mkdir()
    write_table(fixed / "mdtrt.csv", header, [rows[3]])
    assert _run(ws, "ingest", str(fixed), "--lake", str(lake)).exit_code == 0
    assert [r[0] for r in _lake_rows(lake, "mdtrt")] == [r[0] for r in rows]
    assert [r[0] for r in _lake_rows(lake, "visit_fact")] == [r[0] for r in rows]
