"""Ranked neighbour lists on Neo4j's hub nodes, so ego networks need not expand institutions in full.

A 2-hop ego network ranks the neighbours of its first layer by the amount that joins them to that layer. When the
layer holds hospitals, pharmacies or busy practitioners, Neo4j would read tens of thousands of relationships per
hub for every request. After each load, every entity node with more than `hub_degree` entity relationships gets
its neighbours in candidate order — amount in cents descending, then type order and key, as `query_base` ranks
them — in `ego_ids` (node ids) and `ego_cents`, at most `list_max` of them, and `ego_more`: the cents of the first
neighbour left out (-1 when none is). `Neo4jStore` reads a prefix of these lists and bounds what it has not read
(see `Neo4jStore._candidates_static`); it answers exactly as without them.

Lists are trusted only while the node's `ego_stamp` equals the sync node's: a load removes the sync node's stamp
before it writes anything and sets a new one once every list is rewritten, so a stale list is never used (queries
expand the hub instead, which is correct and slower).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fraudnet.graph.model import NODE_KEYS
from fraudnet.graph.neo4j_schema import SYNC_LABEL
from fraudnet.graph.query_base import TRAVERSED_TYPES, TYPE_ORDER

__all__ = ["HUB_DEGREE", "LIST_MAX", "HubReport", "SYNC_ID", "ENTITY_RELS", "clear_stamp", "restore_stamp",
           "write_hub_lists", "type_expr", "key_expr"]

log = logging.getLogger(__name__)

HUB_DEGREE = 500
LIST_MAX = 5000
SYNC_ID = "graph"
ENTITY_RELS = "VISITED|TREATED_BY|WORKS_AT|USES_PHONE|LIVES_AT|CO_ADMITTED"
ENTITY_LABELS = [t for t in NODE_KEYS if t not in ("Visit", "Lead")]
# Hub relationships summed per transaction: bounds the memory of one list-writing transaction.
_BATCH_RELS = 200_000


def type_expr(var: str) -> str:
    """Cypher expression: the node's fraudnet type label (needs the `$labels` parameter)."""
    return f"[l IN labels({var}) WHERE l IN $labels][0]"


def key_expr(var: str, type_var: str) -> str:
    """Cypher expression: the node's key property for its type."""
    cases = " ".join(f"WHEN '{t}' THEN {var}.{k}" for t, k in NODE_KEYS.items() if t in ENTITY_LABELS)
    return f"CASE {type_var} {cases} END"


@dataclass
class HubReport:
    """What `write_hub_lists` did: hubs listed, list entries written, lists removed, seconds."""

    stamp: str
    hubs: int = 0
    entries: int = 0
    removed: int = 0
    seconds: float = 0.0


def clear_stamp(session: Any) -> str | None:
    """Invalidate every hub list (before a load changes relationships); returns the stamp removed, if any."""
    rec = session.run(f"MATCH (s:{SYNC_LABEL} {{id: $id}}) WITH s, s.ego_stamp AS old REMOVE s.ego_stamp "
                      "RETURN old", id=SYNC_ID).single()
    return rec["old"] if rec else None


def restore_stamp(session: Any, stamp: str) -> None:
    """Put back the stamp `clear_stamp` removed, after a load that changed nothing."""
    session.run(f"MATCH (s:{SYNC_LABEL} {{id: $id}}) SET s.ego_stamp = $stamp", id=SYNC_ID, stamp=stamp).consume()


def write_hub_lists(session: Any, hub_degree: int = HUB_DEGREE, list_max: int = LIST_MAX,
                    progress: Callable[[str, int, int], None] | None = None) -> HubReport:
    """Rewrite the ranked neighbour lists of every hub under a new stamp, drop the lists of former hubs, then set
    the stamp on the sync node (which must exist). `hub_degree`: entity relationships above which a node is
    listed; `list_max`: neighbours kept per list."""
    if hub_degree < 1 or list_max < 1:
        raise ValueError("hub_degree and list_max must be at least 1")
    t0 = time.monotonic()
    report = HubReport(stamp=uuid.uuid4().hex)
    hubs: list[tuple[str, int]] = []
    for label in TRAVERSED_TYPES:
        rows = session.run(f"MATCH (h:{label}) WITH h, COUNT {{ (h)-[:{ENTITY_RELS}]-() }} AS d WHERE d > $d "
                           "RETURN elementId(h) AS id, d", d=hub_degree).values()
        hubs += [(r[0], int(r[1])) for r in rows]
    total = len(hubs)
    query = (
        "UNWIND $ids AS hid MATCH (h) WHERE elementId(h) = hid "
        "CALL (h) { "
        f"  MATCH (h)-[r:{ENTITY_RELS}]-(m) "
        "   WITH m, sum(round(coalesce(r.amount, 0.0) * 100)) AS c "
        f"  WITH m, c, {type_expr('m')} AS t "
        f"  WITH c, t, {key_expr('m', 't')} AS k ORDER BY c DESC, $order[t], k "
        "   WITH collect(t + ':' + k) AS ids, collect(toInteger(c)) AS cs "
        "   RETURN ids[0..$max] AS top, cs[0..$max] AS cents, "
        "          CASE WHEN size(cs) > $max THEN cs[$max] ELSE -1 END AS more } "
        "SET h.ego_ids = top, h.ego_cents = cents, h.ego_more = more, h.ego_stamp = $stamp "
        "RETURN sum(size(top)) AS entries")
    batch: list[str] = []
    rels = 0
    done = 0

    def flush() -> None:
        nonlocal rels, done
        if batch:
            rec = session.run(query, ids=batch, labels=ENTITY_LABELS, order=TYPE_ORDER, max=list_max,
                              stamp=report.stamp).single()
            report.entries += int(rec["entries"] or 0) if rec else 0
            done += len(batch)
            batch.clear()
            rels = 0
            if progress:
                progress("hub lists", done, total)

    for hid, degree in hubs:
        batch.append(hid)
        rels += degree
        if rels >= _BATCH_RELS:
            flush()
    flush()
    report.hubs = total
    for label in TRAVERSED_TYPES:
        rec = session.run(f"MATCH (h:{label}) WHERE h.ego_stamp IS NOT NULL AND h.ego_stamp <> $stamp "
                          "REMOVE h.ego_ids, h.ego_cents, h.ego_more, h.ego_stamp RETURN count(h) AS n",
                          stamp=report.stamp).single()
        report.removed += int(rec["n"]) if rec else 0
    session.run(f"MATCH (s:{SYNC_LABEL} {{id: $id}}) SET s.ego_stamp = $stamp, s.ego_hub_degree = $d, "
                "s.ego_list_max = $max", id=SYNC_ID, stamp=report.stamp, d=hub_degree, max=list_max).consume()
    report.seconds = time.monotonic() - t0
    log.info("hub lists: %d hubs, %d entries, %d old lists removed in %.1f s", report.hubs, report.entries,
             report.removed, report.seconds)
    return report
