"""Hostile ingest values: formula characters in ids, implausible amounts, quantities and dates (issue 13)."""

from __future__ import annotations

from pathlib import Path

from fraudnet.claims.store import ClaimsStore
from fraudnet.ingest.pipeline import ingest_folder
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table

P1 = "PSN0000000000000000001"


def _with_rows(folder: Path, table: str, extra: list[list[object]]) -> None:
    header, rows = MINIMAL_ROWS[table]
    write_table(folder / f"{table}.csv", header, rows + extra)


def _quarantine(store: ClaimsStore, table: str) -> dict[tuple[int, str], tuple[str, str]]:
    rows = store.sql("SELECT file_name, row_number, field, value, reason FROM quarantine WHERE table_name = ? "
                     "ORDER BY row_number, field", [table]).values.tolist()
    assert all(r[0] == f"{table}.csv" for r in rows)
    out: dict[tuple[int, str], tuple[str, str]] = {}
    for _, row, field, value, reason in rows:  # several failed checks of one field: reasons joined
        old = out.get((int(row), field))
        out[(int(row), field)] = (value, reason if old is None else old[1] + " | " + reason)
    return out


def test_ids_starting_with_formula_characters_are_quarantined(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in")
    _with_rows(src, "medins_info", [['=HYPERLINK("//ev.il","x")', "恶意机构", "1", "03", "310115", "10", "121.5",
                                     "31.2"]])                                                     # row 4
    _with_rows(src, "mdtrt", [
        ["MD101", "=cmd|' /C calc'!A0", "H310100001", "11", "2025-03-05 08:00:00", "", "", "", "", "1"],  # row 6
        ["MD102", P1, "H310100001", "11", "2025-03-05 09:00:00", "", "@SUM(1+1)", "", "", "1"],           # row 7
        ["-MD103", P1, "H310100001", "11", "2025-03-05 10:00:00", "", "", "", "", "1"],                  # row 8
        ["MD104", P1, "H310100001", "11", "2025-03-05 11:00:00", "", "+D1", "", "", "1"],                 # row 9
        ["MD105", P1, "H310100001", "11", "2025-03-05 12:00:00", "", "D1", "", "", "1"],                  # row 10 ok
    ])
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        q = _quarantine(store, "mdtrt")
        assert set(q) == {(6, "psn_no"), (7, "atddr_no"), (8, "mdtrt_id"), (9, "atddr_no")}
        assert q[(6, "psn_no")][0] == "=cmd|' /C calc'!A0" and "formula character" in q[(6, "psn_no")][1]
        assert q[(8, "mdtrt_id")][0] == "-MD103"
        mq = _quarantine(store, "medins_info")
        assert mq == {(4, "fixmedins_code"): ('=HYPERLINK("//ev.il","x")', mq[(4, "fixmedins_code")][1])}
        ids = set(store.sql("SELECT mdtrt_id FROM mdtrt")["mdtrt_id"])
        assert ids == {"MD001", "MD002", "MD003", "MD004", "MD105"}
        assert store.sql("SELECT count(*) AS n FROM medins_info")["n"][0] == 2
        # A negative amount is not an id: the refund settlement ST003 (-120.50) is loaded.
        assert store.sql("SELECT medfee_sumamt FROM setl WHERE setl_id = 'ST003'")["medfee_sumamt"][0] == -120.5


def test_implausible_amounts_quantities_and_dates_are_quarantined(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in")
    _with_rows(src, "mdtrt", [
        ["MD201", P1, "H310100001", "11", "2099-01-01 08:00:00", "", "", "", "", "1"],     # row 6: future
        ["MD202", P1, "H310100001", "11", "1985-06-01 08:00:00", "", "", "", "", "1"],     # row 7: before 1990
        ["MD203", P1, "H310100001", "11", "2025-03-07 08:00:00", "", "", "", "", "1"],     # row 8: fine
    ])
    s = "2025-03-07 09:00:00"
    _with_rows(src, "setl", [
        ["ST201", "MD203", P1, "H310100001", s, "-1000000000000.00", "0", "0", "0", "-1000000000000.00", "0",
         "1"],                                                                  # row 7: -1e12, not a refund
        ["ST202", "MD203", P1, "H310100001", s, "26.90", "1e15", "1e15", "0", "0", "0", "1"],  # row 8: fund 1e15
        ["ST203", "MD203", P1, "H310100001", s, "26.905", "0", "0", "0", "26.905", "0", "1"],  # row 9: 3 decimals
        ["ST204", "MD203", P1, "H310100001", s, "100.00", "50.00", "50.00", "0", "10.00", "0", "1"],  # 10: parts
        ["ST205", "MD203", P1, "H310100001", s, "-30.00", "-20.00", "-20.00", "0", "-10.00", "1", "1"],  # 11 refund
        ["ST206", "MD203", P1, "H310100001", s, "30.00", "20.00", "20.00", "0", "10.00", "0", "1"],  # 12 fine
    ])
    _with_rows(src, "fee_list", [
        ["1", "MD203", P1, "ST206", s, "XC09AAA", "依那普利", "101", "1e300", "1.00", "30.00", "", "", "1"],  # 8
        ["2", "MD203", P1, "ST206", "2099-01-01 00:00:00", "XC09AAA", "依那普利", "101", "1", "30.00", "30.00",
         "", "", "1"],                                                                                      # 9
    ])
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        mq = _quarantine(store, "mdtrt")
        assert set(mq) == {(6, "begntime"), (7, "begntime")}
        assert "after the export" in mq[(6, "begntime")][1] and mq[(6, "begntime")][0] == "2099-01-01 08:00:00"
        sq = _quarantine(store, "setl")
        rows = {r for r, _ in sq}
        assert rows == {7, 8, 9, 10}
        assert "not a refund" in sq[(7, "medfee_sumamt")][1]
        assert "outside the plausible range" in sq[(8, "fund_pay_sumamt")][1]
        assert "exceeds the settlement's medfee_sumamt" in sq[(8, "fund_pay_sumamt")][1]
        assert sq[(9, "medfee_sumamt")][0] == "26.905" and "more than 2 decimal places" in sq[(9, "medfee_sumamt")][1]
        assert "differ from medfee_sumamt" in sq[(10, "medfee_sumamt")][1]
        loaded = set(store.sql("SELECT setl_id FROM setl")["setl_id"])
        assert {"ST205", "ST206"} <= loaded and not loaded & {"ST201", "ST202", "ST203", "ST204"}
        fq = _quarantine(store, "fee_list")
        assert set(fq) == {(8, "cnt"), (9, "fee_ocur_time")}
        assert fq[(8, "cnt")][0] == "1e300"
        # No lead-sized sum reaches visit_fact: the biggest fund payment is the plausible 6,000.00.
        assert store.sql("SELECT max(fund_pay_sumamt) AS m FROM visit_fact")["m"][0] == 6000.0
