"""Split admission (分解住院) against scheduled care and case mix: chemotherapy cycles, day-case dialysis and
cardiology peers are not splits; next-day readmission cycles and a splitter among peers are."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.rules.split_admission import SplitAdmissionDetector, family_rates
from tests.rules_tables import T0, ClaimsBuilder


def _background(b: ClaimsBuilder, inst: str, n: int = 60, dise: str = "J18.0") -> None:
    """Ordinary single stays (no readmissions)."""
    for i in range(n):
        b.visit(b.person(f"Q{inst}{dise}{i:03d}"), inst, T0 + timedelta(days=i * 5), "21", days=5, dise=dise,
                fund=3000)


def _splitter(b: ClaimsBuilder, inst: str, patients: int = 12, gap: int = 2, dise: str = "I63.9") -> list[str]:
    """`patients` stays of 6 nights, each followed `gap` days after discharge by a second stay (same category)."""
    ids = []
    for i in range(patients):
        p = b.person(f"S{inst}{i:02d}")
        t = T0 + timedelta(days=20 * i)
        ids.append(b.visit(p, inst, t, "21", days=6, dise=dise, fund=5000))
        ids.append(b.visit(p, inst, t + timedelta(days=6 + gap), "21", days=5, dise=dise, fund=4000))
    return ids


def _by_inst(leads: list) -> dict:
    return {lead.features["entity"]: lead for lead in leads}


def test_chemotherapy_cycles_at_a_tertiary_hospital_are_not_splits_but_the_splitter_stays_red() -> None:
    b = ClaimsBuilder()
    for code in ("ONC", "SPL", "H3"):
        b.institution(code)
    for i in range(8):  # Z51.1 two-night sessions 7–17 days apart (irregular: only the code sets them aside)
        p = b.person(f"CHEMO{i}")
        t = T0 + timedelta(days=2 * i)
        for c in range(10):
            b.visit(p, "ONC", t, "21", days=2, dise="Z51.1", fund=6000)
            t += timedelta(days=(7, 14, 17, 10)[c % 4])
    split_ids = _splitter(b, "SPL")
    for code in ("ONC", "SPL", "H3"):
        _background(b, code)
    leads = _by_inst(SplitAdmissionDetector().run(ClaimsContext(b.build())))
    assert "ONC" not in leads  # 72 Z51 readmissions within 15 days, none counted
    assert leads["SPL"].severity == "red"
    assert sorted(leads["SPL"].evidence) == sorted(split_ids)


def test_regular_cycles_coded_with_the_cancer_are_scheduled_unless_regularity_is_switched_off() -> None:
    b = ClaimsBuilder()
    for code in ("ONC", "H2", "H3"):
        b.institution(code)
    for i in range(8):  # C34 three-night stays every 14 days (±1): a treatment schedule, not a Z51 code
        p = b.person(f"LUNG{i}")
        for c in range(6):
            b.visit(p, "ONC", T0 + timedelta(days=2 * i + 14 * c + c % 2), "21", days=3, dise="C34.1", fund=8000)
    for code in ("ONC", "H2", "H3"):
        _background(b, code)
    con = b.build()
    assert "ONC" not in _by_inst(SplitAdmissionDetector().run(ClaimsContext(con)))
    # the same stays counted when only near-constant cycles (CV ≤ 0.01; 10 or 12 days at home, CV 0.09) would be
    # a schedule
    strict = _by_inst(SplitAdmissionDetector(regular_cv=0.01).run(ClaimsContext(con)))
    assert strict["ONC"].features["readmissions"] == 40
    assert strict["ONC"].severity == "red"


def test_day_case_dialysis_stays_are_not_splits() -> None:
    b = ClaimsBuilder()
    for code in ("DIA", "H2", "H3"):
        b.institution(code)
    for i in range(6):  # one-night N18 stays two or three days apart, all year, three patients a shift
        p = b.person(f"DIAL{i}")
        t = T0 + timedelta(hours=i)
        for k in range(60):
            b.visit(p, "DIA", t, "21", days=1, dise="N18.5", fund=400)
            t += timedelta(days=2 if k % 3 else 3)
    for code in ("DIA", "H2", "H3"):
        _background(b, code)
    con = b.build()
    assert "DIA" not in _by_inst(SplitAdmissionDetector().run(ClaimsContext(con)))
    # counted when only stays of 0 nights are day cases (and the group filter is off: six patients share the
    # rhythm); one or two days at home are no regular cycle (CV 0.35)
    counted = _by_inst(SplitAdmissionDetector(day_case_nights=0, group_min=99).run(ClaimsContext(con)))
    assert counted["DIA"].features["readmissions"] == 6 * 59


def test_next_day_readmission_cycles_are_splits_even_when_regular() -> None:
    b = ClaimsBuilder()
    for code in ("H1", "H2", "H3"):
        b.institution(code)
    ids = []
    for i in range(6):  # 7 nights, out one day, back in for the same stroke: four times, like clockwork
        p = b.person(f"CYC{i}")
        t = T0 + timedelta(days=60 * i)
        for _ in range(5):
            ids.append(b.visit(p, "H1", t, "21", days=7, dise="I63.9", fund=5000))
            t += timedelta(days=8)
    for code in ("H1", "H2", "H3"):
        _background(b, code)
    lead = _by_inst(SplitAdmissionDetector().run(ClaimsContext(b.build())))["H1"]
    assert lead.features["readmissions"] == 24
    assert lead.features["within_a_day"] == 1.0
    assert lead.severity == "red"
    assert sorted(lead.evidence) == sorted(ids)


def _general(b: ClaimsBuilder, inst: str) -> None:
    """A general hospital: 100 pneumonia stays, and 20 heart patients of whom one comes back 10 days after."""
    _background(b, inst, n=100)
    for i in range(20):
        p = b.person(f"C{inst}{i:03d}")
        t = T0 + timedelta(days=15 * i)
        b.visit(p, inst, t, "21", days=6, dise="I25.1", fund=6000)
        if i == 0:
            b.visit(p, inst, t + timedelta(days=16), "21", days=4, dise="I25.1", fund=4000)


def test_cardiology_peers_set_the_expectation_not_the_city_average() -> None:
    b = ClaimsBuilder()
    generals = [f"G{i:02d}" for i in range(15)]
    for code in (*generals, "CARD", "SPLIT"):
        b.institution(code)
    for code in generals:  # heart patients come back ≈ 5 % of the time everywhere; pneumonia patients never
        _general(b, code)
    for i in range(200):  # a cardiology centre: 200 heart patients, 10 back 10 days after discharge (5 %)
        p = b.person(f"CARD{i:03d}")
        t = T0 + timedelta(days=i * 1.5)
        b.visit(p, "CARD", t, "21", days=6, dise="I25.1", fund=6000)
        if i % 20 == 0:
            b.visit(p, "CARD", t + timedelta(days=16), "21", days=4, dise="I25.1", fund=4000)
    _background(b, "SPLIT", n=100)
    split_ids = _splitter(b, "SPLIT", patients=15, gap=1, dise="I25.1")  # 15 heart patients, every one split
    leads = _by_inst(SplitAdmissionDetector().run(ClaimsContext(b.build())))
    card = leads["CARD"].features
    # the city rate per stay (≈ 1 / 120) would expect 1.7 and call 10 red; heart patients' peers expect ≈ 8
    assert card["expected"] > 3 * card["baseline_rate"] * card["stays"]
    assert leads["CARD"].severity == "yellow"
    assert leads["SPLIT"].severity == "red"
    assert sorted(leads["SPLIT"].evidence) == sorted(split_ids)
    assert {leads[g].severity for g in generals} == {"yellow"}


def test_family_rates_need_three_sizeable_peers_and_ignore_the_splitter() -> None:
    mix = pd.DataFrame({
        "entity": ["A", "B", "C", "D", "X", "Y"], "icd": ["I25", "I25", "I25", "I25", "K29", "K29"],
        "stays": [100, 100, 100, 100, 100, 5], "hits": [5, 6, 4, 60, 30, 0]})
    rates = family_rates(mix, city_rate=0.01, floor=0.003, min_volume=20)
    # I25: the three ordinary peers (15 / 300), shrunk by one readmission at the city rate (100 stays)
    assert rates["I25"] == pytest.approx(16 / 400)
    # K29 has one sizeable institution, the splitter itself: no peer norm, the city rate
    assert rates["K29"] == pytest.approx(0.01)
