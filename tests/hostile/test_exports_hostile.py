"""Formula injection: hostile ids and texts must come out of every spreadsheet export as text, never a formula."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import duckdb
import pytest
from openpyxl import load_workbook

from fraudnet.claims.leads import LeadStore
from fraudnet.detectors.base import Lead
from fraudnet.exports.leads import leads_to_bytes, write_leads
from fraudnet.exports.safe import FORMULA_CHARS, safe_text
from fraudnet.exports.scores import scores_to_bytes

EVIL_PERSON = "=cmd|' /C calc'!A0"
EVIL_INSTITUTION = '=HYPERLINK("//ev.il","x")'
EVIL_PRACTITIONER = "@SUM(1+1)*cmd|' /C calc'!A0"


def _hostile_leads() -> list[Lead]:
    return [
        Lead(kind="collusion_ring", score=0.91, persons=[EVIL_PERSON, "P2", "+1+1"], practitioners=[EVIL_PRACTITIONER],
             institutions=[EVIL_INSTITUTION], evidence=["-2+3", "M1"], amount_at_risk=-150.5,
             period_start=datetime(2024, 1, 1), period_end=datetime(2024, 2, 1),
             explanation_zh="=1+1 同日入院", explanation_en="\t=2+2 admitted together"),
        Lead(kind="rule:x", score=0.5, persons=["P3"], practitioners=[], institutions=["H1"], evidence=["M2"],
             amount_at_risk=10.0, period_start=None, period_end=None,
             explanation_zh="正常", explanation_en="\r=3+3 plain"),
    ]


def _csv_cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _assert_no_formula_text(cells: list[list[str]]) -> None:
    """No text cell (nor `;`-joined item) starts a formula; a plain number such as `-150.5` is a number."""
    for row in cells[1:]:
        for cell in row:
            if _is_number(cell):
                continue
            assert not cell.startswith(FORMULA_CHARS), cell
            for item in cell.split(";"):  # a `;` locale makes each list item a cell of its own
                assert not item.startswith(FORMULA_CHARS), cell


def _assert_no_formula_cells(data: bytes) -> list[list[object]]:
    ws = load_workbook(io.BytesIO(data)).active
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_leads_csv_neutralises_formulas_in_every_text_column() -> None:
    cells = _csv_cells(leads_to_bytes(_hostile_leads(), "csv"))
    _assert_no_formula_text(cells)
    header = cells[0]
    row = dict(zip(header, cells[1], strict=True))
    assert row["persons"] == "'+1+1;'" + EVIL_PERSON + ";P2"  # the value is kept, after the quote
    assert row["institutions"] == "'" + EVIL_INSTITUTION
    assert row["explanation_en"].startswith("'\t=2+2")
    assert row["amount_at_risk"] == "-150.5"  # numbers of numeric columns stay numbers


def test_leads_xlsx_has_no_formula_cells_and_keeps_numbers() -> None:
    values = _assert_no_formula_cells(leads_to_bytes(_hostile_leads(), "xlsx"))
    header = values[0]
    row = dict(zip(header, values[1], strict=True))
    assert row["institutions"] == "'" + EVIL_INSTITUTION
    assert row["practitioners"] == "'" + EVIL_PRACTITIONER
    assert row["amount_at_risk"] == -150.5 and isinstance(row["score"], float)
    assert dict(zip(header, values[2], strict=True))["explanation_en"].startswith("'")  # XML reads CR as LF


def test_written_lead_files_are_safe(tmp_path) -> None:
    write_leads(_hostile_leads(), tmp_path / "leads.csv")
    write_leads(_hostile_leads(), tmp_path / "leads.xlsx")
    _assert_no_formula_text(_csv_cells((tmp_path / "leads.csv").read_bytes()))
    _assert_no_formula_cells((tmp_path / "leads.xlsx").read_bytes())


@pytest.fixture
def hostile_scores():
    con = duckdb.connect()
    store = LeadStore(con)
    store.save_run(_hostile_leads(), ["collusion_ring", "rule:x"])
    return store.entity_scores()


def test_scores_csv_and_xlsx_neutralise_hostile_entity_ids(hostile_scores) -> None:
    assert EVIL_PERSON in set(hostile_scores["entity_id"])
    cells = _csv_cells(scores_to_bytes(hostile_scores, "csv"))
    _assert_no_formula_text(cells)
    ids = {r[1] for r in cells[1:]}
    assert "'" + EVIL_PERSON in ids and "'" + EVIL_INSTITUTION in ids and "P3" in ids
    values = _assert_no_formula_cells(scores_to_bytes(hostile_scores, "xlsx"))
    by_id = {r[1]: r for r in values[1:]}
    assert "'" + EVIL_INSTITUTION in by_id
    assert isinstance(by_id["P3"][2], float) and by_id["P3"][3] == 1  # score and lead count stay numbers


def test_api_exports_are_safe(hostile_scores) -> None:
    """The API serialises through the same functions: a lead-store dict (as the route passes) is neutralised."""
    con = duckdb.connect()
    store = LeadStore(con)
    store.save_run(_hostile_leads(), ["collusion_ring", "rule:x"])
    rows, _ = store.list(offset=0, limit=10)
    _assert_no_formula_text(_csv_cells(leads_to_bytes(rows, "csv")))
    _assert_no_formula_cells(leads_to_bytes(rows, "xlsx"))


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("P001", "P001"), ("", ""), (-3.5, -3.5), (None, None), ("a=b", "a=b"),
])
def test_safe_text_follows_owasp(value: object, expected: object) -> None:
    assert safe_text(value) == expected
