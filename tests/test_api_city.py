"""The API on a generated small city (2,000 persons, detected), on the embedded store and on the real Neo4j."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fraudnet.api.app import create_app
from fraudnet.config import Settings
from tests.fixtures.server import ApiWorkspace

_MASKED_NAME = re.compile(r"^.\*.?$|^\*$")


@pytest.fixture(scope="module")
def city(api_city_template: ApiWorkspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[TestClient, ApiWorkspace]]:
    from tests.fixtures.server import copy_workspace

    ws = ApiWorkspace(copy_workspace(api_city_template.path, tmp_path_factory.mktemp("city-emb") / "ws"),
                      dict(api_city_template.tokens))
    with TestClient(create_app(Settings(workspace=ws.path))) as c:
        yield c, ws


def _leads(client: TestClient, ws: ApiWorkspace, role: str = "viewer", **params: object) -> dict:
    r = client.get("/api/leads", params=params, headers=ws.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


def test_queue_is_sorted_and_pages_cover_everything(city: tuple[TestClient, ApiWorkspace]) -> None:
    client, ws = city
    first = _leads(client, ws, page_size=500)
    assert first["total"] >= 10
    scores = [i["score"] for i in first["items"]]
    assert scores == sorted(scores, reverse=True)
    paged = []
    for page in range(1, first["total"] // 7 + 2):
        paged += [i["lead_id"] for i in _leads(client, ws, page=page, page_size=7)["items"]]
    assert paged == [i["lead_id"] for i in first["items"]]
    kinds = {k["kind"]: k["count"] for k in client.get("/api/leads/kinds", headers=ws.headers("viewer")).json()}
    assert sum(kinds.values()) == first["total"] and "collusion_ring" in kinds
    for kind, n in kinds.items():
        assert _leads(client, ws, kind=kind, page_size=1)["total"] == n
    red = _leads(client, ws, severity="red", page_size=500)
    assert red["items"] and all(i["severity"] == "red" for i in red["items"])
    by_amount = [i["amount_at_risk"] for i in _leads(client, ws, sort="-amount", page_size=500)["items"]]
    assert by_amount == sorted(by_amount, reverse=True)


def test_ring_lead_detail_graph_and_masking(city: tuple[TestClient, ApiWorkspace]) -> None:
    client, ws = city
    ring = _leads(client, ws, kind="collusion_ring", page_size=1)["items"][0]
    lid = ring["lead_id"]
    detail = client.get(f"/api/leads/{lid}", headers=ws.headers("investigator")).json()
    assert len(detail["evidence_visits"]) == ring["evidence_count"] == len(detail["evidence"])
    assert {v["psn_no"] for v in detail["evidence_visits"]} <= set(detail["persons"])
    assert all(re.fullmatch(r"\d{4}\*+\d{4}", p) for p in ring["persons"])  # the viewer's queue: masked
    ring = {**ring, "persons": detail["persons"]}
    g_admin = client.get(f"/api/leads/{lid}/graph", headers=ws.headers("admin")).json()
    g_view = client.get(f"/api/leads/{lid}/graph", headers=ws.headers("viewer")).json()
    ids = {n["id"] for n in g_admin["nodes"]}
    assert {f"Person:{p}" for p in ring["persons"]} <= ids
    assert any(f"Institution:{i}" in ids or f"Pharmacy:{i}" in ids for i in ring["institutions"])
    evidence = {n["key"] for n in g_admin["nodes"] if n["type"] == "Visit" and n["props"].get("evidence")}
    assert evidence == set(detail["evidence"])
    assert [n["id"] for n in g_view["nodes"]] == [n["id"] for n in g_admin["nodes"]]
    for a, v in zip(g_admin["nodes"], g_view["nodes"], strict=True):
        if a["type"] == "Person" and a["props"].get("psn_name"):
            assert _MASKED_NAME.match(v["props"]["psn_name"]) and v["label"] == v["props"]["psn_name"]
            assert v["props"]["psn_name"][0] == a["props"]["psn_name"][0]
            assert a["props"]["psn_name"] not in str(g_view)
            assert re.fullmatch(r"\d{3}\*{4}\d{4}", v["props"]["mob_masked"] or "000****0000")
    assert all(n["risk"] is not None and n["risk"] > 0 for n in g_admin["nodes"]
               if n["id"] in {f"Person:{p}" for p in ring["persons"]})


def test_ego_two_hops_and_paths_between_ring_members(city: tuple[TestClient, ApiWorkspace]) -> None:
    client, ws = city
    ring = _leads(client, ws, "investigator", kind="collusion_ring", page_size=1)["items"][0]
    a, b = (f"Person:{p}" for p in ring["persons"][:2])
    ego = client.get(f"/api/graph/ego/{a}?depth=2&max_nodes=500", headers=ws.headers("viewer")).json()
    assert 1 < len(ego["nodes"]) <= 500 and ego["nodes"][0]["id"] == a
    node_ids = {n["id"] for n in ego["nodes"]}
    assert all(e["source"] in node_ids and e["target"] in node_ids for e in ego["edges"])
    paths = client.get(f"/api/graph/paths?source={a}&target={b}", headers=ws.headers("viewer")).json()
    assert paths["paths"] and all(p["nodes"][0] == a and p["nodes"][-1] == b for p in paths["paths"])
    assert len({len(p["nodes"]) for p in paths["paths"]}) == 1  # all shortest


def test_entity_panels_for_a_flagged_institution(city: tuple[TestClient, ApiWorkspace]) -> None:
    client, ws = city
    lead = _leads(client, ws, kind="collusion_ring", page_size=1)["items"][0]
    code = lead["institutions"][0]
    hit = client.get(f"/api/search?q={code}", headers=ws.headers("viewer")).json()["items"][0]
    assert hit["key"] == code
    nid = hit["id"]
    e = client.get(f"/api/entities/{nid}", headers=ws.headers("viewer")).json()
    assert e["risk"]["leads"] >= 1 and "collusion_ring" in e["risk"]["top_kinds"] and e["risk"]["score"] > 0
    assert e["profile"]["stats"]["visits"] > 0
    t = client.get(f"/api/entities/{nid}/timeline?limit=50", headers=ws.headers("viewer")).json()
    begins = [x["begntime"] for x in t["items"]]
    assert len(begins) == min(50, e["profile"]["stats"]["visits"]) and begins == sorted(begins)
    leads = client.get(f"/api/entities/{nid}/leads", headers=ws.headers("viewer")).json()["items"]
    assert lead["lead_id"] in {x["lead_id"] for x in leads}


def test_viewer_responses_never_carry_an_unmasked_name(city: tuple[TestClient, ApiWorkspace]) -> None:
    client, ws = city
    lead = _leads(client, ws, "investigator", page_size=1)["items"][0]
    person = f"Person:{lead['persons'][0]}"
    admin_profile = client.get(f"/api/entities/{person}", headers=ws.headers("admin")).json()["profile"]
    name = admin_profile["props"]["psn_name"]
    assert name and "*" not in name
    for path in (f"/api/entities/{person}", f"/api/graph/ego/{person}?depth=2", f"/api/leads/{lead['lead_id']}/graph",
                 f"/api/search?q={lead['persons'][0]}",
                 f"/api/exports/subgraph?lead_id={lead['lead_id']}&format=json"):
        r = client.get(path, headers=ws.headers("viewer"))
        assert r.status_code == 200, path
        assert name not in r.text, path


# ------------------------------------------------------------------------------------------------ Neo4j
@pytest.fixture(scope="module")
def neo_city(api_city_template: ApiWorkspace, neo4j_server: tuple[str, str, str],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient, ApiWorkspace]]:
    """The same city loaded into the session's Neo4j: (neo4j-mode client, embedded-mode client, workspace)."""
    from fraudnet.claims.store import ClaimsStore
    from fraudnet.graph.neo4j_load import clear_graph, load_graph
    from tests.fixtures.neo4j import neo4j_settings
    from tests.fixtures.server import copy_workspace

    ws = ApiWorkspace(copy_workspace(api_city_template.path, tmp_path_factory.mktemp("city-neo") / "ws"),
                      dict(api_city_template.tokens))
    settings = neo4j_settings(neo4j_server, ws.path)
    clear_graph(settings)
    with ClaimsStore.open(ws.path) as store:
        load_graph(store, settings)
    emb_ws = copy_workspace(ws.path, tmp_path_factory.mktemp("city-neo-emb") / "ws")
    with TestClient(create_app(settings)) as neo, TestClient(create_app(Settings(workspace=emb_ws))) as emb:
        yield neo, emb, ws


