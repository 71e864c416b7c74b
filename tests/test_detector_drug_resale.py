"""Drug resale detector: collectors (alone, chained to a leader, or relatives) are found; look-alikes are not."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fraudnet.detectors.drug_resale import DrugResaleDetector
from fraudnet.errors import DetectorError
from tests.test_detector_collusion_ring import assert_quality_floor, make_context, planted_quality

START = datetime(2025, 2, 1, 9)
HILIST = [
    {"hilist_code": "K0001", "hilist_name": "重点药A", "list_type": "101", "pric_uplmt_amt": 900.0,
     "max_days_per_fill": 30.0, "key_drug_flag": "1"},
    {"hilist_code": "N0001", "hilist_name": "普通药", "list_type": "101", "pric_uplmt_amt": 30.0,
     "max_days_per_fill": 7.0, "key_drug_flag": "0"},
]
INSTITUTIONS = [{"fixmedins_code": f"P{i}", "fixmedins_type": "2", "admdvs": "310101"} for i in range(1, 5)] + [
    {"fixmedins_code": "H1", "fixmedins_type": "1", "admdvs": "310101"}]


class Builder:
    def __init__(self) -> None:
        self.visits: list[dict] = []
        self.fees: list[dict] = []
        self.persons: list[dict] = []
        self.inv: list[dict] = []
        self.n = 0

    def person(self, psn: str, phone: str | None = None, addr: str | None = None) -> str:
        self.persons.append({"psn_no": psn, "mob_hash": phone, "addr_key": addr, "live_admdvs": "310101"})
        return psn

    def fill(self, psn: str, inst: str, doctor: str, when: datetime, days: float = 30.0,
             item: str = "K0001") -> str:
        self.n += 1
        mid = f"M{self.n:05d}"
        self.visits.append({"mdtrt_id": mid, "psn_no": psn, "fixmedins_code": inst, "med_type": "41",
                            "begntime": when, "endtime": when, "atddr_no": None, "opter_id": "C1",
                            "medfee_sumamt": 860.0, "fund_pay_sumamt": 602.0, "refunded": False,
                            "is_inpatient": False, "los_days": 0, "is_pharmacy": inst.startswith("P"),
                            "fixmedins_type": "2"})
        self.fees.append({"mdtrt_id": mid, "feedetl_sn": "1", "psn_no": psn, "fee_ocur_time": when,
                          "hilist_code": item, "cnt": 2.0, "pric": 430.0, "det_item_fee_sumamt": 860.0,
                          "bilg_dr_codg": doctor, "prd_days": days})
        return mid

    def context(self):
        return make_context(self.visits, persons=self.persons, institutions=INSTITUTIONS, fees=self.fees,
                            hilist=HILIST, phar_inv=self.inv)


def collector(b: Builder, psn: str, offset_days: int, phone: str) -> list[str]:
    b.person(psn, phone=phone, addr=f"ADDR-{psn}")
    ids = []
    pharmacies = ["P1", "P2", "P3"]
    for k in range(6):
        doctor = f"D{(k % 5) + 1:012d}"
        ids.append(b.fill(psn, pharmacies[k % 3], doctor, START + timedelta(days=offset_days + 12 * k)))
    return ids


def chronic(b: Builder, psn: str) -> list[str]:
    return [b.fill(psn, "P4", "D000000000099", START + timedelta(days=30 * k)) for k in range(12)]


def background(b: Builder, n: int = 60) -> None:
    """The city's ordinary patients of the drug: monthly refills from their own doctor at their own pharmacy, a few
    switching pharmacy or doctor once — the baseline every person is measured against."""
    for i in range(n):
        psn = b.person(f"PAT{i:03d}", phone=f"PH-PAT{i:03d}", addr=f"ADDR-PAT{i:03d}")
        for k in range(10):
            inst = f"P{(i + (k >= 6 and i % 5 == 0)) % 4 + 1}"
            doctor = f"D{200 + i + (k >= 8 and i % 7 == 0):012d}"
            b.fill(psn, inst, doctor, START + timedelta(days=30 * k + i % 5))


def chain_city() -> tuple[Builder, list[str], list[str]]:
    b = Builder()
    background(b)
    b.person("LEADER", phone="PH-LEADER", addr="ADDR-LEADER")
    members, evidence = [], []
    for i in range(5):
        psn = f"COL{i}"
        evidence += collector(b, psn, 7 * i, "PH-LEADER")
        members.append(psn)
        b.person(f"KIN{i}", phone=f"PH-KIN{i}", addr=f"ADDR-{psn}")  # family at the collector's address
    b.inv += [
        {"fixmedins_code": "P1", "hilist_code": "K0001", "inv_data_type": "3", "cnt": 10.0,
         "occur_time": START, "spler_name": "S"},
        {"fixmedins_code": "P1", "hilist_code": "K0001", "inv_data_type": "4", "cnt": 22.0,
         "occur_time": START, "spler_name": None},
        {"fixmedins_code": "P2", "hilist_code": "K0001", "inv_data_type": "3", "cnt": 100.0,
         "occur_time": START, "spler_name": "S"},
        {"fixmedins_code": "P2", "hilist_code": "K0001", "inv_data_type": "4", "cnt": 20.0,
         "occur_time": START, "spler_name": None},
    ]
    return b, members, evidence


def test_chain_of_five_collectors_and_leader_is_one_lead_with_links() -> None:
    b, members, evidence = chain_city()
    leads = DrugResaleDetector().run(b.context())
    assert len(leads) == 1
    lead = leads[0]
    assert lead.kind == "drug_resale"
    assert lead.severity == "red"
    assert lead.persons == sorted(members + ["LEADER"])
    assert lead.evidence == sorted(evidence)
    assert lead.features["leader"] == "LEADER"
    assert lead.features["collectors"] == members
    links = lead.features["links"]
    assert sorted(link["source"] for link in links) == sorted(f"Person:{p}" for p in members + ["LEADER"])
    assert {link["target"] for link in links} == {"Phone:PH-LEADER"}
    assert {link["type"] for link in links} == {"USES_PHONE"}
    assert lead.features["overselling_pharmacies"] == ["P1"]
    assert lead.features["max_prescribers_in_window"] == 3  # 5 doctors, counted at most once per institution
    assert lead.features["max_pharmacies_in_window"] == 3
    # Each collector holds 30 days of supply every 12 days: far more fills than the elapsed days need.
    assert lead.features["supply_fills"]["observed"] >= 2 * lead.features["supply_fills"]["expected"]
    assert lead.features["excess_fills"] >= 5
    assert lead.features["family_wise_q"] < 0.01
    assert lead.practitioners == [f"D{i:012d}" for i in range(1, 6)]
    assert lead.institutions == ["P1", "P2", "P3"]
    assert lead.amount_at_risk == pytest.approx(602.0 * 30)
    assert "5 persons" in lead.explanation_en and "P1" in lead.explanation_en
    assert "5名参保人" in lead.explanation_zh


def test_chronic_refiller_and_family_sharing_a_phone_give_no_red_lead() -> None:
    b = Builder()
    background(b)
    for i, psn in enumerate(["FAM0", "FAM1", "FAM2", "FAM3"]):
        b.person(psn, phone="PH-FAMILY", addr="ADDR-FAMILY")
        if i == 0:
            chronic(b, psn)
    chronic(b, b.person("OLD1", phone="PH-OLD1"))
    leads = DrugResaleDetector().run(b.context())
    assert not [ld for ld in leads if ld.severity == "red"]
    assert leads == []


def test_chain_next_to_families_keeps_families_out() -> None:
    b, members, _ = chain_city()
    for i, psn in enumerate(["FAM0", "FAM1", "FAM2"]):
        b.person(psn, phone="PH-FAMILY", addr="ADDR-FAMILY")
        if i == 0:
            chronic(b, psn)
    leads = DrugResaleDetector().run(b.context())
    assert [ld.persons for ld in leads] == [sorted(members + ["LEADER"])]
    assert not any(p.startswith(("KIN", "FAM")) for p in leads[0].persons)


def test_lone_shopper_is_scored_by_surprise_and_a_mild_one_is_not_orange() -> None:
    b = Builder()
    background(b)
    collector(b, "SOLO", 0, "PH-SOLO")
    # Mild: three fills of 30 days in 50 days from two doctors at two pharmacies.
    b.person("MILD", phone="PH-MILD")
    for k, (inst, doc) in enumerate([("P1", "D000000000301"), ("P2", "D000000000302"), ("P2", "D000000000302")]):
        b.fill("MILD", inst, doc, START + timedelta(days=25 * k))
    leads = {tuple(ld.persons): ld for ld in DrugResaleDetector().run(b.context())}
    solo = leads[("SOLO",)]
    assert solo.severity in ("orange", "red")
    assert solo.features["collectors"] == ["SOLO"] and solo.features["links"] == []
    assert ("MILD",) not in leads or leads[("MILD",)].severity == "yellow"


def test_relatives_each_moderate_are_tested_together() -> None:
    """Three relatives at one address each take a few extra fills from a few pharmacies; none is a chain alone,
    the family's combined excess is far beyond what three patients need."""
    b = Builder()
    background(b)
    fam = ["REL0", "REL1", "REL2"]
    for i, psn in enumerate(fam):
        b.person(psn, phone=f"PH-REL{i}", addr="ADDR-REL")
        for k in range(4):
            b.fill(psn, f"P{(i + k) % 4 + 1}", f"D{400 + (i + k) % 4:012d}", START + timedelta(days=15 * k + i))
    b.person("REL-CHILD", addr="ADDR-REL")  # lives there, no key drug
    leads = DrugResaleDetector().run(b.context())
    assert [ld.features["collectors"] for ld in leads if ld.severity != "yellow"] == [fam]
    lead = leads[0]
    assert set(fam) <= set(lead.persons) and lead.severity in ("orange", "red")
    assert {link["target"] for link in lead.features["links"]} == {"Address:ADDR-REL"}
    assert lead.features["p_group"] < min(lead.features["member_p"].values())


