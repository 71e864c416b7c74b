"""Least privilege by region and case: a district investigator cannot reach another district's data by any endpoint.

The hand-built data set of `tests/graph_handbuilt.py`, re-drawn over two districts:
A = 110105 (hospital H001, pharmacy P001, practitioners D001/D003, persons P01 and P03) and
B = 110108 (clinic H002, practitioner D002, persons P02, P04, P05). P01 (A) and P02 (B) were admitted together
at H001 twice and share a phone, so P01's ego network crosses the border. Leads: LA (A only), LB (B only) and LX,
the cross-border ring P01 + P02 at H001.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.claims.tokens import TokenStore
from fraudnet.config import Settings
from fraudnet.detectors.base import Lead

A, B = "110105", "110108"
B_PERSONS = {"P02": "李四", "P04": "赵六", "P05": "孙七"}
B_OTHERS = ("H002", "D002", "康宁诊所", "吴医生")


def _tables() -> dict[str, list[dict[str, str]]]:
    from tests.graph_handbuilt import TABLES

    tables = copy.deepcopy(TABLES)
    for row in tables["psn_info"]:
        district = B if row["psn_no"] in B_PERSONS else A
        row["insuplc_admdvs"] = row["live_admdvs"] = district
    for row in tables["medins_info"]:
        row["admdvs"] = B if row["fixmedins_code"] == "H002" else A
    return tables


def _leads(con: object) -> dict[str, Lead]:
    from tests.fixtures.server import handbuilt_lead

    cross = handbuilt_lead(con)  # P01 + P02 at H001 by D001
    cross.explanation_en = "P01 and P02 admitted together on 2 days at H001"
    cross.features = {"days": 2, "pair": ["P01", "P02"]}
    only_a = Lead(kind="rule:overlapping_stays", score=0.7, persons=["P01"], practitioners=[], institutions=["H001"],
                  evidence=["V01", "V03"], amount_at_risk=1800.0, period_start=datetime(2024, 1, 10),
                  period_end=datetime(2024, 3, 8), explanation_zh="P01 在H001", explanation_en="P01 at H001")
    only_b = Lead(kind="rule:overlapping_stays", score=0.65, persons=["P04"], practitioners=["D002"],
                  institutions=["H002"], evidence=["V07"], amount_at_risk=80.0, period_start=datetime(2024, 2, 2),
                  period_end=datetime(2024, 2, 2), explanation_zh="P04 在H002", explanation_en="P04 at H002")
    return {"LA": only_a, "LB": only_b, "LX": cross}


class Ws:
    def __init__(self, path: Path, tokens: dict[str, str], leads: dict[str, str]) -> None:
        self.path, self.tokens, self.leads = path, tokens, leads

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Ws:
    from fraudnet.claims.audit import ensure_tables
    from fraudnet.claims.leads import LeadStore
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.ingest.pipeline import ingest_folder

    base = tmp_path_factory.mktemp("scope")
    folder = base / "input"
    folder.mkdir()
    for name, rows in _tables().items():
        with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    path = base / "ws"
    with ClaimsStore.open(path) as store:
        assert ingest_folder(folder, store).ok
        ensure_tables(store.con)
        leads = _leads(store.con)
        LeadStore(store.con).save_run(list(leads.values()), ["collusion_ring", "rule:overlapping_stays"])
    ids = {name: lead.lead_id for name, lead in leads.items()}
    tokens = TokenStore(path)
    return Ws(path, {
        "district_a": tokens.create("inv_a", "investigator", regions=[A]),
        "city": tokens.create("inv_city", "investigator", regions=["1101"]),
        "police": tokens.create("police1", "viewer", cases=[ids["LB"]]),
        "all": tokens.create("inv_all", "investigator"),
        "scoped_admin": tokens.create("adm_a", "admin", regions=[A]),
        "admin": tokens.create("adm", "admin"),
    }, ids)


@pytest.fixture(scope="module")
def client(ws: Ws) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=ws.path, graph_workers=0))) as c:
        yield c


def _no_b_data(text: str) -> None:
    """Nothing of district B: no person key or name, no institution or practitioner key or name."""
    for key, name in B_PERSONS.items():
        assert key not in text and name not in text, (key, text[:500])
    for value in B_OTHERS:
        assert value not in text, (value, text[:500])


# ------------------------------------------------------------------------------------------------ leads
def test_district_lead_list_has_only_its_leads_with_the_other_side_masked(client: TestClient, ws: Ws) -> None:
    r = client.get("/api/leads", headers=ws.h("district_a"))
    assert r.status_code == 200
    body = r.json()
    assert {i["lead_id"] for i in body["items"]} == {ws.leads["LA"], ws.leads["LX"]} and body["total"] == 2
    cross = next(i for i in body["items"] if i["lead_id"] == ws.leads["LX"])
    assert cross["persons"][0] == "P01" and cross["persons"][1].startswith("Outside:")
    assert cross["institutions"] == ["H001"] and cross["practitioners"] == ["D001"]
    _no_b_data(r.text)
    # Filtering by the outside member must not single out the cross-border lead that names it.
    for flt in ("person=P02", "institution=H002", "practitioner=D002"):
        assert client.get(f"/api/leads?{flt}", headers=ws.h("district_a")).json()["total"] == 0, flt
        assert client.get(f"/api/exports/leads?format=jsonl&{flt}", headers=ws.h("district_a")).text == ""
    assert client.get("/api/leads?person=P02", headers=ws.h("all")).json()["total"] == 1
    assert client.get("/api/me", headers=ws.h("district_a")).json()["scope"] == {"regions": [A], "cases": []}
    assert "scope" not in client.get("/api/me", headers=ws.h("all")).json()
    kinds = client.get("/api/leads/kinds", headers=ws.h("district_a")).json()
    assert sum(k["count"] for k in kinds) == 2
    # The whole workspace is the default: an unscoped token sees all three (regression).
    every = client.get("/api/leads", headers=ws.h("all")).json()
    assert {i["lead_id"] for i in every["items"]} == set(ws.leads.values())
    assert next(i for i in every["items"] if i["lead_id"] == ws.leads["LX"])["persons"] == ["P01", "P02"]


def test_cross_border_lead_detail_masks_members_evidence_and_text(client: TestClient, ws: Ws) -> None:
    r = client.get(f"/api/leads/{ws.leads['LX']}", headers=ws.h("district_a"))
    assert r.status_code == 200
    lead = r.json()
    token = lead["persons"][1]
    assert token.startswith("Outside:") and token in lead["explanation_en"]
    assert lead["features"]["pair"] == ["P01", token]
    # Evidence at H001 (district A's hospital) is A's business, whoever the patient: all four visits stay,
    # but the B patient's number is replaced by the token.
    assert len(lead["evidence_visits"]) == 4
    assert {v["psn_no"] for v in lead["evidence_visits"]} == {"P01", token}
    _no_b_data(r.text)
    # The ego network shows the same opaque token for P02 as the lead does.
    ego = client.get("/api/graph/ego/Person:P01", headers=ws.h("district_a")).json()
    assert token in {n["id"] for n in ego["nodes"]}


def test_other_districts_lead_is_404_for_read_change_graph_and_export(client: TestClient, ws: Ws) -> None:
    lb = ws.leads["LB"]
    h = ws.h("district_a")
    missing = client.get("/api/leads/LNOSUCHLEAD", headers=h)
    for method, path, body in (("get", f"/api/leads/{lb}", None), ("get", f"/api/leads/{lb}/graph", None),
                               ("post", f"/api/leads/{lb}/status", {"status": "reviewing"}),
                               ("post", f"/api/leads/{lb}/notes", {"text": "x"}),
                               ("post", f"/api/leads/{lb}/assign", {"assignee": "inv_a"}),
                               ("get", f"/api/exports/subgraph?lead_id={lb}", None)):
        r = client.request(method, path, headers=h, json=body)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["message"] == missing.json()["message"].replace("LNOSUCHLEAD", lb)
        _no_b_data(r.text.replace(lb, ""))
    assert client.get(f"/api/leads/{lb}", headers=ws.h("all")).json()["status"] == "new"  # nothing changed


# ------------------------------------------------------------------------------------------------ entities
@pytest.mark.parametrize("node", ["Person:P02", "Person:P04", "Institution:H002", "Practitioner:D002"])
def test_other_districts_entity_is_404_like_a_missing_one(client: TestClient, ws: Ws, node: str) -> None:
    h = ws.h("district_a")
    node_type = node.partition(":")[0]
    for suffix in ("", "/timeline", "/leads"):
        r = client.get(f"/api/entities/{node}{suffix}", headers=h)
        missing = client.get(f"/api/entities/{node_type}:NOSUCH{suffix}", headers=h)
        assert r.status_code == missing.status_code == 404, (suffix, r.text)
        assert r.json()["message"] == missing.json()["message"].replace("NOSUCH", node.partition(":")[2])
    for path in (f"/api/graph/ego/{node}", f"/api/graph/paths?source=Person:P01&target={node}",
                 f"/api/graph/paths?source={node}&target=Person:P01"):
        assert client.get(path, headers=h).status_code == 404, path
    for path in ("/api/graph/subgraph", "/api/exports/subgraph"):
        r = client.post(path, headers=h, json={"node_ids": ["Person:P01", node]})
        assert r.status_code == 404, (path, r.text)
    assert client.get(f"/api/entities/{node}", headers=ws.h("all")).status_code == 200
    assert client.get(f"/api/entities/{node}", headers=ws.h("city")).status_code == 200  # 1101 covers both


def test_own_persons_profile_and_timeline_keep_only_in_scope_visits(client: TestClient, ws: Ws) -> None:
    h = ws.h("district_a")
    assert client.get("/api/entities/Person:P01", headers=h).status_code == 200
    # H001 is A's hospital: its timeline lists every visit there (B's patient P02 included, visit by visit).
    r = client.get("/api/entities/Institution:H001/timeline", headers=h)
    assert r.status_code == 200 and len(r.json()["items"]) == 5
    assert {e["psn_no"] for e in r.json()["items"]} == {"P01", "P03", outside_token(r.json(), "P01", "P03")}
    _no_b_data(r.text)
    # P03 (A) visited H002 (B): the person's own visit is visible, the clinic and its doctor are not.
    r = client.get("/api/entities/Person:P03/timeline", headers=h)
    t = r.json()["items"]
    assert {e["mdtrt_id"] for e in t} == {"V05", "V06"}
    assert next(e for e in t if e["mdtrt_id"] == "V06")["fixmedins_code"].startswith("Outside:")
    _no_b_data(r.text)
    # The shared phone of P01 (A) and P02 (B) is in scope through P01; its profile lists P01 only.
    phone = next(n["id"] for n in client.get("/api/graph/ego/Person:P01", headers=h).json()["nodes"]
                 if n["type"] == "Phone")
    prof = client.get(f"/api/entities/{phone}", headers=h).json()["profile"]
    assert prof["stats"]["person_keys"] == ["P01"]


def outside_token(body: dict, *inside: str) -> str:
    """The one psn_no of a timeline that is not one of `inside` (it must be a placeholder token)."""
    (token,) = {e["psn_no"] for e in body["items"]} - set(inside)
    assert token.startswith("Outside:")
    return token


# ------------------------------------------------------------------------------------------------ graph
def _ego_checks(body: dict) -> None:
    ids = {n["id"] for n in body["nodes"]}
    outside = [n for n in body["nodes"] if n["type"] == "Outside"]
    assert "Person:P01" in ids and "Institution:H001" in ids
    assert outside, "the co-admitted B person must show as a border node"
    for n in outside:
        assert n["id"].startswith("Outside:") and n["props"] == {} and n["risk"] is None
        assert n["label"] == "outside your scope / 超出权限范围"
    border = [e for e in body["edges"] if e["type"] == "OUTSIDE"]
    assert border and all(e["amount"] == 0 and e["props"]["edges"] >= 1 for e in border)
    # P01–P02: CO_ADMITTED collapsed into one border edge counting it.
    assert any(e["source"] == "Person:P01" and e["props"]["edges"] == 1 for e in border)
    for e in body["edges"]:
        assert not (e["source"].startswith("Outside:") and e["target"].startswith("Outside:"))
    _no_b_data(json.dumps(body, ensure_ascii=False))


def test_ego_network_crossing_the_border_shows_placeholders_only(client: TestClient, ws: Ws) -> None:
    for depth in (1, 2, 3):
        r = client.get(f"/api/graph/ego/Person:P01?depth={depth}", headers=ws.h("district_a"))
        assert r.status_code == 200
        _ego_checks(r.json())
    every = client.get("/api/graph/ego/Person:P01", headers=ws.h("all")).json()
    assert "Person:P02" in {n["id"] for n in every["nodes"]}  # unscoped: unchanged


def test_scoped_ego_is_answered_in_process_even_with_graph_workers(ws: Ws) -> None:
    with TestClient(create_app(Settings(workspace=ws.path, graph_workers=1))) as c:
        assert c.get("/api/health").json()["graph_workers"] == 1
        r = c.get("/api/graph/ego/Person:P01?depth=2", headers=ws.h("district_a"))
        assert r.status_code == 200
        _ego_checks(r.json())
        every = c.get("/api/graph/ego/Person:P01?depth=2", headers=ws.h("all")).json()
        assert "Person:P02" in {n["id"] for n in every["nodes"]}


def test_paths_inside_the_scope_mask_the_way_through_the_other_district(client: TestClient, ws: Ws) -> None:
    # P03 → P001 in 3 hops: via P01 (A) and also via H002 and P04 (B).
    q = "/api/graph/paths?source=Person:P03&target=Pharmacy:P001&max_depth=3"
    every = client.get(q, headers=ws.h("all")).json()
    assert any("Person:P04" in p["nodes"] for p in every["paths"])
    r = client.get(q, headers=ws.h("district_a"))
    assert r.status_code == 200 and len(r.json()["paths"]) == len(every["paths"])
    assert any(n.startswith("Outside:") for p in r.json()["paths"] for n in p["nodes"])
    _no_b_data(r.text)


def test_cross_border_lead_graph_keeps_only_the_visible_side(client: TestClient, ws: Ws) -> None:
    r = client.get(f"/api/leads/{ws.leads['LX']}/graph", headers=ws.h("district_a"))
    assert r.status_code == 200
    ids = {n["id"] for n in r.json()["nodes"]}
    assert {"Person:P01", "Institution:H001", "Practitioner:D001"} <= ids
    _no_b_data(r.text)


# ------------------------------------------------------------------------------------------------ search, exports
def test_search_finds_nothing_of_the_other_district(client: TestClient, ws: Ws) -> None:
    h = ws.h("district_a")
    assert {i["id"] for i in client.get("/api/search?q=P0", headers=h).json()["items"]} == {
        "Person:P01", "Person:P03", "Pharmacy:P001"}
    for q in ("P02", "李四", "H002", "康宁", "D002"):
        assert client.get("/api/search", params={"q": q}, headers=h).json()["items"] == [], q
    assert client.get("/api/search", params={"q": "李四"}, headers=ws.h("all")).json()["items"]


def test_exports_contain_nothing_of_the_other_district(client: TestClient, ws: Ws) -> None:
    h = ws.h("district_a")
    for fmt in ("csv", "jsonl"):
        r = client.get(f"/api/exports/leads?format={fmt}", headers=h)
        assert r.status_code == 200
        _no_b_data(r.content.decode("utf-8-sig"))
        assert ws.leads["LA"] in r.text and ws.leads["LB"] not in r.text
    scores = client.get("/api/exports/scores", headers=h).content.decode("utf-8-sig")
    assert "P01" in scores
    _no_b_data(scores)
    for fmt in ("graphml", "json"):
        r = client.get(f"/api/exports/subgraph?lead_id={ws.leads['LX']}&format={fmt}", headers=h)
        assert r.status_code == 200, r.text
        text = r.content.decode()
        assert "P01" in text
        _no_b_data(text)
    full = client.get(f"/api/exports/subgraph?lead_id={ws.leads['LX']}&format=json", headers=ws.h("all"))
    assert "李四" in full.content.decode()  # unscoped export unchanged


# ------------------------------------------------------------------------------------------------ case scope
def test_case_scoped_token_sees_only_its_case(client: TestClient, ws: Ws) -> None:
    h = ws.h("police")
    body = client.get("/api/leads", headers=h).json()
    assert [i["lead_id"] for i in body["items"]] == [ws.leads["LB"]]
    lead = client.get(f"/api/leads/{ws.leads['LB']}", headers=h).json()
    assert lead["persons"] == ["*04"] and lead["institutions"] == ["H002"]  # a viewer: person numbers masked
    assert client.get("/api/entities/Person:P04", headers=h).status_code == 200
    assert client.get(f"/api/leads/{ws.leads['LB']}/graph", headers=h).status_code == 200
    for node in ("Person:P01", "Person:P02", "Institution:H001"):
        assert client.get(f"/api/entities/{node}", headers=h).status_code == 404
    for name in ("LA", "LX"):
        assert client.get(f"/api/leads/{ws.leads[name]}", headers=h).status_code == 404
    assert [i["lead_id"] for i in client.get("/api/entities/Person:P04/leads", headers=h).json()["items"]] == [
        ws.leads["LB"]]


def test_scoped_tokens_cannot_use_cypher_or_read_the_audit_log(client: TestClient, ws: Ws) -> None:
    h = ws.h("scoped_admin")
    r = client.post("/api/cypher", headers=h, json={"query": "MATCH (n) RETURN n LIMIT 1"})
    assert r.status_code == 403 and "110105" in r.json()["message"]
    assert client.get("/api/audit", headers=h).status_code == 403
    assert client.get("/api/audit", headers=ws.h("all")).status_code == 403  # investigators never could
    assert client.get("/api/leads", headers=h).json()["total"] == 2  # but reads its region


def test_labels_and_model_scores_are_cut_to_the_scope(client: TestClient, ws: Ws) -> None:
    """Runs after the tests that expect every lead still new: it confirms LB (B) and LA (A)."""
    for name in ("LB", "LA"):
        for status in ("reviewing", "confirmed"):
            r = client.post(f"/api/leads/{ws.leads[name]}/status", headers=ws.h("all"), json={"status": status})
            assert r.status_code == 200, r.text
    every = {(i["entity_type"], i["entity_id"]) for i in client.get("/api/labels", headers=ws.h("all")).json()["items"]}
    assert ("Person", "P04") in every and ("Person", "P01") in every
    r = client.get("/api/labels", headers=ws.h("district_a"))
    shown = {(i["entity_type"], i["entity_id"]) for i in r.json()["items"]}
    assert ("Person", "P01") in shown and r.json()["total"] == len(shown)
    _no_b_data(r.text)
    r = client.get("/api/model/scores", headers=ws.h("district_a"))
    assert r.status_code == 200
    _no_b_data(r.text)


# ------------------------------------------------------------------------------------------------ tokens
def test_tokens_cli_stores_and_lists_the_scope_and_refuses_bad_values(tmp_path: Path) -> None:
    from fraudnet.cli import main as cli

    runner = CliRunner()
    r = runner.invoke(cli, ["-w", str(tmp_path), "tokens", "create", "-u", "inv_a", "-r", "investigator",
                            "--regions", "310101, 3101", "--cases", "L1,L2"])
    assert r.exit_code == 0, r.output
    info = TokenStore(tmp_path).verify(r.stdout.strip().splitlines()[0])
    assert info is not None and info.regions == ("3101", "310101") and info.cases == ("L1", "L2")
    listed = runner.invoke(cli, ["-w", str(tmp_path), "tokens", "list"])
    assert "regions 3101,310101" in listed.output and "cases L1,L2" in listed.output
    for bad in (["--regions", "31010"], ["--regions", "abc"], ["--cases", "L 1"]):
        r = runner.invoke(cli, ["-w", str(tmp_path), "tokens", "create", "-u", "x", "-r", "viewer", *bad])
        assert r.exit_code != 0 and ("region" in r.output or "case" in r.output), r.output


def test_older_tokens_db_gains_the_columns_and_keeps_full_access(tmp_path: Path) -> None:
    from fraudnet.claims.tokens import hash_token

    con = sqlite3.connect(tmp_path / "tokens.db")
    con.execute("""CREATE TABLE tokens (token_id TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL,
                   token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT,
                   last_used_at TEXT)""")
    old = "fn_0123abcd_" + "x" * 40
    con.execute("INSERT INTO tokens VALUES ('0123abcd', 'old', 'investigator', ?, '2026-01-01 00:00:00', NULL, "
                "NULL, NULL)", [hash_token(old)])
    con.commit()
    con.close()
    store = TokenStore(tmp_path)
    info = store.verify(old)
    assert info is not None and info.regions == () and info.cases == ()
    new = store.create("new", "viewer", regions=["31"])
    assert store.verify(new).regions == ("31",)


def test_csv_export_is_parseable_for_scoped_tokens(client: TestClient, ws: Ws) -> None:
    r = client.get("/api/exports/leads?format=csv", headers=ws.h("police"))
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["lead_id"] for row in rows] == [ws.leads["LB"]]


def test_a_person_who_moves_district_changes_scope_after_the_ingest(client: TestClient, ws: Ws,
                                                                    tmp_path: Path) -> None:
    """Last: P05 (B) moves to A by an uploaded psn_info; the scope is read again after the ingest."""
    import time

    h = ws.h("district_a")
    assert client.get("/api/entities/Person:P05", headers=h).status_code == 404
    rows = [dict(r) for r in _tables()["psn_info"] if r["psn_no"] == "P05"]
    rows[0]["live_admdvs"] = A
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    r = client.post("/api/jobs/ingest", headers=ws.h("admin"),
                    files=[("files", ("psn_info.csv", buf.getvalue().encode(), "text/csv"))])
    assert r.status_code == 202, r.text
    for _ in range(300):
        job = client.get(f"/api/jobs/{r.json()['job_id']}", headers=ws.h("admin")).json()
        if job["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert job["state"] == "succeeded", job
    assert client.get("/api/entities/Person:P05", headers=h).status_code == 200


def test_lead_chart_recipe_and_case_file_exports_keep_the_scope(client: TestClient, ws: Ws) -> None:
    """The evidence-first chart of a cross-district ring (occasion nodes, summarised links) and a case file's
    exports show nothing of the other district to a district token."""
    h = ws.h("district_a")
    r = client.get(f"/api/charts/lead/{ws.leads['LX']}", headers=h)
    assert r.status_code == 200, r.text
    _no_b_data(r.content.decode())
    state = {"nodes": [{"id": n["id"], "x": 0, "y": 0} for n in r.json()["nodes"]]}
    for fmt in ("anx", "graphml"):
        exp = client.post("/api/casefiles/export", headers=h, json={"lead_id": ws.leads["LX"], "title": "x",
                                                                      "state": state, "format": fmt})
        assert exp.status_code == 200, exp.text
        _no_b_data(exp.content.decode())
    full = client.get(f"/api/charts/lead/{ws.leads['LX']}", headers=ws.h("all")).json()
    assert {n["type"] for n in full["nodes"]} >= {"Occasion", "Person", "Institution"}
