"""Graph loader and lead sync against a real Neo4j: hand-built claims store with known answers, re-loads,
incremental loads, unreachable Neo4j, and a generated city compared with the claims store's SQL counts."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path

import pytest
from neo4j import GraphDatabase

from fraudnet.claims.schema import refresh_visit_fact
from fraudnet.claims.store import ClaimsStore
from fraudnet.config import Settings
from fraudnet.detectors.base import Lead
from fraudnet.errors import Neo4jUnavailableError
from fraudnet.graph.neo4j_load import PARTS, clear_graph, graph_counts, load_graph, part_rows_sql, sync_leads
from fraudnet.graph.neo4j_schema import CONSTRAINTS, existing_constraints
from tests.fixtures.neo4j import neo4j_settings

pytestmark = pytest.mark.neo4j

# Expected counts of the hand-built store below, worked out by hand.
EXPECTED = {
    "Person": 4, "Institution": 2, "Pharmacy": 1, "Practitioner": 3, "Drug": 2, "Phone": 2, "Address": 2,
    "Visit": 8,
    "HAD": 7,  # v8's person Z is not in psn_info
    "AT→Institution": 7, "AT→Pharmacy": 1,
    "ATTENDED_BY": 7,  # v7's D9 is not in prac_info
    "DISPENSED": 1,  # v6 → X1 (two lines summed); X2 is a service item
    "WORKS_AT→Institution": 2, "WORKS_AT→Pharmacy": 1,
    "USES_PHONE": 3, "LIVES_AT": 3,
    "VISITED→Institution": 4,  # (A,H1) (B,H1) (C,H1) (C,H2)
    "VISITED→Pharmacy": 1,  # (A,P1)
    "TREATED_BY": 4,  # (A,D1) (B,D1) (C,D1) (A,D3); nothing for D9 (unknown) or Z (unknown person)
    "CO_ADMITTED": 1,  # A and B on 2 days at H1; C only once with them
}


def _insert(store: ClaimsStore, table: str, columns: str, rows: list[tuple]) -> None:
    marks = ", ".join("?" for _ in columns.split(","))
    store.con.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def _visit(store: ClaimsStore, mdtrt_id: str, psn: str, inst: str, med: str, when: str, dr: str,
           amount: float, fund: float) -> None:
    t = datetime.fromisoformat(when)
    _insert(store, "mdtrt", "mdtrt_id, psn_no, fixmedins_code, med_type, begntime, endtime, atddr_no, dise_codg",
            [(mdtrt_id, psn, inst, med, t, t, dr, "J18.9")])
    _insert(store, "setl", "setl_id, mdtrt_id, psn_no, fixmedins_code, setl_time, medfee_sumamt, fund_pay_sumamt, "
            "refd_setl_flag", [(f"S{mdtrt_id}", mdtrt_id, psn, inst, t, amount, fund, "0")])


def build_handmade_store(workspace: Path) -> ClaimsStore:
    """A tiny claims store whose graph is worked out in EXPECTED."""
    store = ClaimsStore.open(workspace)
    _insert(store, "medins_info", "fixmedins_code, fixmedins_name, fixmedins_type, hosp_lv",
            [("H1", "第一医院", "1", "01"), ("H2", "第二诊所", "1", "11"), ("P1", "康民药店", "2", None)])
    _insert(store, "prac_info", "prac_psn_code, prac_psn_name, prac_psn_type, fixmedins_code",
            [("D1", "王医生", "1", "H1"), ("D2", "李医生", "1", "H2"), ("D3", "赵药师", "3", "P1")])
    _insert(store, "psn_info", "psn_no, psn_name, gend, brdy, mob_hash, mob_masked, addr_key, live_addr",
            [("A", "张三", "1", datetime(1960, 1, 2).date(), "ph1", "138****0001", "ad1", "幸福路1号"),
             ("B", "李四", "2", datetime(1962, 3, 4).date(), "ph1", "138****0001", "ad2", "和平路2号"),
             ("C", "王五", "1", None, "ph2", "139****0002", "ad1", "幸福路1号"),
             ("D", "赵六", "2", None, None, None, None, None)])
    _insert(store, "hilist", "hilist_code, hilist_name, list_type, key_drug_flag",
            [("X1", "阿托伐他汀钙片", "101", "0"), ("X2", "血常规", "201", "0"), ("X3", "冬虫夏草", "102", "1")])
    _visit(store, "v1", "A", "H1", "21", "2025-01-05 09:00:00", "D1", 5000.0, 3500.0)
    _visit(store, "v2", "B", "H1", "21", "2025-01-05 10:00:00", "D1", 4000.0, 2800.0)
    _visit(store, "v3", "A", "H1", "21", "2025-02-10 09:00:00", "D1", 3000.0, 2100.0)
    _visit(store, "v4", "B", "H1", "21", "2025-02-10 11:00:00", "D1", 3500.0, 2450.0)
    _visit(store, "v5", "C", "H1", "21", "2025-01-05 15:00:00", "D1", 2000.0, 1400.0)
    _visit(store, "v6", "A", "P1", "41", "2025-03-01 08:30:00", "D3", 35.0, 0.0)
    _visit(store, "v7", "C", "H2", "11", "2025-03-02 10:00:00", "D9", 80.0, 40.0)
    _visit(store, "v8", "Z", "H2", "11", "2025-03-03 10:00:00", "D2", 60.0, 30.0)
    # A refund on v2 (net medfee 4000 - 1000 = 3000).
    _insert(store, "setl", "setl_id, mdtrt_id, psn_no, fixmedins_code, medfee_sumamt, fund_pay_sumamt, refd_setl_flag",
            [("Sv2r", "v2", "B", "H1", -1000.0, -700.0, "1")])
    _insert(store, "fee_list", "feedetl_sn, mdtrt_id, psn_no, hilist_code, list_type, cnt, det_item_fee_sumamt",
            [("1", "v6", "A", "X1", "101", 2.0, 20.0), ("2", "v6", "A", "X1", "101", 1.0, 10.0),
             ("3", "v6", "A", "X2", "201", 1.0, 5.0)])
    refresh_visit_fact(store.con)
    return store


@pytest.fixture
def handmade(tmp_path: Path, neo4j_clean: tuple[str, str, str]) -> tuple[ClaimsStore, Settings]:
    store = build_handmade_store(tmp_path / "ws")
    yield store, neo4j_settings(neo4j_clean, tmp_path / "ws")
    store.close()


def _query(settings: Settings, cypher: str, **params: object) -> list[dict]:
    with GraphDatabase.driver(settings.neo4j_uri, auth=(settings.neo4j_user, settings.neo4j_password)) as d:
        records, _, _ = d.execute_query(cypher, params, database_=settings.neo4j_database)
    return [r.data() for r in records]


def _model_counts(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k in EXPECTED}


def test_handmade_graph_matches_hand_counts(handmade: tuple[ClaimsStore, Settings]) -> None:
    store, settings = handmade
    stages: list[str] = []
    report = load_graph(store, settings, progress=lambda stage, done, total: stages.append(stage), batch_size=3)
    assert report.full
    assert _model_counts(graph_counts(settings)) == EXPECTED
    # Every part's rows in the claims store equal what Neo4j holds, and what the report says it wrote.
    for part in PARTS:
        n = int(store.con.execute(f"SELECT count(*) FROM ({part_rows_sql(part.name)})").fetchall()[0][0])
        assert n == EXPECTED[part.name], part.name
        assert next(p for p in report.parts if p.name == part.name).rows == n
    assert report.nodes_created == sum(EXPECTED[p.name] for p in PARTS if p.kind == "node")
    assert report.relationships_created == sum(EXPECTED[p.name] for p in PARTS if p.kind == "rel")
    assert {"prepare", "Person", "CO_ADMITTED"} <= set(stages)

    visited = _query(settings, "MATCH (:Person {psn_no: 'B'})-[r:VISITED]->(:Institution {fixmedins_code: 'H1'}) "
                               "RETURN r.visits AS visits, r.amount AS amount, r.first AS first, r.last AS last")
    assert visited == [{"visits": 2, "amount": 6500.0,  # 4000 - 1000 refund + 3500
                        "first": _neo_dt("2025-01-05 10:00:00"), "last": _neo_dt("2025-02-10 11:00:00")}]
    co = _query(settings, "MATCH (a:Person)-[r:CO_ADMITTED]->(b:Person) RETURN a.psn_no AS a, b.psn_no AS b, "
                          "r.times AS times")
    assert co == [{"a": "A", "b": "B", "times": 2}]
    disp = _query(settings, "MATCH (:Visit {mdtrt_id: 'v6'})-[r:DISPENSED]->(d:Drug) "
                            "RETURN d.hilist_code AS code, r.cnt AS cnt, r.amount AS amount")
    assert disp == [{"code": "X1", "cnt": 3.0, "amount": 30.0}]
    treated = _query(settings, "MATCH (:Person {psn_no: 'A'})-[r:TREATED_BY]->(p:Practitioner) "
                               "RETURN p.prac_psn_code AS p, r.visits AS visits ORDER BY p")
    assert treated == [{"p": "D1", "visits": 2}, {"p": "D3", "visits": 1}]
    person = _query(settings, "MATCH (p:Person {psn_no: 'A'}) RETURN p.psn_name AS name, p.brdy AS brdy, "
                              "p.mob_masked AS mob")
    assert person[0]["name"] == "张三" and str(person[0]["brdy"]) == "1960-01-02" and person[0]["mob"] == "138****0001"
    visit = _query(settings, "MATCH (v:Visit {mdtrt_id: 'v2'}) RETURN v.medfee_sumamt AS fee, v.med_type AS mt, "
                             "v.begntime AS t")
    assert visit == [{"fee": 3000.0, "mt": "21", "t": _neo_dt("2025-01-05 10:00:00")}]


def _neo_dt(text: str) -> object:
    from neo4j.time import DateTime

    return DateTime.from_native(datetime.fromisoformat(text))


def test_constraints_exist(handmade: tuple[ClaimsStore, Settings]) -> None:
    store, settings = handmade
    load_graph(store, settings)
    with GraphDatabase.driver(settings.neo4j_uri, auth=(settings.neo4j_user, settings.neo4j_password)) as d:
        found = existing_constraints(d, settings.neo4j_database)
    for name, (label, key) in CONSTRAINTS.items():
        assert found.get(name) == (label, key), name
    indexes = {r["name"] for r in _query(settings, "SHOW INDEXES YIELD name RETURN name")}
    assert {"visit_begntime", "lead_kind", "lead_severity"} <= indexes


def test_reload_changes_nothing(handmade: tuple[ClaimsStore, Settings]) -> None:
    store, settings = handmade
    first = load_graph(store, settings)
    stamp_query = "MATCH (s:FraudnetSync) RETURN s.ego_stamp AS stamp"
    assert first.hub_lists is not None and _query(settings, stamp_query) == [{"stamp": first.hub_lists.stamp}]
    before = graph_counts(settings)
    again = load_graph(store, settings)
    assert not again.full
    assert again.rows_sent == 0 and not again.changed
    assert graph_counts(settings) == before
    # Nothing changed: the hub lists stay valid under their stamp, without being rewritten.
    assert again.hub_lists is None and _query(settings, stamp_query) == [{"stamp": first.hub_lists.stamp}]
    # Even sending everything again (full) creates nothing new; the lists are rewritten under a new stamp.
    forced = load_graph(store, settings, full=True)
    assert forced.full and forced.rows_sent > 0
    assert forced.nodes_created == 0 and forced.relationships_created == 0
    assert graph_counts(settings) == before
    assert forced.hub_lists is not None and forced.hub_lists.stamp != first.hub_lists.stamp
    assert _query(settings, stamp_query) == [{"stamp": forced.hub_lists.stamp}]


def test_incremental_load_sends_only_new_and_changed_rows(handmade: tuple[ClaimsStore, Settings]) -> None:
    store, settings = handmade
    load_graph(store, settings)
    # A later day: A visits H2 (new visit, new VISITED edge), B is admitted again at H1 (VISITED B→H1 changes).
    _visit(store, "v9", "A", "H2", "11", "2025-04-01 09:00:00", "D2", 100.0, 50.0)
    _visit(store, "v10", "B", "H1", "21", "2025-04-02 09:00:00", "D1", 1000.0, 700.0)
    refresh_visit_fact(store.con)
    report = load_graph(store, settings)
    assert not report.full
    sent = {p.name: p.sent for p in report.parts if p.sent}
    assert sent == {"Visit": 2, "HAD": 2, "AT→Institution": 2, "ATTENDED_BY": 2, "VISITED→Institution": 2,
                    "TREATED_BY": 2}
    counts = graph_counts(settings)
    assert counts["Visit"] == EXPECTED["Visit"] + 2
    assert counts["VISITED→Institution"] == EXPECTED["VISITED→Institution"] + 1
    b_h1 = _query(settings, "MATCH (:Person {psn_no: 'B'})-[r:VISITED]->(:Institution {fixmedins_code: 'H1'}) "
                            "RETURN r.visits AS visits, r.amount AS amount")
    assert b_h1 == [{"visits": 3, "amount": 7500.0}]
    # A refund cancelling v9 changes the visit and the aggregated edge only.
    _insert(store, "setl", "setl_id, mdtrt_id, psn_no, fixmedins_code, medfee_sumamt, fund_pay_sumamt, "
            "refd_setl_flag", [("Sv9r", "v9", "A", "H2", -100.0, -50.0, "1")])
    refresh_visit_fact(store.con)
    report = load_graph(store, settings)
    assert {p.name: p.sent for p in report.parts if p.sent} == {"Visit": 1, "VISITED→Institution": 1,
                                                                  "TREATED_BY": 1}
    v9 = _query(settings, "MATCH (v:Visit {mdtrt_id: 'v9'}) RETURN v.medfee_sumamt AS fee, v.refunded AS refunded")
    assert v9 == [{"fee": 0.0, "refunded": True}]


def test_wiped_database_is_loaded_again(handmade: tuple[ClaimsStore, Settings]) -> None:
    store, settings = handmade
    load_graph(store, settings)
    clear_graph(settings)
    report = load_graph(store, settings)
    assert report.full
    assert _model_counts(graph_counts(settings)) == EXPECTED


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_neo4j_raises_and_leaves_claims_store_untouched(tmp_path: Path) -> None:
    store = build_handmade_store(tmp_path / "ws")
    try:
        uri = f"bolt://127.0.0.1:{_free_port()}"
        settings = Settings(workspace=tmp_path / "ws", neo4j_uri=uri, neo4j_password="whatever-pw")
        tables_before = store.con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        with pytest.raises(Neo4jUnavailableError, match=uri.replace(".", r"\.")):
            load_graph(store, settings)
        with pytest.raises(Neo4jUnavailableError, match=uri.replace(".", r"\.")):
            sync_leads([], settings)
        assert store.con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall() == tables_before
        assert not any(t[0].startswith("graph_sync") for t in tables_before)
    finally:
        store.close()


def test_wrong_password_is_unavailable(handmade: tuple[ClaimsStore, Settings]) -> None:
    store, settings = handmade
    bad = Settings(workspace=settings.workspace, neo4j_uri=settings.neo4j_uri, neo4j_password="not-the-password")
    with pytest.raises(Neo4jUnavailableError, match="refused the credentials"):
        load_graph(store, bad)


def test_sync_leads_links_entities_and_evidence(handmade: tuple[ClaimsStore, Settings]) -> None:
    store, settings = handmade
    load_graph(store, settings)
    ring = Lead(kind="collusion_ring", score=0.9, persons=["A", "B"], practitioners=["D1"], institutions=["H1"],
                evidence=["v1", "v2", "v3", "v4"], amount_at_risk=10850.0, period_start=datetime(2025, 1, 5, 9),
                period_end=datetime(2025, 2, 10, 11), explanation_zh="2人在H1同日入院2天", explanation_en="2 persons")
    resale = Lead(kind="drug_resale", score=0.65, persons=["A"], practitioners=["D3"], institutions=["P1"],
                  evidence=["v6", "unknown-visit"], amount_at_risk=0.0, period_start=None, period_end=None,
                  explanation_zh="倒卖", explanation_en="resale", features={"pharmacies": 1})
    leads = [{**ring.to_dict(), "status": "new"}, {**resale.to_dict(), "status": "reviewing"}]
    assert sync_leads(leads, settings) == 2
    counts = graph_counts(settings)
    assert counts["Lead"] == 2
    assert counts["INVOLVES→Person"] == 3
    assert counts["INVOLVES→Practitioner"] == 2
    assert counts["INVOLVES→Institution"] == 1
    assert counts["INVOLVES→Pharmacy"] == 1
    assert counts["EVIDENCED_BY→Visit"] == 5  # the unknown visit is skipped
    rows = _query(settings, "MATCH (l:Lead {lead_id: $id}) RETURN l.kind AS kind, l.severity AS severity, "
                            "l.status AS status, l.amount_at_risk AS amount, l.explanation_zh AS zh", id=ring.lead_id)
    assert rows == [{"kind": "collusion_ring", "severity": "red", "status": "new", "amount": 10850.0,
                     "zh": "2人在H1同日入院2天"}]
    # Re-syncing is idempotent; a changed member list drops the stale link; replace prunes other leads.
    assert sync_leads(leads, settings) == 2
    assert graph_counts(settings) == counts
    leads[0]["persons"] = ["A"]
    sync_leads(leads[:1], settings, replace=True)
    counts = graph_counts(settings)
    assert counts["Lead"] == 1 and counts["INVOLVES→Person"] == 1 and counts["EVIDENCED_BY→Visit"] == 4
    assert counts["INVOLVES→Pharmacy"] == 0


@pytest.mark.slow
def test_generated_city_counts_match_claims_store(small_claims_workspace: Path, tmp_path: Path,
                                                   neo4j_clean: tuple[str, str, str]) -> None:
    import shutil

    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(small_claims_workspace / "claims.duckdb", ws / "claims.duckdb")
    settings = neo4j_settings(neo4j_clean, ws)
    with ClaimsStore.open(ws) as store:
        report = load_graph(store, settings)
        counts = graph_counts(settings)
        for part in PARTS:
            n = int(store.con.execute(f"SELECT count(*) FROM ({part_rows_sql(part.name)})").fetchall()[0][0])
            assert counts[part.name] == n, part.name
        # Independent SQL on the contract tables for the main entities and visits.
        sql = {
            "Person": "SELECT count(*) FROM psn_info",
            "Visit": "SELECT count(*) FROM visit_fact",
            "Institution": "SELECT count(*) FROM medins_info WHERE coalesce(fixmedins_type, '') <> '2'",
            "Pharmacy": "SELECT count(*) FROM medins_info WHERE fixmedins_type = '2'",
            "Practitioner": "SELECT count(*) FROM prac_info",
            "Phone": "SELECT count(DISTINCT mob_hash) FROM psn_info WHERE mob_hash <> ''",
            "HAD": "SELECT count(*) FROM visit_fact WHERE psn_no IN (SELECT psn_no FROM psn_info)",
        }
        for name, q in sql.items():
            assert counts[name] == store.con.execute(q).fetchall()[0][0], name
        assert counts["Visit"] > 5000 and counts["CO_ADMITTED"] > 0 and counts["DISPENSED"] > 0
        assert report.relationships_created == sum(counts[p.name] for p in PARTS if p.kind == "rel")
        # Aggregated edges carry the visit totals: Σ VISITED.visits = visits of known persons at known places.
        agg = _query(settings, "MATCH (:Person)-[r:VISITED]->() RETURN sum(r.visits) AS visits, "
                               "round(sum(r.amount), 2) AS amount")[0]
        known = store.con.execute(
            "SELECT count(*), round(sum(medfee_sumamt), 2) FROM visit_fact WHERE psn_no IN (SELECT psn_no FROM "
            "psn_info) AND fixmedins_code IN (SELECT fixmedins_code FROM medins_info)").fetchall()[0]
        assert agg["visits"] == known[0]
        assert agg["amount"] == pytest.approx(float(known[1]), abs=0.05)
        again = load_graph(store, settings)
        assert again.rows_sent == 0 and graph_counts(settings) == counts


def test_parallel_workers_load_the_same_graph(handmade: tuple[ClaimsStore, Settings]) -> None:
    store, settings = handmade
    report = load_graph(store, settings, batch_size=2, workers=3)  # many tiny batches written at once
    assert _model_counts(graph_counts(settings)) == EXPECTED
    assert report.relationships_created == sum(EXPECTED[p.name] for p in PARTS if p.kind == "rel")
    forced = load_graph(store, settings, batch_size=2, workers=3, full=True)
    assert forced.nodes_created == 0 and forced.relationships_created == 0
    assert _model_counts(graph_counts(settings)) == EXPECTED


def test_first_load_batches_are_not_created_twice_on_a_retry(handmade: tuple[ClaimsStore, Settings]) -> None:
    """A driver retry of a committed CREATE batch (column-wise, by internal id) must create nothing."""
    from fraudnet.graph.neo4j_load import _create_tx, open_driver

    store, settings = handmade
    load_graph(store, settings)
    part = next(p for p in PARTS if p.name == "HAD")
    driver = open_driver(settings)
    try:
        ids = {r["k"]: r["i"] for r in driver.execute_query(
            "MATCH (n) WHERE n:Person OR n:Visit RETURN CASE WHEN n:Visit THEN n.mdtrt_id ELSE n.psn_no END AS k, "
            "id(n) AS i").records}
        cols = {"_a": [ids["A"]], "_b": [ids["v1"]]}  # A-HAD->v1 exists since the load
        with driver.session(database=settings.neo4j_database) as session:
            counters = session.execute_write(_create_tx, part.exists_cypher(by_id=True),
                                             part.create_cypher([], by_id=True), cols)
        assert counters == (0, 0, 0, 0, 0)
        assert _query(settings, "MATCH (:Person {psn_no: 'A'})-[r:HAD]->(:Visit {mdtrt_id: 'v1'}) "
                                "RETURN count(r) AS c")[0]["c"] == 1
    finally:
        driver.close()


def test_first_load_and_merge_load_write_the_same_properties(handmade: tuple[ClaimsStore, Settings]) -> None:
    """The CREATE-by-id path of a first load and the MERGE path of a full re-send give identical graphs."""
    store, settings = handmade
    dump = ("MATCH (a)-[r]->(b) RETURN type(r) AS t, coalesce(a.mdtrt_id, a.psn_no, a.prac_psn_code) AS a, "
            "coalesce(b.mdtrt_id, b.fixmedins_code, b.prac_psn_code, b.hilist_code, b.hash, b.key, b.psn_no) AS b, "
            "properties(r) AS p ORDER BY t, a, b")
    nodes = "MATCH (n:Visit) RETURN properties(n) AS p ORDER BY n.mdtrt_id"
    report = load_graph(store, settings)
    assert report.full and report.relationships_created == sum(
        v for k, v in EXPECTED.items() if k not in ("Person", "Institution", "Pharmacy", "Practitioner", "Drug",
                                                    "Phone", "Address", "Visit"))
    first = (_query(settings, dump), _query(settings, nodes))
    again = load_graph(store, settings, full=True)  # labels exist now: every row goes through MERGE … SET
    assert again.relationships_created == 0 and again.nodes_created == 0
    assert (_query(settings, dump), _query(settings, nodes)) == first


def test_first_load_by_key_when_ids_are_not_captured(handmade: tuple[ClaimsStore, Settings],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels too large for the id read-back are linked by key on a first load: same counts as by id."""
    from fraudnet.graph import neo4j_load

    store, settings = handmade
    monkeypatch.setattr(neo4j_load, "ID_CAPTURE_MAX", 0)
    report = load_graph(store, settings)
    created = {p.name: p.relationships_created for p in report.parts if p.kind == "rel"}
    assert created == {k: v for k, v in EXPECTED.items() if k in created}
    assert load_graph(store, settings, full=True).relationships_created == 0


