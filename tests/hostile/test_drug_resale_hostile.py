"""Drug resale detector on hostile input: missing supply days, absurd prd_days, bad parameters, no contacts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fraudnet.detectors.drug_resale import DrugResaleDetector
from fraudnet.errors import DetectorError
from tests.test_detector_drug_resale import START, Builder, background, collector


@pytest.mark.parametrize("name,value", [
    ("window_days", 0), ("window_days", 1.5), ("screen_alpha", 0), ("screen_alpha", "0.01"),
    ("max_share", 1), ("min_excess_fills", -1), ("score_per_decade", 0), ("min_score", 2),
])
def test_bad_parameter_raises_detector_error_naming_it(name: str, value: object) -> None:
    with pytest.raises(DetectorError, match=name):
        DrugResaleDetector(**{name: value}).run(Builder().context())


def test_supply_days_missing_everywhere_still_finds_the_chain_by_fill_counts() -> None:
    """No prd_days at all (an export without it): the screen runs on fill counts and names no supply in days."""
    b = Builder()
    background(b)
    b.person("LEAD", phone="PH-L")
    for i in range(4):
        collector(b, f"C{i}", 5 * i, "PH-L")
    for fee in b.fees:
        fee["prd_days"] = None
    leads = DrugResaleDetector().run(b.context())
    top = leads[0]
    assert top.features["collectors"] == [f"C{i}" for i in range(4)]
    assert top.severity in ("orange", "red")
    assert not [ld for ld in leads if any(p.startswith("PAT") for p in ld.persons) and ld.severity != "yellow"]


def test_absurd_prd_days_on_one_fill_are_capped_and_do_not_make_a_lead() -> None:
    """A data-entry error (prd_days 9999 on one ordinary refill) counts at most max_days_per_fill (30)."""
    b = Builder()
    background(b)
    b.person("TYPO", phone="PH-T")
    for k in range(6):
        b.fill("TYPO", "P2", "D000000000777", START + timedelta(days=30 * k), days=9999.0 if k == 2 else 30.0)
    leads = DrugResaleDetector().run(b.context())
    assert not [ld for ld in leads if "TYPO" in ld.persons and ld.severity != "yellow"]


def test_refunded_and_negative_lines_are_ignored() -> None:
    """A shopper whose extra fills were all refunded (or reversed with negative counts) collected nothing."""
    b = Builder()
    background(b)
    ids = collector(b, "REF", 0, "PH-R")
    for v in b.visits:
        if v["mdtrt_id"] in ids[1:]:
            v["refunded"] = True
    for f in b.fees:
        if f["mdtrt_id"] == ids[1]:
            f["cnt"] = -2.0
    assert not [ld for ld in DrugResaleDetector().run(b.context()) if "REF" in ld.persons]


def test_persons_without_phone_or_address_stand_alone() -> None:
    """No contact columns filled: collectors are tested alone, nothing is chained, nothing crashes."""
    b = Builder()
    background(b)
    for i in range(3):
        collector(b, f"N{i}", 3 * i, "PH-X")
    for p in b.persons:
        p["mob_hash"] = None
        p["addr_key"] = None
    leads = DrugResaleDetector().run(b.context())
    found = [ld for ld in leads if ld.persons[0].startswith("N")]
    assert sorted(ld.persons[0] for ld in found) == ["N0", "N1", "N2"]
    assert all(ld.features["links"] == [] and len(ld.persons) == 1 for ld in found)
