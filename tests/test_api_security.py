"""Tokens (hash-only storage, revoke), the append-only audit chain, the read-only Cypher guard, GraphML export."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import duckdb
import networkx as nx
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from fraudnet.claims import audit
from fraudnet.errors import InvalidRequestError, NotFoundError
from fraudnet.exports.graphml import subgraph_to_graphml, subgraph_to_json
from fraudnet.graph.cypher_guard import check_read_only
from fraudnet.graph.model import Edge, Node, Subgraph


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    audit.ensure_tables(c)
    return c


def test_tokens_are_stored_only_as_hashes_and_can_be_revoked(tmp_path: Path) -> None:
    import sqlite3

    con = duckdb.connect(str(tmp_path / "claims.duckdb"))  # the claims store's file names the workspace
    token = audit.create_token(con, "alice", "investigator")
    other = audit.create_token(con, "bob", "viewer")
    assert token.startswith("fn_") and token != other
    stored = sqlite3.connect(tmp_path / "tokens.db").execute("SELECT * FROM tokens").fetchall()
    secret = token.split("_", 2)[2]
    assert len(stored) == 2 and not any(token in str(v) or secret in str(v) for row in stored for v in row)
    info = audit.verify_token(con, token)
    assert (info.user, info.role) == ("alice", "investigator")
    assert audit.verify_token(con, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert audit.verify_token(con, "garbage") is None
    assert audit.revoke_token(con, token) == 1
    assert audit.verify_token(con, token) is None
    assert audit.verify_token(con, other) is not None
    assert [t.user for t in audit.list_tokens(con, include_revoked=False)] == ["bob"]
    assert [t.revoked_at is not None for t in audit.list_tokens(con)] == [True, False]
    with pytest.raises(NotFoundError):
        audit.revoke_token(con, "alice")  # already revoked
    with pytest.raises(InvalidRequestError):
        audit.create_token(con, "eve", "superuser")
    with pytest.raises(InvalidRequestError):
        audit.create_token(con, "bad user; drop", "viewer")


def test_audit_log_chain_detects_edits_and_deletions(con: duckdb.DuckDBPyConnection) -> None:
    for i in range(5):
        audit.append_audit(con, f"u{i % 2}", "entity.profile", role="viewer", entities=[f"Person:P{i}"],
                           method="GET", path=f"/api/entities/Person:P{i}", detail={"i": i})
    assert audit.verify_audit_chain(con) == (True, None)
    rows = audit.query_audit(con, user="u1")
    assert [r.seq for r in rows] == [4, 2] and rows[0].entities == ["Person:P3"] and rows[0].detail == {"i": 3}
    assert [r.seq for r in audit.query_audit(con, entity="Person:P0")] == [1]
    assert audit.query_audit(con, since=datetime(2999, 1, 1)) == []
    con.execute("UPDATE audit_log SET \"user\" = 'mallory' WHERE seq = 3")
    assert audit.verify_audit_chain(con) == (False, 3)
    con.execute("UPDATE audit_log SET \"user\" = 'u0' WHERE seq = 3")
    assert audit.verify_audit_chain(con) == (True, None)
    con.execute("DELETE FROM audit_log WHERE seq = 2")
    assert audit.verify_audit_chain(con) == (False, 2)


_AWKWARD = ["Person:张三", 'Person:a"b', "Person:back\\slash", "Person:tab\tx", "Lead:L/1", "Person:e\u0301"]


@given(st.lists(st.text(min_size=1, max_size=12), max_size=6), st.text(max_size=20), st.none() | st.integers(0, 999))
def test_writer_hashes_the_canonical_text(entities: list[str], user: str, status: int | None) -> None:
    """The writer encodes an entry's entity list once and builds the hashed text around it; that text is exactly
    `_canonical`'s (which `verify_audit_chain` recomputes from the stored list)."""
    at = datetime(2026, 12, 3, 9, 30, 1, 123456)
    detail = '{"depth": 2, "note": "核查\\n"}'
    assert audit._canonical_from(at, user, "viewer", "graph.ego", "GET", "/p?x=1", status,
                                 audit._entities_json(entities), detail) == \
        audit._canonical(at, user, "viewer", "graph.ego", "GET", "/p?x=1", status, entities, detail)
    assert audit._entities_of(audit._entities_json(entities)) == entities


