"""Neo4j schema of the fraud graph: a uniqueness constraint on every node key, indexes on Visit time and Lead."""

from __future__ import annotations

import logging
from typing import Any

from fraudnet.graph.model import NODE_KEYS

__all__ = ["CONSTRAINTS", "INDEXES", "SYNC_LABEL", "schema_statements", "ensure_schema", "existing_constraints"]

log = logging.getLogger(__name__)

# Label of the one bookkeeping node that ties a Neo4j database to the claims store's sync state.
SYNC_LABEL = "FraudnetSync"

# name -> (label, key property); one per node type of DESIGN.md §3.
CONSTRAINTS: dict[str, tuple[str, str]] = {
    f"{label.lower()}_{key}_unique": (label, key) for label, key in NODE_KEYS.items()
}
CONSTRAINTS["fraudnetsync_id_unique"] = (SYNC_LABEL, "id")
# name -> (label, property) range indexes.
INDEXES: dict[str, tuple[str, str]] = {
    "visit_begntime": ("Visit", "begntime"),
    "lead_kind": ("Lead", "kind"),
    "lead_severity": ("Lead", "severity"),
}


def schema_statements() -> list[str]:
    """The idempotent DDL statements (labels and names are fixed identifiers, never user input)."""
    stmts = [
        f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"
        for name, (label, key) in CONSTRAINTS.items()
    ]
    stmts += [f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"
              for name, (label, prop) in INDEXES.items()]
    return stmts


def existing_constraints(driver: Any, database: str) -> dict[str, tuple[str, str]]:
    """Uniqueness constraints in the database: name -> (label, property)."""
    records, _, _ = driver.execute_query(
        "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties "
        "WHERE type = 'UNIQUENESS' RETURN name, labelsOrTypes, properties",
        database_=database,
    )
    return {r["name"]: (r["labelsOrTypes"][0], r["properties"][0]) for r in records}


def ensure_schema(driver: Any, database: str, timeout_s: int = 300) -> list[str]:
    """Create missing constraints and indexes and wait until they are online; return the names created."""
    before = set(existing_constraints(driver, database))
    records, _, _ = driver.execute_query("SHOW INDEXES YIELD name RETURN name", database_=database)
    before |= {r["name"] for r in records}
    for stmt in schema_statements():
        driver.execute_query(stmt, database_=database)
    driver.execute_query("CALL db.awaitIndexes($t)", t=timeout_s, database_=database)
    created = [n for n in [*CONSTRAINTS, *INDEXES] if n not in before]
    if created:
        log.info("created Neo4j schema objects: %s", ", ".join(created))
    return created
