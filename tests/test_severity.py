"""Severity weighs the size of an effect and the money, not only surprise: hand-built cases of the shared scorer."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from fraudnet.detectors.base import severity_for_score
from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.peer_anomaly import anomaly_tier_cap, peer_ratio
from fraudnet.detectors.rules.common import (
    effect_score,
    entity_leads,
    rate_ratio_lower,
    score_entities,
)
from fraudnet.detectors.rules.duplicate_charge import DuplicateChargeDetector
from tests.rules_tables import T0, ClaimsBuilder


def _score(rows: list[tuple[str, int, int, float]], rate: float) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["entity", "hits", "volume", "fund"])
    return score_entities(frame, hits="hits", volume="volume", rate=rate, amount="fund").set_index("entity")


def _tier(frame: pd.DataFrame, entity: str) -> str:
    return severity_for_score(float(frame.loc[entity, "score"]))


def test_lower_bound_and_effect_score_carry_the_stated_thresholds() -> None:
    assert rate_ratio_lower(235, 117.7) == pytest.approx(1.78, abs=0.02)  # 2.0× on a big volume
    assert rate_ratio_lower(8, 1.0) == pytest.approx(3.98, abs=0.02)  # one-sided exact Poisson bound
    assert rate_ratio_lower(0, 5.0) == 0.0
    assert effect_score(2.0) == pytest.approx(0.6)
    assert effect_score(3.0) == pytest.approx(0.8)
    assert effect_score(1.9) < 0.6 < effect_score(2.1) < 0.8 < effect_score(3.1)


def test_huge_entity_at_twice_the_baseline_is_yellow_however_improbable() -> None:
    frame = _score([("BIG", 235, 11_770, 2_000_000.0)], rate=0.01)  # 117.7 expected, 235 seen
    big = frame.loc["BIG"]
    assert big["surprise"] > 20  # chance ≈ 10^-20: surprising on volume alone
    assert big["chance_score"] >= 0.8  # chance alone would say red
    assert _tier(frame, "BIG") == "yellow"
    assert big["tier_driver"] == "capped: effect too small"


def test_small_entity_eight_times_its_expectation_is_red_and_ten_times_the_volume_keeps_the_tier() -> None:
    frame = _score([("SMALL", 40, 1_000, 40_000.0), ("SMALLx10", 400, 10_000, 400_000.0),
                    ("TWICE", 10, 1_000, 10_000.0), ("TWICEx10", 100, 10_000, 100_000.0)], rate=0.005)
    assert frame.loc["SMALL", "ratio"] == pytest.approx(8.0)
    assert _tier(frame, "SMALL") == "red" and _tier(frame, "SMALLx10") == "red"
    # 2× the expectation: yellow at both volumes, although at 10× the volume chance alone says red
    assert _tier(frame, "TWICE") == "yellow" and _tier(frame, "TWICEx10") == "yellow"
    assert frame.loc["TWICEx10", "surprise"] > frame.loc["TWICE", "surprise"] + 5
    assert frame.loc["TWICEx10", "tier_driver"] == "capped: effect too small"


def test_red_needs_money_and_a_pattern() -> None:
    frame = _score([("CHEAP", 40, 1_000, 300.0)], rate=0.0005)
    assert _tier(frame, "CHEAP") == "orange"  # 80× with 300 yuan of fund: not worth a trip today
    assert frame.loc["CHEAP", "tier_driver"] == "capped: amount too small"
    frame = _score([("ONE", 1, 50, 90_000.0), ("TWO", 2, 50, 90_000.0)], rate=1e-6)  # hits chance can't explain
    assert _tier(frame, "ONE") == "yellow"  # one hit stays yellow however rare
    assert frame.loc["ONE", "tier_driver"] == "hits"
    assert _tier(frame, "TWO") == "orange"


def test_every_rule_explanation_says_what_set_the_tier() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE visit_fact (mdtrt_id VARCHAR, psn_no VARCHAR, atddr_no VARCHAR, fixmedins_code VARCHAR,"
                " fund_pay_sumamt DOUBLE, refunded BOOLEAN, begntime TIMESTAMP, endtime TIMESTAMP)")
    con.execute("INSERT INTO visit_fact VALUES ('m1', 'p1', 'd1', 'BIG', 500, false, TIMESTAMP '2025-01-02', NULL),"
                " ('m2', 'p2', 'd1', 'SMALL', 800, false, TIMESTAMP '2025-01-03', NULL)")
    frame = _score([("BIG", 235, 11_770, 2_000_000.0), ("SMALL", 40, 1_000, 40_000.0)], rate=0.01).reset_index()
    evidence = pd.DataFrame({"entity": ["BIG", "SMALL"], "mdtrt_id": ["m1", "m2"]})
    leads = {lead.institutions[0]: lead for lead in entity_leads(
        ClaimsContext(con), "rule:test", frame, evidence, entity_type="institution",
        explain=lambda f: (f"{f['entity']}命中{f['hits']}次。", f"{f['entity']}: {f['hits']} hits."))}
    big, small = leads["BIG"], leads["SMALL"]
    assert big.severity == "yellow"
    assert "effect too small for orange" in big.explanation_en and "95% lower bound 1.8×" in big.explanation_en
    assert "效应不足" in big.explanation_zh and "95%置信下限1.8倍" in big.explanation_zh
    assert big.features["tier_driver"] == "capped: effect too small"
    assert small.severity == "red" and "Tier red" in small.explanation_en and "分级红色预警" in small.explanation_zh
    assert "chance and effect both pass red's bar" in small.explanation_en


def _stay(b: ClaimsBuilder, code: str, k: int, dup: bool) -> None:
    """An inpatient stay with two fee lines; with `dup` its second line repeats the first at the same time."""
    t = T0 + timedelta(days=k % 300, hours=k % 7)
    mid = b.visit(b.person(f"{code}-{k}"), code, t, "21", days=3, fund=3000.0)
    for n, item in enumerate(("BED", "BED" if dup else "NURSE"), 1):
        b.fees.append({"feedetl_sn": f"{n:04d}", "mdtrt_id": mid, "psn_no": f"{code}-{k}", "fee_ocur_time": t,
                       "hilist_code": item, "hilist_name": item, "list_type": "201", "cnt": 1, "pric": 50.0,
                       "det_item_fee_sumamt": 50.0, "bilg_dr_codg": "D1", "prd_days": None})


def test_big_hospital_at_twice_its_own_kind_of_care_baseline_is_not_red() -> None:
    b = ClaimsBuilder()
    b.item("BED", "床位费", "201")
    b.item("NURSE", "护理费", "201")
    for code in ("H1", "H2", "H3", "H4"):  # ordinary hospitals: 5 % of stays with a same-time duplicate
        b.institution(code)
        for k in range(400):
            _stay(b, code, k, dup=k % 20 == 0)
    for code in ("C1", "C2", "C3", "C4"):  # clinics: one line a visit, never a duplicate (a pooled baseline ≈ 0)
        b.institution(code)
        for k in range(300):
            t = T0 + timedelta(days=k % 300, hours=2 + k % 5)
            mid = b.visit(b.person(f"{code}-{k}"), code, t, fund=80.0)
            b.fees.append({"feedetl_sn": "0001", "mdtrt_id": mid, "psn_no": f"{code}-{k}", "fee_ocur_time": t,
                           "hilist_code": "NURSE", "hilist_name": "NURSE", "list_type": "201", "cnt": 1,
                           "pric": 20.0, "det_item_fee_sumamt": 20.0, "bilg_dr_codg": "D1", "prd_days": None})
    b.institution("BIG")  # 10 % on 2,000 stays: 2× the inpatient baseline, chance ≈ 10^-18
    for k in range(2000):
        _stay(b, "BIG", k, dup=k % 10 == 0)
    b.institution("HX")  # 40 % on 100 stays: 8×
    for k in range(100):
        _stay(b, "HX", k, dup=k % 5 < 2)
    leads = {lead.features["entity"]: lead for lead in DuplicateChargeDetector().run(ClaimsContext(b.build()))}
    assert leads["BIG"].features["ratio"] == pytest.approx(2.0, abs=0.05)
    assert leads["BIG"].features["surprise"] > 10
    assert leads["BIG"].severity == "yellow"
    assert "effect too small" in leads["BIG"].explanation_en
    assert leads["HX"].severity == "red"
    assert all(leads[c].severity == "yellow" for c in ("H1", "H2", "H3", "H4") if c in leads)


def test_peer_anomaly_needs_material_and_extreme_deviations() -> None:
    assert peer_ratio("off_hours_share", 0.004, 0.002) == pytest.approx(1.04, abs=0.01)  # no tripling
    assert peer_ratio("off_hours_share", 1.0, 0.0) == pytest.approx(21.0)
    assert peer_ratio("fund_per_visit", 1500.0, 150.0) == pytest.approx(10.0)
    one = [{"feature": "fund_per_visit", "robust_z": 9.0, "peer_ratio": 10.0},
           {"feature": "off_hours_share", "robust_z": 4.0, "peer_ratio": 1.3}]
    assert severity_for_score(anomaly_tier_cap(one, 50_000.0, 8.0)[0]) == "yellow"
    two = [{"feature": "fund_per_visit", "robust_z": 9.0, "peer_ratio": 10.0},
           {"feature": "off_hours_share", "robust_z": 9.0, "peer_ratio": 21.0}]
    assert anomaly_tier_cap(two, 50_000.0, 8.0) == (0.79, "capped: not extreme")
    assert severity_for_score(anomaly_tier_cap(two, 200.0, 8.0)[0]) == "yellow"
    three = [*two, {"feature": "far_patient_share", "robust_z": 8.5, "peer_ratio": 21.0}]
    assert anomaly_tier_cap(three, 50_000.0, 8.0) == (1.0, "extreme")