def test_audit_writer_entries_verify_and_are_found_by_entity(con: duckdb.DuckDBPyConnection) -> None:
    log = audit.AuditLog(con.cursor, window_s=0.01)
    many = [f"Person:{i:020d}" for i in range(480)]
    log.append("alice", "graph.ego", role="investigator", entities=["Person:C1", *many, "Person:C1"],
               method="GET", path="/api/graph/ego/Person:C1?depth=2", detail={"nodes": 481})
    log.append("bob", "entity.profile", role="viewer", entities=_AWKWARD, method="GET", path="/x")
    log.flush()
    log.close()
    audit.append_audit(con, "carol", "lead.status", entities=["Lead:L/1"])
    assert audit.verify_audit_chain(con) == (True, None)
    first = audit.query_audit(con, user="alice")[0]
    assert first.entities == ["Person:C1", *many]  # deduplicated, in order
    assert [r.user for r in audit.query_audit(con, entity="Lead:L/1")] == ["carol", "bob"]
    assert [r.user for r in audit.query_audit(con, entity='Person:a"b')] == ["bob"]
    assert audit.query_audit(con, entity="Person:a") == []  # whole ids only, not substrings
    assert audit.query_audit(con, entity=many[-1])[0].user == "alice"
    con.execute("UPDATE audit_log SET entities = replace(entities, 'Person:张三', 'Person:李四') WHERE seq = 2")
    assert audit.verify_audit_chain(con) == (False, 2)


def test_audit_log_of_list_form_is_converted_and_still_verifies(tmp_path: Path) -> None:
    """A claims store written before entities became JSON text: on open its entries are converted, the chain still
    verifies, queries by entity find them, and new entries chain on."""
    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    ddl = audit._DDL[0].replace("entities VARCHAR,", "entities VARCHAR[],")
    assert "VARCHAR[]" in ddl
    old.execute(ddl)
    prev = audit._GENESIS
    for seq, ents in enumerate([["Person:P1", "Person:张三"], [], _AWKWARD], start=1):
        at = datetime(2026, 11, 1, 8, seq)
        body = audit._canonical(at, "u", "viewer", "entity.profile", "GET", "/p", 200, ents, "{}")
        entry = __import__("hashlib").sha256((prev + body).encode()).hexdigest()
        old.execute(f"INSERT INTO audit_log ({audit._ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, at, "u", "viewer", "entity.profile", "GET", "/p", 200, ents, "{}", prev, entry])
        prev = entry
    old.close()
    con = duckdb.connect(str(path))
    audit.ensure_tables(con)
    kind = con.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'audit_log' "
                       "AND column_name = 'entities'").fetchone()[0]
    assert kind == "VARCHAR"
    assert audit.verify_audit_chain(con) == (True, None)
    assert [r.seq for r in audit.query_audit(con, entity="Person:张三")] == [3, 1]  # newest first
    assert audit.query_audit(con, entity="Person:tab\tx")[0].entities == _AWKWARD
    audit.append_audit(con, "u2", "lead.status", entities=["Lead:X"])
    assert audit.verify_audit_chain(con) == (True, None)
    audit.ensure_tables(con)  # converting twice is a no-op
    assert audit.verify_audit_chain(con) == (True, None)


def test_tokens_cli_create_list_revoke(tmp_path: Path) -> None:
    from fraudnet.cli import main

    runner = CliRunner()
    ws = str(tmp_path / "ws")
    r = runner.invoke(main, ["-w", ws, "tokens", "create", "--user", "zhang", "--role", "admin"])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[0]
    assert token.startswith("fn_")
    listed = runner.invoke(main, ["-w", ws, "tokens", "list"])
    assert "zhang" in listed.output and token not in listed.output and token[3:11] in listed.output
    assert runner.invoke(main, ["-w", ws, "tokens", "revoke", token[3:11]]).exit_code == 0
    assert runner.invoke(main, ["-w", ws, "tokens", "revoke", token[3:11]]).exit_code != 0
    bad = runner.invoke(main, ["-w", ws, "tokens", "create", "--user", "x", "--role", "root"])
    assert bad.exit_code != 0
    from fraudnet.claims.store import ClaimsStore

    with ClaimsStore.open(ws) as store:
        assert audit.verify_token(store.con, token) is None
        actions = [e.action for e in audit.query_audit(store.con)]
        assert actions == ["token.revoke", "token.create"]


@pytest.mark.parametrize("query", [
    "MATCH (n:Person {psn_no: $p}) RETURN n LIMIT 5",
    "MATCH (n {note: 'CREATE (x)'}) RETURN n",
    "MATCH (n) // SET n.x = 1\nRETURN count(n)",
    "MATCH (n) /* DELETE n */ RETURN n.created_at, n.settled",
    "MATCH p = shortestPath((a:Person)-[*..4]-(b:Person)) RETURN p",
    "CALL db.labels() YIELD label RETURN label",
    "MATCH (`CREATE`) RETURN 1",
    "MATCH (n) WITH n ORDER BY n.x RETURN collect(n) AS nodes",
])
def test_cypher_guard_lets_reads_through(query: str) -> None:
    assert check_read_only(query) == query


