"""Both graph stores (embedded, Neo4j) give the same, written-out answers on the same data.

(a) a hand-built claims set (tests/graph_handbuilt.py) ingested through the real ingest and loaded into a real
Neo4j with `load_graph`; (b) a generated small city compared store against store on sampled entities.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.config import Settings
from fraudnet.errors import CypherNotSupportedError, NotFoundError, QueryLimitError
from fraudnet.graph.embedded_store import EmbeddedStore
from fraudnet.graph.neo4j_hubs import clear_stamp, write_hub_lists
from fraudnet.graph.neo4j_load import clear_graph, load_graph, open_driver
from fraudnet.graph.neo4j_store import Neo4jStore
from fraudnet.graph.store import GraphStore, StoreStatus
from fraudnet.ingest.pipeline import ingest_folder
from tests.graph_handbuilt import TREATED_BY, VISITED, write_csvs

pytestmark = pytest.mark.neo4j

# What the session's single Neo4j database currently holds (a Community server has one user database).
_LOADED: dict[str, Any] = {"case": None}


def _settings(neo4j_server: tuple[str, str, str], workspace: Path) -> Settings:
    uri, user, password = neo4j_server
    return Settings(workspace=workspace, neo4j_uri=uri, neo4j_user=user, neo4j_password=password)


def _ensure_loaded(case: str, claims: ClaimsStore, settings: Settings) -> None:
    if _LOADED["case"] != case:
        clear_graph(settings)
        load_graph(claims, settings, full=True)
        _LOADED["case"] = case


@pytest.fixture(scope="module")
def handbuilt_claims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClaimsStore]:
    root = tmp_path_factory.mktemp("handbuilt")
    folder = write_csvs(root / "input")
    store = ClaimsStore.open(root / "ws")
    report = ingest_folder(folder, store)
    assert report.ok, report
    yield store
    store.close()


@pytest.fixture(scope="module")
def handbuilt_stores(handbuilt_claims: ClaimsStore, neo4j_server: tuple[str, str, str]) -> Iterator[dict[str, Any]]:
    settings = _settings(neo4j_server, handbuilt_claims.workspace)
    _LOADED["case"] = None
    _ensure_loaded("handbuilt", handbuilt_claims, settings)
    projected = Neo4jStore(settings)
    assert projected.refresh_projection()  # ego networks without a window from the in-memory projection
    stores = {"embedded": EmbeddedStore(handbuilt_claims), "neo4j": Neo4jStore(settings),
              "neo4j-projected": projected, "_claims": handbuilt_claims, "_settings": settings}
    yield stores
    for name in ("embedded", "neo4j", "neo4j-projected"):
        stores[name].close()


@pytest.fixture(params=["embedded", "neo4j", "neo4j-projected"])
def hb(request: pytest.FixtureRequest, handbuilt_stores: dict[str, Any]) -> GraphStore:
    if request.param != "embedded":
        _ensure_loaded("handbuilt", handbuilt_stores["_claims"], handbuilt_stores["_settings"])
    return handbuilt_stores[request.param]


def _phone(claims: ClaimsStore, psn_no: str) -> str:
    return "Phone:" + claims.sql("SELECT mob_hash FROM psn_info WHERE psn_no = ?", [psn_no]).iloc[0, 0]


def _addr(claims: ClaimsStore, psn_no: str) -> str:
    return "Address:" + claims.sql("SELECT addr_key FROM psn_info WHERE psn_no = ?", [psn_no]).iloc[0, 0]


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


# ---- (a) hand-built answers -----------------------------------------------------------------------------------
def test_capabilities_of_the_protocol(hb: GraphStore, handbuilt_claims: ClaimsStore) -> None:
    """Every store answers the whole `GraphStore` protocol; what it lacks is said in a typed way."""
    assert isinstance(hb, GraphStore)
    status = hb.status()
    assert status.store == hb.name
    graph = hb.projection()
    if hb.supports_cypher:  # Neo4j: reachable, its URI, its projection's state; Cypher and lead sync work
        assert hb.syncs_leads and status.reachable and status.uri.startswith("bolt://")
        assert status.projection is not None and status.projection["state"] in ("off", "ready")
        assert (graph is not None) == (status.projection["state"] == "ready")
        found = hb.run_read_cypher("MATCH (p:Person {psn_no: $k}) RETURN p.psn_no AS k", {"k": "P01"})
        assert found["columns"] == ["k"] and found["rows"] == [["P01"]]
    else:  # embedded: its own graph in memory, nothing to sync or to read in the background, no Cypher
        assert not hb.syncs_leads and hb.sync_leads([{"lead_id": "L1"}]) == 0
        assert status == StoreStatus(store="embedded") and graph is hb
        assert not hb.start_projection(0.5)
        with pytest.raises(CypherNotSupportedError, match="Neo4j"):
            hb.run_read_cypher("MATCH (n) RETURN n")
        refresh = hb.refreshed(handbuilt_claims)
        assert refresh.store is not hb and refresh.store.node_count == hb.node_count
        refresh.store.close()
    if graph is not None:
        assert graph.has_node("Person:P01") and not graph.has_node("Person:NOBODY")



def test_profile_person(hb: GraphStore) -> None:
    p = hb.profile("Person:P01")
    assert (p.type, p.key, p.label) == ("Person", "P01", "张三")
    assert p.props["gend"] == "1" and p.props["brdy"].isoformat() == "1960-05-01"
    assert p.props["mob_masked"] == "138****0001"
    assert p.stats == {"visits": 3, "amount": 2100.0, "fund_amount": 1600.0, "first": _dt("2024-01-10 08:00:00"),
                       "last": _dt("2024-03-05 10:00:00"), "institutions": 2, "practitioners": 2, "co_admitted": 1}


def test_profile_institution_practitioner_drug(hb: GraphStore) -> None:
    h = hb.profile("Institution:H001")
    assert h.label == "仁和医院" and h.props["aprv_bed_cnt"] == 120
    assert h.stats == {"visits": 5, "amount": 3750.75, "fund_amount": 2830.0, "first": _dt("2024-01-10 08:00:00"),
                       "last": _dt("2024-03-05 11:00:00"), "persons": 3, "practitioners": 1, "staff": 1}
    assert hb.profile("Pharmacy:P001").stats["persons"] == 2
    d = hb.profile("Practitioner:D001")
    assert d.stats["persons"] == 3 and d.stats["institutions"] == 1 and d.stats["visits"] == 5
    x = hb.profile("Drug:X001")
    assert x.label == "重点药甲"
    assert {k: x.stats[k] for k in ("visits", "amount", "quantity", "persons", "institutions")} == {
        "visits": 2, "amount": 450.0, "quantity": 4.5, "persons": 2, "institutions": 1}
    with pytest.raises(NotFoundError):
        hb.profile("Drug:S001")  # a service item, not a drug


def test_profile_shared_phone_and_address(hb: GraphStore, handbuilt_claims: ClaimsStore) -> None:
    phone = hb.profile(_phone(handbuilt_claims, "P01"))
    assert phone.label == "138****0001"
    assert phone.stats["persons"] == 2 and phone.stats["person_keys"] == ["P01", "P02"]
    assert phone.stats["visits"] == 6  # P01's 3 and P02's 3 visits
    addr = hb.profile(_addr(handbuilt_claims, "P01"))
    assert addr.stats["person_keys"] == ["P01", "P03"]
    assert hb.profile(_addr(handbuilt_claims, "P05")).stats["persons"] == 1


def test_ego_depth1_order_and_edges(hb: GraphStore, handbuilt_claims: ClaimsStore) -> None:
    phone, addr = _phone(handbuilt_claims, "P01"), _addr(handbuilt_claims, "P01")
    g = hb.ego_network("Person:P01", depth=1)
    # Layer 1 by (connecting amount desc, type order, key): D001/H001 1800, D003/P001 300, then the zero ones.
    assert [n.id for n in g.nodes] == ["Person:P01", "Practitioner:D001", "Institution:H001", "Practitioner:D003",
                                       "Pharmacy:P001", "Person:P02", phone, addr]
    assert not g.truncated
    by_id = {e.id: e for e in g.edges}
    for (psn, target), (visits, amount, first, last) in {**VISITED, **TREATED_BY}.items():
        if psn == "P01":
            etype = "VISITED" if (psn, target) in VISITED else "TREATED_BY"
            e = by_id[f"{etype}:Person:P01->{target}"]
            assert (e.visits, e.amount, e.first, e.last) == (visits, amount, _dt(first), _dt(last))
    co = by_id["CO_ADMITTED:Person:P01->Person:P02"]
    assert co.visits == 2 and co.props == {"times": 2}
    assert "WORKS_AT:Practitioner:D001->Institution:H001" in by_id
    assert f"USES_PHONE:Person:P02->{phone}" in by_id  # edges among answer nodes, not only to the centre
    assert "VISITED:Person:P02->Institution:H001" in by_id
    assert len(g.edges) == 12
    order = [(e.type, e.source, e.target) for e in g.edges]
    assert order[0][0] == "WORKS_AT" and order[-1][0] == "CO_ADMITTED"


def test_ego_cap_truncates_in_order(hb: GraphStore) -> None:
    g = hb.ego_network("Person:P01", depth=2, max_nodes=4)
    assert [n.id for n in g.nodes] == ["Person:P01", "Practitioner:D001", "Institution:H001", "Practitioner:D003"]
    assert g.truncated
    assert hb.ego_network("Person:P01", depth=1, max_nodes=8).truncated is False
    assert hb.ego_network("Person:P01", depth=2, max_nodes=8).truncated is True
    g1 = hb.ego_network("Person:P01", depth=1, max_nodes=1)
    assert [n.id for n in g1.nodes] == ["Person:P01"] and g1.truncated and g1.edges == []


def test_ego_depth2_and_3(hb: GraphStore, handbuilt_claims: ClaimsStore) -> None:
    g = hb.ego_network("Person:P01", depth=2)
    ids = [n.id for n in g.nodes]
    # Layer 2, scored by the edges joining them to layer 1: P04 (D003 150 + P001 150), P03 (D001 50 + H001 50
    # + shared address 0), H002 (P02's visit 60), P02's address (0).
    assert ids[8:] == ["Person:P04", "Person:P03", "Institution:H002", _addr(handbuilt_claims, "P02")]
    ids3 = [n.id for n in hb.ego_network("Person:P01", depth=3).nodes]
    assert ids3[:12] == ids and "Practitioner:D002" in ids3
    assert "Person:P05" not in ids3  # P05 shares nothing with anyone


def test_ego_type_filter_traverses_only_those_types(hb: GraphStore) -> None:
    g = hb.ego_network("Person:P01", depth=2, node_types=["Person", "Institution"])
    assert [n.id for n in g.nodes] == ["Person:P01", "Institution:H001", "Person:P02", "Institution:H002",
                                       "Person:P03"]
    assert [e.id for e in g.edges] == [
        "VISITED:Person:P01->Institution:H001", "VISITED:Person:P02->Institution:H001",
        "VISITED:Person:P02->Institution:H002", "VISITED:Person:P03->Institution:H001",
        "VISITED:Person:P03->Institution:H002", "CO_ADMITTED:Person:P01->Person:P02"]
    # The centre always stays, even when its type is filtered out.
    g2 = hb.ego_network("Institution:H002", depth=1, node_types=["Person"])
    assert [n.id for n in g2.nodes] == ["Institution:H002", "Person:P03", "Person:P04", "Person:P02"]


def test_ego_time_window_recomputes_aggregates(hb: GraphStore, handbuilt_claims: ClaimsStore) -> None:
    g = hb.ego_network("Person:P01", depth=1, since=datetime(2024, 2, 1), until=datetime(2024, 4, 1))
    assert [n.id for n in g.nodes] == ["Person:P01", "Practitioner:D001", "Institution:H001", "Practitioner:D003",
                                       "Pharmacy:P001", _phone(handbuilt_claims, "P01"),
                                       _addr(handbuilt_claims, "P01")]
    e = {x.id: x for x in g.edges}["VISITED:Person:P01->Institution:H001"]
    assert (e.visits, e.amount, e.first, e.last) == (1, 800.0, _dt("2024-03-05 10:00:00"), _dt("2024-03-05 10:00:00"))
    assert not [x for x in g.edges if x.type == "CO_ADMITTED"]  # only one shared admission day in the window
    # until is exclusive: V09 at 2024-04-01 15:00 is outside [.., 2024-04-01 15:00).
    g2 = hb.ego_network("Pharmacy:P001", depth=1, since=datetime(2024, 1, 1), until=datetime(2024, 4, 1, 15))
    assert [n.id for n in g2.nodes] == ["Pharmacy:P001", "Person:P01", "Practitioner:D003"]
    w = hb.ego_network("Person:P01", depth=2, since=datetime(2024, 1, 10), until=datetime(2024, 1, 11))
    co = [x for x in w.edges if x.type == "CO_ADMITTED"]
    assert co == []


def test_shortest_paths(hb: GraphStore) -> None:
    paths = hb.shortest_paths("Person:P03", "Person:P04")
    assert [p.nodes for p in paths] == [["Person:P03", "Institution:H002", "Person:P04"],
                                        ["Person:P03", "Practitioner:D002", "Person:P04"]]
    assert [e.id for e in paths[0].edges] == ["VISITED:Person:P03->Institution:H002",
                                              "VISITED:Person:P04->Institution:H002"]
    assert paths[0].edges[0].amount == 120.0
    three = hb.shortest_paths("Person:P02", "Person:P03")
    assert [p.nodes[1] for p in three] == ["Institution:H001", "Institution:H002", "Practitioner:D001"]
    assert [p.nodes[1] for p in hb.shortest_paths("Person:P02", "Person:P03", max_paths=2)] == [
        "Institution:H001", "Institution:H002"]
    assert hb.shortest_paths("Person:P05", "Person:P01") == []
    assert [p.nodes for p in hb.shortest_paths("Person:P01", "Person:P01")] == [["Person:P01"]]
    long = hb.shortest_paths("Practitioner:D002", "Pharmacy:P001")
    assert [p.nodes for p in long] == [["Practitioner:D002", "Person:P04", "Pharmacy:P001"]]
    assert hb.shortest_paths("Person:P03", "Pharmacy:P001", max_depth=1) == []
    four = hb.shortest_paths("Institution:H002", "Pharmacy:P001", max_depth=4)
    assert [p.nodes for p in four] == [["Institution:H002", "Person:P04", "Pharmacy:P001"]]


def test_subgraph_with_visits_and_evidence(hb: GraphStore) -> None:
    sg = hb.subgraph(["Institution:H001", "Person:P02", "Person:P01"], evidence=["V08", "UNKNOWN"])
    assert [n.id for n in sg.nodes] == ["Person:P01", "Person:P02", "Institution:H001", "Visit:V08", "Visit:V01",
                                        "Visit:V02", "Visit:V03", "Visit:V04"]
    v08 = sg.nodes[3]
    assert v08.props["evidence"] is True and v08.props["medfee_sumamt"] == 300.0
    assert sg.nodes[4].props["evidence"] is False and sg.nodes[4].props["begntime"] == _dt("2024-01-10 08:00:00")
    assert [e.id for e in sg.edges] == [
        "HAD:Person:P01->Visit:V01", "HAD:Person:P01->Visit:V03", "HAD:Person:P01->Visit:V08",
        "HAD:Person:P02->Visit:V02", "HAD:Person:P02->Visit:V04",
        "AT:Visit:V01->Institution:H001", "AT:Visit:V02->Institution:H001", "AT:Visit:V03->Institution:H001",
        "AT:Visit:V04->Institution:H001",
        "VISITED:Person:P01->Institution:H001", "VISITED:Person:P02->Institution:H001",
        "CO_ADMITTED:Person:P01->Person:P02"]
    no_visits = hb.subgraph(["Person:P01", "Practitioner:D001"], include_visits=False)
    assert [n.id for n in no_visits.nodes] == ["Person:P01", "Practitioner:D001"]
    assert [e.id for e in no_visits.edges] == ["TREATED_BY:Person:P01->Practitioner:D001"]
    windowed = hb.subgraph(["Person:P01", "Practitioner:D001"], since=datetime(2024, 3, 1))
    assert [n.id for n in windowed.nodes] == ["Person:P01", "Practitioner:D001", "Visit:V03"]
    assert "ATTENDED_BY:Visit:V03->Practitioner:D001" in [e.id for e in windowed.edges]
    with pytest.raises(NotFoundError):
        hb.subgraph(["Person:P01", "Person:NOPE"])


def test_timeline(hb: GraphStore, handbuilt_claims: ClaimsStore) -> None:
    tl = hb.timeline("Practitioner:D001")
    assert [t.mdtrt_id for t in tl] == ["V01", "V02", "V05", "V03", "V04"]
    assert tl[1].medfee_sumamt == 1200.5 and tl[1].psn_no == "P02" and tl[1].atddr_no == "D001"
    assert [t.mdtrt_id for t in hb.timeline("Practitioner:D001", since=datetime(2024, 1, 10, 9))] == [
        "V02", "V05", "V03", "V04"]
    assert [t.mdtrt_id for t in hb.timeline("Person:P02", limit=2)] == ["V02", "V04"]
    assert [t.mdtrt_id for t in hb.timeline("Drug:X001")] == ["V08", "V09"]
    assert [t.mdtrt_id for t in hb.timeline(_phone(handbuilt_claims, "P01"), until=datetime(2024, 3, 1))] == [
        "V01", "V02", "V08"]
    assert hb.timeline("Person:P05") == []


def test_limits_and_unknown_ids(hb: GraphStore) -> None:
    with pytest.raises(NotFoundError):
        hb.ego_network("Person:NOPE")
    with pytest.raises(NotFoundError):
        hb.profile("Bogus:1")
    with pytest.raises(NotFoundError):
        hb.timeline("Visit:V01")  # visits are not entities
    with pytest.raises(QueryLimitError):
        hb.ego_network("Person:P01", depth=4)
    with pytest.raises(QueryLimitError):
        hb.ego_network("Person:P01", max_nodes=5001)
    with pytest.raises(QueryLimitError):
        hb.ego_network("Person:P01", node_types=["Martian"])
    with pytest.raises(QueryLimitError):
        hb.shortest_paths("Person:P01", "Person:P02", max_depth=7)
    with pytest.raises(QueryLimitError):
        hb.timeline("Person:P01", since=datetime(2024, 2, 1), until=datetime(2024, 1, 1))


def test_drug_has_no_entity_edges(hb: GraphStore) -> None:
    g = hb.ego_network("Drug:X001", depth=2)
    assert [n.id for n in g.nodes] == ["Drug:X001"] and g.edges == [] and not g.truncated


# ---- (b) generated city: both stores answer the same -------------------------------------------------------------

@pytest.fixture(scope="module")
def city_stores(small_claims: ClaimsStore, neo4j_server: tuple[str, str, str],
                handbuilt_stores: dict[str, Any]) -> Iterator[dict[str, Any]]:
    # Depends on handbuilt_stores so the hand-built graph is loaded first and replaced once, here.
    settings = _settings(neo4j_server, Path(small_claims.workspace))
    _ensure_loaded("city", small_claims, settings)
    stores = {"embedded": EmbeddedStore(small_claims), "neo4j": Neo4jStore(settings), "_claims": small_claims,
              "_settings": settings}
    yield stores
    stores["embedded"].close()
    stores["neo4j"].close()


@pytest.fixture
def city(city_stores: dict[str, Any]) -> dict[str, Any]:
    """Both stores on the small city, with the city (again) in Neo4j whatever ran before."""
    _ensure_loaded("city", city_stores["_claims"], city_stores["_settings"])
    return city_stores


def _sample(claims: ClaimsStore) -> dict[str, list[str]]:
    rng = random.Random(7)

    def pick(query: str, n: int) -> list[str]:
        values = sorted(str(v) for v in claims.sql(query).iloc[:, 0].tolist())
        return rng.sample(values, min(n, len(values)))

    return {
        "Person": pick("SELECT DISTINCT psn_no FROM visit_fact WHERE psn_no IN (SELECT psn_no FROM psn_info)", 3),
        "CoAdmitted": pick("SELECT DISTINCT psn_no FROM visit_fact WHERE is_inpatient "
                           "AND psn_no IN (SELECT psn_no FROM psn_info)", 2),
        "Institution": pick("SELECT fixmedins_code FROM medins_info WHERE fixmedins_type <> '2'", 2),
        "Pharmacy": pick("SELECT fixmedins_code FROM medins_info WHERE fixmedins_type = '2'", 1),
        "Practitioner": pick("SELECT prac_psn_code FROM prac_info", 2),
        "Drug": pick("SELECT hilist_code FROM hilist WHERE key_drug_flag = '1' OR list_type IN ('101','102')", 1),
        "Phone": pick("SELECT mob_hash FROM psn_info WHERE mob_hash IS NOT NULL GROUP BY 1 HAVING count(*) > 1", 1),
        "Address": pick("SELECT addr_key FROM psn_info WHERE addr_key IS NOT NULL GROUP BY 1 HAVING count(*) > 1",
                        1),
    }


def _ids(sample: dict[str, list[str]]) -> list[str]:
    out = []
    for t, keys in sample.items():
        out += [f"{'Person' if t == 'CoAdmitted' else t}:{k}" for k in keys]
    return out


def test_city_profiles_and_timelines_equal(city: dict[str, Any], small_claims: ClaimsStore) -> None:
    emb, neo = city["embedded"], city["neo4j"]
    ids = _ids(_sample(small_claims))
    assert len(ids) >= 10
    lo, hi = small_claims.data_period()
    mid = lo + (hi - lo) / 2
    for nid in ids:
        assert emb.profile(nid) == neo.profile(nid), nid
        assert emb.timeline(nid, limit=200) == neo.timeline(nid, limit=200), nid
        assert emb.timeline(nid, since=mid, limit=50) == neo.timeline(nid, since=mid, limit=50), nid


@pytest.mark.slow
def test_city_ego_networks_equal(city: dict[str, Any], small_claims: ClaimsStore) -> None:
    emb, neo = city["embedded"], city["neo4j"]
    sample = _sample(small_claims)
    lo, hi = small_claims.data_period()
    window = (lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3)
    checked = truncated = 0
    combos = ((1, 500, None), (2, 150, ["Person", "Institution", "Pharmacy"]), (2, 120, None),
              (3, 60, ["Person", "Phone", "Address", "Practitioner"]))
    for nid in _ids(sample):
        for depth, cap, types in combos:
            a = emb.ego_network(nid, depth, types, max_nodes=cap)
            b = neo.ego_network(nid, depth, types, max_nodes=cap)
            assert a == b, (nid, depth, types, cap)
            checked += 1
            truncated += a.truncated
        a = emb.ego_network(nid, 2, None, window[0], window[1], 120)
        assert a == neo.ego_network(nid, 2, None, window[0], window[1], 120), (nid, "window")
    assert checked >= 40 and truncated >= 5  # the caps were exercised


def test_city_co_admission_window_equal(city: dict[str, Any], small_claims: ClaimsStore) -> None:
    emb, neo = city["embedded"], city["neo4j"]
    pairs = small_claims.sql(
        "WITH adm AS (SELECT DISTINCT psn_no, fixmedins_code, CAST(begntime AS DATE) d FROM visit_fact "
        "WHERE is_inpatient) SELECT a.psn_no, min(a.d) FROM adm a JOIN adm b ON a.fixmedins_code = b.fixmedins_code "
        "AND a.d = b.d AND a.psn_no < b.psn_no GROUP BY a.psn_no, b.psn_no HAVING count(*) >= 2 "
        "ORDER BY 1 LIMIT 5")
    assert len(pairs) > 0, "the small city should have repeated co-admissions"
    for psn, first_day in pairs.itertuples(index=False):
        since = datetime(first_day.year, first_day.month, first_day.day) - timedelta(days=1)
        for until in (None, since + timedelta(days=60)):
            a = emb.ego_network(f"Person:{psn}", 1, ["Person"], since, until)
            assert a == neo.ego_network(f"Person:{psn}", 1, ["Person"], since, until), psn
        full = emb.ego_network(f"Person:{psn}", 1, ["Person"])
        assert any(e.type == "CO_ADMITTED" for e in full.edges)


def test_city_paths_and_subgraphs_equal(city: dict[str, Any], small_claims: ClaimsStore) -> None:
    emb, neo = city["embedded"], city["neo4j"]
    sample = _sample(small_claims)
    ids = _ids(sample)
    rng = random.Random(3)
    found = 0
    for _ in range(8):
        a, b = rng.sample(ids, 2)
        pa = emb.shortest_paths(a, b, max_depth=4, max_paths=5)
        assert pa == neo.shortest_paths(a, b, max_depth=4, max_paths=5), (a, b)
        found += bool(pa)
    assert found >= 2
    persons = [f"Person:{k}" for k in sample["CoAdmitted"]]
    visits = small_claims.sql("SELECT mdtrt_id, fixmedins_code FROM visit_fact WHERE psn_no = ? ORDER BY 1",
                              [sample["CoAdmitted"][0]])
    inst = visits.iloc[0, 1]
    inst_id = ("Pharmacy:" if small_claims.sql("SELECT fixmedins_type FROM medins_info WHERE fixmedins_code = ?",
                                               [inst]).iloc[0, 0] == "2" else "Institution:") + inst
    members = [*persons, inst_id]
    evidence = visits.iloc[:3, 0].tolist()
    sa = emb.subgraph(members, evidence=evidence)
    assert sa == neo.subgraph(members, evidence=evidence)
    assert sum(1 for n in sa.nodes if n.type == "Visit") >= len(evidence)
    lo, hi = small_claims.data_period()
    assert emb.subgraph(members, since=lo + (hi - lo) / 2) == neo.subgraph(members, since=lo + (hi - lo) / 2)


@pytest.mark.slow
def test_city_ego_networks_equal_through_hub_lists(city: dict[str, Any], small_claims: ClaimsStore,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With hub lists on every node of degree > 8, cut at 12 entries, Neo4j answers egos from list prefixes —
    settled at once, settled after exact sums to the hubs, or expanded when the bound cannot decide — and each
    answer equals the embedded store's. A corrupted list changes answers only while its stamp is current."""
    emb, neo = city["embedded"], city["neo4j"]
    settings = city["_settings"]
    paths = {"listed": 0, "expanded": 0, "hub_sums": 0}
    listed, hub_sums = neo._candidates_listed, neo._hub_sums

    def count_listed(*args: Any, **kwargs: Any) -> list[str] | None:
        found = listed(*args, **kwargs)
        paths["listed" if found is not None else "expanded"] += 1
        return found

    def count_hub_sums(*args: Any, **kwargs: Any) -> dict[str, int]:
        paths["hub_sums"] += 1
        return hub_sums(*args, **kwargs)

    monkeypatch.setattr(neo, "_candidates_listed", count_listed)
    monkeypatch.setattr(neo, "_hub_sums", count_hub_sums)
    monkeypatch.setattr(neo, "_BIG_DEGREE", 8)  # the small city's hubs: edges and sums also matched end to end
    driver = open_driver(settings)
    try:
        with driver.session(database=settings.neo4j_database) as session:
            report = write_hub_lists(session, hub_degree=8, list_max=12)
            assert report.hubs >= 20 and report.entries > 0
            combos = ((1, 6, None), (1, 40, None), (2, 25, None), (2, 60, ["Person", "Practitioner", "Institution"]),
                      (3, 80, None))
            centres = _ids(_sample(small_claims))
            for nid in centres:
                for depth, cap, types in combos:
                    assert emb.ego_network(nid, depth, types, max_nodes=cap) == \
                        neo.ego_network(nid, depth, types, max_nodes=cap), (nid, depth, types, cap)

            # A hub whose list is reversed: trusted while stamped, so answers change; ignored once unstamped.
            hub = session.run("MATCH (h:Institution) WHERE h.ego_stamp IS NOT NULL WITH h ORDER BY size(h.ego_ids) "
                              "DESC LIMIT 1 SET h.ego_ids = [i IN range(size(h.ego_ids) - 1, 0, -1) | h.ego_ids[i]] "
                              "RETURN h.fixmedins_code AS k"
                              ).single()["k"]
            centre = f"Institution:{hub}"
            assert neo.ego_network(centre, 1, max_nodes=5) != emb.ego_network(centre, 1, max_nodes=5)
            clear_stamp(session)
            assert neo.ego_network(centre, 1, max_nodes=5) == emb.ego_network(centre, 1, max_nodes=5)

            # Frontiers of several hubs at once, lists of 10: candidates listed by one hub and joined to others.
            write_hub_lists(session, hub_degree=8, list_max=10)
            rng = random.Random(11)
            hubs = [f"{t}:{k}" for t, k in session.run(
                "MATCH (h) WHERE h.ego_stamp IS NOT NULL AND (h:Institution OR h:Practitioner OR h:Pharmacy) "
                "RETURN [l IN labels(h) WHERE l IN ['Institution', 'Practitioner', 'Pharmacy']][0] AS t, "
                "CASE WHEN h:Practitioner THEN h.prac_psn_code ELSE h.fixmedins_code END AS k ORDER BY t, k").values()]
            for _ in range(80):
                frontier = rng.sample(hubs, rng.randint(2, 5))
                limit = rng.choice([1, 2, 3, 5])
                types = ["Person", "Practitioner", "Institution", "Pharmacy", "Phone", "Address"]
                assert neo._candidates_static(frontier, set(frontier), types, limit) == \
                    emb._candidates_static(frontier, set(frontier), types, limit), (frontier, limit)
            assert paths["listed"] >= 10 and paths["expanded"] >= 1 and paths["hub_sums"] >= 5, paths
    finally:
        with driver.session(database=settings.neo4j_database) as session:
            write_hub_lists(session)  # the lists a load writes, for the tests after this one
        driver.close()


