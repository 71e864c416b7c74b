"""Ingest idempotency: re-ingest changes nothing, later files add only new rows, references upsert, conflicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.ingest.pipeline import ingest_folder
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table


def _snapshot(store: ClaimsStore) -> dict[str, object]:
    return {
        "counts": store.table_counts(),
        "quarantine": int(store.sql("SELECT count(*) AS n FROM quarantine")["n"][0]),
        "batches": int(store.sql("SELECT count(*) AS n FROM ingest_batches")["n"][0]),
        "visit_fact": store.sql("SELECT * FROM visit_fact ORDER BY mdtrt_id").to_dict("list"),
    }


def test_reingesting_the_same_folder_changes_nothing(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in")
    with ClaimsStore.open(tmp_path / "ws") as store:
        first = ingest_folder(src, store)
        summary = json.loads(json.dumps(first.to_dict()))
        assert summary["ok"] and summary["tables"]["mdtrt"]["rows_loaded"] == 4 and len(summary["files"]) == 5
        before = _snapshot(store)
        second = ingest_folder(src, store)
        assert second.ok
        assert sorted(second.already_ingested) == sorted(f.file_name for f in first.files)
        assert all(f.rows_loaded == 0 for f in second.files)
        assert _snapshot(store) == before
    # Also across processes/opens: the batch record with the sha256 is what counts.
    with ClaimsStore.open(tmp_path / "ws") as store:
        third = ingest_folder(src, store)
        assert len(third.already_ingested) == 5 and _snapshot(store) == before


def test_a_later_day_adds_only_new_rows_and_quarantines_conflicts(tmp_path: Path) -> None:
    day1 = write_minimal_city(tmp_path / "day1")
    day2 = tmp_path / "day2"
    header, rows = MINIMAL_ROWS["mdtrt"]
    changed = list(rows[1])
    changed[8] = "另一个诊断"  # same key MD002, different content
    write_table(day2 / "mdtrt.csv", header, [
        rows[0],                                       # row 2: identical to day 1 -> already present
        changed,                                       # row 3: conflict
        ["MD010", "PSN0000000000000000003", "H310100001", "11", "2025-03-10 08:00:00", "2025-03-10 08:30:00",
         "D310100000001", "J06.900", "急性上呼吸道感染", "1"],  # row 4: new
    ])
    sh, srows = MINIMAL_ROWS["setl"]
    write_table(day2 / "setl.csv", sh, [srows[0], ["ST010", "MD010", "PSN0000000000000000003", "H310100001",
                                                    "2025-03-10 08:30:00", "66.60", "40", "40", "0", "26.60", "0",
                                                    "1"]])
    fh, frows = MINIMAL_ROWS["fee_list"]
    write_table(day2 / "fee_list.csv", fh, [frows[0], ["1", "MD010", "PSN0000000000000000003", "ST010",
                                                        "2025-03-10 08:10:00", "XJ01CAA", "阿莫西林", "101", "1",
                                                        "66.60", "66.60", "D310100000001", "3", "1"]])
    with ClaimsStore.open(tmp_path / "ws") as store:
        assert ingest_folder(day1, store).ok
        report = ingest_folder(day2, store)  # no psn_info/medins_info in day 2: they are already in the store
        assert report.ok, report.errors
        m = report.tables["mdtrt"]
        assert (m.rows_read, m.rows_loaded, m.rows_already_present, m.rows_rejected) == (3, 1, 1, 1)
        assert store.table_counts()["mdtrt"] == 5 and store.table_counts()["setl"] == 6
        assert store.table_counts()["fee_list"] == 7
        assert report.tables["setl"].rows_already_present == 1
        assert report.tables["fee_list"].rows_already_present == 1
        # The first day's version of MD002 stays; the conflict is quarantined naming the earlier batch and row.
        assert store.sql("SELECT dise_name FROM mdtrt WHERE mdtrt_id = 'MD002'")["dise_name"][0] == "急性上呼吸道感染"
        q = store.sql("SELECT file_name, row_number, field, value, reason FROM quarantine")
        assert q.iloc[0, :4].tolist() == ["mdtrt.csv", 3, "mdtrt_id", "MD002"]
        assert "conflict" in q["reason"][0] and "batch 3, row 3" in q["reason"][0]
        assert len(q) == 1
        vf = store.sql("SELECT medfee_sumamt FROM visit_fact WHERE mdtrt_id = 'MD010'")
        assert vf["medfee_sumamt"].tolist() == [66.6]
        batch = store.sql("SELECT rows_read, rows_loaded, rows_rejected, rows_already_present FROM ingest_batches "
                          "WHERE file_path LIKE '%day2%mdtrt.csv'")
        assert batch.iloc[0].tolist() == [3, 1, 1, 1]


def test_reference_tables_are_upserted_latest_wins(tmp_path: Path) -> None:
    day1 = write_minimal_city(tmp_path / "day1")
    day2 = tmp_path / "day2"
    header, rows = MINIMAL_ROWS["psn_info"]
    moved = list(rows[2])
    moved[6] = "13812345678"  # P3 now uses the phone of P1/P2
    write_table(day2 / "persons.csv", header, [rows[0], moved, [
        "PSN0000000000000000004", "赵六", "1", "2001-01-01", "310101200101010011", "390", "", ""]])
    with ClaimsStore.open(tmp_path / "ws") as store:
        ingest_folder(day1, store)
        report = ingest_folder(day2, store)
        p = report.tables["psn_info"]
        assert (p.rows_read, p.rows_loaded, p.rows_updated, p.rows_already_present) == (3, 1, 1, 1)
        psn = store.sql("SELECT psn_no, mob_hash, _batch_id FROM psn_info ORDER BY psn_no")
        assert len(psn) == 4
        assert psn["mob_hash"][0] == psn["mob_hash"][2]  # P3 now shares P1's phone
        assert psn["_batch_id"].tolist()[0] == 2 and psn["_batch_id"].tolist()[2] > 5
        assert psn["mob_hash"].isna().tolist() == [False, False, False, True]


def test_failed_required_file_loads_nothing_and_is_reported(tmp_path: Path) -> None:
    # A required table that cannot be read fails the whole run: no visits without their fee lines.
    src = write_minimal_city(tmp_path / "in", skip=("fee_list",))
    (src / "fee_list.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert not report.ok and not report.contract_error
        assert any("fee_list.parquet" in e and "Parquet" in e for e in report.errors)
        assert any("nothing loaded" in e for e in report.errors)
        assert store.table_counts()["fee_list"] == 0 and store.table_counts()["mdtrt"] == 0


def test_a_load_interrupted_inside_its_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in")

    def crash_on_fee_list(name: str, step: str, done: int, total: int) -> None:
        if name == "fee_list.csv" and step == "commit":
            raise RuntimeError("simulated crash while writing fee_list")

    with ClaimsStore.open(tmp_path / "ws") as store:
        with pytest.raises(RuntimeError, match="simulated crash"):
            ingest_folder(src, store, progress=crash_on_fee_list)
        # The run is one transaction: no table, quarantine row or batch of it remains.
        assert sum(store.table_counts().values()) == 0
        assert store.sql("SELECT count(*) AS n FROM ingest_batches")["n"][0] == 0
        assert store.sql("SELECT count(*) AS n FROM visit_fact")["n"][0] == 0
        # Running again loads everything.
        report = ingest_folder(src, store)
        assert report.ok and report.tables["fee_list"].rows_loaded == 6
        assert not report.already_ingested and store.table_counts()["setl"] == 5


def test_visit_fact_follows_later_settlements(tmp_path: Path) -> None:
    day1 = write_minimal_city(tmp_path / "day1")
    day2 = tmp_path / "day2"
    sh, _ = MINIMAL_ROWS["setl"]
    # MD001 (8000.00) is refunded in full a day later; nothing else arrives.
    write_table(day2 / "setl.csv", sh, [["ST099", "MD001", "PSN0000000000000000001", "H310100001",
                                         "2025-03-07 09:00:00", "-8000.00", "-6000.00", "-6000.00", "-500.00",
                                         "-1500.00", "1", "1"]])
    with ClaimsStore.open(tmp_path / "ws") as store:
        ingest_folder(day1, store)
        before = store.sql("SELECT * FROM visit_fact WHERE mdtrt_id <> 'MD001' ORDER BY mdtrt_id")
        report = ingest_folder(day2, store)
        assert report.ok and report.tables["setl"].rows_loaded == 1
        vf = store.sql("SELECT medfee_sumamt, fund_pay_sumamt, setl_count, refunded, fixmedins_type, los_days "
                       "FROM visit_fact WHERE mdtrt_id = 'MD001'")
        assert vf.iloc[0].tolist() == [0.0, 0.0, 2, True, "1", 5]
        after = store.sql("SELECT * FROM visit_fact WHERE mdtrt_id <> 'MD001' ORDER BY mdtrt_id")
        assert after.equals(before)
        assert store.sql("SELECT count(*) AS n FROM visit_fact")["n"][0] == 4
