"""Hostile input for the split-admission rule: bad parameters, messy diagnosis codes, overlapping or undated stays,
lockstep group admissions and a city without peers — refused with the parameter named, or no false split."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.rules.split_admission import SplitAdmissionDetector
from fraudnet.errors import DetectorError
from tests.rules_tables import T0, ClaimsBuilder


def _city(*codes: str) -> ClaimsBuilder:
    b = ClaimsBuilder()
    for code in codes:
        b.institution(code)
        for i in range(40):
            b.visit(b.person(f"Q{code}{i:03d}"), code, T0 + timedelta(days=i * 7), "21", days=5, dise="J18.0")
    return b


@pytest.mark.parametrize(("params", "name"), [
    ({"scheduled_families": "Z51"}, "scheduled_families"),
    ({"scheduled_families": ("Z51", "")}, "scheduled_families"),
    ({"scheduled_families": ("Z51", None)}, "scheduled_families"),
    ({"regular_cv": 0}, "regular_cv"),
    ({"regular_cv": float("nan")}, "regular_cv"),
    ({"regular_min_links": -1}, "regular_min_links"),
    ({"day_case_nights": -1}, "day_case_nights"),
    ({"day_case_nights": "1"}, "day_case_nights"),
    ({"group_min": 0}, "group_min"),
])
def test_bad_parameters_are_refused_naming_the_parameter(params: dict, name: str) -> None:
    con = _city("H1").build()
    with pytest.raises(DetectorError, match=name):
        SplitAdmissionDetector(**params).run(ClaimsContext(con))


def test_messy_scheduled_codes_are_still_scheduled_and_blank_codes_never_match() -> None:
    b = _city("H1", "H2", "H3")
    for i in range(10):
        p = b.person(f"CH{i}")  # chemotherapy coded in lower case with spaces, irregular, three nights
        t = T0 + timedelta(days=3 * i)
        for gap in (5, 9, 2, 12):
            b.visit(p, "H1", t, "21", days=3, dise=" z51.1 ")
            t += timedelta(days=3 + gap)
        p = b.person(f"BL{i}")  # diagnosis missing on both stays
        b.visit(p, "H2", T0 + timedelta(days=5 * i), "21", days=5, dise="")
        b.visit(p, "H2", T0 + timedelta(days=5 * i + 6), "21", days=5, dise="   ")
    leads = SplitAdmissionDetector().run(ClaimsContext(b.build()))
    assert leads == []


def test_overlapping_and_same_start_stays_are_not_readmissions() -> None:
    b = _city("H1", "H2", "H3")
    for i in range(10):
        p = b.person(f"OV{i}")  # second stay starts before the first ends (an overlap, another rule's finding)
        b.visit(p, "H1", T0 + timedelta(days=4 * i), "21", days=6, dise="I63.9")
        b.visit(p, "H1", T0 + timedelta(days=4 * i + 3), "21", days=6, dise="I63.9")
        p = b.person(f"SS{i}")  # two records with the same admission time
        b.visit(p, "H2", T0 + timedelta(days=4 * i), "21", days=4, dise="I63.9")
        b.visit(p, "H2", T0 + timedelta(days=4 * i), "21", days=4, dise="I63.9")
    assert SplitAdmissionDetector().run(ClaimsContext(b.build())) == []


def test_patients_discharged_and_readmitted_together_are_a_group_not_splits() -> None:
    b = _city("H1", "H2", "H3")
    for i in range(12):  # one ring: twelve patients in and out on the same days, three times
        p = b.person(f"RING{i}")
        for k in range(3):
            b.visit(p, "H1", T0 + timedelta(days=14 * k, hours=i), "21", days=7, dise="M51.2")
    assert SplitAdmissionDetector().run(ClaimsContext(b.build())) == []


def test_one_institution_without_peers_still_scores_against_the_city_rate() -> None:
    b = _city("H1")
    for i in range(10):
        p = b.person(f"S{i}")
        t = T0 + timedelta(days=25 * i)
        b.visit(p, "H1", t, "21", days=6, dise="I63.9", fund=float("nan") if i == 0 else 5000.0)
        b.visit(p, "H1", t + timedelta(days=7), "21", days=5, dise="I63.9", fund=4000)
    leads = SplitAdmissionDetector().run(ClaimsContext(b.build()))
    assert len(leads) == 1
    f = leads[0].features
    assert f["readmissions"] == 10
    # no peers for I63: the city rate per stay (features round the rate to 4 decimals)
    assert f["expected"] == pytest.approx(f["baseline_rate"] * f["stays"], rel=1e-3)
    assert f["hit_fund"] == pytest.approx(9 * 9000 + 4000)  # the unknown fund counts as 0


def test_no_scheduled_families_counts_chemotherapy_sessions_like_any_readmission() -> None:
    b = _city("H1", "H2", "H3")
    for i in range(10):
        p = b.person(f"CH{i}")  # irregular three-night Z51 sessions: only the code sets them aside
        t = T0 + timedelta(days=3 * i)
        for gap in (5, 9, 2, 12):
            b.visit(p, "H1", t, "21", days=3, dise="Z51.1")
            t += timedelta(days=3 + gap)
    con = b.build()
    assert SplitAdmissionDetector().run(ClaimsContext(con)) == []
    leads = SplitAdmissionDetector(scheduled_families=()).run(ClaimsContext(con))
    assert [lead.features["readmissions"] for lead in leads] == [30]
