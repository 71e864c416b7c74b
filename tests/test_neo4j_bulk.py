"""`fraudnet neo4j load --bulk DIR`: import CSVs in neo4j-admin's header format, one pair of files per part."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from fraudnet.claims.store import ClaimsStore
from fraudnet.cli import main
from fraudnet.graph.neo4j_load import PARTS, part_rows_sql


def test_bulk_csv_headers_and_row_counts(small_claims_workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "bulk"
    res = CliRunner().invoke(main, ["-w", str(small_claims_workspace), "neo4j", "load", "--bulk", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    command = res.output.strip().splitlines()[-1]
    assert command.startswith("neo4j-admin database import full neo4j ")
    with ClaimsStore.open(small_claims_workspace, read_only=True) as store:
        for part in PARTS:
            stem = part.name.replace("→", "_to_")
            header = next(csv.reader((out / f"{stem}.header.csv").open(encoding="utf-8")))
            with (out / f"{stem}.csv").open(encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh))
            want = store.con.execute(f"SELECT count(*) FROM ({part_rows_sql(part.name)})").fetchall()[0][0]
            assert len(rows) == want, part.name
            assert all(len(r) == len(header) for r in rows), part.name
            if part.kind == "node":
                assert header[0] == f"{part.key_prop}:ID({part.label})"
                assert f"--nodes={part.label}={out / stem}.header.csv,{out / stem}.csv" in command
                assert len({r[0] for r in rows}) == len(rows), f"{part.name}: duplicate node ids"
            else:
                assert header[:2] == [f":START_ID({part.ends[0][0]})", f":END_ID({part.ends[1][0]})"]
                assert f"--relationships={part.label}={out / stem}.header.csv" in command
            assert all(":" in h and h.split(":", 1)[1] for h in header)  # every column typed
    visit = next(csv.reader((out / "Visit.header.csv").open(encoding="utf-8")))
    assert "begntime:localdatetime" in visit and "refunded:boolean" in visit and "fund_pay_sumamt:double" in visit
    first = next(csv.reader((out / "Visit.csv").open(encoding="utf-8")))
    assert "T" in first[visit.index("begntime:localdatetime")]  # ISO 8601, as the import tool parses it
    assert "VISITED_to_Pharmacy.csv" in command and "--relationships=VISITED=" in command
