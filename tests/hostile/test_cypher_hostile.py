"""Read-only Cypher bypass attempts: quoted procedure names, SHOW/admin commands, refused queries audited."""

from __future__ import annotations

import pytest

from fraudnet.errors import InvalidRequestError
from fraudnet.graph.cypher_guard import check_plan, check_read_only


@pytest.mark.parametrize(("query", "named"), [
    ("CALL `dbms`.`listConfig`()", "dbms.listConfig"),
    ("CALL `dbms`.`killConnections`($ids)", "dbms.killConnections"),
    ("CALL `dbms.listConfig`()", "dbms.listConfig"),
    ("CALL dbms . listConfig()", "dbms.listConfig"),
    ("MATCH (n) WITH count(n) AS c CALL `db`.`clearQueryCaches`() RETURN c", "db.clearQueryCaches"),
    ("CALL apoc.meta.graph()", "apoc.meta.graph"),
    ("SHOW USERS", "SHOW"),
    ("SHOW SETTINGS YIELD name, value RETURN name, value", "SHOW"),
    ("show transactions", "SHOW"),
    ("TERMINATE TRANSACTIONS 'neo4j-transaction-1'", "TERMINATE"),
])
def test_text_guard_refuses_quoted_procedures_and_admin_commands(query: str, named: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        check_read_only(query)
    assert named in str(err.value) and err.value.field == "query"


@pytest.mark.parametrize("query", ["MATCH (`CREATE`) RETURN 1", "CALL db.labels() YIELD label RETURN label",
                                   "CALL `db`.`relationshipTypes`()", "MATCH (n {show: 'SHOW USERS'}) RETURN n"])
def test_text_guard_still_lets_reads_and_allowed_procedures_through(query: str) -> None:
    assert check_read_only(query) == query


@pytest.mark.parametrize(("query_type", "plan", "named"), [
    ("rw", {"operatorType": "ProduceResults@neo4j", "args": {}, "children": []}, "'rw'"),
    ("s", {"operatorType": "CreateIndex@neo4j", "args": {}, "children": []}, "CreateIndex"),
    ("s", {"operatorType": "ProduceResults@neo4j", "args": {}, "children": []}, "'s'"),
    ("r", {"operatorType": "ProduceResults@neo4j", "args": {}, "children": [
        {"operatorType": "ShowSettings@neo4j", "args": {}, "children": []}]}, "ShowSettings"),
    ("r", {"operatorType": "ProduceResults@neo4j", "args": {}, "children": [
        {"operatorType": "ProcedureCall@neo4j", "args": {"Details": "dbms.listConfig(\"\") :: (name :: STRING)"},
         "children": []}]}, "dbms.listConfig"),
    ("r", {"operatorType": "ProcedureCall@neo4j", "args": {}, "children": []}, "cannot be read"),
])
def test_plan_guard_refuses_what_the_plan_shows(query_type: str, plan: dict, named: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        check_plan(query_type, plan)
    assert named in str(err.value)


def test_plan_guard_accepts_a_read_plan_with_an_allowed_procedure() -> None:
    plan = {"operatorType": "ProduceResults@neo4j", "args": {}, "children": [
        {"operatorType": "ProcedureCall@neo4j", "args": {"Details": "db.labels() :: (label :: STRING)"},
         "children": []}]}
    check_plan("r", plan)


@pytest.mark.neo4j
def test_real_neo4j_plans_are_checked_before_the_statement_runs(neo4j_server: tuple[str, str, str]) -> None:
    """Past the text guard, Neo4j's own EXPLAIN decides: admin procedures and SHOW are refused, reads run."""
    import neo4j

    from fraudnet.graph.neo4j_cypher import run_read_cypher

    uri, user, password = neo4j_server
    with neo4j.GraphDatabase.driver(uri, auth=(user, password)) as driver:
        for query, named in (("CALL dbms.listConfig()", "dbms.listConfig"),
                             ("CALL dbms.killConnections($ids)", "dbms.killConnections"),
                             ("SHOW SETTINGS", "Show"), ("SHOW TRANSACTIONS", "Show")):
            with pytest.raises(InvalidRequestError) as err:
                run_read_cypher(driver, "neo4j", query, {"ids": ["bolt-1"]})
            assert named in str(err.value), (query, str(err.value))
        ok = run_read_cypher(driver, "neo4j", "CALL db.labels() YIELD label RETURN count(label) AS n")
        assert ok["columns"] == ["n"]
        assert run_read_cypher(driver, "neo4j", "RETURN 1 AS one")["rows"] == [[1]]
