"""Hostile label files: bad rows quarantined with row and field, the rest loaded; unreadable files refused."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from fraudnet.errors import IngestError
from fraudnet.learning.labels import ensure_label_tables, import_labels, list_labels

HEADER = ["entity_type", "entity_id", "label", "decided_at", "source", "note"]


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_label_tables(con)
    return con


def _csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _quarantine(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[str, str, str]]:
    return {r[0]: (r[1], r[2], r[3]) for r in con.execute(
        "SELECT row_number, field, value, reason FROM label_quarantine ORDER BY row_number").fetchall()}


def test_bad_rows_quarantined_with_row_field_and_value(tmp_path: Path) -> None:
    con = _con()
    f = _csv(tmp_path / "l.csv", [
        ["Institution", "H1", "fraud", "2025-01-02", "", ""],             # row 2: good
        ["Hospital Board", "H2", "fraud", "", "", ""],                    # row 3: unknown entity type
        ["Institution", "=HYPERLINK(\"http://x\")", "fraud", "", "", ""],  # row 4: formula id
        ["Person", "+1234", "clean", "", "", ""],                         # row 5: formula-looking id
        ["Person", "P1", "maybe", "", "", ""],                            # row 6: unknown label
        ["Person", "P2", "clean", "2025-13-45", "", ""],                  # row 7: bad date
        ["Person", "P3", "clean", "2999-01-01", "", ""],                  # row 8: future date
        ["Person", "", "clean", "", "", ""],                              # row 9: empty id
        ["Person", "P4", "fraud", "", "@SUM(A1)", ""],                    # row 10: formula in source
        ["Person", "X" * 65, "fraud", "", "", ""],                        # row 11: id too long
        ["Person", "P5\x07", "fraud", "", "", ""],                        # row 12: control character
        ["Practitioner", "D1", "违规", "2025年3月4日", "飞行检查", "ok"],     # row 13: good (Chinese values)
    ])
    rep = import_labels(con, f)
    assert rep.loaded == 2 and rep.quarantined == 10
    q = _quarantine(con)
    assert q[3][0] == "entity_type" and q[3][1] == "Hospital Board"
    assert q[4][0] == "entity_id" and "formula" in q[4][2]
    assert q[5][0] == "entity_id" and "formula" in q[5][2]
    assert q[6][0] == "label" and q[6][1] == "maybe"
    assert q[7][0] == "decided_at" and q[8][0] == "decided_at"
    assert q[9][0] == "entity_id" and q[10][0] == "source"
    assert q[11][0] == "entity_id" and q[12][0] == "entity_id"
    stored = set(list_labels(con)["entity_id"])
    assert stored == {"H1", "D1"}
    assert {p["row"] for p in rep.problems} == set(range(3, 13))


def test_duplicate_and_contradicting_rows(tmp_path: Path) -> None:
    con = _con()
    f = _csv(tmp_path / "d.csv", [
        ["Institution", "H1", "fraud", "", "", ""],
        ["Institution", "H1", "fraud", "", "", ""],   # exact repeat: counted unchanged
        ["Institution", "H1", "clean", "", "", ""],   # contradiction: quarantined naming row 2
        ["institution", " H2 ", "正常", "", "", ""],   # case and blanks normalised
    ])
    rep = import_labels(con, f)
    assert (rep.loaded, rep.unchanged, rep.quarantined) == (2, 1, 1)
    assert "contradicts row 2" in _quarantine(con)[4][2]
    assert dict(zip(*[list_labels(con)[c] for c in ("entity_id", "label")], strict=True)) == \
        {"H1": "fraud", "H2": "clean"}


def test_empty_and_headerless_and_unreadable_files(tmp_path: Path) -> None:
    con = _con()
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(IngestError, match="empty"):
        import_labels(con, empty)
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n ,\n", encoding="utf-8")
    with pytest.raises(IngestError):
        import_labels(con, blank)
    only_header = _csv(tmp_path / "h.csv", [])
    rep = import_labels(con, only_header)
    assert rep.rows_read == 0 and rep.loaded == 0
    missing = _csv(tmp_path / "m.csv", [["Institution", "H1"]], header=["entity_type", "entity_id"])
    with pytest.raises(IngestError, match="missing column 'label'"):
        import_labels(con, missing)
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(IngestError, match="XLSX"):
        import_labels(con, fake)
    other = tmp_path / "labels.json"
    other.write_text("[]", encoding="utf-8")
    with pytest.raises(IngestError, match="csv"):
        import_labels(con, other)
    assert con.execute("SELECT count(*) FROM labels").fetchone()[0] == 0


def test_gb18030_file_and_ragged_rows(tmp_path: Path) -> None:
    con = _con()
    path = tmp_path / "gbk.csv"
    path.write_bytes("实体类型,编号,结论\n机构,H9,违规\n机构,H8,正常,extra\n".encode("gb18030"))
    rep = import_labels(con, path)
    assert rep.loaded == 1 and rep.quarantined == 1
    assert _quarantine(con)[3][0] == "row"
    assert list(list_labels(con)["entity_id"]) == ["H9"]


def test_a_failed_import_leaves_nothing_half_done(tmp_path: Path) -> None:
    con = _con()
    f = _csv(tmp_path / "ok.csv", [["Institution", "H1", "fraud", "", "", ""]])
    con.execute("DROP TABLE label_quarantine")
    con.execute("CREATE TABLE label_quarantine (x INTEGER)")  # a broken table makes the insert fail
    bad = _csv(tmp_path / "bad.csv", [["Institution", "H2", "fraud", "", "", ""], ["Alien", "Z", "fraud", "", "", ""]])
    with pytest.raises(duckdb.Error):
        import_labels(con, bad)
    assert con.execute("SELECT count(*) FROM labels").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM label_imports").fetchone()[0] == 0
    assert import_labels(con, f).loaded == 1
