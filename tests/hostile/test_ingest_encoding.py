"""Hostile ingest files: cut GBK, mixed UTF-8/GBK, mojibake, empty and header-only files, a failing table (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.errors import IngestError
from fraudnet.ingest import pipeline
from fraudnet.ingest.pipeline import ingest_folder
from tests.fixtures.claims import MINIMAL_ROWS, write_minimal_city

P1 = "PSN0000000000000000001"
# mdtrt with dise_name last, so a cut inside its last character leaves the field count intact.
HEADER = ["mdtrt_id", "psn_no", "fixmedins_code", "med_type", "begntime", "vali_flag", "dise_name"]


def _visit(mdtrt_id: str, name: str) -> str:
    return f"{mdtrt_id},{P1},H310100001,11,2025-03-05 08:00:00,1,{name}\n"


def _mdtrt_lines() -> list[str]:
    _, rows = MINIMAL_ROWS["mdtrt"]
    return [f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},1,{r[8]}\n" for r in rows]


def test_gbk_file_cut_inside_a_character_loads_all_but_the_cut_row(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    body = (",".join(HEADER) + "\n" + "".join(_mdtrt_lines()) + _visit("MD005", "高血压")).encode("gbk")
    (src / "mdtrt.csv").write_bytes(body[:-2])  # drop "\n" and the second byte of 压
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        assert report.tables["mdtrt"].rows_loaded == 4 and report.tables["mdtrt"].rows_rejected == 1
        q = store.sql("SELECT row_number, field, value, reason FROM quarantine WHERE table_name = 'mdtrt'")
        assert q.values.tolist()[0][:3] == [6, "(encoding)", "dise_name"]
        assert "decode neither as UTF-8 nor as GBK" in q["reason"][0]
        assert store.sql("SELECT dise_name FROM mdtrt WHERE mdtrt_id = 'MD001'")["dise_name"][0] == "肺炎"
        # Fee lines point at visits that are there.
        assert report.tables["fee_list"].orphans == {}


def test_mixed_utf8_and_gbk_rows_are_decoded_per_row_and_undecodable_rows_quarantined(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    lines = _mdtrt_lines()
    body = (",".join(HEADER) + "\n").encode("gbk")
    body += b"".join(line.encode("gbk") for line in lines[:2])                # rows 2-3: GBK
    body += b"".join(line.encode("utf-8") for line in lines[2:])              # rows 4-5: UTF-8
    body += _visit("MD005", "2型糖尿病").encode("utf-8")                      # row 6: UTF-8
    body += _visit("MD006", "糖尿病").encode("gbk")                           # row 7: GBK
    body += _visit("MD007", "X").encode("ascii").replace(b",X", b",\xff\xfeX")  # row 8: neither
    (src / "mdtrt.csv").write_bytes(body)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        assert report.files[[f.table for f in report.files].index("mdtrt")].encoding == "utf-8+gbk"
        names = dict(store.sql("SELECT mdtrt_id, dise_name FROM mdtrt").values.tolist())
        assert names["MD001"] == "肺炎" and names["MD004"] == "高血压"
        assert names["MD005"] == "2型糖尿病" and names["MD006"] == "糖尿病"  # no mojibake (2鍨嬬硸灏跨梾)
        assert "MD007" not in names
        q = store.sql("SELECT row_number, field FROM quarantine WHERE table_name = 'mdtrt'").values.tolist()
        assert q == [[8, "(encoding)"]]


def test_mojibake_text_is_quarantined_with_the_text_it_was_meant_to_be(tmp_path: Path) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    (src / "mdtrt.csv").write_text(",".join(HEADER) + "\n" + "".join(_mdtrt_lines())
                                   + _visit("MD005", "2鍨嬬硸灏跨梾"), encoding="utf-8")
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert report.ok, report.errors
        q = store.sql("SELECT row_number, field, value, reason FROM quarantine").values.tolist()
        assert len(q) == 1 and q[0][:3] == [6, "dise_name", "2鍨嬬硸灏跨梾"] and "2型糖尿病" in q[0][3]
        assert store.table_counts()["mdtrt"] == 4


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", ",".join(HEADER).encode() + b"\n\n"],
                         ids=["zero-bytes", "bom-only", "header-only"])
def test_empty_or_header_only_required_file_loads_nothing(tmp_path: Path, content: bytes) -> None:
    src = write_minimal_city(tmp_path / "in", skip=("mdtrt",))
    (src / "mdtrt.csv").write_bytes(content)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert not report.ok
        assert any("mdtrt.csv" in e for e in report.errors)
        assert sum(store.table_counts().values()) == 0  # not even the persons or institutions


def test_a_required_table_failing_while_loading_fails_the_whole_run(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_minimal_city(tmp_path / "in")
    real_scan = pipeline.scan_file

    def scan(con, f, build, tmp_dir=None):  # noqa: ANN001, ANN202 - same signature as scan_file
        if f.spec.name == "mdtrt":
            raise IngestError(f"{f.name}: simulated unreadable block")
        return real_scan(con, f, build, tmp_dir=tmp_dir)

    monkeypatch.setattr(pipeline, "scan_file", scan)
    with ClaimsStore.open(tmp_path / "ws") as store:
        report = ingest_folder(src, store)
        assert not report.ok and any("rolled back" in e for e in report.errors)
        assert sum(store.table_counts().values()) == 0  # no settlement or fee line without its visit
        batches = store.sql("SELECT table_name, status FROM ingest_batches").values.tolist()
        assert batches == [["mdtrt", "failed"]]
        monkeypatch.setattr(pipeline, "scan_file", real_scan)
        again = ingest_folder(src, store)
        assert again.ok and store.table_counts()["fee_list"] == 6 and not again.already_ingested
