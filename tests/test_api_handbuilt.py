"""The API through the real app (TestClient) on the hand-built data set whose answers are written out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import networkx as nx
import openpyxl
import pytest
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.api.schemas import LeadPageOut
from fraudnet.config import Settings
from tests.fixtures.server import ApiWorkspace, handbuilt_lead


@pytest.fixture
def client(api_handbuilt: ApiWorkspace) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workspace=api_handbuilt.path))) as c:
        yield c


def _audit(client: TestClient, ws: ApiWorkspace, **params: str) -> list[dict]:
    r = client.get("/api/audit", params={"limit": 1000, **params}, headers=ws.headers("admin"))
    assert r.status_code == 200, r.text
    return r.json()["items"]


# ------------------------------------------------------------------------------------------------ auth
def test_health_needs_no_token_and_names_the_store(client: TestClient) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["store"] == "embedded"
    assert body["neo4j"] == {"configured": False, "reachable": False, "uri": "", "projection": None}


@pytest.mark.parametrize("path", ["/api/me", "/api/leads", "/api/leads/kinds", "/api/entities/Person:P01",
                                  "/api/graph/ego/Person:P01", "/api/search?q=P0", "/api/jobs", "/api/audit",
                                  "/api/exports/leads"])
def test_every_endpoint_but_health_needs_a_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    r = client.get(path, headers={"Authorization": "Bearer fn_00000000_notarealtokennotarealtoken"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get(path, headers={"Authorization": "Basic abc"}).status_code == 401


def test_me_per_role(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    for role in ("admin", "investigator", "viewer"):
        assert client.get("/api/me", headers=api_handbuilt.headers(role)).json() == {"user": f"{role}1",
                                                                                    "role": role}


def test_revoked_token_is_refused(api_handbuilt: ApiWorkspace) -> None:
    from fraudnet.claims.audit import revoke_token
    from fraudnet.claims.store import ClaimsStore

    with ClaimsStore.open(api_handbuilt.path) as store:
        assert revoke_token(store.con, "viewer1") == 1
    with TestClient(create_app(Settings(workspace=api_handbuilt.path))) as c:
        assert c.get("/api/me", headers=api_handbuilt.headers("viewer")).status_code == 401
        assert c.get("/api/me", headers=api_handbuilt.headers("admin")).status_code == 200


# ------------------------------------------------------------------------------------------------ leads
def test_lead_list_filters_sort_and_pagination(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    h = api_handbuilt.headers("viewer")
    body = client.get("/api/leads", headers=h).json()
    # Served as pre-rendered JSON: exactly what the response model would have written.
    assert LeadPageOut.model_validate(body).model_dump(mode="json") == body
    assert body["total"] == 1 and body["page"] == 1 and body["page_size"] == 50
    item = body["items"][0]
    assert item["lead_id"] == api_handbuilt.lead_id
    assert item["persons"] == ["*01", "*02"] and item["institutions"] == ["H001"]  # viewers: psn_no masked
    full = client.get("/api/leads", headers=api_handbuilt.headers("investigator")).json()["items"][0]
    assert full["persons"] == ["P01", "P02"]
    assert item["evidence_count"] == 4 and item["severity"] == "red" and item["status"] == "new"
    assert client.get("/api/leads?severity=orange,yellow", headers=h).json()["total"] == 0
    assert client.get("/api/leads?severity=red&institution=H001&person=P02", headers=h).json()["total"] == 1
    assert client.get("/api/leads?practitioner=D002", headers=h).json()["total"] == 0
    assert client.get("/api/leads?min_amount=3000", headers=h).json()["total"] == 0
    assert client.get("/api/leads?date_from=2024-03-01&date_to=2024-12-31", headers=h).json()["total"] == 1
    assert client.get("/api/leads?date_from=2025-01-01", headers=h).json()["total"] == 0
    assert client.get("/api/leads?sort=amount&page=2&page_size=1", headers=h).json()["items"] == []
    kinds = client.get("/api/leads/kinds", headers=h).json()
    assert kinds == [{"kind": "collusion_ring", "count": 1, "red": 1, "orange": 0, "yellow": 0}]


@pytest.mark.parametrize(("query", "field"), [
    ("severity=purple", "severity"), ("status=closed", "status"), ("sort=-nonsense", "sort"),
    ("date_from=2024-13-01", "date_from"), ("date_to=yesterday", "date_to"), ("page=0", "page"),
    ("page_size=100000", "page_size"), ("min_amount=-5", "min_amount"), ("min_amount=abc", "min_amount"),
    ("date_from=2024-05-01&date_to=2024-01-01", "date_from"),
])
def test_bad_lead_filters_name_the_field(client: TestClient, api_handbuilt: ApiWorkspace, query: str,
                                         field: str) -> None:
    r = client.get(f"/api/leads?{query}", headers=api_handbuilt.headers("viewer"))
    assert r.status_code in (400, 422), r.text
    assert r.json()["field"] == field


def test_lead_detail_has_evidence_visits_and_is_audited(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    lid = api_handbuilt.lead_id
    r = client.get(f"/api/leads/{lid}", headers=api_handbuilt.headers("viewer"))
    assert r.status_code == 200
    lead = r.json()
    assert lead["evidence"] == ["V01", "V02", "V03", "V04"]
    assert [v["mdtrt_id"] for v in lead["evidence_visits"]] == ["V01", "V02", "V03", "V04"]
    v1 = lead["evidence_visits"][0]
    assert v1["psn_no"] == "*01" and v1["fixmedins_code"] == "H001" and v1["med_type"] == "21"  # viewer: masked
    assert lead["persons"] == ["*01", "*02"] and "P01" not in str(lead)
    assert v1["dise_name"] and v1["medfee_sumamt"] > 0
    assert lead["features"] == {"days": 2} and lead["history"][0]["to"] == "new"
    entries = _audit(client, api_handbuilt, action="lead.read")
    assert entries[0]["user"] == "viewer1" and entries[0]["role"] == "viewer"
    assert {"Lead:" + lid, "Person:P01", "Person:P02"} <= set(entries[0]["entities"])
    assert client.get("/api/leads/LNOSUCHLEAD0000000000", headers=api_handbuilt.headers("viewer")).status_code == 404
    bad = client.get("/api/leads/bad%20id!", headers=api_handbuilt.headers("viewer"))
    assert bad.status_code == 422 and bad.json()["field"] == "lead_id"


def test_case_actions_roles_history_and_audit(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    lid = api_handbuilt.lead_id
    viewer, inv = api_handbuilt.headers("viewer"), api_handbuilt.headers("investigator")
    for path, body in ((f"/api/leads/{lid}/status", {"status": "reviewing"}),
                       (f"/api/leads/{lid}/assign", {"assignee": "viewer1"}),
                       (f"/api/leads/{lid}/notes", {"text": "看一下"})):
        assert client.post(path, json=body, headers=viewer).status_code == 403
    r = client.post(f"/api/leads/{lid}/status", json={"status": "confirmed"}, headers=inv)
    assert r.status_code == 400 and r.json()["field"] == "status"  # new → confirmed is not allowed
    assert client.get("/api/leads?status=reviewing", headers=viewer).json()["total"] == 0
    r = client.post(f"/api/leads/{lid}/status", json={"status": "reviewing", "comment": "开始核查"}, headers=inv)
    assert r.status_code == 200 and r.json()["status"] == "reviewing"
    assert client.get("/api/leads?status=reviewing", headers=viewer).json()["total"] == 1  # no stale page
    r = client.post(f"/api/leads/{lid}/assign", json={"assignee": "investigator1"}, headers=inv)
    assert r.json()["assignee"] == "investigator1"
    r = client.post(f"/api/leads/{lid}/notes", json={"text": "夜查发现空床"}, headers=api_handbuilt.headers("admin"))
    lead = r.json()
    assert lead["notes"][-1]["text"] == "夜查发现空床" and lead["notes"][-1]["user"] == "admin1"
    changes = [(h["user"], h["from"], h["to"]) for h in lead["history"] if h["action"] == "status"]
    assert changes == [("investigator1", "new", "reviewing")]
    assert client.post(f"/api/leads/{lid}/status", json={"status": "closed"}, headers=inv).status_code == 422
    assert client.post(f"/api/leads/{lid}/notes", json={"text": ""}, headers=inv).status_code == 422
    assert client.post("/api/leads/LNOPE/notes", json={"text": "x"}, headers=inv).status_code == 404
    actions = [(e["action"], e["user"]) for e in _audit(client, api_handbuilt, entity=f"Lead:{lid}")]
    assert ("lead.status", "investigator1") in actions and ("lead.assign", "investigator1") in actions
    assert ("lead.note", "admin1") in actions
    status_entry = next(e for e in _audit(client, api_handbuilt, action="lead.status"))
    assert status_entry["detail"]["from"] == "new" and status_entry["detail"]["to"] == "reviewing"


def test_case_decisions_survive_a_detection_rerun(api_handbuilt: ApiWorkspace) -> None:
    from fraudnet.claims.leads import LeadStore
    from fraudnet.claims.store import ClaimsStore

    lid = api_handbuilt.lead_id
    settings = Settings(workspace=api_handbuilt.path)
    with TestClient(create_app(settings)) as c:
        inv = api_handbuilt.headers("investigator")
        c.post(f"/api/leads/{lid}/status", json={"status": "reviewing"}, headers=inv)
        c.post(f"/api/leads/{lid}/notes", json={"text": "keep me"}, headers=inv)
    with ClaimsStore.open(api_handbuilt.path) as store:  # a re-run producing the same lead again
        LeadStore(store.con).save_run([handbuilt_lead(store.con)], ["collusion_ring"])
    with TestClient(create_app(settings)) as c:
        lead = c.get(f"/api/leads/{lid}", headers=api_handbuilt.headers("viewer")).json()
        assert lead["status"] == "reviewing" and [n["text"] for n in lead["notes"]] == ["keep me"]
        assert c.get("/api/leads", headers=api_handbuilt.headers("viewer")).json()["total"] == 1


def test_lead_graph_marks_evidence_and_masks_for_viewers(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    lid = api_handbuilt.lead_id
    g = client.get(f"/api/leads/{lid}/graph", headers=api_handbuilt.headers("viewer")).json()
    ids = [n["id"] for n in g["nodes"]]
    assert ids[:4] == ["Person:P01", "Person:P02", "Practitioner:D001", "Institution:H001"]
    visits = [n for n in g["nodes"] if n["type"] == "Visit"]
    assert {v["key"] for v in visits if v["props"]["evidence"]} == {"V01", "V02", "V03", "V04"}
    p01 = g["nodes"][0]
    assert p01["label"] == "张*" and p01["props"]["psn_name"] == "张*"
    assert p01["props"]["brdy"] == "1960-**-**" and p01["props"]["mob_masked"] == "138****0001"
    assert p01["risk"] == pytest.approx(0.9)
    assert {e["type"] for e in g["edges"]} >= {"HAD", "AT", "ATTENDED_BY", "VISITED", "CO_ADMITTED"}
    g_admin = client.get(f"/api/leads/{lid}/graph?include_visits=false",
                         headers=api_handbuilt.headers("admin")).json()
    assert g_admin["nodes"][0]["label"] == "张三"
    entry = _audit(client, api_handbuilt, action="lead.graph")[0]
    assert {"Person:P01", "Person:P02"} <= set(entry["entities"])


# ------------------------------------------------------------------------------------------------ entities
def test_entity_profile_risk_timeline_leads(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    admin, viewer = api_handbuilt.headers("admin"), api_handbuilt.headers("viewer")
    e = client.get("/api/entities/Person:P01", headers=admin).json()
    assert e["profile"]["label"] == "张三" and e["profile"]["stats"]["visits"] == 3
    assert e["risk"]["leads"] == 1 and e["risk"]["top_kinds"] == ["collusion_ring"]
    assert e["risk"]["score"] == pytest.approx(0.9)
    ev = client.get("/api/entities/Person:P01", headers=viewer).json()
    assert ev["profile"]["label"] == "张*" and ev["profile"]["props"]["certno_masked"].startswith("1101****")
    assert client.get("/api/entities/Person:P05", headers=viewer).json()["risk"]["score"] == 0.0
    t = client.get("/api/entities/Person:P01/timeline", headers=viewer).json()
    assert [x["mdtrt_id"] for x in t["items"]] == ["V01", "V08", "V03"]
    t = client.get("/api/entities/Person:P01/timeline?since=2024-02-01&until=2024-03-01", headers=viewer).json()
    assert [x["mdtrt_id"] for x in t["items"]] == ["V08"]
    leads = client.get("/api/entities/Institution:H001/leads", headers=viewer).json()
    assert [x["lead_id"] for x in leads["items"]] == [api_handbuilt.lead_id]
    assert client.get("/api/entities/Person:P04/leads", headers=viewer).json()["items"] == []
    audited = _audit(client, api_handbuilt, entity="Person:P01")
    assert {"entity.profile", "entity.timeline"} <= {a["action"] for a in audited}
    assert {a["user"] for a in audited} >= {"admin1", "viewer1"}


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/api/entities/Person:NOPE", 404, None),
    ("/api/entities/Alien:X1", 400, "node_id"),
    ("/api/entities/P01", 400, "node_id"),
    ("/api/entities/Person:P01/timeline?since=2024-05-01&until=2024-01-01", 400, "until"),
    ("/api/entities/Person:P01/timeline?limit=0", 422, "limit"),
    ("/api/graph/ego/Person:P01?depth=4", 422, "depth"),
    ("/api/graph/ego/Person:P01?max_nodes=5001", 422, "max_nodes"),
    ("/api/graph/ego/Person:P01?types=Person,Martian", 400, "types"),
    ("/api/graph/ego/Person:P01?since=notadate", 422, "since"),
    ("/api/graph/ego/Person:NOPE", 404, None),
    ("/api/graph/paths?source=Person:P01", 422, "target"),
    ("/api/graph/paths?source=Person:P01&target=Nope", 400, "target"),
    ("/api/graph/paths?source=Person:P01&target=Person:P02&max_depth=9", 422, "max_depth"),
    ("/api/search?q=", 422, "q"),
    ("/api/exports/leads?format=pdf", 422, "format"),
    ("/api/exports/subgraph?lead_id=LNOPE", 404, None),
    ("/api/jobs/JNOSUCHJOB", 404, None),
])
def test_bad_requests_get_precise_4xx(client: TestClient, api_handbuilt: ApiWorkspace, path: str, status: int,
                                      field: str | None) -> None:
    r = client.get(path, headers=api_handbuilt.headers("admin"))
    assert r.status_code == status, r.text
    body = r.json()
    assert body["message"]
    if field:
        assert body["field"] == field


# ------------------------------------------------------------------------------------------------ graph
def test_ego_network_depth_types_window_and_cap(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    h = api_handbuilt.headers("investigator")
    g1 = client.get("/api/graph/ego/Person:P01?depth=1", headers=h).json()
    ids1 = {n["id"] for n in g1["nodes"]}
    assert {"Person:P01", "Institution:H001", "Pharmacy:P001", "Person:P02", "Practitioner:D001"} <= ids1
    assert "Person:P04" not in ids1 and g1["truncated"] is False
    g2 = client.get("/api/graph/ego/Person:P01?depth=2", headers=h).json()
    assert "Person:P04" in {n["id"] for n in g2["nodes"]}
    only = client.get("/api/graph/ego/Person:P01?depth=2&types=Person,Institution", headers=h).json()
    assert {n["type"] for n in only["nodes"]} <= {"Person", "Institution"}
    capped = client.get("/api/graph/ego/Person:P01?depth=2&max_nodes=3", headers=h).json()
    assert len(capped["nodes"]) == 3 and capped["truncated"] is True
    window = client.get("/api/graph/ego/Person:P01?since=2024-02-01&until=2024-03-01", headers=h).json()
    visited = [e for e in window["edges"] if e["type"] == "VISITED"]
    assert [(e["target"], e["visits"]) for e in visited] == [("Pharmacy:P001", 1)]
    assert _audit(client, api_handbuilt, action="graph.ego")[0]["user"] == "investigator1"


def test_paths_and_subgraph(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    h = api_handbuilt.headers("viewer")
    p = client.get("/api/graph/paths?source=Person:P01&target=Person:P03", headers=h).json()
    assert p["paths"] and all(len(path["nodes"]) == 3 for path in p["paths"])
    assert all(path["nodes"][0] == "Person:P01" and path["nodes"][-1] == "Person:P03" for path in p["paths"])
    labels = {n["id"]: n["label"] for n in p["nodes"]}
    assert labels["Person:P03"] == "王*"
    s = client.post("/api/graph/subgraph", json={"node_ids": ["Person:P01", "Institution:H001"],
                                                  "include_visits": True}, headers=h).json()
    assert {n["key"] for n in s["nodes"] if n["type"] == "Visit"} == {"V01", "V03"}
    r = client.post("/api/graph/subgraph", json={"node_ids": ["Person:P01", "Person:ZZZ"]}, headers=h)
    assert r.status_code == 404
    r = client.post("/api/graph/subgraph", json={"node_ids": ["Visit:V01"]}, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "node_ids[0]"
    r = client.post("/api/graph/subgraph", json={"node_ids": []}, headers=h)
    assert r.status_code == 422


def test_search_by_key_and_name_per_role(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    admin = client.get("/api/search?q=张三", headers=api_handbuilt.headers("admin")).json()
    assert [(i["id"], i["label"], i["matched"]) for i in admin["items"]] == [("Person:P01", "张三", "name")]
    assert client.get("/api/search?q=张三", headers=api_handbuilt.headers("viewer")).json()["items"] == []
    viewer = client.get("/api/search?q=p0", headers=api_handbuilt.headers("viewer")).json()
    assert [(i["id"], i["label"]) for i in viewer["items"]][0] == ("Person:P01", "张*")
    assert "Pharmacy:P001" in [i["id"] for i in viewer["items"]]
    hospital = client.get("/api/search?q=仁和", headers=api_handbuilt.headers("investigator")).json()
    assert [i["id"] for i in hospital["items"]] == ["Institution:H001"]
    assert client.get("/api/search?q=%25", headers=api_handbuilt.headers("admin")).json()["items"] == []


def test_cypher_is_refused_outside_neo4j_mode_and_for_non_admins(client: TestClient,
                                                                 api_handbuilt: ApiWorkspace) -> None:
    body = {"query": "MATCH (n) RETURN count(n)"}
    assert client.post("/api/cypher", json=body, headers=api_handbuilt.headers("investigator")).status_code == 403
    r = client.post("/api/cypher", json=body, headers=api_handbuilt.headers("admin"))
    assert r.status_code == 409 and "Neo4j" in r.json()["message"]


# ------------------------------------------------------------------------------------------------ exports
def test_exports_leads_scores_and_subgraph(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    h = api_handbuilt.headers("viewer")
    r = client.get("/api/exports/leads?format=csv&severity=red", headers=h)
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["lead_id"], x["persons"], x["evidence"]) for x in rows] == [
        (api_handbuilt.lead_id, "*01;*02", "V01;V02;V03;V04")]  # viewers: person numbers masked
    assert "attachment" in r.headers["content-disposition"]
    jl = client.get("/api/exports/leads?format=jsonl", headers=h)
    assert [json.loads(line)["persons"] for line in jl.text.splitlines()] == [["*01", "*02"]]
    inv = api_handbuilt.headers("investigator")
    jl = client.get("/api/exports/leads?format=jsonl", headers=inv)
    assert [json.loads(line)["persons"] for line in jl.text.splitlines()] == [["P01", "P02"]]
    xl = client.get("/api/exports/leads?format=xlsx", headers=h)
    sheet = openpyxl.load_workbook(io.BytesIO(xl.content)).active
    assert sheet.cell(2, 1).value == api_handbuilt.lead_id
    sc = client.get("/api/exports/scores?format=csv", headers=inv)
    scores = list(csv.DictReader(io.StringIO(sc.content.decode("utf-8-sig"))))
    with_leads = {(s["entity_type"], s["entity_id"]) for s in scores if int(s["leads"]) > 0}
    assert with_leads == {("Person", "P01"), ("Person", "P02"), ("Practitioner", "D001"), ("Institution", "H001")}
    # institutions and practitioners without leads are scored on exposure alone; persons only with a lead
    assert all(s["entity_type"] != "Person" for s in scores if int(s["leads"]) == 0)
    gm = client.get(f"/api/exports/subgraph?lead_id={api_handbuilt.lead_id}&format=graphml", headers=h)
    assert gm.status_code == 200 and gm.headers["content-type"].startswith("application/graphml+xml")
    masked = nx.read_graphml(io.BytesIO(gm.content))  # viewers: opaque person ids, masked names and numbers
    assert b"P01" not in gm.content and b"\xe5\xbc\xa0\xe4\xb8\x89" not in gm.content
    assert sorted(d["label"] for _, d in masked.nodes(data=True) if d["type"] == "Person") == ["张*", "李*"]
    assert all(n.startswith("Person:~") for n, d in masked.nodes(data=True) if d["type"] == "Person")
    gm = client.get(f"/api/exports/subgraph?lead_id={api_handbuilt.lead_id}&format=graphml", headers=inv)
    graph = nx.read_graphml(io.BytesIO(gm.content))
    assert graph.nodes["Person:P01"]["label"] == "张三" and graph.nodes["Person:P01"]["type"] == "Person"
    assert graph.nodes["Visit:V01"]["evidence"] is True
    assert graph.has_edge("Person:P01", "Visit:V01")
    assert graph.edges["Person:P01", "Institution:H001"]["amount"] == pytest.approx(1800.0)
    js = client.post("/api/exports/subgraph", json={"node_ids": ["Person:P01", "Person:P02"], "format": "json"},
                     headers=api_handbuilt.headers("admin"))
    data = js.json()
    assert [n["label"] for n in data["nodes"][:2]] == ["张三", "李四"]
    actions = {e["action"] for e in _audit(client, api_handbuilt, entity="Person:P01")}
    assert {"export.leads", "export.scores", "export.subgraph"} <= actions


# ------------------------------------------------------------------------------------------------ audit
def test_audit_is_admin_only_filterable_and_chained(client: TestClient, api_handbuilt: ApiWorkspace) -> None:
    client.get("/api/entities/Person:P02", headers=api_handbuilt.headers("viewer"))
    assert client.get("/api/audit", headers=api_handbuilt.headers("investigator")).status_code == 403
    assert client.get("/api/audit", headers=api_handbuilt.headers("viewer")).status_code == 403
    r = client.get("/api/audit?user=viewer1&entity=Person:P02&verify=true", headers=api_handbuilt.headers("admin"))
    body = r.json()
    assert body["chain_ok"] is True
    assert body["items"] and all(e["user"] == "viewer1" for e in body["items"])
    assert body["items"][0]["path"] == "/api/entities/Person:P02" and body["items"][0]["method"] == "GET"
    assert client.get("/api/audit?since=2999-01-01", headers=api_handbuilt.headers("admin")).json()["items"] == []


def test_ui_root_answers(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/leads/{lead_id}/graph" in spec["paths"]