@pytest.mark.neo4j
def test_neo4j_mode_answers_like_the_embedded_store(neo_city: tuple[TestClient, TestClient, ApiWorkspace]) -> None:
    neo, emb, ws = neo_city
    h = ws.headers("viewer")
    health = neo.get("/api/health").json()
    assert health["store"] == "neo4j" and health["neo4j"]["configured"] and health["neo4j"]["reachable"]
    leads = emb.get("/api/leads?page_size=500", headers=h).json()["items"]
    assert leads == neo.get("/api/leads?page_size=500", headers=h).json()["items"]
    for lead in [next(x for x in leads if x["kind"] == "collusion_ring"), leads[-1]]:
        path = f"/api/leads/{lead['lead_id']}/graph"
        assert neo.get(path, headers=h).json() == emb.get(path, headers=h).json()
    full = emb.get(f"/api/leads/{leads[0]['lead_id']}", headers=ws.headers("investigator")).json()
    person = f"Person:{full['persons'][0]}"  # the viewer's queue shows person numbers masked
    for path in (f"/api/graph/ego/{person}?depth=2&max_nodes=200", f"/api/entities/{person}",
                 f"/api/entities/{person}/timeline"):
        assert neo.get(path, headers=h).json() == emb.get(path, headers=h).json(), path


