"""Hostile ids in card skimming's cluster step: operator ids with quotes, a pipe or `\\N` keep their chain of
pharmacies; card numbers that imitate the operator key join nothing (the links are made in SQL, with no
pseudo-cards a card number could collide with)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from fraudnet.detectors.card_skimming import CardSkimmingDetector
from tests.test_card_skimming_clusters import assert_chain_lead, chain_city
from tests.test_detector_card_skimming import START, City, far_cards, skim


@pytest.mark.parametrize("opters", [("O'1; DROP TABLE visit_fact;--", "收费员|二", "\\N"),
                                    ("$k", "?", "' OR '1'='1")])
def test_hostile_operator_ids_keep_the_chain_of_pharmacies(opters: tuple[str, str, str]) -> None:
    city, ids = chain_city(opters)
    assert_chain_lead(CardSkimmingDetector().run(city.context()), ids, opters)


def test_card_numbers_imitating_an_operator_key_join_nothing() -> None:
    """P1's night burst includes cards named like P2's operator key with a counter; P2 skims other cards the
    next night. The two bursts share no card: two leads, one pharmacy each, no card links."""
    rng = np.random.default_rng(9)
    city = City()
    city.background("P1", "310101", ["OP1", "OP2"], 10, 60, rng)
    city.background("P2", "310104", ["OPB"], 10, 60, rng)
    fake = [city.person(f"\x00op:P2|OPB:{i}", "310115") for i in range(3)]
    ids1 = skim(city, "P1", "OP1", far_cards(city, 17, "F") + fake, START + timedelta(days=12, hours=23), 30)
    ids2 = skim(city, "P2", "OPB", far_cards(city, 20, "G"), START + timedelta(days=13, hours=23), 30)
    leads = CardSkimmingDetector().run(city.context())
    assert sorted((ld.institutions, sorted(ld.evidence)) for ld in leads) == [(["P1"], sorted(ids1)),
                                                                              (["P2"], sorted(ids2))]
    assert all(ld.features["card_links"] == 0 and ld.features["episodes"] == 1 for ld in leads)
