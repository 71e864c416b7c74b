"""Rule screens on inpatient stays: split admission, bed-hanging, discharge growth — tiny tables, visible answers."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from scipy.stats import poisson

from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.rules.bed_hanging import BedHangingDetector
from fraudnet.detectors.rules.discharge_growth import DischargeGrowthDetector, excess_surprise, growth_tier_score
from fraudnet.detectors.rules.split_admission import SplitAdmissionDetector
from fraudnet.errors import DetectorError
from tests.rules_tables import T0, ClaimsBuilder


def _background(b: ClaimsBuilder, insts: tuple[str, ...], per_inst: int = 60) -> None:
    """Ordinary single stays at each institution (no readmissions)."""
    for inst in insts:
        for i in range(per_inst):
            p = b.person(f"Q{inst}{i:03d}")
            b.visit(p, inst, T0 + timedelta(days=i * 5), "21", days=5, dise="J18.0", fund=3000)


def test_split_admission_finds_the_splitting_institution_and_keeps_one_readmission_yellow() -> None:
    b = ClaimsBuilder()
    for code in ("H1", "H2", "H3"):
        b.institution(code)
    split_ids = []
    for i in range(12):  # H1 splits 12 patients' stays: discharged, readmitted 2 days later, same I63 category
        p = b.person(f"S{i:02d}")
        t = T0 + timedelta(days=20 * i)
        split_ids.append(b.visit(p, "H1", t, "21", days=6, dise="I63.9", fund=5000))
        split_ids.append(b.visit(p, "H1", t + timedelta(days=8), "21", days=5, dise="I63.0", fund=4000))
    p = b.person("ONE")  # H2: one ordinary readmission
    one = [b.visit(p, "H2", T0, "21", days=4, dise="K29"), b.visit(p, "H2", T0 + timedelta(days=10), "21", days=3,
                                                                   dise="K29.7")]
    p = b.person("LATE")  # readmitted after 40 days: not a split
    b.visit(p, "H3", T0, "21", days=4, dise="K29")
    b.visit(p, "H3", T0 + timedelta(days=44), "21", days=3, dise="K29")
    p = b.person("OTHERDX")  # readmitted soon but for another diagnosis: not a split
    b.visit(p, "H3", T0, "21", days=4, dise="K29")
    b.visit(p, "H3", T0 + timedelta(days=6), "21", days=3, dise="S72")
    _background(b, ("H1", "H2", "H3"))
    leads = SplitAdmissionDetector().run(ClaimsContext(b.build()))
    by_inst = {lead.institutions[0]: lead for lead in leads}
    assert set(by_inst) == {"H1", "H2"}
    h1 = by_inst["H1"]
    assert h1.kind == "rule:split_admission"
    assert h1.severity == "red"
    assert sorted(h1.evidence) == sorted(split_ids)
    assert h1.features["patients"] == 12
    assert h1.amount_at_risk == pytest.approx(12 * 9000)
    assert "12名患者" in h1.explanation_zh and "12 patients" in h1.explanation_en
    assert by_inst["H2"].severity == "yellow"
    assert sorted(by_inst["H2"].evidence) == sorted(one)


def test_split_admission_refunded_stays_do_not_count_and_params_are_validated() -> None:
    b = ClaimsBuilder()
    b.institution("H1")
    p = b.person("R")
    b.visit(p, "H1", T0, "21", days=4, dise="K29", refunded=True)
    b.visit(p, "H1", T0 + timedelta(days=6), "21", days=3, dise="K29")
    assert SplitAdmissionDetector().run(ClaimsContext(b.build())) == []
    with pytest.raises(DetectorError, match="max_gap_days"):
        SplitAdmissionDetector(max_gap_days=0).run(ClaimsContext(b.build()))


def _stay(b: ClaimsBuilder, psn: str, inst: str, start: datetime, nights: int, treated_days: list[int]) -> str:
    mid = b.visit(psn, inst, start, "21", days=nights, dise="M54", fund=2500)
    for d in range(nights):
        b.fee(mid, "BED", start + timedelta(days=d, hours=1), pric=60)  # the bed is billed every night
    for d in treated_days:
        b.fee(mid, "DRUG", start + timedelta(days=d, hours=3), pric=30)
    return mid


def test_bed_hanging_flags_stays_billed_without_treatment() -> None:
    b = ClaimsBuilder()
    for code in ("H1", "H2"):
        b.institution(code)
    b.item("BED", "床位费", "201")
    b.item("DRUG", "头孢呋辛", "101")
    idle = []
    for i in range(8):  # H1: 8 stays of 10 nights with treatment on 2 days only
        idle.append(_stay(b, b.person(f"I{i}"), "H1", T0 + timedelta(days=15 * i), 10, [0, 1]))
    for inst in ("H1", "H2"):
        for i in range(40):  # ordinary stays treated every day
            _stay(b, b.person(f"N{inst}{i}"), inst, T0 + timedelta(days=3 * i), 5, list(range(5)))
    weekend = _stay(b, b.person("W"), "H2", T0, 6, [0, 1, 2, 5])  # two untreated days: ordinary
    leads = BedHangingDetector().run(ClaimsContext(b.build()))
    assert [lead.institutions for lead in leads] == [["H1"]]
    lead = leads[0]
    assert lead.kind == "rule:bed_hanging"
    assert lead.severity == "red"
    assert sorted(lead.evidence) == sorted(idle)
    assert weekend not in lead.evidence
    assert lead.features["idle_days"] == 8 * 8
    assert "挂床" in lead.explanation_zh and "bed-hanging" in lead.explanation_en


def _monthly(b: ClaimsBuilder, inst: str, counts: list[int]) -> None:
    for m, n in enumerate(counts):
        for k in range(n):
            start = datetime(2025, m + 1, 1 + (k % 25), 8)
            b.visit(b.person(f"G{inst}{m:02d}{k:03d}"), inst, start, "21", days=3, dise="J18", fund=2000)


def test_discharge_growth_tiers_follow_growth_over_the_institutions_own_level() -> None:
    b = ClaimsBuilder()
    for code in ("HG", "HS", "HB", "HW", "H1", "H2", "H3", "H4"):
        b.institution(code)
    for code in ("H1", "H2", "H3", "H4"):  # ordinary hospitals with a winter peak the city shares
        _monthly(b, code, [30, 29, 28, 27, 26, 27, 28, 29, 30, 32, 34, 36])
    _monthly(b, "HG", [20, 21, 19, 20, 22, 20, 19, 21, 20, 45, 50, 55])  # jumps ×2.5 in the last 3 months
    _monthly(b, "HS", [20, 21, 19, 20, 22, 20, 19, 21, 20, 27, 27, 27])  # +35 %: yellow at most
    _monthly(b, "HB", [80, 78, 76, 73, 70, 72, 74, 77, 80, 86, 90, 95])  # big hospital with the winter peak
    _monthly(b, "HW", [2, 3, 2, 2, 3, 2, 2, 3, 2, 5, 4, 5])  # tiny clinic: growth not significant
    leads = DischargeGrowthDetector().run(ClaimsContext(b.build()))
    by_inst = {lead.institutions[0]: lead for lead in leads}
    assert by_inst["HG"].severity == "red"
    assert by_inst["HG"].features["flagged_months"] == 3
    assert len(by_inst["HG"].evidence) == 45 + 50 + 55
    assert "HB" not in by_inst
    assert by_inst.get("HS") is None or by_inst["HS"].severity == "yellow"
    assert by_inst.get("HW") is None or by_inst["HW"].severity == "yellow"
    assert "出院人次异常增长" in by_inst["HG"].explanation_zh


def test_growth_tier_score_is_monotone_with_bureau_tiers() -> None:
    assert growth_tier_score(1.0) == 0.0
    assert growth_tier_score(1.3) == pytest.approx(0.4)
    assert growth_tier_score(1.5) == pytest.approx(0.6)
    assert growth_tier_score(2.0) == pytest.approx(0.8)
    values = [growth_tier_score(1 + x / 10) for x in range(0, 40)]
    assert values == sorted(values)


def test_since_limits_evidence_to_recent_visits() -> None:
    b = ClaimsBuilder()
    b.institution("H1")
    early, late = [], []
    for i in range(6):
        p = b.person(f"E{i}")
        t = T0 + timedelta(days=3 * i)
        early += [b.visit(p, "H1", t, "21", days=4, dise="K80"), b.visit(p, "H1", t + timedelta(days=6), "21",
                                                                         days=3, dise="K80")]
        p = b.person(f"L{i}")
        t = T0 + timedelta(days=200 + 3 * i)
        late += [b.visit(p, "H1", t, "21", days=4, dise="K80"), b.visit(p, "H1", t + timedelta(days=6), "21",
                                                                        days=3, dise="K80")]
    _background(b, ("H1",))
    con = b.build()
    full = SplitAdmissionDetector().run(ClaimsContext(con))
    assert sorted(full[0].evidence) == sorted(early + late)
    recent = SplitAdmissionDetector().run(ClaimsContext(con, since=T0 + timedelta(days=150)))
    assert sorted(recent[0].evidence) == sorted(late)


def test_growth_surprise_is_the_counts_own_tail_not_a_normal_approximation() -> None:
    """A clinic with ~0.4 discharges a month that has 6 in its last three months (1.05 expected): the Poisson tail
    is ~10^-3.2, not the normal approximation's ~10^-6 — and such a clinic is no red warning."""
    assert excess_surprise(6, 1.05, 1.05) == pytest.approx(-math.log10(poisson.sf(5, 1.05)))
    assert 3.0 < excess_surprise(6, 1.05, 1.05) < 3.5
    assert excess_surprise(1, 1.05, 1.05) == 0.0
    # over-dispersed history: a wider (negative binomial) tail, so less surprise than Poisson
    assert excess_surprise(30, 14.0, 28.0) < excess_surprise(30, 14.0, 14.0)
    b = ClaimsBuilder()
    for code in ("HC", "H1", "H2", "H3"):
        b.institution(code)
    for code in ("H1", "H2", "H3"):
        _monthly(b, code, [30, 29, 28, 27, 26, 27, 28, 29, 30, 32, 34, 36])
    _monthly(b, "HC", [1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 2, 3])  # 0.5 a month, then 7 in three months: red before
    leads = [ld for ld in DischargeGrowthDetector().run(ClaimsContext(b.build())) if ld.institutions == ["HC"]]
    assert all(ld.severity not in {"red", "orange"} for ld in leads), [(ld.severity, ld.score) for ld in leads]