def test_hub_lists_rank_neighbours_by_amount(handmade: tuple[ClaimsStore, Settings]) -> None:
    """H1's neighbours by hand: A 8,000 (v1 + v3), B 6,500 (v2 net of its refund + v4), C 2,000, D1 works there."""
    from fraudnet.graph.neo4j_hubs import write_hub_lists
    from fraudnet.graph.neo4j_load import open_driver

    store, settings = handmade
    load_graph(store, settings)
    h1 = "MATCH (h:Institution {fixmedins_code: 'H1'}) RETURN h.ego_ids AS ids, h.ego_cents AS cents, " \
         "h.ego_more AS more, h.ego_stamp AS stamp"
    driver = open_driver(settings)
    try:
        with driver.session(database=settings.neo4j_database) as session:
            cut = write_hub_lists(session, hub_degree=3, list_max=2)
            assert _query(settings, h1) == [{"ids": ["Person:A", "Person:B"], "cents": [800000, 650000],
                                             "more": 200000, "stamp": cut.stamp}]
            whole = write_hub_lists(session, hub_degree=3, list_max=10)
            assert _query(settings, h1) == [{"ids": ["Person:A", "Person:B", "Person:C", "Practitioner:D1"],
                                             "cents": [800000, 650000, 200000, 0], "more": -1,
                                             "stamp": whole.stamp}]
            assert whole.hubs == cut.hubs >= 2 and whole.removed == 0
            # No node has more than 10 entity relationships: every list goes.
            none = write_hub_lists(session, hub_degree=10)
            assert none.hubs == 0 and none.removed == whole.hubs
            assert _query(settings, h1) == [{"ids": None, "cents": None, "more": None, "stamp": None}]
    finally:
        driver.close()