@pytest.mark.neo4j
def test_cypher_read_only_with_limits(neo_city: tuple[TestClient, TestClient, ApiWorkspace]) -> None:
    neo, _, ws = neo_city
    admin = ws.headers("admin")
    lead = neo.get("/api/leads?page_size=1", headers=admin).json()["items"][0]
    psn = lead["persons"][0]
    r = neo.post("/api/cypher", json={"query": "MATCH (p:Person {psn_no: $psn})-[v:VISITED]->(i) "
                                               "RETURN p.psn_no AS psn, i AS place, v.visits AS visits ORDER BY "
                                               "visits DESC", "params": {"psn": psn}}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == ["psn", "place", "visits"] and body["rows"]
    assert body["rows"][0][0] == psn and body["rows"][0][1]["id"].split(":")[0] in ("Institution", "Pharmacy")
    limited = neo.post("/api/cypher", json={"query": "MATCH (p:Person) RETURN p.psn_no", "limit": 5},
                       headers=admin).json()
    assert len(limited["rows"]) == 5 and limited["truncated"] is True
    for query, clause in (("MATCH (p:Person) SET p.flag = true RETURN p", "SET"),
                          ("CREATE (x:Evil) RETURN x", "CREATE"),
                          ("MATCH (n) DETACH DELETE n", "DETACH DELETE"),
                          ("CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DELETE n', {})", "apoc.periodic")):
        bad = neo.post("/api/cypher", json={"query": query}, headers=admin)
        assert bad.status_code == 400 and clause in bad.json()["message"], bad.text
    syntax = neo.post("/api/cypher", json={"query": "MATCH (n RETURN n"}, headers=admin)
    assert syntax.status_code == 400 and syntax.json()["field"] == "query"
    assert neo.post("/api/cypher", json={"query": "RETURN 1"}, headers=ws.headers("investigator")).status_code == 403
    count = neo.post("/api/cypher", json={"query": "MATCH (n:Evil) RETURN count(n)"}, headers=admin).json()
    assert count["rows"] == [[0]]
    audit = neo.get("/api/audit?action=cypher&limit=200", headers=admin).json()["items"]
    assert audit and audit[0]["detail"]["params"] == []
    refused = [e for e in audit if e["detail"].get("refused")]  # refused statements are audited too
    assert {e["detail"]["query"] for e in refused} >= {"CREATE (x:Evil) RETURN x", "MATCH (n RETURN n"}
    assert all(e["status_code"] == 400 for e in refused)
    bypass = neo.post("/api/cypher", json={"query": "CALL `dbms`.`killConnections`($ids)",
                                           "params": {"ids": ["bolt-1"]}}, headers=admin)
    assert bypass.status_code == 400 and "dbms.killConnections" in bypass.json()["message"]
    assert neo.get("/api/health").status_code == 200


@pytest.mark.neo4j
def test_read_mode_and_timeout_are_enforced_by_neo4j(neo4j_server: tuple[str, str, str]) -> None:
    """The second guard: a write that got past the text check is refused by the READ session; slow queries stop."""
    import neo4j

    from fraudnet.errors import InvalidRequestError, QueryLimitError
    from fraudnet.graph.neo4j_cypher import run_read_cypher

    uri, user, password = neo4j_server
    with neo4j.GraphDatabase.driver(uri, auth=(user, password)) as driver:
        with pytest.raises(InvalidRequestError):
            run_read_cypher(driver, "neo4j", "CREATE (x:Evil {at: $t}) RETURN x", {"t": 1})
        started = time.monotonic()
        with pytest.raises(QueryLimitError):
            run_read_cypher(driver, "neo4j", "UNWIND range(1, 2000000000) AS x WITH x WHERE x % 7 = 3 "
                            "RETURN count(x)", timeout=1.0)
        assert time.monotonic() - started < 30
        records, _, _ = driver.execute_query("MATCH (n:Evil) RETURN count(n) AS n", database_="neo4j")
        assert records[0]["n"] == 0


@pytest.mark.neo4j
def test_detect_job_in_neo4j_mode_syncs_leads(neo_city: tuple[TestClient, TestClient, ApiWorkspace]) -> None:
    neo, _, ws = neo_city
    admin = ws.headers("admin")
    lid = neo.get("/api/leads?kind=collusion_ring&page_size=1", headers=admin).json()["items"][0]["lead_id"]
    neo.post(f"/api/leads/{lid}/status", json={"status": "reviewing"}, headers=ws.headers("investigator"))
    job_id = neo.post("/api/jobs/detect", json={"only": ["collusion_ring"]}, headers=admin).json()["job_id"]
    deadline = time.monotonic() + 300
    while (job := neo.get(f"/api/jobs/{job_id}", headers=admin).json())["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job["state"] == "succeeded", job
    assert job["result"]["neo4j_synced"] == job["result"]["leads"] > 0
    rows = neo.post("/api/cypher", json={"query": "MATCH (l:Lead {lead_id: $id})-[:INVOLVES]->(p:Person) "
                                                  "RETURN l.status, count(p)", "params": {"id": lid}},
                    headers=admin).json()["rows"]
    assert rows and rows[0][0] == "reviewing" and rows[0][1] >= 2
    assert neo.get(f"/api/leads/{lid}", headers=admin).json()["status"] == "reviewing"


@pytest.mark.neo4j
def test_neo4j_mode_egos_from_workers_over_the_projection(
        neo_city: tuple[TestClient, TestClient, ApiWorkspace], neo4j_server: tuple[str, str, str]) -> None:
    """In Neo4j mode the API reads the entity graph into memory in the background, reports it in /api/health,
    forks its graph workers over it, and their ego answers are byte for byte the embedded mode's."""
    import dataclasses

    from tests.fixtures.neo4j import neo4j_settings
    from tests.fixtures.server import copy_workspace

    _, emb, ws = neo_city
    h = ws.headers("investigator")
    settings = dataclasses.replace(neo4j_settings(neo4j_server, copy_workspace(ws.path, ws.path.parent / "ws-proj")),
                                   graph_workers=2, neo4j_projection_poll_s=0.5)
    with TestClient(create_app(settings)) as neo:
        deadline = time.monotonic() + 120
        while True:
            health = neo.get("/api/health").json()
            if health["neo4j"]["projection"]["state"] == "ready" and health["graph_workers"] == 2:
                break
            assert health["neo4j"]["projection"]["state"] in ("reading", "ready"), health
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        assert health["neo4j"]["projection"]["nodes"] > 2000 and health["neo4j"]["projection"]["edges"] > 2000
        persons = [p for lead in emb.get("/api/leads?page_size=40", headers=h).json()["items"]
                   for p in lead["persons"][:1]]
        for person in persons:
            for query in ("depth=2&max_nodes=300", "depth=1", "depth=3&max_nodes=80&types=Person,Institution"):
                path = f"/api/graph/ego/Person:{person}?{query}"
                got, want = neo.get(path, headers=h), emb.get(path, headers=h)
                assert got.status_code == want.status_code == 200 and got.content == want.content, path
        assert neo.get("/api/graph/ego/Person:NOBODY?depth=2", headers=h).status_code == 404
        # A node a load added after the projection was read: the workers do not have it, Neo4j answers.
        from fraudnet.graph.neo4j_load import open_driver

        driver = open_driver(settings)
        try:
            driver.execute_query("CREATE (:Person {psn_no: $k, psn_name: '新增人员'})", k="ZZNEW0001",
                                 database_=settings.neo4j_database)
            r = neo.get("/api/graph/ego/Person:ZZNEW0001?depth=2", headers=h)
            assert r.status_code == 200 and [n["id"] for n in r.json()["nodes"]] == ["Person:ZZNEW0001"]
        finally:
            driver.execute_query("MATCH (p:Person {psn_no: $k}) DETACH DELETE p", k="ZZNEW0001",
                                 database_=settings.neo4j_database)
            driver.close()
        assert neo.get("/api/health").json()["graph_workers"] == 2  # the workers answered, none was lost
