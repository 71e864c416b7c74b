"""`fraudnet ingest` and `fraudnet quarantine` through the click command line."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from fraudnet.claims.store import ClaimsStore
from fraudnet.cli import main
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table


def _run(ws: Path, *args: str, env: dict[str, str] | None = None):  # noqa: ANN202 - click Result
    return CliRunner().invoke(main, ["-w", str(ws), *args], env=env, catch_exceptions=False)


def test_ingest_prints_summary_and_quarantine_shows_rejects(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    header, rows = MINIMAL_ROWS["mdtrt"]
    bad = list(rows[3])
    bad[4] = "2025-02-30 08:00:00"
    write_table(src / "mdtrt.csv", header, [*rows[:3], bad])
    ws = tmp_path / "ws"
    res = _run(ws, "ingest", str(src))
    assert res.exit_code == 0, res.output
    out = res.output
    for word in ("mdtrt", "setl", "fee_list", "psn_info", "medins_info", "loaded", "rejected", "fraudnet quarantine"):
        assert word in out
    assert "orphans" in out and "mdtrt_id→mdtrt" in out  # ST005 and its fee line point at the rejected MD004
    q = _run(ws, "quarantine", "--table", "mdtrt")
    assert q.exit_code == 0, q.output
    assert "2025-02-30 08:00:00" in q.output and "begntime" in q.output and "mdtrt.csv" in q.output
    assert "1 of 1" in q.output
    again = _run(ws, "ingest", str(src))
    assert again.exit_code == 0 and "already ingested" in again.output
    with ClaimsStore.open(ws, read_only=True) as store:
        assert store.table_counts()["mdtrt"] == 3
    assert "0 of 0" in _run(ws, "quarantine", "--table", "setl", "--limit", "5").output


def test_missing_required_table_exits_2_naming_it(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("setl",))
    ws = tmp_path / "ws"
    res = _run(ws, "ingest", str(src))
    assert res.exit_code == 2
    assert "required table 'setl' (setl.csv / setl_d.* / settlements.*) not found in" in " ".join(res.output.split())
    with ClaimsStore.open(ws, read_only=True) as store:
        assert sum(store.table_counts().values()) == 0  # nothing was loaded


def test_missing_required_column_exits_2_naming_file_and_column(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    header, rows = MINIMAL_ROWS["mdtrt"]
    keep = [i for i, h in enumerate(header) if h != "begntime"]
    write_table(src / "mdtrt.csv", [header[i] for i in keep], [[r[i] for i in keep] for r in rows])
    res = _run(tmp_path / "ws", "ingest", str(src))
    assert res.exit_code == 2
    assert "mdtrt.csv: required column 'begntime' is missing" in " ".join(res.output.split())


def test_neo4j_unavailable_keeps_claims_and_exits_nonzero(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = write_minimal_city(tmp_path / "in")
    ws = tmp_path / "ws"
    res = _run(ws, "ingest", str(src), "--neo4j",
               env={"NEO4J_URI": f"bolt://127.0.0.1:{port}", "NEO4J_PASSWORD": "x"})
    assert res.exit_code != 0
    assert "claims store is intact" in " ".join(res.output.split())
    with ClaimsStore.open(ws, read_only=True) as store:
        assert store.table_counts()["mdtrt"] == 4
