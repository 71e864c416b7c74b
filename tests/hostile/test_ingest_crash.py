"""Hostile ingest: a crash between a load and the visit_fact refresh never leaves derived data stale (issue 13)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from fraudnet.claims.store import ClaimsStore
from fraudnet.cli import main as cli
from fraudnet.ingest import pipeline
from fraudnet.ingest.pipeline import ingest_folder
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table

P1 = "PSN0000000000000000001"
ROOT = Path(__file__).resolve().parents[2]


def _day2(folder: Path) -> Path:
    """A later day: two new visits with their settlements and fee lines."""
    write_table(folder / "mdtrt.csv", MINIMAL_ROWS["mdtrt"][0], [
        ["MD011", P1, "H310100001", "11", "2025-03-10 08:00:00", "2025-03-10 08:30:00", "", "", "", "1"],
        ["MD012", P1, "H310100001", "11", "2025-03-11 08:00:00", "2025-03-11 08:30:00", "", "", "", "1"]])
    write_table(folder / "setl.csv", MINIMAL_ROWS["setl"][0], [
        ["ST011", "MD011", P1, "H310100001", "2025-03-10 08:30:00", "50.00", "30.00", "30.00", "0", "20.00", "0",
         "1"],
        ["ST012", "MD012", P1, "H310100001", "2025-03-11 08:30:00", "70.00", "40.00", "40.00", "0", "30.00", "0",
         "1"]])
    write_table(folder / "fee_list.csv", MINIMAL_ROWS["fee_list"][0], [
        ["1", "MD011", P1, "ST011", "2025-03-10 08:10:00", "XC09AAA", "依那普利", "101", "1", "50.00", "50.00", "",
         "", "1"],
        ["1", "MD012", P1, "ST012", "2025-03-11 08:10:00", "XC09AAA", "依那普利", "101", "1", "70.00", "70.00", "",
         "", "1"]])
    return folder


def _doctor(ws: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["-w", str(ws), "doctor", "--json", *args])
    return result.exit_code, json.loads(result.output)


def test_kill_before_the_refresh_leaves_nothing_half_done(tmp_path: Path) -> None:
    ws, day1, day2 = tmp_path / "ws", write_minimal_city(tmp_path / "day1"), _day2(tmp_path / "day2")
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(day1, store).ok
    script = textwrap.dedent(f"""
        import os
        from fraudnet.claims.store import ClaimsStore
        from fraudnet.ingest import pipeline
        def killed(*args, **kwargs):
            os._exit(9)  # kill -9 after the day's tables were written, before visit_fact is refreshed
        pipeline.bring_up_to_date = killed
        store = ClaimsStore.open({str(ws)!r})
        pipeline.ingest_folder({str(day2)!r}, store)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    with ClaimsStore.open(ws) as store:
        assert store.table_counts()["mdtrt"] == 4  # the killed run committed nothing
        again = ingest_folder(day2, store)
        assert again.ok and not again.already_ingested and again.tables["mdtrt"].rows_loaded == 2
        counts = store.sql("SELECT (SELECT count(*) FROM mdtrt) AS m, (SELECT count(*) FROM visit_fact) AS v")
        assert counts.values.tolist() == [[6, 6]]
    assert _doctor(ws)[1]["before"]["visit_fact"]["stale"] is False


def test_a_stale_visit_fact_is_found_by_doctor_and_repaired_at_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    ws, day1, day2 = tmp_path / "ws", write_minimal_city(tmp_path / "day1"), _day2(tmp_path / "day2")
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(day1, store).ok
        # A store left as the issue found it: day 2's tables committed, visit_fact never refreshed (an older
        # version crashed between the two).
        monkeypatch.setattr(pipeline, "bring_up_to_date", lambda con, **kw: "skipped")
        assert ingest_folder(day2, store).ok
        monkeypatch.undo()
        assert store.sql("SELECT count(*) AS n FROM visit_fact")["n"][0] == 4
    code, health = _doctor(ws)
    assert code == 1 and health["before"]["visit_fact"]["stale"]
    assert "visit_fact has 4 rows for 6 visits" in health["before"]["visit_fact"]["reason"]
    assert health["before"]["tables"]["mdtrt"] == 6 and health["before"]["orphans"]["fee_list.mdtrt_id→mdtrt"] == 0

    # A read-only open while another connection holds the store (here: this process, read-only) cannot
    # repair: it works on a fresh temporary copy, says so, and leaves the file as it is.
    holder = ClaimsStore.open(ws, read_only=True, check_derived=False)
    try:
        with caplog.at_level(logging.WARNING, logger="fraudnet.claims.derived"):
            with ClaimsStore.open(ws, read_only=True) as ro:
                assert ro.sql("SELECT count(*) AS n FROM visit_fact")["n"][0] == 6
                assert ro.sql("SELECT fund_pay_sumamt FROM visit_fact WHERE mdtrt_id = 'MD012'"
                              )["fund_pay_sumamt"][0] == 40.0
        assert "visit_fact is stale" in caplog.text
        assert _doctor(ws)[1]["before"]["visit_fact"]["stale"]
    finally:
        holder.close()

    # Alone, a read-only open (detect, graph) repairs it for good through a short read-write open.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fraudnet.claims.derived"):
        with ClaimsStore.open(ws, read_only=True) as ro:
            assert ro.sql("SELECT count(*) AS n FROM main.visit_fact")["n"][0] == 6
    assert "visit_fact was stale" in caplog.text
    code, health = _doctor(ws)
    assert code == 0 and health["before"]["visit_fact"]["visit_fact_rows"] == 6


def test_a_read_write_open_repairs_a_stale_visit_fact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    ws, day1, day2 = tmp_path / "ws", write_minimal_city(tmp_path / "day1"), _day2(tmp_path / "day2")
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(day1, store).ok
        monkeypatch.setattr(pipeline, "bring_up_to_date", lambda con, **kw: "skipped")
        assert ingest_folder(day2, store).ok
        monkeypatch.undo()
    with caplog.at_level(logging.WARNING, logger="fraudnet.claims.derived"):
        with ClaimsStore.open(ws) as store:
            assert store.sql("SELECT count(*) AS n FROM visit_fact")["n"][0] == 6
    assert "refreshed for batches" in caplog.text  # only day 2's batches were recomputed
    assert _doctor(ws)[0] == 0


def test_doctor_repair_rebuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, day1, day2 = tmp_path / "ws", write_minimal_city(tmp_path / "day1"), _day2(tmp_path / "day2")
    with ClaimsStore.open(ws) as store:
        assert ingest_folder(day1, store).ok
        monkeypatch.setattr(pipeline, "bring_up_to_date", lambda con, **kw: "skipped")
        assert ingest_folder(day2, store).ok
    code, out = _doctor(ws, "--repair")
    assert code == 0 and out["before"]["visit_fact"]["stale"] and not out["after"]["visit_fact"]["stale"]
    assert out["after"]["tables"]["visit_fact"] == 6 and out["repair"] == "rebuilt"