def test_neo4j_requests_share_a_bounded_number_of_slots(city: dict[str, Any], small_claims: ClaimsStore,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With FRAUDNET_NEO4J_CONCURRENCY=2, eight threads asking for ego networks never have more than two requests
    querying Neo4j at once, and each request keeps its slot for all its queries."""
    import dataclasses
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from fraudnet.config import load_settings
    from fraudnet.errors import ConfigError

    monkeypatch.setenv("FRAUDNET_NEO4J_CONCURRENCY", "0")
    with pytest.raises(ConfigError, match="FRAUDNET_NEO4J_CONCURRENCY"):
        load_settings(small_claims.workspace)
    monkeypatch.setenv("FRAUDNET_NEO4J_CONCURRENCY", "2")
    assert load_settings(small_claims.workspace).neo4j_concurrency == 2
    store = Neo4jStore(dataclasses.replace(city["_settings"], neo4j_concurrency=2))
    lock = threading.Lock()
    in_flight: dict[int, int] = {}  # thread → queries running
    seen = {"max_requests": 0, "queries": 0}
    execute = store._driver.execute_query

    def counting(*args: Any, **kwargs: Any) -> Any:
        me = threading.get_ident()
        with lock:
            in_flight[me] = in_flight.get(me, 0) + 1
            seen["max_requests"] = max(seen["max_requests"], len(in_flight))
            seen["queries"] += 1
        try:
            time_per_query = 0.01  # long enough for the threads to overlap
            threading.Event().wait(time_per_query)
            return execute(*args, **kwargs)
        finally:
            with lock:
                in_flight[me] -= 1
                if not in_flight[me]:
                    del in_flight[me]

    monkeypatch.setattr(store._driver, "execute_query", counting)
    people = _sample(small_claims)["Person"] + _sample(small_claims)["CoAdmitted"]
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda k: store.ego_network(f"Person:{k}", 2, max_nodes=60), people * 2))
    finally:
        store.close()
    assert seen["max_requests"] == 2 and seen["queries"] >= 4 * len(answers)
    assert answers[0] == city["embedded"].ego_network(f"Person:{people[0]}", 2, max_nodes=60)


def test_city_ego_networks_equal_from_the_projection(city: dict[str, Any], small_claims: ClaimsStore) -> None:
    """Neo4j's entity graph read into memory answers every ego network (and the positions graph workers render)
    as the embedded store does, and as Cypher does; it is read again only when a load set a new stamp."""
    emb, neo = city["embedded"], city["neo4j"]
    settings = city["_settings"]
    projected = Neo4jStore(settings)
    try:
        assert projected.projection() is None and projected.projection_status() == {"state": "off"}
        assert projected.refresh_projection()
        held = projected.projection()
        status = projected.projection_status()
        assert status["state"] == "ready" and status["nodes"] == emb.node_count
        assert status["edges"] == emb.edge_count
        combos = ((1, 500, None), (2, 500, None), (2, 150, ["Person", "Institution", "Pharmacy"]),
                  (3, 60, ["Person", "Phone", "Address", "Practitioner"]))
        checked = truncated = 0
        for nid in _ids(_sample(small_claims)):
            for depth, cap, types in combos:
                a = emb.ego_network(nid, depth, types, max_nodes=cap)
                assert projected.ego_network(nid, depth, types, max_nodes=cap) == a, (nid, depth, types, cap)
                found = held.ego_index(nid, depth, types, max_nodes=cap)
                assert held.nodes_at(found.nodes) == a.nodes and held.edges_at(found.edges) == a.edges
                assert found.truncated == a.truncated
                checked += 1
                truncated += a.truncated
            assert projected.ego_network(nid, 2, None, max_nodes=80) == neo.ego_network(nid, 2, None, max_nodes=80)
        assert checked >= 40 and truncated >= 5
        with pytest.raises(NotFoundError, match=r"Person 'NOBODY' not found \(neo4j store\)"):
            held.ego_index("Person:NOBODY", 2)
        with pytest.raises(QueryLimitError, match="depth 4"):
            held.ego_index(f"Person:{_sample(small_claims)['Person'][0]}", 4)

        # Same stamp: kept. A load running (stamp removed): the last complete projection kept. New stamp: read.
        assert not projected.refresh_projection() and projected.projection() is held
        driver = open_driver(settings)
        try:
            with driver.session(database=settings.neo4j_database) as session:
                clear_stamp(session)
                assert not projected.refresh_projection() and projected.projection() is held
                write_hub_lists(session)
            assert projected.refresh_projection() and projected.projection() is not held
        finally:
            driver.close()
    finally:
        projected.close()


def test_projection_read_in_the_background_and_renewed(city: dict[str, Any]) -> None:
    """`start_projection` reads the projection on its own thread, calls back after each new one, and stops with
    the store; ego networks are answered by Cypher until it is there."""
    import threading

    settings = city["_settings"]
    store = Neo4jStore(settings)
    renewed = threading.Event()
    try:
        store.start_projection(poll_s=0.5, on_change=renewed.set)
        assert renewed.wait(60) and store.projection_status()["state"] == "ready"
        renewed.clear()
        driver = open_driver(settings)
        try:
            with driver.session(database=settings.neo4j_database) as session:
                write_hub_lists(session)  # what a load that changed the graph ends with: a new stamp
        finally:
            driver.close()
        assert renewed.wait(30), "a new stamp was not noticed"
    finally:
        store.close()
    assert not store._poller.is_alive()