def test_rotating_doctors_and_nursing_home_burst_stay_below_orange() -> None:
    """A dialysis patient seen by a different doctor at each session in one unit, with the supply each session
    needs, and twenty nursing-home residents (shared address and phone) refilled monthly in one morning."""
    b = Builder()
    background(b)
    b.person("DIAL", phone="PH-DIAL")
    for k in range(36):
        b.fill("DIAL", "H1", f"D{500 + k % 12:012d}", START + timedelta(days=2 * k + k // 3), days=2.0)
    for r in range(20):
        psn = b.person(f"HOME{r:02d}", phone="PH-HOME", addr="ADDR-HOME")
        for k in range(10):
            b.fill(psn, "P4" if k % 4 else "P3", "D000000000600", START + timedelta(days=30 * k, minutes=r))
    leads = DrugResaleDetector().run(b.context())
    assert not [ld for ld in leads if ld.severity in ("orange", "red")], [(ld.persons, ld.score) for ld in leads]


def test_invalid_parameter_raises_detector_error() -> None:
    with pytest.raises(DetectorError, match="window_days"):
        DrugResaleDetector(window_days=0).run(make_context([]))


def test_empty_store_gives_no_leads() -> None:
    assert DrugResaleDetector().run(make_context([])) == []


def test_planted_chains_on_small_city(small_claims_workspace: Path, small_city_dir: Path) -> None:
    leads, result = planted_quality(small_claims_workspace, small_city_dir, DrugResaleDetector())
    assert_quality_floor(result, "drug_resale", ("family", "chronic_refill"))
    assert all(ld.explanation_zh and ld.explanation_en and ld.evidence for ld in leads)


def test_planted_chains_on_20k_city(claims_20k_workspace: Path, city_20k_dir: Path) -> None:
    leads, result = planted_quality(claims_20k_workspace, city_20k_dir, DrugResaleDetector())
    assert_quality_floor(result, "drug_resale", ("family", "chronic_refill"))
    chained = [ld for ld in leads if ld.severity == "red" and len(ld.features["collectors"]) >= 2]
    assert chained and all(ld.features["links"] for ld in chained)


def test_tier_is_the_false_discovery_rate_over_everyone_tested() -> None:
    """Benjamini–Hochberg: p × tests ÷ rank, made monotone and capped at 1 — two leads at p 0.001 and 0.002
    among 100 tested are each 10 % likely to be chance (Bonferroni would say 0.1 and 0.2)."""
    fdr = DrugResaleDetector._false_discovery([0.001, 0.002, 0.5], 100)
    assert fdr == pytest.approx([0.1, 0.1, 1.0])
    # monotone: a less surprising lead never gets a lower rate than a more surprising one
    assert DrugResaleDetector._false_discovery([0.003, 0.001], 10) == pytest.approx([0.015, 0.01])
