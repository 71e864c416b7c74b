"""Hostile input to the shared scorer, the tier clause, the anomaly cap and entity risk: nothing crashes, nothing
absurd is red."""

from __future__ import annotations

import math
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from fraudnet.claims.leads import LeadStore
from fraudnet.detectors.base import Lead, severity_for_score
from fraudnet.detectors.peer_anomaly import anomaly_tier_cap, peer_ratio
from fraudnet.detectors.risk import entity_risk
from fraudnet.detectors.rules.common import effect_score, rate_ratio_lower, score_entities, tier_clause


def test_zero_volume_nan_amounts_and_negative_hits_score_without_crashing() -> None:
    frame = pd.DataFrame({
        "entity": ["ZERO_VOL", "NAN_AMT", "NEG_HITS", "NAN_HITS", "NO_HITS", "INF_AMT"],
        "hits": [5, 6, -3, np.nan, 0, 4],
        "volume": [0, 100, 50, 40, 100, 100],
        "fund": [10_000.0, np.nan, 5_000.0, 1_000.0, 0.0, np.inf],
    })
    out = score_entities(frame, hits="hits", volume="volume", rate=0.001, amount="fund").set_index("entity")
    assert out["score"].between(0, 1).all() and out["score"].notna().all()
    assert out.loc["NEG_HITS", "hits"] == 0 and out.loc["NEG_HITS", "score"] == 0.0
    assert out.loc["NAN_HITS", "score"] == 0.0
    assert out.loc["ZERO_VOL", "expected"] > 0  # zero volume counts as the hits themselves
    assert severity_for_score(out.loc["NAN_AMT", "score"]) != "red"  # no money known: not red
    assert out.loc["NAN_AMT", "tier_driver"] == "capped: amount too small"
    assert out.loc["INF_AMT", "excess_amount"] == 0.0 and severity_for_score(out.loc["INF_AMT", "score"]) != "red"
    for row in out.reset_index().to_dict("records"):
        zh, en = tier_clause(row, row["score"])
        assert "nan" not in en.lower() and "Tier" in en and "分级" in zh


def test_empty_frame_keeps_the_score_columns() -> None:
    out = score_entities(pd.DataFrame(columns=["entity", "hits", "volume"]), hits="hits", volume="volume", rate=0.01)
    assert {"score", "ratio_lower", "tier_driver", "effect_score"} <= set(out.columns) and out.empty


def test_bounds_and_ratios_of_odd_numbers() -> None:
    assert rate_ratio_lower(float("nan"), 1.0) == 0.0
    assert rate_ratio_lower(3, 0.0) > 1e6  # no expectation: an unbounded ratio, not a crash
    assert effect_score(float("nan")) == 0.0 and effect_score(float("inf")) == 1.0 and effect_score(-2) == 0.0
    assert peer_ratio("fund_per_visit", 100.0, 0.0) == math.inf
    assert peer_ratio("fund_per_visit", 0.0, 0.0) == 1.0
    assert peer_ratio("refund_share", float("nan"), 0.1) < 1
    assert tier_clause({"entity": "X"}, 0.9) == ("", "")  # features without a tier driver: no clause
    cap, driver = anomaly_tier_cap([], float("nan"), 8.0)
    assert severity_for_score(cap) == "yellow" and driver == "capped: effect too small"


def test_entity_risk_with_odd_leads_and_no_claims() -> None:
    con = duckdb.connect()
    assert entity_risk(con).empty  # neither leads nor visits
    store = LeadStore(con)
    lead = Lead(kind="rule:x", score=0.9, persons=[], practitioners=[], institutions=["H1"], evidence=["nowhere"],
                amount_at_risk=0.0, period_start=datetime(2025, 1, 1), period_end=None, explanation_zh="z",
                explanation_en="e")
    store.save_run([lead], ["rule:x"])
    frame = entity_risk(con)  # no visit_fact: plain noisy-or of the lead scores
    assert frame["score"].tolist() == [0.9]
    con.execute("CREATE TABLE visit_fact (mdtrt_id VARCHAR, psn_no VARCHAR, atddr_no VARCHAR, fixmedins_code VARCHAR,"
                " fund_pay_sumamt DOUBLE, refunded BOOLEAN)")
    con.execute("INSERT INTO visit_fact VALUES ('m1', NULL, '', 'H2', NULL, NULL), ('m2', 'P', NULL, NULL, -5, false)")
    frame = entity_risk(con).set_index(["entity_type", "entity_id"])
    assert frame["score"].between(0, 1).all()
    assert frame.loc[("Institution", "H1"), "score"] >= 0.9  # evidence not in the claims: the lead counts fully
    assert ("Practitioner", "") not in frame.index
