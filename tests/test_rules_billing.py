"""Rule screens on fee lines: over-standard price, over-quantity, duplicate charges, sex/age mismatch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.rules.duplicate_charge import DuplicateChargeDetector
from fraudnet.detectors.rules.gender_age_mismatch import GenderAgeMismatchDetector
from fraudnet.detectors.rules.over_quantity import OverQuantityDetector
from fraudnet.detectors.rules.over_standard_price import OverStandardPriceDetector
from tests.rules_tables import T0, ClaimsBuilder


def _clinics(b: ClaimsBuilder, codes: tuple[str, ...], visits: int, item: str, pric: float,
             prd_days: float | None = None) -> None:
    for code in codes:
        for i in range(visits):
            mid = b.visit(b.person(f"B{code}{i:03d}"), code, T0 + timedelta(days=i, hours=1))
            b.fee(mid, item, T0 + timedelta(days=i, hours=1), cnt=1, pric=pric, prd_days=prd_days)


def test_over_standard_price_flags_repeated_overcharges_and_allows_the_ceiling() -> None:
    b = ClaimsBuilder()
    for code in ("C1", "C2", "C3", "C4"):
        b.institution(code)
    b.item("CT", "CT平扫", "201", ceiling=200.0, max_days=None)
    _clinics(b, ("C1", "C2", "C3", "C4"), 50, "CT", 200.0)  # priced exactly at the ceiling: allowed
    over = []
    for i in range(10):  # C1 charges 260 on 10 more visits
        mid = b.visit(b.person(f"X{i}"), "C1", T0 + timedelta(days=i, hours=2), fund=180)
        b.fee(mid, "CT", T0 + timedelta(days=i, hours=2), cnt=1, pric=260.0)
        over.append(mid)
    once = b.visit(b.person("ONCE"), "C2", T0 + timedelta(days=3, hours=5))  # one slip at C2
    b.fee(once, "CT", T0 + timedelta(days=3, hours=5), cnt=1, pric=210.0)
    leads = OverStandardPriceDetector().run(ClaimsContext(b.build()))
    by_inst = {lead.institutions[0]: lead for lead in leads}
    assert set(by_inst) == {"C1", "C2"}
    assert by_inst["C1"].severity == "red"
    assert sorted(by_inst["C1"].evidence) == sorted(over)
    assert by_inst["C1"].features["overcharge"] == pytest.approx(600.0)
    assert by_inst["C1"].amount_at_risk == pytest.approx(1800.0)
    assert by_inst["C2"].severity == "yellow"
    assert "超过医保最高限价" in by_inst["C1"].explanation_zh


def test_over_quantity_flags_supply_beyond_max_days_but_not_monthly_chronic_refills() -> None:
    b = ClaimsBuilder()
    for code in ("P1", "P2", "P3"):
        b.institution(code, ftype="2")
    b.item("MET", "二甲双胍", "101", max_days=30)
    b.item("AMX", "阿莫西林", "101", max_days=7)
    _clinics(b, ("P1", "P2", "P3"), 40, "MET", 20.0, prd_days=30)  # chronic monthly refills: within the limit
    over = []
    for i in range(9):  # P1 hands out 90-day supplies of a 30-day drug
        mid = b.visit(b.person(f"O{i}"), "P1", T0 + timedelta(days=2 * i, hours=4), med_type="41")
        b.fee(mid, "MET", T0 + timedelta(days=2 * i, hours=4), cnt=9, pric=20.0, prd_days=90)
        over.append(mid)
    for i in range(5):  # cnt beyond the limit when prd_days is missing counts too
        mid = b.visit(b.person(f"A{i}"), "P1", T0 + timedelta(days=3 * i, hours=6), med_type="41")
        b.fee(mid, "AMX", T0 + timedelta(days=3 * i, hours=6), cnt=21, pric=2.0, prd_days=None)
        over.append(mid)
    leads = OverQuantityDetector().run(ClaimsContext(b.build()))
    assert [lead.institutions for lead in leads] == [["P1"]]
    assert leads[0].severity == "red"
    assert sorted(leads[0].evidence) == sorted(over)
    assert leads[0].features["max_ratio"] == pytest.approx(3.0)
    assert "超过目录单次最大取药天数" in leads[0].explanation_zh


def test_duplicate_charges_same_item_same_time_twice() -> None:
    b = ClaimsBuilder()
    for code in ("D1", "D2", "D3"):
        b.institution(code)
    b.item("INJ", "静脉注射", "201")
    b.item("ECG", "心电图", "201")
    _clinics(b, ("D1", "D2", "D3"), 50, "INJ", 12.0)
    dup = []
    for i in range(8):  # D1 bills the ECG twice at the same minute on 8 visits
        t = T0 + timedelta(days=i, hours=3)
        mid = b.visit(b.person(f"U{i}"), "D1", t)
        b.fee(mid, "ECG", t, pric=25.0)
        b.fee(mid, "ECG", t, pric=25.0)
        dup.append(mid)
    b.item("PPI", "泮托拉唑钠肠溶片", "101")
    for i in range(3):  # at a hospital a drug billed twice at one time counts too, whatever the two prices
        t = T0 + timedelta(days=20 + i, hours=3)
        mid = b.visit(b.person(f"Y{i}"), "D1", t)
        b.fee(mid, "PPI", t, pric=42.11)
        b.fee(mid, "PPI", t, pric=38.55)
        dup.append(mid)
    t = T0 + timedelta(days=1, hours=9)  # the same item twice at different times on one visit is not duplicate
    mid = b.visit(b.person("TWICE"), "D2", t)
    b.fee(mid, "INJ", t, pric=12.0)
    b.fee(mid, "INJ", t + timedelta(hours=6), pric=12.0)
    b.item("VC", "维生素C片", "101")
    b.institution("PH", ftype="2")
    for i in range(40):  # two packs of a drug on two lines at a pharmacy: an ordinary sale
        t = T0 + timedelta(days=i, hours=5)
        mid = b.visit(b.person(f"V{i}"), "PH", t, med_type="41")
        b.fee(mid, "VC", t, pric=3.5)
        b.fee(mid, "VC", t, pric=3.5)
    leads = DuplicateChargeDetector().run(ClaimsContext(b.build()))
    assert [lead.institutions for lead in leads] == [["D1"]]
    assert leads[0].severity == "red"
    assert sorted(leads[0].evidence) == sorted(dup)
    assert leads[0].features["duplicate_lines"] == 11
    assert leads[0].features["duplicate_amount"] == pytest.approx(8 * 25.0 + 3 * 38.55)


def test_gender_age_mismatch_groups_incompatible_claims_by_institution() -> None:
    b = ClaimsBuilder()
    for code in ("G1", "G2", "G3"):
        b.institution(code)
    b.item("PSA", "前列腺特异抗原测定", "201")
    b.item("FBC", "血常规", "201")
    for code in ("G1", "G2", "G3"):
        for i in range(60):
            gend = "1" if i % 2 else "2"
            mid = b.visit(b.person(f"N{code}{i}", gend=gend, age=30 + i % 40), code, T0 + timedelta(days=i),
                          dise="J06")
            b.fee(mid, "FBC", T0 + timedelta(days=i), pric=20)
        # ordinary obstetrics for women of the right age
        for i in range(10):
            b.visit(b.person(f"W{code}{i}", gend="2", age=28), code, T0 + timedelta(days=i), "52", days=3,
                    dise="O80")
    bad = []
    for i in range(6):  # G1: deliveries (O80) billed for men (a 3-day delivery stay: 1,500 yuan of fund)
        bad.append(b.visit(b.person(f"M{i}", gend="1", age=45), "G1", T0 + timedelta(days=i), "52", days=3,
                           dise="O80", fund=1500.0))
    for i in range(3):  # G1: prostate tests billed for women
        mid = b.visit(b.person(f"F{i}", gend="2", age=50), "G1", T0 + timedelta(days=i + 10), dise="Z00")
        b.fee(mid, "PSA", T0 + timedelta(days=i + 10), pric=80)
        bad.append(mid)
    bad.append(b.visit(b.person("OLD", gend="1", age=70), "G1", T0 + timedelta(days=20), dise="P07"))  # perinatal
    slip = b.visit(b.person("SLIP", gend="2", age=40), "G2", T0, dise="N40")  # one impossible event at G2
    leads = GenderAgeMismatchDetector().run(ClaimsContext(b.build()))
    by_inst = {lead.institutions[0]: lead for lead in leads}
    assert set(by_inst) == {"G1", "G2"}
    assert by_inst["G1"].severity == "red"
    assert sorted(by_inst["G1"].evidence) == sorted(bad)
    assert by_inst["G1"].features["mismatched_visits"] == 10
    assert by_inst["G2"].evidence == [slip]
    assert by_inst["G2"].severity == "orange"  # certain evidence: one event is orange, not red (issue 12)
