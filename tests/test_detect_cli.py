"""`fraudnet detect`, `leads export|list`, `scores export` and `evaluate` end to end on the small generated city."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from fraudnet.claims.leads import LeadStore
from fraudnet.claims.store import ClaimsStore
from fraudnet.cli import main
from fraudnet.exports.leads import LEAD_COLUMNS


@pytest.fixture(scope="module")
def detected(small_claims_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the small city's claims store, screened once by `fraudnet detect`."""
    ws = tmp_path_factory.mktemp("detect_ws")
    for item in small_claims_workspace.iterdir():
        if item.is_file() and not item.name.endswith(".wal"):
            shutil.copy2(item, ws / item.name)
    result = CliRunner().invoke(main, ["-w", str(ws), "detect"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "rule:split_admission" in result.output and "lead store" in result.output
    return ws


def _active(ws: Path) -> list[dict]:
    with ClaimsStore.open(ws, read_only=True) as store:
        rows, _ = LeadStore(store.con).list(limit=100_000)
    return rows


def test_detect_stores_leads_of_every_kind_and_a_rerun_keeps_them(detected: Path) -> None:
    rows = _active(detected)
    kinds = {r["kind"] for r in rows}
    assert {"rule:split_admission", "rule:over_standard_price", "rule:over_quantity"} <= kinds
    assert len({r["lead_id"] for r in rows}) == len(rows)
    with ClaimsStore.open(detected) as store:
        ls = LeadStore(store.con)
        first = rows[0]["lead_id"]
        ls.set_status(first, "reviewing", "tester")
        ls.add_note(first, "checked on site 已现场核查", "tester")
    again = CliRunner().invoke(main, ["-w", str(detected), "detect", "--only", "rule"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    after = _active(detected)
    assert sorted(r["lead_id"] for r in after) == sorted(r["lead_id"] for r in rows)
    with ClaimsStore.open(detected, read_only=True) as store:
        kept = LeadStore(store.con).get(first)
    assert kept["status"] == "reviewing" and kept["notes"][0]["text"] == "checked on site 已现场核查"


def test_export_csv_jsonl_xlsx_with_contract_columns(detected: Path, tmp_path: Path) -> None:
    rows = _active(detected)
    runner = CliRunner()
    out_csv = tmp_path / "leads.csv"
    res = runner.invoke(main, ["-w", str(detected), "leads", "export", "--format", "csv", "--out", str(out_csv)])
    assert res.exit_code == 0, res.output
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(table[0]) == list(LEAD_COLUMNS)
    assert len(table) == len(rows)
    by_id = {r["lead_id"]: r for r in rows}
    sample = table[0]
    assert sample["evidence"].split(";") == by_id[sample["lead_id"]]["evidence"]
    assert any("；" in r["explanation_zh"] or "，" in r["explanation_zh"] for r in table)  # Chinese survives

    out_jsonl = tmp_path / "leads.jsonl"
    res = runner.invoke(main, ["-w", str(detected), "leads", "export", "--out", str(out_jsonl),
                               "--min-severity", "orange"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out_jsonl.read_text(encoding="utf-8").splitlines()]
    assert lines and {x["severity"] for x in lines} <= {"red", "orange"}
    assert len(lines) == sum(1 for r in rows if r["severity"] in ("red", "orange"))
    assert isinstance(lines[0]["evidence"], list) and set(lines[0]) == set(LEAD_COLUMNS)

    out_xlsx = tmp_path / "leads.xlsx"
    res = runner.invoke(main, ["-w", str(detected), "leads", "export", "--format", "xlsx", "--out", str(out_xlsx),
                               "--kind", "rule:over_quantity"])
    assert res.exit_code == 0, res.output
    sheet = load_workbook(out_xlsx).active
    values = list(sheet.values)
    assert list(values[0]) == list(LEAD_COLUMNS)
    assert len(values) - 1 == sum(1 for r in rows if r["kind"] == "rule:over_quantity")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_leads_list_scores_export_and_evaluate(detected: Path, small_city_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["-w", str(detected), "leads", "list", "--severity", "red", "--json", "--limit", "5"])
    assert res.exit_code == 0, res.output
    listed = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    assert listed and all(x["severity"] == "red" for x in listed)
    scores = [x["score"] for x in listed]
    assert scores == sorted(scores, reverse=True)

    out = tmp_path / "scores.csv"
    res = runner.invoke(main, ["-w", str(detected), "scores", "export", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert list(table[0]) == ["entity_type", "entity_id", "score", "leads", "amount_at_risk", "top_kinds"]
    assert {r["entity_type"] for r in table} >= {"Person", "Institution"}

    res = runner.invoke(main, ["-w", str(detected), "evaluate", "--truth", str(small_city_dir / "truth.json"),
                               "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    truth = json.loads((small_city_dir / "truth.json").read_text(encoding="utf-8"))
    planted = {s["kind"] for s in truth["schemes"]}
    assert planted <= set(result["kinds"])
    assert result["kinds"]["rule:over_standard_price"]["recall"] >= 0.5
    res = runner.invoke(main, ["-w", str(detected), "evaluate", "--truth", str(small_city_dir / "truth.json")])
    assert res.exit_code == 0 and "recall" in res.output


def test_bad_options_give_clear_errors(detected: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["-w", str(detected), "detect", "--only", "rule:nonsense"])
    assert res.exit_code == 2 and "rule:nonsense" in res.output
    res = runner.invoke(main, ["-w", str(detected), "leads", "list", "--sort", "-colour"])
    assert res.exit_code != 0 and "colour" in res.output
    res = runner.invoke(main, ["-w", str(tmp_path / "empty"), "detect"])
    assert res.exit_code != 0 and "ingest" in res.output


def test_evaluate_matches_by_evidence_overlap_or_key_entity() -> None:
    from datetime import datetime

    from fraudnet.detectors.base import Lead
    from fraudnet.detectors.evaluate import evaluate

    def lead(kind: str, ev: list[str], score: float, inst: str = "H1", persons: tuple[str, ...] = ()) -> Lead:
        return Lead(kind=kind, score=score, persons=list(persons), practitioners=[], institutions=[inst], evidence=ev,
                    amount_at_risk=1.0, period_start=datetime(2025, 1, 1), period_end=datetime(2025, 1, 2),
                    explanation_zh="x", explanation_en="x")

    truth = {
        "schemes": [
            {"scheme_id": "a", "kind": "rule:split_admission", "persons": [], "institutions": ["H1"],
             "evidence": ["m1", "m2", "m3", "m4"]},
            {"scheme_id": "b", "kind": "rule:split_admission", "persons": [], "institutions": ["H2"],
             "evidence": ["n1", "n2"]},
            {"scheme_id": "c", "kind": "rule:impersonation", "persons": ["P9"], "institutions": ["H1", "H3"],
             "evidence": ["p1", "p2"]},
        ],
        "lookalikes": [{"kind": "family", "persons": ["F1", "F2"], "institutions": []},
                       {"kind": "busy_hospital", "persons": [], "institutions": ["H7"]}],
    }
    leads = [
        lead("rule:split_admission", ["m1", "m2", "x1", "x2", "x3", "x4", "x5"], 0.9),  # key entity H1 + shared
        lead("rule:split_admission", ["z1", "z2"], 0.7, inst="H5"),  # a false orange lead
        lead("rule:split_admission", ["n1"], 0.3, inst="H2"),  # yellow: counts only in recall_all
        lead("rule:impersonation", ["p1", "p2"], 0.95, persons=("P9",)),
        lead("collusion_ring", ["f1"], 0.9, inst="H8", persons=("F1",)),  # a family flagged red
        lead("anomaly:institution", ["h1"], 0.5, inst="H7"),  # the busy hospital flagged yellow
    ]
    result = evaluate(leads, truth)
    split = result["kinds"]["rule:split_admission"]
    assert (split["planted"], split["leads_red_orange"], split["matched_schemes"]) == (2, 2, 1)
    assert split["recall"] == pytest.approx(0.5) and split["precision"] == pytest.approx(0.5)
    assert split["recall_all"] == pytest.approx(1.0)
    assert result["kinds"]["rule:impersonation"]["recall"] == 1.0
    assert result["kinds"]["collusion_ring"]["planted"] == 0
    assert result["lookalikes"]["family"]["flagged"]["red"] == 1
    assert result["lookalikes"]["busy_hospital"]["flagged"] == {"red": 0, "orange": 0, "yellow": 1}
