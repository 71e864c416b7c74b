"""Ingest: good rows load, every faulty row lands in quarantine with file, row, field, value and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.ingest.pipeline import ingest_folder
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table

MDTRT_HEADER = MINIMAL_ROWS["mdtrt"][0]


def _quarantine(store: ClaimsStore, table: str) -> list[tuple]:
    df = store.sql("SELECT file_name, row_number, field, value, reason FROM quarantine WHERE table_name = ? "
                   "ORDER BY row_number, field", [table])
    return [tuple(None if v != v else v for v in r) for r in df.itertuples(index=False)]


def test_minimal_city_loads_completely_with_hashed_identifiers(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in")
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        assert store.table_counts() == {"medins_info": 2, "prac_info": 0, "psn_info": 3, "hilist": 0, "mdtrt": 4,
                                        "setl": 5, "fee_list": 6, "phar_inv": 0}
        for t in report.tables.values():
            assert t.rows_read == t.rows_loaded and t.rows_rejected == 0 and t.orphan_total == 0
        psn = store.sql("SELECT * FROM psn_info ORDER BY psn_no").set_index("psn_no")
        p1, p2, p3 = psn.index
        assert psn.loc[p1, "certno_masked"] == "3101**********1234"
        assert psn.loc[p1, "mob_masked"] == "138****5678"
        # P1 and P2 share a phone written differently, and one address written two ways.
        assert psn.loc[p1, "mob_hash"] == psn.loc[p2, "mob_hash"] != psn.loc[p3, "mob_hash"]
        assert psn.loc[p1, "addr_key"] == psn.loc[p2, "addr_key"] != psn.loc[p3, "addr_key"]
        assert psn.loc[p1, "live_addr"] == "上海市浦东新区张杨路123号3号楼2单元501室"
        assert psn.loc[p1, "certno_hash"] != psn.loc[p2, "certno_hash"]
        # No raw identifier is stored in any text column of any table.
        for table in ("psn_info", "quarantine"):
            cols = store.sql("SELECT column_name FROM information_schema.columns WHERE table_name = ? AND "
                             "data_type IN ('VARCHAR', 'JSON')", [table])["column_name"]
            for col in cols:
                hits = store.sql(f'SELECT count(*) AS n FROM {table} WHERE CAST("{col}" AS VARCHAR) LIKE ? '
                                 f'OR CAST("{col}" AS VARCHAR) LIKE ?', ["%196005011234%", "%12345678%"])
                assert hits["n"][0] == 0, (table, col)
        batches = store.sql("SELECT * FROM ingest_batches ORDER BY batch_id")
        assert list(batches["table_name"]) == ["medins_info", "psn_info", "mdtrt", "setl", "fee_list"]
        assert set(batches["status"]) == {"loaded"} and batches["file_hash"].str.len().eq(64).all()
        assert list(batches["encoding"].unique()) == ["utf-8"]
        row = store.sql("SELECT _source_file, _source_row, _batch_id FROM mdtrt WHERE mdtrt_id = 'MD003'")
        assert row.iloc[0].tolist() == ["mdtrt.csv", 4, 3]


def test_malformed_file_set_quarantines_exactly_the_bad_rows(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt", "fee_list"))
    p = "PSN0000000000000000001"
    write_table(src / "mdtrt.csv", MDTRT_HEADER + ["bureau_note"], [
        ["MD001", p, "H310100001", "21", "2025-03-01 08:00:00", "2025-03-06 10:00:00", "D1", "J18.900", "肺炎", "1",
         "n1"],                                                                                         # row 2 ok
        ["MD002", p, "H310100001", "11", "2025-13-01 08:00:00", "", "D1", "", "", "1", ""],             # 3 bad date
        ["MD003", p, "H310100001", "99", "2025-03-02 08:00:00", "2025-03-02 09:00:00", "D1", "", "", "1", ""],  # 4
        ["", p, "H310100001", "11", "2025-03-02 08:00:00", "2025-03-02 09:00:00", "D1", "", "", "1", ""],  # 5 no key
        ["MD001", p, "H310100001", "21", "2025-03-01 08:00:00", "2025-03-06 10:00:00", "D1", "", "", "1", ""],  # 6
        ["MD004", p, "H310100001", "21", "2025-03-05 08:00:00", "2025-03-04 08:00:00", "D1", "", "", "1", ""],  # 7
        ["MD005", p, "H310100001", "11", "2025-03-05 08:00:00", "2025-03-05 08:10:00", "D1", "", "", "0", ""],  # 8
        ["MD006", "X" * 31, "H310100001", "11", "2025-03-05 08:00:00", "", "D1", "", "", "1", ""],      # 9 too long
        ["MD007", p, "H310100001", "13", "20250305083000", "20250305093000", "D1", "", "", "1", ""],    # 10 ok
        ["MD002", p, "H310100001", "11", "bad", "", "D1", "", "", "1", ""],                              # 11 2 faults
    ], tail="MD008,PSN0000000000000000001,H310100001,11,2025-03-0")                                     # 12 truncated
    write_table(src / "fee_list.csv", MINIMAL_ROWS["fee_list"][0], [
        ["1", "MD001", p, "ST001", "2025-03-01 09:00:00", "XJ01CRA", "头孢曲松", "101", "10", "50", "500", "D1", "5",
         "1"],
        ["2", "MD001", p, "ST001", "2025-03-01 09:00:00", "XJ01CRA", "头孢曲松", "101", "-3", "50", "-150", "D1", "",
         "1"],                                                                # row 3: negative cnt, not a refund
        ["1", "MD002", p, "ST003", "2025-03-02 11:00:00", "XJ01CAA", "阿莫西林", "101", "-2", "60.25", "-120.50", "",
         "", "1"],                                                            # row 4: refund line, fine
        ["3", "MD001", p, "ST001", "2025-03-01", "XJ01CRA", "头孢曲松", "101", "1.5", "50", "12,00", "D1", "", "1"],
    ])
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store, keep_extra_columns=True)
        assert report.ok, report.errors
        assert sorted(store.sql("SELECT mdtrt_id FROM mdtrt")["mdtrt_id"]) == ["MD001", "MD007"]
        q = _quarantine(store, "mdtrt")
        fields = [(r[1], r[2], r[3]) for r in q]
        assert fields == [
            (3, "begntime", "2025-13-01 08:00:00"),
            (4, "med_type", "99"),
            (5, "mdtrt_id", None),
            (6, "mdtrt_id", "MD001"),
            (7, "endtime", "2025-03-04 08:00:00"),
            (9, "psn_no", "X" * 31),
            (11, "begntime", "bad"),
            (11, "mdtrt_id", "MD002"),
            (12, None, "MD008,PSN0000000000000000001,H310100001,11,2025-03-0"),
        ]
        reasons = {(r[1], r[2]): r[4] for r in q}
        assert "not a date-time" in reasons[(3, "begntime")]
        assert "unknown med_type" in reasons[(4, "med_type")]
        assert "missing key field mdtrt_id" in reasons[(5, "mdtrt_id")]
        assert "duplicate key in file (first at row 2)" in reasons[(6, "mdtrt_id")]
        assert "endtime before begntime" in reasons[(7, "endtime")]
        assert "longer than 30 characters (31)" in reasons[(9, "psn_no")]
        assert "duplicate key in file (first at row 3)" in reasons[(11, "mdtrt_id")]
        assert "expected 11 fields, found 5" in reasons[(12, None)]
        assert all(r[0] == "mdtrt.csv" for r in q)
        m = report.tables["mdtrt"]
        assert (m.rows_read, m.rows_loaded, m.rows_rejected, m.rows_invalid) == (11, 2, 8, 1)
        assert m.quarantine_rows == 9
        extra = store.sql("SELECT _extra FROM mdtrt WHERE mdtrt_id = 'MD001'")["_extra"][0]
        assert '"bureau_note":"n1"' in extra.replace(" ", "")
        fq = _quarantine(store, "fee_list")
        assert [(r[1], r[2], r[3]) for r in fq] == [(3, "cnt", "-3"), (5, "det_item_fee_sumamt", "12,00")]
        assert "not part of a refund" in fq[0][4] and "not an amount" in fq[1][4]
        fee = store.sql("SELECT mdtrt_id, feedetl_sn, cnt FROM fee_list ORDER BY mdtrt_id, feedetl_sn")
        assert fee.values.tolist() == [["MD001", "1", 10.0], ["MD002", "1", -2.0]]
        # The refund line's visit MD002 was itself quarantined: an orphan, loaded and counted.
        assert report.tables["fee_list"].orphans == {"mdtrt_id→mdtrt": 1}
        assert report.tables["setl"].orphans == {"mdtrt_id→mdtrt": 4}  # ST002-ST005


def test_ragged_line_in_the_middle_keeps_row_numbers_right(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    p = "PSN0000000000000000001"
    rows = [f"MD00{i},{p},H310100001,11,2025-03-0{i} 08:00:00,2025-03-0{i} 09:00:00,D1,,,1" for i in range(1, 5)]
    rows.insert(1, "MDX,too,few")
    rows.insert(3, "MDY,PSN0000000000000000001,H310100001,11,2025-03-01 08:00:00,,D1,,,1,x,y")  # 12 fields
    (src / "mdtrt.csv").write_text(",".join(MDTRT_HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        got = store.sql("SELECT mdtrt_id, _source_row FROM mdtrt ORDER BY mdtrt_id").values.tolist()
        assert got == [["MD001", 2], ["MD002", 4], ["MD003", 6], ["MD004", 7]]
        q = _quarantine(store, "mdtrt")
        assert [r[1] for r in q] == [3, 5]
        assert report.tables["mdtrt"].rows_read == 6 and report.tables["mdtrt"].rows_rejected == 2


def test_refunds_load_and_vali_flag_zero_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("setl",))
    header, rows = MINIMAL_ROWS["setl"]
    rows = [*rows, ["ST006", "MD004", "PSN0000000000000000001", "H310100001", "2025-03-04 15:00:00", "999.00", "0",
                    "0", "0", "999.00", "0", "0"]]
    write_table(src / "setl.csv", header, rows)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        s = report.tables["setl"]
        assert (s.rows_read, s.rows_loaded, s.rows_invalid, s.rows_rejected) == (6, 5, 1, 0)
        assert store.sql("SELECT count(*) AS n FROM quarantine")["n"][0] == 0
        refund = store.sql("SELECT medfee_sumamt, refd_setl_flag FROM setl WHERE setl_id = 'ST003'")
        assert float(refund["medfee_sumamt"][0]) == -120.50 and refund["refd_setl_flag"][0] == "1"
        assert store.sql("SELECT count(*) AS n FROM setl WHERE setl_id = 'ST006'")["n"][0] == 0
        batch = store.sql("SELECT rows_read, rows_loaded, rows_invalid FROM ingest_batches WHERE table_name='setl'")
        assert batch.iloc[0].tolist() == [6, 5, 1]
        vf = store.sql("SELECT medfee_sumamt, refunded FROM visit_fact WHERE mdtrt_id = 'MD004'")
        assert vf.iloc[0].tolist() == [88.0, False]


def test_orphan_visits_load_and_are_counted(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    header, rows = MINIMAL_ROWS["mdtrt"]
    rows = [*rows, ["MD009", "PSN_UNKNOWN", "H_UNKNOWN", "11", "2025-03-09 08:00:00", "", "", "", "", "1"]]
    write_table(src / "mdtrt.csv", header, rows)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok
        assert report.tables["mdtrt"].orphans == {"psn_no→psn_info": 1, "fixmedins_code→medins_info": 1}
        assert store.table_counts()["mdtrt"] == 5


@pytest.mark.parametrize("stem", ["mdtrt_20250310", "MDTRT_D", "visits"])
def test_file_names_match_tables(tmp_path: Path, stem: str) -> None:
    src = write_minimal_city(tmp_path / "in", names={"mdtrt": stem})
    (src / "truth.json").write_text("{}", encoding="utf-8")
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok and report.tables["mdtrt"].rows_loaded == 4
        assert report.unrecognised_files == ["truth.json"]
