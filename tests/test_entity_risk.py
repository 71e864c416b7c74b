"""Entity risk ranks: exposure orders clean entities by fund paid, a lead lifts its entity by its evidence's weight."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
from click.testing import CliRunner

from fraudnet.claims.leads import LeadStore
from fraudnet.cli import main as cli_main
from fraudnet.detectors.base import Lead
from fraudnet.detectors.risk import EXPOSURE_WEIGHT, FULL_SHARE, MENTION_WEIGHT, RISK_FORMULA, entity_risk

# institution → (practitioner, visits, fund per visit)
CLINICS = {"H_BIG": ("D_BIG", 40, 5000.0), "H_MID": ("D_MID", 30, 1000.0), "H_SMALL": ("D_SMALL", 20, 200.0),
           "H_TINY": ("D_TINY", 10, 100.0)}


def _store() -> LeadStore:
    con = duckdb.connect()
    con.execute("CREATE TABLE visit_fact (mdtrt_id VARCHAR, psn_no VARCHAR, atddr_no VARCHAR, fixmedins_code VARCHAR,"
                " fund_pay_sumamt DOUBLE, refunded BOOLEAN)")
    for inst, (doc, n, fund) in CLINICS.items():
        for k in range(n):
            con.execute("INSERT INTO visit_fact VALUES (?, ?, ?, ?, ?, false)", [f"{inst}-{k}", f"P{inst}{k}", doc,
                                                                                inst, fund])
    con.execute("INSERT INTO visit_fact VALUES ('refund', 'PX', 'D_TINY', 'H_TINY', 1e9, true)")  # refunded: no fund
    return LeadStore(con)


def _lead(kind: str, inst: str, visits: list[str], score: float) -> Lead:
    persons = [f"P{v.replace('-', '')}" for v in visits]  # the visit's patient (see _store)
    return Lead(kind=kind, score=score, persons=persons, practitioners=[CLINICS[inst][0]], institutions=[inst],
                evidence=visits, amount_at_risk=100.0, period_start=datetime(2025, 1, 1),
                period_end=datetime(2025, 2, 1), explanation_zh="测试", explanation_en="test")


def _ranking(store: LeadStore, entity_type: str = "Institution") -> list[str]:
    frame = entity_risk(store.con)
    return frame.loc[frame["entity_type"] == entity_type, "entity_id"].tolist()


def test_without_leads_risk_orders_entities_by_fund_paid() -> None:
    store = _store()
    assert _ranking(store) == ["H_BIG", "H_MID", "H_SMALL", "H_TINY"]
    assert _ranking(store, "Practitioner") == ["D_BIG", "D_MID", "D_SMALL", "D_TINY"]
    frame = entity_risk(store.con).set_index(["entity_type", "entity_id"])
    assert frame.loc[("Institution", "H_BIG"), "score"] == pytest.approx(EXPOSURE_WEIGHT)  # size alone stays < 0.6
    assert frame.loc[("Institution", "H_BIG"), "leads"] == 0
    assert ("Person", "PH_BIG0") not in frame.index  # persons only when a lead names them


def test_a_material_lead_lifts_a_small_entity_above_a_bigger_clean_one() -> None:
    store = _store()
    lead = _lead("rule:split_admission", "H_SMALL", [f"H_SMALL-{k}" for k in range(10)], 0.65)  # half its fund
    store.save_run([lead], ["rule:split_admission"])
    assert _ranking(store)[:2] == ["H_SMALL", "H_BIG"]
    assert _ranking(store, "Practitioner")[0] == "D_SMALL"
    frame = entity_risk(store.con).set_index(["entity_type", "entity_id"])
    assert frame.loc[("Institution", "H_SMALL"), "leads"] == 1
    assert frame.loc[("Institution", "H_SMALL"), "top_kinds"] == "rule:split_admission"
    assert frame.loc[("Person", "PH_SMALL0"), "score"] == pytest.approx(0.65)  # persons: the evidence alone


def test_a_lead_that_barely_touches_an_entity_weighs_little() -> None:
    store = _store()
    # a yellow lead on 1 of H_MID's 30 visits (3.3 % of its fund, a third of FULL_SHARE): weight 0.5 + 0.5/3
    small = _lead("rule:bed_hanging", "H_MID", ["H_MID-0"], 0.5)
    store.save_run([small], ["rule:bed_hanging"])
    frame = entity_risk(store.con).set_index(["entity_type", "entity_id"])
    u = 0.75  # H_MID's fund rank among the four institutions
    weight = MENTION_WEIGHT + (1 - MENTION_WEIGHT) * (1 / 30) / FULL_SHARE
    assert weight == pytest.approx(2 / 3)
    expected = 1 - (1 - EXPOSURE_WEIGHT * u) * (1 - 0.5 * weight)
    assert frame.loc[("Institution", "H_MID"), "score"] == pytest.approx(expected, abs=1e-4)
    # a dismissed lead no longer counts: back to exposure alone
    store.set_status(small.lead_id, "reviewing", "u")
    store.set_status(small.lead_id, "dismissed", "u")
    frame = entity_risk(store.con).set_index(["entity_type", "entity_id"])
    assert frame.loc[("Institution", "H_MID"), "score"] == pytest.approx(EXPOSURE_WEIGHT * u)


def test_the_formula_is_in_the_scores_export_help() -> None:
    result = CliRunner().invoke(cli_main, ["scores", "export", "--help"])
    assert result.exit_code == 0
    assert "risk = 1 − (1 − 0.4·u)" in result.output.replace("\n", " ").replace("  ", " ")
    assert RISK_FORMULA.startswith("risk = 1 − (1 − 0.4·u)")
