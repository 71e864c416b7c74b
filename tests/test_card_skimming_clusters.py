"""Card-skimming clusters through the engine's components step: the same clusters as the co-swipe graph on the
driver gave (random episodes), and a chain of pharmacies joined by shared cards is one lead."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from fraudnet.detectors.card_skimming import CardSkimmingDetector
from fraudnet.detectors.context import ClaimsContext
from fraudnet.graph.projection import card_coswipe_graph
from tests.test_detector_card_skimming import START, City, far_cards, skim

__all__ = ["chain_city", "random_bursts", "reference_clusters"]


def random_bursts(seed: int, episodes: int = 40, ops: int = 6, cards: int = 30) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                         set[str]]:
    """Burst visits (the columns of the detector's burst table), candidate episodes with evidence, basket visits."""
    rng = np.random.default_rng(seed)
    op_names = [f"P{i % 3}|O{i}" for i in range(ops)]
    rows, cand = [], []
    n = 0
    for e in range(1, episodes + 1):
        op = op_names[int(rng.integers(ops))]
        at = datetime(2025, 3, 1) + timedelta(days=int(rng.integers(60)), hours=int(rng.integers(24)))
        for i in range(int(rng.integers(3, 13))):
            n += 1
            psn = f"C{int(rng.integers(cards)):03d}"  # the same card twice in an episode happens
            rows.append({"mdtrt_id": f"M{n:05d}", "psn_no": psn, "fixmedins_code": op.split("|")[0],
                         "opter_id": op.split("|")[1], "op": op, "episode": e, "begntime": at + timedelta(minutes=i),
                         "fund_pay_sumamt": 100.0, "household": psn, "far_stranger": bool(rng.random() < 0.5),
                         "off": bool(rng.random() < 0.4)})
        ev = rng.uniform(0, 4, size=4)
        cand.append({"episode": e, "op": op, "fixmedins_code": op.split("|")[0], "ev_burst": ev[0], "ev_far": ev[1],
                     "ev_off": ev[2], "ev_basket": ev[3], "evidence_total": float(ev.sum())})
    bursts = pd.DataFrame(rows)
    basket = set(bursts["mdtrt_id"].sample(frac=0.3, random_state=seed))
    return bursts, pd.DataFrame(cand).set_index("episode"), basket


def reference_clusters(det: CardSkimmingDetector, bursts: pd.DataFrame, cand: pd.DataFrame) -> list[tuple[list[int],
                                                                                                          int]]:
    """The clusters as the detector found them before the components step: the co-swipe graph of the skimmed
    cards (plus `min_shared_cards` pseudo-cards per operator for its strong episodes), built in pandas/igraph."""
    skim = det._skimmed(bursts.sort_values(["episode", "begntime", "mdtrt_id"]), cand)
    strong = set(cand.index[det._strong(cand)])
    k = int(det.min_shared_cards)
    same_op = cand[cand.index.isin(strong)]
    swipes = pd.concat([
        pd.DataFrame({"point": skim["episode"].astype(str), "psn_no": skim["psn_no"]}),
        pd.DataFrame({"point": np.repeat(same_op.index.astype(str).to_numpy(), k),
                      "psn_no": [f"\x00op:{o}:{i}" for o in same_op["op"] for i in range(k)]}),
    ], ignore_index=True)
    graph = card_coswipe_graph(swipes, min_shared=k)
    out = []
    for comp in graph.connected_components():
        names = [graph.vs[i]["name"] for i in comp]
        if {str(e) for e in strong}.intersection(names):
            shared = int(sum(graph.es.select(_within=comp)["shared"])) if len(comp) > 1 else 0
            out.append(([int(x) for x in names], shared))
    return out


def clusters_on(context: ClaimsContext, det: CardSkimmingDetector, cand: pd.DataFrame,
                basket: set[str]) -> list[tuple[list[int], int]]:
    det._basket_visits_ = set(basket)
    try:
        return det._cluster_members(context, cand)
    finally:
        context.close_run()


def duckdb_context(bursts: pd.DataFrame) -> ClaimsContext:
    con = duckdb.connect()
    con.execute("CREATE TABLE visit_fact AS SELECT TIMESTAMP '2025-05-01' AS begntime")
    con.execute(f"CREATE TABLE {CardSkimmingDetector._TEMP} AS SELECT * FROM bursts")
    return ClaimsContext(con)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("min_shared", [2, 3])
def test_components_step_gives_the_co_swipe_graph_clusters(seed: int, min_shared: int) -> None:
    """Random episodes (repeated cards, every signal mix, basket visits): the SQL links and the engine's
    components give the clusters, their order, the episodes' order and the card links of the igraph step."""
    bursts, cand, basket = random_bursts(seed)
    det = CardSkimmingDetector(min_shared_cards=min_shared)
    det._basket_visits_ = basket
    want = reference_clusters(det, bursts, cand)
    assert any(len(eps) > 1 for eps, _ in want)  # the cards do join episodes: a comparison with links in it
    assert clusters_on(duckdb_context(bursts), det, cand, basket) == want


def test_no_basket_visits_and_no_strong_episode() -> None:
    bursts, cand, _ = random_bursts(11)
    det = CardSkimmingDetector()
    det._basket_visits_ = set()
    assert clusters_on(duckdb_context(bursts), det, cand, set()) == reference_clusters(det, bursts, cand)
    # nothing besides the burst: no episode can anchor a cluster
    weak = cand.assign(ev_far=0.0, ev_off=0.0, ev_basket=0.0, evidence_total=cand["ev_burst"])
    assert clusters_on(duckdb_context(bursts), det, weak, set()) == [] == reference_clusters(det, bursts, weak)


def chain_city(opters: tuple[str, str, str] = ("OP1", "OPB", "OP9")) -> tuple[City, list[str]]:
    """Three pharmacies chained by skimmed cards: P1's night burst shares 10 cards with P2's, P2's shares 10 other
    cards with P3's; P1 and P3 share none. Returns the city and the skimmed visits."""
    rng = np.random.default_rng(7)
    city = City()
    city.background("P1", "310101", [opters[0], "OP2"], 10, 60, rng)
    city.background("P2", "310104", [opters[1]], 10, 60, rng)
    city.background("P3", "310106", [opters[2]], 10, 60, rng)
    cards = far_cards(city, 30)
    ids = skim(city, "P1", opters[0], cards[:20], START + timedelta(days=12, hours=23), 30)
    ids += skim(city, "P2", opters[1], cards[10:20] + cards[20:], START + timedelta(days=14, hours=23), 30)
    ids += skim(city, "P3", opters[2], cards[20:], START + timedelta(days=16, hours=23), 30)
    return city, ids


def assert_chain_lead(leads: list[Any], ids: list[str], opters: tuple[str, str, str]) -> None:
    assert len(leads) == 1
    lead = leads[0]
    assert lead.institutions == ["P1", "P2", "P3"]
    assert lead.evidence == sorted(ids)
    assert lead.features["episodes"] == 3
    assert lead.features["co_swiped_cards"] == 20
    assert lead.features["card_links"] == 20  # 10 + 10 shared cards; P1 and P3 are not linked
    assert sorted(lead.features["operators"]) == sorted(f"{p}|{o}" for p, o in zip(("P1", "P2", "P3"), opters,
                                                                                     strict=True))


def test_a_chain_of_pharmacies_through_shared_cards_is_one_cluster() -> None:
    city, ids = chain_city()
    assert_chain_lead(CardSkimmingDetector().run(city.context()), ids, ("OP1", "OPB", "OP9"))
