"""Provenance frozen on each lead: detector version and parameter hash, batches, and the lead as first raised."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from fraudnet.claims.leads import LeadStore, detector_provenance
from fraudnet.detectors.base import Lead

KIND = "rule:over_standard_price"


def _lead(score: float, explanation: str = "charged above the ceiling on 12 visits", amount: float = 5000.0) -> Lead:
    return Lead(kind=KIND, score=score, persons=["P1"], practitioners=["D1"], institutions=["H1"],
                evidence=["V1", "V2", "V3"], amount_at_risk=amount, period_start=datetime(2025, 3, 1),
                period_end=datetime(2025, 4, 1), explanation_zh="超标准收费 12 次", explanation_en=explanation,
                features={"visits": 12})


def _store() -> LeadStore:
    con = duckdb.connect()
    con.execute("CREATE TABLE ingest_batches (batch_id BIGINT, status VARCHAR)")
    con.execute("INSERT INTO ingest_batches VALUES (3, 'loaded'), (4, 'loaded'), (9, 'failed')")
    return LeadStore(con)


def test_each_lead_stores_detector_version_params_and_batches() -> None:
    store = _store()
    store.save_run([_lead(0.85)], [KIND])
    lead = store.all_leads()[0]
    got = store.get(lead["lead_id"])
    prov = detector_provenance(KIND)
    assert prov["version"] and len(prov["param_hash"]) == 12
    assert got["detector_version"] == prov["version"] and got["param_hash"] == prov["param_hash"]
    assert (got["batch_from"], got["batch_to"]) == (3, 4)  # loaded batches only
    raised = got["raised"]
    assert raised["detector"] == KIND and raised["score"] == 0.85 and raised["severity"] == "red"
    assert raised["explanation_en"] == "charged above the ceiling on 12 visits" and raised["features"] == {"visits": 12}
    assert got["provenance_en"].startswith(f"raised {str(raised['at'])[:10]} by {KIND} {prov['version']}")
    assert "now: score 0.85" in got["provenance_en"] and "提出" in got["provenance_zh"]


def test_a_later_run_updates_the_live_score_and_keeps_the_original() -> None:
    store = _store()
    store.save_run([_lead(0.85)], [KIND])
    lid = store.all_leads()[0]["lead_id"]
    store.save_run([_lead(0.65, "charged above the ceiling on 9 visits", 3000.0)], [KIND])
    got = store.get(lid)
    assert got["score"] == 0.65 and got["severity"] == "orange" and got["amount_at_risk"] == 3000.0
    assert got["raised"]["score"] == 0.85 and got["raised"]["amount_at_risk"] == 5000.0
    assert got["raised"]["explanation_en"] == "charged above the ceiling on 12 visits"
    assert "raised" in got["provenance_en"] and "now: score 0.65 (orange)" in got["provenance_en"]
    # A new lead: nothing to report in its history but the creation.
    assert [h["action"] for h in got["history"]] == ["created"]


def test_a_lead_under_review_or_decided_is_never_silently_rewritten() -> None:
    store = _store()
    store.save_run([_lead(0.85)], [KIND])
    lid = store.all_leads()[0]["lead_id"]
    store.set_status(lid, "reviewing", "alice")
    store.save_run([_lead(0.85)], [KIND])  # same figures: nothing to say
    assert [h["action"] for h in store.get(lid)["history"]] == ["created", "status"]
    store.save_run([_lead(0.62, "charged above the ceiling on 8 visits", 2500.0)], [KIND])
    got = store.get(lid)
    rescored = [h for h in got["history"] if h["action"] == "rescored"]
    assert len(rescored) == 1 and "0.850 → 0.620" in rescored[0]["comment"]
    assert "explanation changed" in rescored[0]["comment"] and got["status"] == "reviewing"
    assert got["raised"]["score"] == 0.85 and got["raised"]["explanation_en"].endswith("12 visits")


def test_older_workspace_gains_the_provenance_columns() -> None:
    con = duckdb.connect()
    con.execute("""CREATE TABLE leads (
        lead_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, severity VARCHAR NOT NULL, score DOUBLE NOT NULL,
        persons VARCHAR[], practitioners VARCHAR[], institutions VARCHAR[], evidence VARCHAR[],
        evidence_count INTEGER, amount_at_risk DOUBLE, period_start TIMESTAMP, period_end TIMESTAMP,
        explanation_zh VARCHAR, explanation_en VARCHAR, features VARCHAR,
        status VARCHAR NOT NULL DEFAULT 'new', assignee VARCHAR, active BOOLEAN NOT NULL DEFAULT TRUE,
        supersedes VARCHAR[], first_seen TIMESTAMP, last_seen TIMESTAMP, retired_at TIMESTAMP, run_id VARCHAR)""")
    con.execute("INSERT INTO leads (lead_id, kind, severity, score, evidence, status) "
                "VALUES ('LOLD', 'rule:over_standard_price', 'red', 0.9, ['V9'], 'confirmed')")
    store = LeadStore(con)
    cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'leads'").fetchall()}
    assert {"raised", "detector_version", "param_hash", "batch_from", "model_probability"} <= cols
    old = store.get("LOLD")
    assert old["raised"] is None and old["provenance_en"] == "" and old["status"] == "confirmed"
    # Re-produced by a run: the old lead gets a snapshot from then on, and keeps its decision.
    lead = _lead(0.9)
    lead.evidence, lead.lead_id = ["V9"], "LOLD"
    store.save_run([lead], [KIND])
    got = store.get("LOLD")
    assert got["status"] == "confirmed" and got["raised"]["score"] == 0.9
    assert json.loads(con.execute("SELECT raised FROM leads WHERE lead_id = 'LOLD'").fetchone()[0])["detector"] == KIND


def test_queue_sorts_by_expected_recovery() -> None:
    store = _store()
    a, b = _lead(0.9), _lead(0.7)
    b.evidence, b.lead_id = ["V7"], ""
    b.__post_init__()
    store.save_run([a, b], [KIND])
    ids = [r["lead_id"] for r in store.all_leads()]
    store.con.execute("UPDATE leads SET expected_recovery = CASE WHEN lead_id = $a THEN 10 ELSE 900 END",
                      {"a": ids[0]})
    rows, _ = store.list(sort="-expected_recovery")
    assert [r["lead_id"] for r in rows] == [ids[1], ids[0]] and rows[0]["expected_recovery"] == 900


def test_api_lead_shows_raised_and_now_and_labels_are_listed(api_handbuilt: Any) -> None:
    from fastapi.testclient import TestClient

    from fraudnet.api.app import create_app
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.config import Settings
    from fraudnet.learning.labels import import_labels

    ws = api_handbuilt
    labels = ws.path / "outcomes.csv"
    labels.write_text("实体类型,编号,结论,日期,来源\n机构,H01,违规,2025-03-02,飞行检查\n", encoding="utf-8")
    with ClaimsStore.open(ws.path) as store:
        import_labels(store.con, labels, user="alice")
        lead = LeadStore(store.con).get(ws.lead_id)
        kind = lead["kind"]
        # The stored hand-built lead is re-produced by a later run with a lower score.
        again = Lead(kind=kind, score=0.5, persons=lead["persons"], practitioners=lead["practitioners"],
                     institutions=lead["institutions"], evidence=lead["evidence"], amount_at_risk=1.0,
                     period_start=lead["period_start"], period_end=lead["period_end"], explanation_zh="新",
                     explanation_en="now weaker")
        LeadStore(store.con).save_run([again], [kind], retire=False)
    with TestClient(create_app(Settings(workspace=ws.path))) as client:
        r = client.get(f"/api/leads/{ws.lead_id}", headers=ws.headers("investigator"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["raised"]["score"] == lead["raised"]["score"] != 0.5 and body["score"] == 0.5
        assert body["provenance_en"].startswith("raised ") and "now: score 0.50" in body["provenance_en"]
        assert body["raised"]["detector"] == kind and body["detector_version"]
        r = client.get("/api/labels", headers=ws.headers("viewer"))
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["total"] == 1 and got["items"][0]["entity_id"] == "H01" and got["counts"] == {"Institution:fraud": 1}
        assert client.get("/api/labels").status_code == 401
        r = client.get("/api/model/versions", headers=ws.headers("viewer"))
        assert r.status_code == 200 and r.json() == []