@pytest.mark.parametrize(("query", "clause"), [
    ("CREATE (n:Person)", "CREATE"),
    ("MATCH (n) MERGE (m:X)", "MERGE"),
    ("MATCH (n) SET n.risk = 1", "SET"),
    ("MATCH (n) DELETE n", "DELETE"),
    ("match (n) detach delete n", "DETACH"),
    ("MATCH (n) REMOVE n:Person", "REMOVE"),
    ("DROP CONSTRAINT person_key", "DROP"),
    ("LOAD CSV FROM 'file:///x.csv' AS row RETURN row", "LOAD CSV"),
    ("MATCH (n) FOREACH (x IN [1] | CREATE (:Y))", "FOREACH"),
    ("CALL dbms.security.createUser('x', 'y', false)", "dbms.security.createUser"),
    ("CALL apoc.create.node(['X'], {})", "apoc.create.node"),
    ("CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {})", "apoc.periodic.iterate"),
    ("CALL apoc.cypher.runWrite('CREATE ()', {})", "apoc.cypher.runWrite"),
    ("CALL gds.pageRank.write('g', {writeProperty: 'pr'})", "gds.pageRank.write"),
    ("MATCH (n) CALL { WITH n RETURN n } IN TRANSACTIONS RETURN n", "IN TRANSACTIONS"),
    ("USE system SHOW USERS", "USE"),
    ("GRANT ROLE admin TO bob", "GRANT"),
])
def test_cypher_guard_refuses_writes_naming_the_clause(query: str, clause: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        check_read_only(query)
    assert clause in str(err.value) and err.value.field == "query"


@pytest.mark.parametrize("query", ["", "   ", "MATCH (n) WHERE n.a = 'x RETURN n", "MATCH (n) /* RETURN n"])
def test_cypher_guard_refuses_malformed(query: str) -> None:
    with pytest.raises(InvalidRequestError):
        check_read_only(query)


def test_graphml_has_typed_keys_and_round_trips() -> None:
    sub = Subgraph(
        nodes=[Node("Person:P1", "Person", "P1", "张三", {"gend": "1", "age": 40, "evidence": True, "type": "x"},
                    0.75),
               Node("Institution:H1", "Institution", "H1", "仁和医院", {"beds": 120.5, "tags": ["a", "b"]}),
               Node("Visit:V1", "Visit", "V1", "V1", {"begntime": datetime(2025, 1, 2, 8, 30), "evidence": True})],
        edges=[Edge("VISITED:Person:P1->Institution:H1", "VISITED", "Person:P1", "Institution:H1", 3, 1200.5,
                    datetime(2025, 1, 1), datetime(2025, 3, 1)),
               Edge("HAD:Person:P1->Visit:V1", "HAD", "Person:P1", "Visit:V1"),
               Edge("AT:Visit:V1->Institution:H9", "AT", "Visit:V1", "Institution:H9")])  # dangling: dropped
    data = subgraph_to_graphml(sub)
    text = data.decode("utf-8")
    assert '<key id="n3" for="node" attr.name="risk" attr.type="double"' in text
    assert 'attr.name="age" attr.type="long"' in text and 'attr.name="evidence" attr.type="boolean"' in text
    assert 'attr.name="amount" attr.type="double"' in text and 'attr.name="visits" attr.type="long"' in text
    g = nx.read_graphml(io.BytesIO(data))
    assert sorted(g.nodes) == ["Institution:H1", "Person:P1", "Visit:V1"]
    assert g.nodes["Person:P1"]["label"] == "张三" and g.nodes["Person:P1"]["age"] == 40
    assert g.nodes["Person:P1"]["prop_type"] == "x" and g.nodes["Person:P1"]["risk"] == 0.75
    assert g.nodes["Institution:H1"]["tags"] == '["a", "b"]'
    assert g.nodes["Visit:V1"]["begntime"] == "2025-01-02T08:30:00"
    e = g.edges["Person:P1", "Institution:H1"]
    assert (e["type"], e["visits"], e["amount"], e["first"]) == ("VISITED", 3, 1200.5, "2025-01-01T00:00:00")
    assert g.number_of_edges() == 2
    js = subgraph_to_json(sub).decode("utf-8")
    assert '"begntime": "2025-01-02T08:30:00"' in js and "张三" in js


def test_audit_writer_batches_in_call_order_and_keeps_the_chain(tmp_path: Path) -> None:
    import threading

    db = duckdb.connect(str(tmp_path / "a.duckdb"))
    audit.ensure_tables(db)
    audit.append_audit(db, "cli", "token.create")  # an entry written before the server started
    writer = audit.AuditLog(db.cursor)

    def burst(k: int) -> None:
        for i in range(50):
            writer.append(f"user{k}", "entity.profile", role="viewer", entities=[f"Person:P{k}-{i}"],
                          detail={"i": i})

    threads = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.flush()
    rows = audit.query_audit(db, limit=1000)
    assert len(rows) == 201 and [r.seq for r in rows] == list(range(201, 0, -1))
    for k in range(4):  # each caller's entries keep their order
        mine = [r.detail["i"] for r in reversed(rows) if r.user == f"user{k}"]
        assert mine == list(range(50))
    assert audit.verify_audit_chain(db) == (True, None)
    writer.append("late", "lead.read")
    writer.close()
    assert audit.query_audit(db, limit=1)[0].user == "late"
    assert audit.verify_audit_chain(db) == (True, None) and writer.errors == 0
