"""Card-skimming detector: a night burst of far-away cards with one basket is found; a busy pharmacy is not red."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from fraudnet.detectors.card_skimming import CardSkimmingDetector
from fraudnet.errors import DetectorError
from tests.test_detector_collusion_ring import assert_quality_floor, make_context, planted_quality

ITEMS = [f"X{i:04d}" for i in range(40)]
START = datetime(2025, 3, 1)


class City:
    """A tiny hand-built city: pharmacies, local customers, visits with fee lines."""

    def __init__(self) -> None:
        self.visits: list[dict] = []
        self.fees: list[dict] = []
        self.persons: dict[str, dict] = {}
        self.institutions = [
            {"fixmedins_code": "P1", "fixmedins_type": "2", "admdvs": "310101", "lnt": 121.47, "lat": 31.23},
            {"fixmedins_code": "P2", "fixmedins_type": "2", "admdvs": "310104", "lnt": 121.43, "lat": 31.18},
            {"fixmedins_code": "P3", "fixmedins_type": "2", "admdvs": "310106", "lnt": 121.45, "lat": 31.22},
        ]
        self.n = 0

    def person(self, psn: str, admdvs: str) -> str:
        self.persons.setdefault(psn, {"psn_no": psn, "live_admdvs": admdvs})
        return psn

    def visit(self, psn: str, inst: str, opter: str, when: datetime, items: list[str], fee: float) -> str:
        self.n += 1
        mid = f"M{self.n:06d}"
        self.visits.append({"mdtrt_id": mid, "psn_no": psn, "fixmedins_code": inst, "med_type": "41",
                            "begntime": when, "endtime": when, "opter_id": opter, "medfee_sumamt": fee,
                            "fund_pay_sumamt": round(fee * 0.6, 2), "refunded": False, "is_inpatient": False,
                            "los_days": 0, "is_pharmacy": True, "fixmedins_type": "2"})
        for k, item in enumerate(items):
            self.fees.append({"mdtrt_id": mid, "feedetl_sn": str(k + 1), "psn_no": psn, "fee_ocur_time": when,
                              "hilist_code": item, "cnt": 1.0, "pric": fee / len(items),
                              "det_item_fee_sumamt": fee / len(items)})
        return mid

    def background(self, inst: str, admdvs: str, opters: list[str], per_day: int, days: int,
                   rng: np.random.Generator, pool: int = 300) -> None:
        locals_ = [self.person(f"L{inst}{i:04d}", admdvs) for i in range(pool)]
        for d in range(days):
            for _ in range(per_day):
                when = START + timedelta(days=d, hours=int(rng.integers(8, 21)), minutes=int(rng.integers(0, 60)))
                items = list(rng.choice(ITEMS, size=int(rng.integers(1, 4)), replace=False))
                self.visit(str(rng.choice(locals_)), inst, str(rng.choice(opters)), when, items,
                           float(rng.uniform(20, 300)))

    def context(self):
        return make_context(self.visits, persons=list(self.persons.values()), institutions=self.institutions,
                            fees=self.fees)


def skim(city: City, inst: str, opter: str, cards: list[str], at: datetime, minutes: int) -> list[str]:
    ids = []
    for i, card in enumerate(cards):
        when = at + timedelta(seconds=int(i * minutes * 60 / len(cards)))
        ids.append(city.visit(card, inst, opter, when, ["K0001", "K0002"], 486.5 + (i % 3) * 0.5))
    return ids


def far_cards(city: City, n: int, prefix: str = "F") -> list[str]:
    return [city.person(f"{prefix}{i:03d}", "310115") for i in range(n)]


def test_night_burst_of_far_cards_with_one_basket_is_found_with_exact_evidence() -> None:
    rng = np.random.default_rng(1)
    city = City()
    city.background("P1", "310101", ["OP1", "OP2"], 12, 60, rng)
    city.background("P2", "310104", ["OPB"], 12, 60, rng)
    cards = far_cards(city, 25)
    ids = skim(city, "P1", "OP1", cards, START + timedelta(days=40, hours=23), 40)
    leads = CardSkimmingDetector().run(city.context())
    assert len(leads) == 1
    lead = leads[0]
    assert lead.kind == "card_skimming"
    assert lead.severity == "red"
    assert lead.evidence == sorted(ids)
    assert lead.persons == sorted(cards)
    assert lead.institutions == ["P1"]
    assert lead.features["cards"] == 25
    assert lead.features["far_stranger_share"] == 1.0
    assert lead.features["offhours_share"] == 1.0
    assert lead.features["same_basket_share"] == 1.0
    assert lead.features["operators"] == ["P1|OP1"]
    assert lead.amount_at_risk == pytest.approx(sum(v["fund_pay_sumamt"] for v in city.visits
                                                    if v["mdtrt_id"] in set(ids)))
    assert "25 distinct cards" in lead.explanation_en and "OP1" in lead.explanation_en
    assert "25张不同社保卡" in lead.explanation_zh


def test_busy_pharmacy_with_local_customers_and_varied_baskets_is_not_red() -> None:
    rng = np.random.default_rng(2)
    city = City()
    city.background("P2", "310104", ["OPB"], 12, 60, rng)
    regulars = [f"LP2{i:04d}" for i in range(25)]
    rush = START + timedelta(days=30, hours=10)
    for i, psn in enumerate(regulars):
        items = list(rng.choice(ITEMS, size=int(rng.integers(1, 4)), replace=False))
        city.visit(psn, "P2", "OPB", rush + timedelta(seconds=96 * i), items, float(rng.uniform(20, 300)))
    leads = CardSkimmingDetector().run(city.context())
    assert not [ld for ld in leads if ld.severity in {"red", "orange"}]


def test_daytime_skimming_inside_a_busy_pharmacy_is_still_found() -> None:
    rng = np.random.default_rng(3)
    city = City()
    city.background("P1", "310101", ["OP1", "OP2"], 20, 60, rng)
    cards = far_cards(city, 30)
    ids = skim(city, "P1", "OP1", cards, START + timedelta(days=20, hours=14), 90)
    leads = CardSkimmingDetector().run(city.context())
    top = [ld for ld in leads if ld.severity in {"red", "orange"}]
    assert len(top) == 1
    assert set(ids) <= set(top[0].evidence)
    assert len(set(top[0].evidence) - set(ids)) <= 2  # at most a stray local visit of the same minutes


def test_cards_co_swiped_at_two_pharmacies_form_one_cluster() -> None:
    rng = np.random.default_rng(4)
    city = City()
    city.background("P1", "310101", ["OP1", "OP2"], 10, 60, rng)
    city.background("P3", "310106", ["OP9"], 10, 60, rng)
    cards = far_cards(city, 20)
    ids1 = skim(city, "P1", "OP1", cards, START + timedelta(days=12, hours=23), 30)
    ids2 = skim(city, "P3", "OP9", cards[:15], START + timedelta(days=13, hours=1), 25)
    ids3 = skim(city, "P1", "OP1", cards[5:], START + timedelta(days=44, hours=22, minutes=30), 30)
    leads = CardSkimmingDetector().run(city.context())
    assert len(leads) == 1
    lead = leads[0]
    assert lead.severity == "red"
    assert lead.institutions == ["P1", "P3"]
    assert lead.evidence == sorted(ids1 + ids2 + ids3)
    assert lead.features["co_swiped_cards"] == 15
    assert lead.features["episodes"] == 3


def test_skimming_in_small_night_runs_is_found_per_operator() -> None:
    rng = np.random.default_rng(5)
    city = City()
    city.background("P1", "310101", ["OP1", "OP2"], 12, 60, rng)
    cards = far_cards(city, 24)
    ids = []
    for k in range(8):  # eight nights, three cards each: never a burst of min_cards
        ids += skim(city, "P1", "OP1", cards[3 * k:3 * k + 3], START + timedelta(days=5 + 7 * k, hours=23), 20)
    leads = CardSkimmingDetector().run(city.context())
    assert len(leads) == 1
    lead = leads[0]
    assert lead.features["pathway"] == "stranger_runs"
    assert lead.severity in {"red", "orange"}
    assert lead.evidence == sorted(ids)
    assert lead.features["operators"] == ["P1|OP1"]


def test_invalid_parameter_raises_detector_error() -> None:
    with pytest.raises(DetectorError, match="min_cards"):
        CardSkimmingDetector(min_cards=1).run(make_context([]))


def test_empty_store_gives_no_leads() -> None:
    assert CardSkimmingDetector().run(make_context([])) == []


def test_planted_skimming_on_small_city(small_claims_workspace: Path, small_city_dir: Path) -> None:
    leads, result = planted_quality(small_claims_workspace, small_city_dir, CardSkimmingDetector())
    assert_quality_floor(result, "card_skimming", ("busy_pharmacy", "chronic_refill", "family"))
    assert all(ld.explanation_zh and ld.explanation_en and ld.evidence for ld in leads)


def test_planted_skimming_on_20k_city(claims_20k_workspace: Path, city_20k_dir: Path) -> None:
    _, result = planted_quality(claims_20k_workspace, city_20k_dir, CardSkimmingDetector())
    assert_quality_floor(result, "card_skimming", ("busy_pharmacy", "chronic_refill", "family"))
