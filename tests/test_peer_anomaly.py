"""Peer anomalies: an outlier among look-alike peers is found with the features that drove it; size alone is not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.peer_anomaly import PeerAnomalyDetector
from fraudnet.errors import DetectorError
from tests.rules_tables import T0, ClaimsBuilder

MIDNIGHT = T0.replace(hour=0)


def _clinic(b: ClaimsBuilder, code: str, visits: int, i0: int, *, fund: float = 150.0, night: bool = False,
            far: bool = False, doctor: str | None = None) -> None:
    b.institution(code, admdvs="310101")
    for k in range(visits):
        psn = b.person(f"{code}P{k:04d}", admdvs="310115" if far else "310101")
        hour = 2 if night else 9 + (k % 8)
        fee = fund * (1 + 0.1 * ((k * 7 + i0) % 5) / 5)
        b.visit(psn, code, MIDNIGHT + timedelta(days=k % 300, hours=hour), fund=fee, doctor=doctor or f"D{code}")


def _peers() -> ClaimsBuilder:
    b = ClaimsBuilder()
    for i in range(20):  # twenty ordinary outpatient clinics of one district
        _clinic(b, f"C{i:02d}", 60 + 3 * i, i, fund=140 + 3 * i)
    return b


def test_outlier_clinic_is_flagged_with_its_top_features_and_peer_medians() -> None:
    b = _peers()
    _clinic(b, "ODD", 80, 0, fund=1500.0, night=True, far=True)  # 10× fund, all at 2 am, far patients
    _clinic(b, "BIG", 900, 3, fund=150.0)  # a big but otherwise ordinary clinic
    leads = PeerAnomalyDetector(entity_type="institution").run(ClaimsContext(b.build()))
    by_inst = {lead.institutions[0]: lead for lead in leads}
    assert "ODD" in by_inst and "BIG" not in by_inst
    odd = by_inst["ODD"]
    assert odd.kind == "anomaly:institution"
    assert odd.severity == "red"
    top = {f["feature"] for f in odd.features["top_features"]}
    assert {"fund_per_visit", "off_hours_share", "far_patient_share"} <= top
    assert odd.features["values"]["off_hours_share"] == pytest.approx(1.0)
    assert odd.features["peer_medians"]["off_hours_share"] == pytest.approx(0.0)
    assert odd.features["peers"] >= 20
    assert "同类中位数" in odd.explanation_zh and "peer median" in odd.explanation_en
    assert 0 < len(odd.evidence) <= 200
    assert all(e.startswith("M") for e in odd.evidence)
    assert all(lead.severity != "red" for code, lead in by_inst.items() if code != "ODD")


def test_one_odd_feature_alone_is_not_red_and_results_are_seeded() -> None:
    b = _peers()
    _clinic(b, "NIGHT", 80, 0, night=True)  # a night clinic: odd hours only
    con = b.build()
    first = PeerAnomalyDetector(entity_type="institution", seed=3).run(ClaimsContext(con))
    again = PeerAnomalyDetector(entity_type="institution", seed=3).run(ClaimsContext(con))
    assert [(lead.lead_id, lead.score) for lead in first] == [(lead.lead_id, lead.score) for lead in again]
    assert all(lead.severity != "red" for lead in first)


def test_practitioner_anomaly_names_the_practitioner() -> None:
    b = ClaimsBuilder()
    b.institution("H1")
    for d in range(15):
        for k in range(40 + d):
            b.visit(b.person(f"P{d}_{k}"), "H1", MIDNIGHT + timedelta(days=k, hours=9 + k % 7), fund=150 + d,
                    doctor=f"D{d:012d}")
    for k in range(50):  # one doctor: 12× fund per visit, mostly at night
        b.visit(b.person(f"X{k}"), "H1", MIDNIGHT + timedelta(days=k, hours=23), fund=1800, doctor="DODD00000001")
    leads = PeerAnomalyDetector(entity_type="practitioner").run(ClaimsContext(b.build()))
    assert [lead.practitioners for lead in leads if lead.severity in ("red", "orange")] == [["DODD00000001"]]


def test_invalid_entity_type_is_rejected() -> None:
    with pytest.raises(DetectorError, match="entity_type"):
        PeerAnomalyDetector(entity_type="drug").run(ClaimsContext(_peers().build()))


def test_a_practitioner_without_department_peers_stays_a_screening_signal() -> None:
    """A specialist alone in their department is compared with other departments' doctors: the deviation may be
    the specialty's case mix (dialysis, oncology), so it stays yellow and says why; within a department it warns."""
    def city(odd_dept: str) -> list:
        b = ClaimsBuilder()
        b.institution("H1")
        for d in range(15):
            for k in range(40 + d):
                b.visit(b.person(f"P{d}_{k}"), "H1", MIDNIGHT + timedelta(days=k, hours=9 + k % 7), fund=150 + d,
                        doctor=f"D{d:012d}")
        for k in range(50):
            b.visit(b.person(f"X{k}"), "H1", MIDNIGHT + timedelta(days=k, hours=23), fund=1800, doctor="DODD00000001")
        con = b.build()
        con.execute("ALTER TABLE visit_fact ADD COLUMN dept_code VARCHAR")
        con.execute("UPDATE visit_fact SET dept_code = CASE WHEN atddr_no = 'DODD00000001' THEN ? ELSE 'A03' END",
                    [odd_dept])
        return PeerAnomalyDetector(entity_type="practitioner").run(ClaimsContext(con))

    alone = [lead for lead in city("A16") if lead.practitioners == ["DODD00000001"]]
    assert alone and alone[0].severity == "yellow"
    assert alone[0].features["tier_driver"] == "capped: no department peers"
    assert "department" in alone[0].explanation_en and "科室" in alone[0].explanation_zh
    within = [lead for lead in city("A03") if lead.practitioners == ["DODD00000001"]]
    assert within and within[0].severity in ("orange", "red")
