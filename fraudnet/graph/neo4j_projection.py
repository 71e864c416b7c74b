"""`read_projection`: Neo4j's entity graph read into memory, so link-chart ego networks are ranked without Cypher.

A 2-hop ego network ranks the neighbours of hospitals and pharmacies by amount; in Cypher that reads tens of
thousands of relationships per request (seconds on the M tier under 20 clients, even with the hubs' ranked lists).
The graph-analytics answer is the one GDS gives: project the graph once into memory and query the projection. This
module reads the entity nodes (with the properties answers show) and the aggregated entity relationships
(`VISITED`, `TREATED_BY`, `CO_ADMITTED`, `WORKS_AT`, `USES_PHONE`, `LIVES_AT`) out of Neo4j, in pages, into the
same `EntityGraph` the embedded store uses — Visit nodes are not read. The projection carries the load stamp it
was read under (`graph.neo4j_hubs`: every load that changes the graph sets a new one), so `Neo4jStore` can tell
when it is out of date and read it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from fraudnet.errors import StoreError
from fraudnet.graph.entity_graph import EDGE_COLUMNS, EDGE_TYPE_CODES, EntityGraph, NodeTable
from fraudnet.graph.model import ENTITY_TYPES, NODE_KEYS
from fraudnet.graph.neo4j_hubs import SYNC_ID
from fraudnet.graph.neo4j_schema import SYNC_LABEL
from fraudnet.graph.query_base import NODE_PROPS, normalize_value

__all__ = ["Neo4jProjection", "read_projection", "current_stamp", "ProjectionChanged"]

log = logging.getLogger(__name__)

# Rows per page: each page is one query whose columns come back as lists (far cheaper to decode than records).
PAGE_ROWS = 100_000

# (relationship type, start label, end labels): stored directions, as `graph.neo4j_load` writes them.
_RELATIONSHIPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("VISITED", "Person", ("Institution", "Pharmacy")),
    ("TREATED_BY", "Person", ("Practitioner",)),
    ("CO_ADMITTED", "Person", ("Person",)),
    ("WORKS_AT", "Practitioner", ("Institution", "Pharmacy")),
    ("USES_PHONE", "Person", ("Phone",)),
    ("LIVES_AT", "Person", ("Address",)),
)
# Per relationship type: Cypher for (visits, cents, first, last) of `r`, as `query_base` defines the entity edges.
# Times travel as epoch milliseconds of the stored local time read as UTC (decoding temporal values in the driver
# took 3× as long at the M tier as the whole rest of a row).
_MILLIS = "CASE WHEN r.{p} IS NULL THEN null ELSE datetime({{datetime: r.{p}, timezone: 'UTC'}}).epochMillis END"
_AGGREGATED = (f"r.visits | toInteger(round(coalesce(r.amount, 0.0) * 100)) | {_MILLIS.format(p='first')} | "
               f"{_MILLIS.format(p='last')}")
_MEASURES = {"VISITED": _AGGREGATED, "TREATED_BY": _AGGREGATED, "CO_ADMITTED": "r.times | 0 | null | null"}
_STRUCTURAL = "0 | 0 | null | null"


class ProjectionChanged(StoreError):
    """The graph was being loaded while the projection was read (its stamp changed): read it again later."""


class Neo4jProjection(EntityGraph):
    """The entity graph of a Neo4j database as it was under load stamp `stamp` (None: no completed load stamped)."""

    name = "neo4j"

    def __init__(self, tables: dict[str, NodeTable], edges: pd.DataFrame, stamp: str | None,
                 seconds: float = 0.0) -> None:
        self._build_entity_graph(tables, edges)
        self.stamp = stamp
        self.seconds = seconds
        self.built_at = time.time()


def current_stamp(session: Any) -> str | None:
    """The load stamp of the database (None while a load runs, or before the first stamped load)."""
    rec = session.run(f"MATCH (s:{SYNC_LABEL} {{id: $id}}) RETURN s.ego_stamp AS stamp", id=SYNC_ID).single()
    return rec["stamp"] if rec else None


def _start_pages(session: Any, label: str, tail: str, columns: list[str],
                 page_rows: int) -> list[list[tuple[Any, ...]]]:
    """Columns of `tail` (Cypher continuing from start node `a`) per page of start nodes of `label`, paged by their
    key through its uniqueness index: each page is one query answering one record (its rows as one list, since
    `collect` of a single column would drop nulls), turned into columns here."""
    key = NODE_KEYS[label]
    query = (f"CALL () {{ MATCH (a:{label}) WHERE a.{key} > $after RETURN a ORDER BY a.{key} LIMIT $page }} "
             f"WITH collect(a) AS starts "
             f"CALL (starts) {{ UNWIND starts AS a {tail} RETURN collect([{', '.join(columns)}]) AS rows }} "
             f"RETURN starts[-1].{key} AS last, size(starts) AS n, rows")
    pages: list[list[tuple[Any, ...]]] = []
    after = ""
    while True:
        rec = session.run(query, after=after, page=page_rows).single()
        if rec is None or not rec["n"]:
            return pages
        rows = rec["rows"]
        pages.append(list(zip(*rows, strict=True)) if rows else [() for _ in columns])
        if rec["n"] < page_rows:
            return pages
        after = rec["last"]


def read_projection(driver: Any, database: str, page_rows: int = PAGE_ROWS,
                    progress: Callable[[str, int], None] | None = None) -> Neo4jProjection:
    """Read the entity graph of `database` into a `Neo4jProjection`.

    Raises `ProjectionChanged` when the load stamp changed while reading (a load ran), `StoreError` when the
    database cannot be read. `progress(part, rows)` is called after each node label and relationship part.
    """
    import neo4j

    started = time.monotonic()
    try:
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
            stamp = current_stamp(session)
            tables: dict[str, NodeTable] = {}
            for label in ENTITY_TYPES:  # every node type but Visit and Lead
                props = NODE_PROPS[label]
                columns = ["a." + NODE_KEYS[label], *(f"a.{p}" for p in props)]
                pages = _start_pages(session, label, "", columns, page_rows)
                keys: list[str] = []
                rows: list[tuple[Any, ...]] = []
                for page in pages:
                    keys.extend(str(k) for k in page[0])
                    rows.extend(tuple(normalize_value(v) for v in values) for values in zip(*page[1:], strict=True))
                tables[label] = NodeTable(keys, rows)
                if progress:
                    progress(label, len(keys))
            frames = []
            for rtype, start, ends in _RELATIONSHIPS:
                measures = _MEASURES.get(rtype, _STRUCTURAL)
                for end in ends:
                    tail = f"MATCH (a)-[r:{rtype}]->(b:{end})"
                    columns = [f"a.{NODE_KEYS[start]}", f"b.{NODE_KEYS[end]}", *measures.split(" | ")]
                    count = 0
                    for page in _start_pages(session, start, tail, columns, page_rows):
                        s, t, visits, cents, first, last = page
                        if not s:
                            continue
                        count += len(s)
                        frames.append(pd.DataFrame({
                            "s": [f"{start}:{k}" for k in s], "t": [f"{end}:{k}" for k in t],
                            "et": EDGE_TYPE_CODES[rtype], "visits": pd.array(visits, dtype="Int64"),
                            "cents": pd.array(cents, dtype="Int64"),
                            "first": pd.to_datetime(pd.array(first, dtype="Int64"), unit="ms"),
                            "last": pd.to_datetime(pd.array(last, dtype="Int64"), unit="ms"),
                        }))
                    if progress:
                        progress(f"{rtype}→{end}", count)
            after = current_stamp(session)
    except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError) as exc:
        raise StoreError(f"cannot read the graph projection from Neo4j: {exc}") from exc
    if after != stamp:
        raise ProjectionChanged(f"the Neo4j graph was loaded while it was being read (stamp {stamp} → {after})")
    edges = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in EDGE_COLUMNS})
    projection = Neo4jProjection(tables, edges, stamp, time.monotonic() - started)
    log.info("Neo4j projection: %d nodes, %d edges in %.1f s (stamp %s)", projection.node_count,
             projection.edge_count, projection.seconds, stamp)
    return projection
