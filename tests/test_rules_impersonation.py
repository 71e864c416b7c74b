"""Impersonation rule: one card at two places too far apart for the time between them, grouped per person."""

from __future__ import annotations

from datetime import timedelta

from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.rules import RULE_DETECTORS, RULES
from fraudnet.detectors.rules.impersonation import ImpersonationDetector
from tests.rules_tables import T0, ClaimsBuilder


def _city() -> ClaimsBuilder:
    b = ClaimsBuilder()
    for i in range(30):  # ordinary card holders: the chance baseline (times kept to the second)
        p = b.person(f"BG{i}")
        for k in range(6):
            b.visit(p, "WEST" if k % 2 else "EAST",
                    T0 + timedelta(days=7 * k + i % 5, hours=k, minutes=(7 * i) % 60, seconds=1 + (13 * k) % 59))
    b.institution("WEST", lnt=121.20, lat=31.20)  # ~76 km from EAST
    b.institution("EAST", lnt=122.00, lat=31.20)
    b.institution("NEXT", ftype="2", lnt=121.201, lat=31.201)  # pharmacy next door to WEST
    b.institution("BJ", admdvs="110101", lnt=None, lat=None)  # another city, no coordinates
    return b


def test_repeated_impossible_travel_is_red_for_the_person() -> None:
    b = _city()
    p = b.person("CARD")
    pairs = []
    for k in range(3):  # three times: WEST then EAST 20 minutes later (228 km/h needed)
        t = T0 + timedelta(days=30 * k)
        pairs += [b.visit(p, "WEST", t), b.visit(p, "EAST", t + timedelta(minutes=20))]
    b.visit(p, "WEST", T0 + timedelta(days=100))  # an ordinary later visit is not evidence
    leads = ImpersonationDetector().run(ClaimsContext(b.build()))
    assert len(leads) == 1
    lead = leads[0]
    assert lead.kind == "rule:impersonation"
    assert lead.persons == ["CARD"]
    assert sorted(lead.evidence) == sorted(pairs)
    assert lead.severity == "red"
    assert lead.features["impossible_pairs"] == 3  # W→E three times; E→W weeks later is possible
    assert set(lead.institutions) == {"EAST", "WEST"}


def test_single_trip_is_orange_certain_evidence_and_plausible_trips_are_ignored() -> None:
    b = _city()
    one = b.person("ONE")
    pair = [b.visit(one, "WEST", T0), b.visit(one, "EAST", T0 + timedelta(minutes=15))]
    ok = b.person("OK")
    b.visit(ok, "WEST", T0)
    b.visit(ok, "NEXT", T0 + timedelta(minutes=1))  # pharmacy next door: too close to judge
    b.visit(ok, "EAST", T0 + timedelta(hours=2))  # 76 km in 2 hours: fine
    city = b.person("CITY")
    other_city = [b.visit(city, "WEST", T0), b.visit(city, "BJ", T0 + timedelta(minutes=30))]
    leads = {lead.persons[0]: lead for lead in ImpersonationDetector().run(ClaimsContext(b.build()))}
    assert set(leads) == {"ONE", "CITY"}
    assert leads["ONE"].severity == "orange"  # impossible, not unlikely: one event is orange (issue 12)
    assert "76.1 km" in leads["ONE"].explanation_en and "15 minutes" in leads["ONE"].explanation_en
    assert sorted(leads["ONE"].evidence) == sorted(pair)
    assert sorted(leads["CITY"].evidence) == sorted(other_city)
    assert leads["CITY"].severity == "orange"
    assert "different cities" in leads["CITY"].explanation_en


def test_rule_catalogue_covers_every_rule_detector() -> None:
    assert {r.kind for r in RULES} == set(RULE_DETECTORS)
    for rule in RULES:
        assert rule.name_zh and rule.name_en and rule.threshold and rule.source
        assert RULE_DETECTORS[rule.kind]().kind == rule.kind
