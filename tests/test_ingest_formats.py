"""Ingest readers: CSV encodings (UTF-8, BOM, GBK, GB18030), column/file aliases, Parquet and XLSX."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.ingest.pipeline import ingest_folder
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city, write_table


@pytest.mark.parametrize(("encoding", "reported", "name"), [
    ("utf-8", "utf-8", "张小三"),
    ("utf-8-sig", "utf-8-sig", "张小三"),
    ("gbk", "gbk", "张小三"),
    ("gb18030", "gb18030", "𠮷小三"),  # 𠮷 (U+20BB7) exists in GB18030 but not in GBK
])
def test_csv_encodings_are_detected_and_text_kept(tmp_path: Path, encoding: str, reported: str, name: str) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("psn_info", "medins_info"))
    header, rows = MINIMAL_ROWS["psn_info"]
    rows = [list(r) for r in rows]
    rows[0][1] = name
    write_table(src / "psn_info.csv", header, rows, encoding=encoding)
    mh, mrows = MINIMAL_ROWS["medins_info"]
    write_table(src / "medins_info.csv", mh, mrows, encoding=encoding)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        enc = {f.file_name: f.encoding for f in report.files}
        assert enc["psn_info.csv"] == reported
        # The institutions file holds no character outside GBK, so it is reported as GBK.
        assert enc["medins_info.csv"] == ("gbk" if reported == "gb18030" else reported)
        assert enc["mdtrt.csv"] == "utf-8"
        got = store.sql("SELECT psn_name, live_addr FROM psn_info WHERE psn_no = 'PSN0000000000000000001'")
        assert got.iloc[0].tolist() == [name, "上海市浦东新区张杨路123号3号楼2单元501室"]
        assert store.sql("SELECT fixmedins_name FROM medins_info WHERE fixmedins_code = 'P310100002'")[
            "fixmedins_name"][0] == "康民大药房"
        recorded = store.sql("SELECT encoding FROM ingest_batches WHERE file_name = 'psn_info.csv'")["encoding"][0]
        assert recorded == reported
        assert store.sql("SELECT count(*) AS n FROM psn_info")["n"][0] == 3


def test_upper_case_files_and_alias_columns(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt", "setl"))
    header, rows = MINIMAL_ROWS["mdtrt"]
    alias = {"fixmedins_code": "MEDINS_CODE", "atddr_no": "DR_CODG", "dise_codg": "DSCG_MAINDIAG_CODE"}
    write_table(src / "MDTRT_D.CSV", [alias.get(h, h.upper()) for h in header], rows)
    sh, srows = MINIMAL_ROWS["setl"]
    write_table(src / "Settlements.csv", ["cash_payamt" if h == "psn_cash_pay" else h for h in sh], srows)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        assert {f.file_name: f.table for f in report.files}["MDTRT_D.CSV"] == "mdtrt"
        row = store.sql("SELECT fixmedins_code, atddr_no, dise_codg FROM mdtrt WHERE mdtrt_id = 'MD001'")
        assert row.iloc[0].tolist() == ["H310100001", "D310100000001", "J18.900"]
        assert float(store.sql("SELECT psn_cash_pay FROM setl WHERE setl_id = 'ST001'")["psn_cash_pay"][0]) == 1500.0
        assert store.sql("SELECT count(*) AS n FROM mdtrt WHERE _extra IS NOT NULL")["n"][0] == 0


def test_parquet_and_xlsx_inputs(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("fee_list", "medins_info"))
    header, rows = MINIMAL_ROWS["fee_list"]
    cols = {h: [r[i] or None for r in rows] for i, h in enumerate(header)}
    pq.write_table(pa.table({h: pa.array(v, pa.string()) for h, v in cols.items()}), src / "fee_list_d.parquet")
    wb = openpyxl.Workbook()
    ws = wb.active
    mh, mrows = MINIMAL_ROWS["medins_info"]
    ws.append(mh)
    for r in mrows:
        # Excel holds numbers as numbers; codes stay text.
        ws.append([r[0], r[1], r[2], r[3], r[4], int(r[5]) if r[5] else None, float(r[6]), float(r[7])])
    ws.append([None] * len(mh))  # trailing empty row is ignored
    wb.save(src / "institutions.xlsx")
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        fmt = {f.table: f.format for f in report.files}
        assert fmt["fee_list"] == "parquet" and fmt["medins_info"] == "xlsx"
        assert report.tables["fee_list"].rows_loaded == 6 and report.tables["medins_info"].rows_loaded == 2
        fee = store.sql("SELECT cnt, det_item_fee_sumamt, _source_row FROM fee_list "
                        "WHERE mdtrt_id = 'MD002' AND feedetl_sn = '2'")
        assert fee["cnt"][0] == -2.0 and float(fee["det_item_fee_sumamt"][0]) == -120.5
        assert fee["_source_row"][0] == 4  # Parquet rows count from 1
        med = store.sql("SELECT * FROM medins_info ORDER BY fixmedins_code")
        assert med["hosp_lv"].tolist() == ["03", "11"]
        assert med["aprv_bed_cnt"].tolist()[0] == 300 and med["lat"].tolist()[1] == pytest.approx(31.20)
        assert med["_source_row"].tolist() == [2, 3]  # the header is row 1 in the spreadsheet


def test_parquet_typed_columns_are_converted(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    header, rows = MINIMAL_ROWS["mdtrt"]
    import datetime as dt

    table = pa.table({
        "mdtrt_id": [r[0] for r in rows], "psn_no": [r[1] for r in rows], "fixmedins_code": [r[2] for r in rows],
        "med_type": [r[3] for r in rows],
        "begntime": pa.array([dt.datetime(2025, 3, i + 1, 8) for i in range(4)], pa.timestamp("us")),
        "endtime": pa.array([dt.datetime(2025, 3, i + 1, 9) for i in range(4)], pa.timestamp("us")),
        "vali_flag": pa.array([1, 1, 1, 0], pa.int64()),
    })
    pq.write_table(table, src / "mdtrt.parquet")
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        m = report.tables["mdtrt"]
        assert (m.rows_loaded, m.rows_invalid) == (3, 1)
        assert str(store.sql("SELECT begntime FROM mdtrt WHERE mdtrt_id = 'MD002'")["begntime"][0]) == \
            "2025-03-02 08:00:00"


def test_pipe_delimited_crlf_file_and_phar_inv_aliases(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in")
    lines = [
        "FIXMEDINS_CODE|MED_LIST_CODG|INV_DATA_TYPE|PURC_RETN_CNT|PURC_RETN_STOIN_TIME|SPLER_NAME",
        "P310100002|XC09AAA|3|100|2025-03-01 09:00:00|国药控股",          # row 2 purchase
        "P310100002|XC09AAA|3|-5|2025-03-02 09:00:00|国药控股",            # row 3 return to supplier: fine
        "P310100002|XC09AAA|4|2|2025-03-03 10:15:00|",                    # row 4 sale, no supplier
        "P310100002|XC09AAA|4|2|2025-03-03 10:15:00|",                    # row 5 same key (NULL supplier): dup
        "P310100002|XC09AAA|4|two|2025-03-03 11:00:00|",                  # row 6 bad number
    ]
    (src / "inv_list.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        inv = store.sql("SELECT inv_data_type, cnt, spler_name, _source_row FROM phar_inv ORDER BY _source_row")
        assert inv["cnt"].tolist() == [100.0, -5.0, 2.0] and inv["_source_row"].tolist() == [2, 3, 4]
        assert inv["spler_name"].isna().tolist() == [False, False, True]
        q = store.sql("SELECT row_number, field, value FROM quarantine WHERE table_name = 'phar_inv' "
                      "ORDER BY row_number")
        assert q.values.tolist() == [
            [5, "fixmedins_code+hilist_code+inv_data_type+occur_time+cnt+spler_name",
             "P310100002|XC09AAA|4|2025-03-03 10:15:00|2.0|"],
            [6, "cnt", "two"],
        ]
        # Re-sending the same rows in another file adds nothing (NULL supplier compares equal).
        lines[0] = lines[0].replace("|", ",")
        (src / "phar_inv_20250304.csv").write_text("\n".join(r.replace("|", ",") for r in lines[:4]) + "\n",
                                                    encoding="utf-8")
        again = ingest_folder(src, store)
        inv2 = [f for f in again.files if f.file_name == "phar_inv_20250304.csv"][0]
        assert (inv2.rows_loaded, inv2.rows_already_present) == (0, 3)
        assert store.table_counts()["phar_inv"] == 3
