"""`Neo4jStore`: the graph queries answered by Cypher over the model `fraudnet.graph.neo4j_load` writes.

Semantics are those of `fraudnet.graph.query_base` (shared with `EmbeddedStore`); every query is a
parameterised read (`routing_=READ`, `database_=` on every call). Labels in the query text only ever come
from the fixed `model.NODE_KEYS` table. Time-windowed aggregates are recomputed from `Visit` nodes
(`HAD`/`AT`/`ATTENDED_BY`) instead of the stored `VISITED`/`TREATED_BY`/`CO_ADMITTED` relationships.
Ego networks without a window read the hubs' ranked neighbour lists (`graph.neo4j_hubs`) rather than expanding
them, and take the relationships among their nodes from the ends that are not hubs. A long-running reader (the
API) can hold an in-memory projection of the entity graph instead (`start_projection`, `graph.neo4j_projection`):
ego networks without a window are then answered from it, as of the last completed load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from fraudnet.claims.store import ClaimsStore
from fraudnet.config import Settings
from fraudnet.contract import INPATIENT_MED_TYPES
from fraudnet.errors import Neo4jUnavailableError, StoreError
from fraudnet.graph.model import (
    DEFAULT_NODE_CAP,
    NODE_KEYS,
    Edge,
    EntityProfile,
    GraphPath,
    Node,
    Subgraph,
    TimelineEvent,
    node_id,
    split_node_id,
)
from fraudnet.graph.neo4j_hubs import ENTITY_LABELS as _ENTITY_LABELS
from fraudnet.graph.neo4j_hubs import ENTITY_RELS, HUB_DEGREE, SYNC_ID
from fraudnet.graph.neo4j_hubs import key_expr as _key_expr
from fraudnet.graph.neo4j_hubs import type_expr as _type_expr
from fraudnet.graph.neo4j_projection import Neo4jProjection, ProjectionChanged, current_stamp, read_projection
from fraudnet.graph.neo4j_schema import SYNC_LABEL
from fraudnet.graph.query_base import (
    MAX_PERSON_KEYS,
    NODE_PROPS,
    TYPE_ORDER,
    BaseGraphStore,
    VisitRow,
    build_node,
    cents,
    make_edge,
    normalize_value,
)
from fraudnet.graph.store import GraphRefresh, ProgressFn, StoreStatus

__all__ = ["Neo4jStore", "ENTITY_RELS"]

log = logging.getLogger(__name__)

STRUCTURAL_RELS = "WORKS_AT|USES_PHONE|LIVES_AT"
_LO = datetime(1, 1, 1)
_HI = datetime(9999, 12, 31)
_INPATIENT = sorted(INPATIENT_MED_TYPES)
_VISIT_COLS = ("id", "psn_no", "inst", "it", "atddr", "prac_known", "med_type", "b", "e", "dise", "mc", "fc")
# Every property an entity node may show (`build_node` keeps its type's own): hub lists are never read with a node.
_NODE_FIELDS = ", ".join(f".{p}" for p in dict.fromkeys(p for t in _ENTITY_LABELS for p in NODE_PROPS.get(t, ())))


def _group(ids: Sequence[str]) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for nid in ids:
        t, k = split_node_id(nid)
        if t in _ENTITY_LABELS:
            keys.setdefault(t, []).append(k)
    return keys


_PLAN_LIST_MIN = 11
_NO_KEY = "\u0000"  # no entity key is empty or starts with NUL (ingest rejects both)


def _match_union(keys: dict[str, list[str]], var: str = "n", prefix: str = "k") -> tuple[str, dict[str, Any]]:
    """A `CALL () { … UNION … }` binding `var` to the nodes given by type → keys, and its parameters
    (named `<prefix>_<type>`: two node sets in one query need two prefixes).

    Every entity label is always present so the query text is the same whatever mix of types is asked for, and
    every key list is padded to `_PLAN_LIST_MIN` entries with a key no node has: Neo4j plans a query again for
    each new bucket of list sizes (0, 1, 2, 3–10, …), ≈ 0.4 s for an ego query, which with seven lists made
    nearly every ego network a new plan.
    """
    parts = []
    params: dict[str, Any] = {}
    for t in _ENTITY_LABELS:
        given = keys.get(t, [])
        params[f"{prefix}_{t}"] = given + [_NO_KEY] * (_PLAN_LIST_MIN - len(given)) if len(given) < _PLAN_LIST_MIN \
            else given
        parts.append(f"MATCH ({var}:{t}) WHERE {var}.{NODE_KEYS[t]} IN ${prefix}_{t} RETURN {var}")
    return "CALL () { " + " UNION ".join(parts) + " }", params


class Neo4jStore(BaseGraphStore):
    """`GraphStore` over a running Neo4j (our launcher, a server, a cluster or Aura) through the Bolt driver."""

    name = "neo4j"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        import neo4j

        self._neo4j = neo4j
        self._settings = settings
        self._db = settings.neo4j_database or "neo4j"
        if not settings.neo4j_uri:
            raise StoreError("NEO4J_URI is not set; cannot open the Neo4j graph store / 未配置 NEO4J_URI")
        auth = (settings.neo4j_user, settings.neo4j_password) if settings.neo4j_password else None
        try:
            self._driver = neo4j.GraphDatabase.driver(settings.neo4j_uri, auth=auth, max_connection_pool_size=50)
            self._driver.verify_connectivity()
        except (neo4j.exceptions.ServiceUnavailable, OSError) as exc:
            raise Neo4jUnavailableError(
                f"Neo4j is unreachable at {settings.neo4j_uri}: {exc} / 无法连接 Neo4j") from exc
        except neo4j.exceptions.Neo4jError as exc:
            raise StoreError(f"Neo4j at {settings.neo4j_uri} refused the connection: {exc}") from exc
        self._pharmacy_codes: set[str] | None = None
        # At most `neo4j_concurrency` requests query Neo4j at once; a request keeps its slot for all its queries
        # (with a slot per query, a 5-query ego queued 5 times and the p95 rose by half).
        self._slots = threading.BoundedSemaphore(max(1, settings.neo4j_concurrency))
        self._holding = threading.local()
        self._projection: Neo4jProjection | None = None
        self._projection_state = "off"  # off | reading | ready | failed
        self._projection_error = ""
        self._closing = threading.Event()
        self._poller: threading.Thread | None = None
        self._probe: tuple[float, bool] = (-self._PROBE_EVERY_S, False)  # (when, whether Bolt answered)

    # ---- GraphStore capabilities ---------------------------------------------------------------------------------
    supports_cypher = True
    syncs_leads = True
    _PROBE_EVERY_S = 5.0

    def status(self) -> StoreStatus:
        """The URI, whether Bolt answers (checked at most every 5 s) and the projection's state."""
        checked, ok = self._probe
        if time.monotonic() - checked >= self._PROBE_EVERY_S:
            try:
                self._driver.verify_connectivity()
                ok = True
            except Exception:  # any failure to answer is "unreachable"; the reason is not the health check's
                ok = False
            self._probe = (time.monotonic(), ok)
        return StoreStatus(store=self.name, uri=self._settings.neo4j_uri or "", reachable=ok,
                           projection=self.projection_status())

    def refreshed(self, claims: ClaimsStore, progress: ProgressFn | None = None) -> GraphRefresh:
        """Load what the ingest changed into Neo4j (`graph.neo4j_load.load_graph`); this store answers on (its
        projection is read again once the load's new stamp is seen)."""
        from fraudnet.graph.neo4j_load import load_graph

        report = load_graph(claims, self._settings, progress=progress)
        return GraphRefresh(self, {"neo4j_load": asdict(report)})

    def sync_leads(self, leads: Sequence[dict[str, Any]]) -> int:
        """MERGE the leads as `Lead` nodes linked to their entities and evidence (`graph.neo4j_load.sync_leads`)."""
        from fraudnet.graph.neo4j_load import sync_leads

        return sync_leads(list(leads), self._settings)

    # ---- in-memory projection ------------------------------------------------------------------------------------
    def projection(self) -> Neo4jProjection | None:
        """The projection ego networks are answered from (shared with graph worker processes), or None."""
        return self._projection

    def projection_status(self) -> dict[str, Any]:
        """State of the projection: off / reading / ready / failed, with its size, stamp and age."""
        held = self._projection
        out: dict[str, Any] = {"state": self._projection_state}
        if held is not None:
            out.update(nodes=held.node_count, edges=held.edge_count, stamp=held.stamp,
                       read_seconds=round(held.seconds, 1), age_seconds=round(time.time() - held.built_at, 1))
        if self._projection_error:
            out["error"] = self._projection_error
        return out

    def refresh_projection(self) -> bool:
        """Read the projection (again) when none is held or the graph's load stamp changed; True when a new one is
        in use. While a load runs (no stamp) the last complete projection is kept."""
        neo4j = self._neo4j
        try:
            with self._driver.session(database=self._db, default_access_mode=neo4j.READ_ACCESS) as session:
                stamp = current_stamp(session)
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError) as exc:
            raise StoreError(f"Neo4j at {self._settings.neo4j_uri}: cannot read the load stamp: {exc}") from exc
        held = self._projection
        if held is not None and (stamp is None or stamp == held.stamp):
            return False
        if held is None:
            self._projection_state = "reading"
        self._projection = read_projection(self._driver, self._db)
        self._projection_state, self._projection_error = "ready", ""
        return True

    def start_projection(self, poll_s: float = 10.0, on_change: Callable[[], None] | None = None) -> bool:
        """Read the projection in a background thread now, and again whenever a load changed the graph (checked
        every `poll_s` seconds); `on_change()` runs after each new projection is in use. Until the first is read,
        ego networks are answered by Cypher."""
        if self._poller is not None:
            return True
        self._projection_state = "reading"
        self._poller = threading.Thread(target=self._poll_projection, args=(poll_s, on_change),
                                        name="fraudnet-neo4j-projection", daemon=True)
        self._poller.start()
        return True

    def _poll_projection(self, poll_s: float, on_change: Callable[[], None] | None) -> None:
        wait = 0.0
        while not self._closing.wait(wait):
            wait = poll_s
            try:
                changed = self.refresh_projection()
            except ProjectionChanged as exc:
                log.info("%s; reading it again in %.0f s", exc, poll_s)
                continue
            except StoreError as exc:
                if self._projection is None:
                    self._projection_state = "failed"
                self._projection_error = str(exc)
                log.warning("Neo4j projection not refreshed: %s", exc)
                continue
            if changed and on_change is not None and not self._closing.is_set():
                try:
                    on_change()
                except Exception:  # the projection is in use; only the callback's own work failed
                    log.exception("after a new Neo4j projection")

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """Hold one of the request slots for the calling thread (re-entrant within a thread)."""
        if getattr(self._holding, "slot", False):
            yield
            return
        with self._slots:
            self._holding.slot = True
            try:
                yield
            finally:
                self._holding.slot = False

    def profile(self, node_id: str) -> EntityProfile:
        with self._slot():
            return super().profile(node_id)

    def ego_network(self, node_id: str, depth: int = 1, node_types: Sequence[str] | None = None,
                    since: datetime | None = None, until: datetime | None = None,
                    max_nodes: int = DEFAULT_NODE_CAP) -> Subgraph:
        held = self._projection
        if held is not None and since is None and until is None and held.has_node(node_id):
            # As the graph workers answer: from the projection alone (a node newer than it goes to Cypher).
            found = held.ego_index(node_id, depth, node_types, max_nodes)
            return Subgraph(nodes=held.nodes_at(found.nodes), edges=held.edges_at(found.edges),
                            truncated=found.truncated)
        with self._slot():
            return super().ego_network(node_id, depth, node_types, since, until, max_nodes)

    def shortest_paths(self, *args: Any, **kwargs: Any) -> list[GraphPath]:
        with self._slot():
            return super().shortest_paths(*args, **kwargs)

    def subgraph(self, *args: Any, **kwargs: Any) -> Subgraph:
        with self._slot():
            return super().subgraph(*args, **kwargs)

    def timeline(self, *args: Any, **kwargs: Any) -> list[TimelineEvent]:
        with self._slot():
            return super().timeline(*args, **kwargs)

    # ---- plumbing ---------------------------------------------------------------------------------------------
    def _run(self, query: str, **params: Any) -> list[Any]:
        neo4j = self._neo4j
        params.setdefault("labels", _ENTITY_LABELS)
        try:
            with self._slot():
                records, _, _ = self._driver.execute_query(
                    query, parameters_=params, database_=self._db, routing_=neo4j.RoutingControl.READ)
        except neo4j.exceptions.ServiceUnavailable as exc:
            raise Neo4jUnavailableError(f"Neo4j is unreachable at {self._settings.neo4j_uri}: {exc}") from exc
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError) as exc:
            raise StoreError(f"Neo4j query failed: {exc}") from exc
        return records

    def _rows(self, query: str, cols: Sequence[str], **params: Any) -> list[dict[str, Any]]:
        """Run a query whose last clause is `RETURN <exprs> [ORDER BY … LIMIT …]` as one record.

        The final RETURN becomes a WITH and every row is collected into one list (one Bolt record instead of
        thousands: much less decoding per row); `cols` name the returned columns in order.
        """
        head, sep, tail = query.rpartition(" RETURN ")
        if not sep:
            raise StoreError("internal: query without RETURN")
        wrapped = f"{head} WITH {tail} RETURN collect([{', '.join(cols)}]) AS rows"
        records = self._run(wrapped, **params)
        return [dict(zip(cols, row, strict=True)) for row in records[0]["rows"]] if records else []

    def close(self) -> None:
        self._closing.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=5.0)  # a read in progress ends with the driver below
        self._driver.close()

    def run_read_cypher(self, query: str, params: dict[str, Any] | None = None, limit: int = 1000,
                        timeout: float = 15.0) -> dict[str, Any]:
        """An investigator's read-only Cypher (READ session, row limit, timeout); see `graph.neo4j_cypher`."""
        from fraudnet.graph.neo4j_cypher import run_read_cypher

        return run_read_cypher(self._driver, self._db, query, params, limit=limit, timeout=timeout)

    # ---- nodes -----------------------------------------------------------------------------------------------
    def _nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        keys = _group(ids)
        if not keys:
            return {}
        match, params = _match_union(keys)
        rows = self._rows(f"{match} WITH n, {_type_expr('n')} AS t RETURN t, {_key_expr('n', 't')} AS k, "
                          f"n {{{_NODE_FIELDS}}} AS p", ["t", "k", "p"], **params)
        out: dict[str, Node] = {}
        for r in rows:
            if r["t"] is None or r["k"] is None:
                continue
            node = build_node(r["t"], str(r["k"]), dict(r["p"]))
            out[node.id] = node
        return out

    # ---- entity edges ------------------------------------------------------------------------------------------
    @staticmethod
    def _edge_from(rtype: str, s: str, t: str, p: list[Any]) -> Edge:
        """Edge from `[visits, amount, first, last, times]` of a stored relationship."""
        if rtype == "CO_ADMITTED":
            times = int(p[4] or 0)
            return make_edge(rtype, s, t, times, 0, None, None, {"times": times})
        if rtype in ("VISITED", "TREATED_BY"):
            return make_edge(rtype, s, t, p[0], cents(p[1]), p[2], p[3])
        return make_edge(rtype, s, t)

    # A hub's ranked list is read `_PREFIX_FACTOR` × the candidates asked for deep: on the M tier the bound below
    # then settles every 2-hop ego of 500 nodes in one read (2× settled ≈ 85 %).
    _PREFIX_FACTOR = 4
    # Candidate × hub pairs matched end to end beyond which expanding the frontier is the cheaper way (on the M tier
    # a 2-hop ego matches ≈ 100 candidates × 10 hubs).
    _MAX_HUB_PAIRS = 50_000
    # Nodes with more entity relationships than this are never expanded to find edges or exact sums.
    _BIG_DEGREE = HUB_DEGREE

    def _candidates_static(self, frontier: Sequence[str], exclude: set[str], types: Sequence[str],
                           limit: int) -> list[str]:
        keys = _group(frontier)
        if not keys or not types:
            return []
        found = self._candidates_listed(keys, exclude, types, limit)
        if found is None:
            found = self._candidates_expanded(keys, exclude, types, limit)
        return found

    def _candidates_expanded(self, keys: dict[str, list[str]], exclude: set[str], types: Sequence[str],
                             limit: int) -> list[str]:
        """The candidates by expanding every frontier node (hubs included)."""
        match, params = _match_union(keys)
        # Sum per neighbour node first: type, key and exclusion are then worked out once per neighbour instead of
        # once per relationship (a frontier of institutions has tens of thousands of relationships).
        q = (f"{match} MATCH (n)-[r:{ENTITY_RELS}]-(m) "
             "WITH m, sum(round(coalesce(r.amount, 0.0) * 100)) AS score "
             f"WITH m, score, {_type_expr('m')} AS t WHERE t IN $types "
             f"WITH score, t, {_key_expr('m', 't')} AS k "
             "WITH score, t, k WHERE NOT (t + ':' + k) IN $exclude "
             "RETURN t, k ORDER BY score DESC, $order[t], k LIMIT $limit")
        rows = self._rows(q, ["t", "k"], types=list(types), exclude=sorted(exclude), order=TYPE_ORDER, limit=limit,
                          **params)
        return [node_id(r["t"], str(r["k"])) for r in rows]

    def _candidates_listed(self, keys: dict[str, list[str]], exclude: set[str], types: Sequence[str],
                           limit: int) -> list[str] | None:
        """The candidates from a prefix of the hubs' ranked lists (`graph.neo4j_hubs`), or None when the prefix
        cannot settle them.

        Per candidate m: `l` = what is known of its score (full sums from the expanded frontier nodes, list
        entries from the hubs), and its upper bound `l + total - cov`, where `total` sums, over the hubs with
        unread entries, the cents of the first unread one, and `cov` the same over the hubs that listed m. The
        candidates that might reach the `limit` best get exact scores (relationships to the hubs, matched from both
        ends); the answer stands when the `limit`-th best then scores above `total`, which bounds any candidate
        no prefix listed.
        """
        prefix = min(self._PREFIX_FACTOR * limit, 1_000_000)
        match, params = _match_union(keys)
        hub_id = f"{_type_expr('h')} + ':' + {_key_expr('h', _type_expr('h'))}"
        q = (f"OPTIONAL MATCH (s:{SYNC_LABEL} {{id: $sync}}) WITH s.ego_stamp AS stamp "
             f"{match} "
             "WITH n, stamp IS NOT NULL AND coalesce(n.ego_stamp = stamp, false) AS listed "
             "WITH n, listed, CASE WHEN listed THEN size(n.ego_ids) ELSE 0 END AS len "
             "WITH n, listed, CASE WHEN len > $prefix THEN $prefix ELSE len END AS p, "
             "     CASE WHEN NOT listed THEN -1 WHEN len > $prefix THEN n.ego_cents[$prefix] ELSE n.ego_more END "
             "     AS rest "
             "WITH collect([n, listed, p, rest]) AS fs "
             "WITH fs, reduce(t = 0, f IN fs | t + CASE WHEN f[3] > 0 THEN f[3] ELSE 0 END) AS total, "
             "     any(f IN fs WHERE f[3] >= 0) AS open, [f IN fs WHERE f[1] | f[0]] AS hubs "
             "CALL (fs) { "
             "  UNWIND fs AS f WITH f[0] AS n, f[1] AS listed, f[2] AS p, f[3] AS rest "
             "  CALL (n, listed, p, rest) { "
             "      WITH n.ego_ids[0..p] AS ids, n.ego_cents[0..p] AS cs, rest WHERE listed "
             "      UNWIND range(0, size(ids) - 1) AS i "
             "      RETURN ids[i] AS id, cs[i] AS c, CASE WHEN rest > 0 THEN rest ELSE 0 END AS cov, 0 AS e "
             "    UNION ALL "
             f"     WITH n WHERE NOT listed MATCH (n)-[r:{ENTITY_RELS}]-(m) "
             "      WITH m, toInteger(sum(round(coalesce(r.amount, 0.0) * 100))) AS c "
             f"     WITH m, c, {_type_expr('m')} AS t "
             f"     RETURN t + ':' + {_key_expr('m', 't')} AS id, c, 0 AS cov, c AS e }} "
             "  WITH id, c, cov, e WHERE NOT id IN $exclude "
             "  WITH id, split(id, ':')[0] AS t, c, cov, e WHERE t IN $types "
             "  WITH id, t, sum(c) AS l, sum(cov) AS cov, sum(e) AS e ORDER BY l DESC, $order[t], id "
             "  RETURN collect([id, l, cov, e]) AS rows } "
             "WITH total, open, hubs, rows, "
             "     CASE WHEN size(rows) >= $limit THEN rows[$limit - 1][1] ELSE -1 END AS theta "
             f"RETURN total, open, [h IN hubs | {hub_id}] AS hubs, "
             "       rows[0..$limit] + [row IN rows[$limit..] "
             "                          WHERE total > row[2] AND row[1] + total - row[2] >= theta] AS rows")
        records = self._run(q, sync=SYNC_ID, prefix=prefix, types=list(types), exclude=sorted(exclude),
                            order=TYPE_ORDER, limit=limit, **params)
        total, is_open, hubs, rows = records[0]["total"], records[0]["open"], records[0]["hubs"], records[0]["rows"]
        scores = {r[0]: int(r[1]) for r in rows}
        unsettled = [r for r in rows if total > r[2]]
        if len(unsettled) * len(hubs) > self._MAX_HUB_PAIRS:
            return None
        if unsettled:
            hub_cents = self._hub_sums([r[0] for r in unsettled], hubs)
            for r in unsettled:
                scores[r[0]] = int(r[3]) + hub_cents.get(r[0], 0)
        ranked = sorted(scores, key=lambda i: (-scores[i], TYPE_ORDER[i.partition(":")[0]], i))[:limit]
        if is_open and (len(ranked) < limit or scores[ranked[-1]] <= total):
            return None
        return ranked
    def _edges_static(self, ids: Sequence[str]) -> list[Edge]:
        keys = _group(ids)
        if not keys:
            return []
        match, params = _match_union(keys)
        # Relationships are read from the ends with at most `_BIG_DEGREE` of them; only pairs of hubs are matched
        # end to end, so an ego network that holds a hospital does not read all its patients.
        q = (f"{match} WITH n, COUNT {{ (n)-[:{ENTITY_RELS}]-() }} > $big AS big "
             "WITH collect(n) AS ns, collect(CASE WHEN big THEN n END) AS bigs, "
             "     collect(CASE WHEN NOT big THEN n END) AS smalls "
             "CALL (ns, bigs, smalls) { "
             f"  UNWIND smalls AS n MATCH (n)-[r:{ENTITY_RELS}]-(m) WHERE m IN ns RETURN r "
             f"  UNION UNWIND bigs AS a UNWIND bigs AS b MATCH (a)-[r:{ENTITY_RELS}]->(b) RETURN r }} "
             "WITH r, startNode(r) AS a, endNode(r) AS b "
             f"WITH r, a, b, {_type_expr('a')} AS nt, {_type_expr('b')} AS mt "
             f"WITH r, nt, mt, {_key_expr('a', 'nt')} AS nk, {_key_expr('b', 'mt')} AS mk "
             "WHERE nk IN $keys AND mk IN $keys "
             "RETURN type(r) AS rt, nt, nk, mt, mk, [r.visits, r.amount, r.first, r.last, r.times] AS p")
        idset = set(ids)
        rows = self._rows(q, ["rt", "nt", "nk", "mt", "mk", "p"], keys=sorted({split_node_id(i)[1] for i in ids}),
                          big=self._BIG_DEGREE, **params)
        out = []
        for r in rows:
            a, b = node_id(r["nt"], str(r["nk"])), node_id(r["mt"], str(r["mk"]))
            if a in idset and b in idset:
                out.append(self._edge_from(r["rt"], a, b, r["p"]))
        return out

    def _hub_sums(self, ids: Sequence[str], hubs: Sequence[str]) -> dict[str, int]:
        """Cents joining each of `ids` to the nodes `hubs`, never expanding a hub: nodes of `ids` with at most
        `_BIG_DEGREE` relationships are expanded (≈ 3× cheaper than matching each pair), the others are matched to
        each hub end to end (Neo4j walks the end with fewer)."""
        if not ids or not hubs:
            return {}
        m_match, m_params = _match_union(_group(ids), "m", "q")
        h_match, h_params = _match_union(_group(hubs), "h", "h")
        q = (f"{m_match} WITH m, COUNT {{ (m)-[:{ENTITY_RELS}]-() }} > $big AS big "
             "WITH collect(CASE WHEN big THEN m END) AS bigs, collect(CASE WHEN NOT big THEN m END) AS smalls "
             f"{h_match} WITH bigs, smalls, collect(h) AS hs "
             "CALL (bigs, smalls, hs) { "
             f"  UNWIND smalls AS m MATCH (m)-[r:{ENTITY_RELS}]-(h) WHERE h IN hs RETURN m, r "
             f"  UNION ALL UNWIND bigs AS m UNWIND hs AS h MATCH (m)-[r:{ENTITY_RELS}]-(h) RETURN m, r }} "
             "WITH m, toInteger(sum(round(coalesce(r.amount, 0.0) * 100))) AS c "
             f"WITH m, c, {_type_expr('m')} AS t RETURN t + ':' + {_key_expr('m', 't')} AS id, c")
        rows = self._rows(q, ["id", "c"], big=self._BIG_DEGREE, **m_params, **h_params)
        return {r["id"]: int(r["c"]) for r in rows}

    def _adjacent(self, ids: Sequence[str]) -> list[Edge]:
        keys = _group(ids)
        if not keys:
            return []
        match, params = _match_union(keys)
        q = (f"{match} MATCH (n)-[r:{ENTITY_RELS}]-(m) "
             f"WITH n, r, m, {_type_expr('n')} AS nt, {_type_expr('m')} AS mt "
             f"RETURN type(r) AS rt, startNode(r) = n AS out, nt, {_key_expr('n', 'nt')} AS nk, mt, "
             f"{_key_expr('m', 'mt')} AS mk, [r.visits, r.amount, r.first, r.last, r.times] AS p")
        out = []
        for r in self._rows(q, ["rt", "out", "nt", "nk", "mt", "mk", "p"], **params):
            a, b = node_id(r["nt"], str(r["nk"])), node_id(r["mt"], str(r["mk"]))
            s, t = (a, b) if r["out"] else (b, a)
            out.append(self._edge_from(r["rt"], s, t, r["p"]))
        return out

    def _window_incident(self, ids: Sequence[str], since: datetime | None, until: datetime | None,
                         mode: str) -> list[Edge]:
        keys = _group(ids)
        if not keys:
            return []
        lo, hi = since or _LO, until or _HI
        idset = set(ids)
        edges: dict[str, Edge] = {}
        for family in (self._window_structural(keys), self._window_aggregated(keys, lo, hi, mode, idset),
                       self._window_co_admitted(keys.get("Person", []), lo, hi, mode, idset)):
            for e in family:
                edges[e.id] = e
        return list(edges.values())

    def _window_structural(self, keys: dict[str, list[str]]) -> list[Edge]:
        """Structural relationships (WORKS_AT, USES_PHONE, LIVES_AT) of the nodes, as stored: no window applies."""
        match, params = _match_union(keys)
        q = (f"{match} MATCH (n)-[r:{STRUCTURAL_RELS}]-(m) "
             f"WITH n, r, m, {_type_expr('n')} AS nt, {_type_expr('m')} AS mt "
             f"RETURN type(r) AS rt, startNode(r) = n AS out, nt, {_key_expr('n', 'nt')} AS nk, mt, "
             f"{_key_expr('m', 'mt')} AS mk")
        out = []
        for r in self._rows(q, ["rt", "out", "nt", "nk", "mt", "mk"], **params):
            a, b = node_id(r["nt"], str(r["nk"])), node_id(r["mt"], str(r["mk"]))
            s, t = (a, b) if r["out"] else (b, a)
            out.append(make_edge(r["rt"], s, t))
        return out

    _WINDOW = "v.begntime >= $lo AND v.begntime < $hi"
    _AGGREGATE = ("RETURN p.psn_no AS pk, {lbl} AS mt, {key} AS mk, count(v) AS visits, "
                  "sum(round(v.medfee_sumamt * 100)) AS c, min(v.begntime) AS first, max(v.begntime) AS last")

    def _window_aggregated(self, keys: dict[str, list[str]], lo: datetime, hi: datetime, mode: str,
                           idset: set[str]) -> list[Edge]:
        """VISITED and TREATED_BY recomputed from the visits in the window, from either end: the persons' own
        visits, and the visits at the institutions, pharmacies and practitioners among the nodes."""
        window, agg = self._WINDOW, self._AGGREGATE
        persons = keys.get("Person", [])
        queries: list[tuple[str, str, dict[str, Any]]] = []
        if persons:
            queries.append(("VISITED",
                            "MATCH (p:Person) WHERE p.psn_no IN $persons MATCH (p)-[:HAD]->(v:Visit)-[:AT]->(m) "
                            f"WHERE {window} WITH p, v, m, {_type_expr('m')} AS t "
                            + agg.format(lbl="t", key=_key_expr("m", "t")), {"persons": persons}))
            queries.append(("TREATED_BY",
                            "MATCH (p:Person) WHERE p.psn_no IN $persons "
                            "MATCH (p)-[:HAD]->(v:Visit)-[:ATTENDED_BY]->(m:Practitioner) "
                            f"WHERE {window} " + agg.format(lbl="'Practitioner'", key="m.prac_psn_code"),
                            {"persons": persons}))
        for t in ("Institution", "Pharmacy"):
            if keys.get(t):
                queries.append(("VISITED",
                                f"MATCH (m:{t}) WHERE m.fixmedins_code IN $ks "
                                f"MATCH (p:Person)-[:HAD]->(v:Visit)-[:AT]->(m) WHERE {window} "
                                + agg.format(lbl=f"'{t}'", key="m.fixmedins_code"), {"ks": keys[t]}))
        if keys.get("Practitioner"):
            queries.append(("TREATED_BY",
                            "MATCH (m:Practitioner) WHERE m.prac_psn_code IN $ks "
                            f"MATCH (p:Person)-[:HAD]->(v:Visit)-[:ATTENDED_BY]->(m) WHERE {window} "
                            + agg.format(lbl="'Practitioner'", key="m.prac_psn_code"), {"ks": keys["Practitioner"]}))
        out = []
        for rtype, q, extra in queries:
            for r in self._rows(q, ["pk", "mt", "mk", "visits", "c", "first", "last"], lo=lo, hi=hi, **extra):
                if r["mt"] is None:
                    continue
                s, t = node_id("Person", str(r["pk"])), node_id(r["mt"], str(r["mk"]))
                if mode == "both" and not (s in idset and t in idset):
                    continue
                out.append(make_edge(rtype, s, t, r["visits"], int(r["c"] or 0), r["first"], r["last"]))
        return out

    def _window_co_admitted(self, persons: list[str], lo: datetime, hi: datetime, mode: str,
                            idset: set[str]) -> list[Edge]:
        """CO_ADMITTED recomputed for the window: the persons' inpatient (institution, day) slots, then who else was
        admitted in those slots (`mode="both"`: only among the persons themselves); pairs sharing ≥ 2 slots."""
        if not persons:
            return []
        days = self._rows(
            "MATCH (p:Person) WHERE p.psn_no IN $persons MATCH (p)-[:HAD]->(v:Visit)-[:AT]->(i) "
            f"WHERE {self._WINDOW} AND v.med_type IN $inp "
            "RETURN DISTINCT p.psn_no AS pk, i.fixmedins_code AS ik, date(v.begntime) AS d", ["pk", "ik", "d"],
            persons=persons, lo=lo, hi=hi, inp=_INPATIENT)
        slots: dict[str, set[tuple[str, Any]]] = {}
        for r in days:
            slots.setdefault(str(r["pk"]), set()).add((str(r["ik"]), normalize_value(r["d"])))
        partners = self._slot_partners(slots, lo, hi, mode)
        pair_slots: dict[tuple[str, str], set[tuple[str, Any]]] = {}
        for pk, ss in slots.items():
            for slot in ss:
                for qk in partners.get(slot, ()):
                    if qk != pk:
                        pair_slots.setdefault((pk, qk) if pk < qk else (qk, pk), set()).add(slot)
        out = []
        for (a, b), ss in pair_slots.items():
            n = len(ss)
            if n >= 2:
                s, t = node_id("Person", a), node_id("Person", b)
                if mode == "both" and not (s in idset and t in idset):
                    continue
                out.append(make_edge("CO_ADMITTED", s, t, n, 0, None, None, {"times": n}))
        return out

    def _slot_partners(self, slots: dict[str, set[tuple[str, Any]]], lo: datetime, hi: datetime,
                       mode: str) -> dict[tuple[str, Any], set[str]]:
        """(institution, day) → persons admitted there that day in the window: the given persons only with
        `mode="both"`, else everyone (read from Neo4j)."""
        partners: dict[tuple[str, Any], set[str]] = {}
        if mode == "both":
            for pk, ss in slots.items():
                for s in ss:
                    partners.setdefault(s, set()).add(pk)
            return partners
        wanted = sorted({s for ss in slots.values() for s in ss}, key=lambda s: (s[0], s[1]))
        if not wanted:
            return partners
        rows = self._rows(
            "UNWIND $slots AS s MATCH (i {fixmedins_code: s.ik})<-[:AT]-(v:Visit) "
            "WHERE (i:Institution OR i:Pharmacy) AND v.begntime >= s.lo AND v.begntime < s.hi "
            f"AND {self._WINDOW} AND v.med_type IN $inp MATCH (q:Person)-[:HAD]->(v) "
            "RETURN DISTINCT s.ik AS ik, s.d AS d, q.psn_no AS qk", ["ik", "d", "qk"],
            slots=[{"ik": ik, "d": d, "lo": datetime.combine(d, datetime.min.time()),
                    "hi": datetime.combine(d, datetime.min.time()) + timedelta(days=1)} for ik, d in wanted],
            lo=lo, hi=hi, inp=_INPATIENT)
        for r in rows:
            partners.setdefault((str(r["ik"]), normalize_value(r["d"])), set()).add(str(r["qk"]))
        return partners

    # ---- visits ------------------------------------------------------------------------------------------------
    _VISIT_RETURN = (
        "OPTIONAL MATCH (p:Person)-[:HAD]->(v) OPTIONAL MATCH (v)-[:AT]->(i) "
        "OPTIONAL MATCH (v)-[:ATTENDED_BY]->(d:Practitioner) "
        "WITH v, p, i, d, [l IN labels(i) WHERE l IN ['Institution', 'Pharmacy']][0] AS it "
        "RETURN v.mdtrt_id AS id, coalesce(p.psn_no, v.psn_no) AS psn_no, "
        "coalesce(i.fixmedins_code, v.fixmedins_code) AS inst, it, coalesce(d.prac_psn_code, v.atddr_no) AS atddr, "
        "d IS NOT NULL AS prac_known, v.med_type AS med_type, v.begntime AS b, v.endtime AS e, "
        "v.dise_codg AS dise, round(coalesce(v.medfee_sumamt, 0.0) * 100) AS mc, "
        "round(coalesce(v.fund_pay_sumamt, 0.0) * 100) AS fc "
        "ORDER BY b, id"
    )

    @staticmethod
    def _visit_rows(rows: list[dict[str, Any]]) -> list[VisitRow]:
        return [VisitRow(
            mdtrt_id=str(r["id"]), psn_no=str(r["psn_no"]), fixmedins_code=str(r["inst"]),
            atddr_no=None if r["atddr"] is None else str(r["atddr"]), med_type=str(r["med_type"]),
            begntime=normalize_value(r["b"]), endtime=normalize_value(r["e"]),
            dise_codg=None if r["dise"] is None else str(r["dise"]), medfee_cents=int(r["mc"] or 0),
            fund_cents=int(r["fc"] or 0), inst_type=r["it"], prac_known=bool(r["prac_known"]),
        ) for r in rows]

    def _visits_by_id(self, mdtrt_ids: Sequence[str]) -> list[VisitRow]:
        return self._visit_rows(self._rows(
            "MATCH (v:Visit) WHERE v.mdtrt_id IN $ids " + self._VISIT_RETURN, _VISIT_COLS, ids=list(mdtrt_ids)))

    def _visits_connecting(self, members: Sequence[str], since: datetime | None, until: datetime | None,
                           limit: int) -> list[VisitRow]:
        keys = _group(members)
        persons = keys.get("Person", [])
        others = [m for m in members if split_node_id(m)[0] in ("Institution", "Pharmacy", "Practitioner")]
        if not persons or not others:
            return []
        q = ("MATCH (p:Person) WHERE p.psn_no IN $persons MATCH (p)-[:HAD]->(v:Visit)-[:AT|ATTENDED_BY]->(o) "
             "WHERE v.begntime >= $lo AND v.begntime < $hi "
             f"WITH DISTINCT v, {_type_expr('o')} AS ot, o "
             f"WHERE (ot + ':' + {_key_expr('o', 'ot')}) IN $others "
             "WITH DISTINCT v " + self._VISIT_RETURN + " LIMIT $limit")
        return self._visit_rows(self._rows(q, _VISIT_COLS, persons=persons, others=others, lo=since or _LO,
                                           hi=until or _HI, limit=limit))

    @staticmethod
    def _visit_match(node_type: str) -> str:
        """MATCH binding `v` to the visits involving the entity `(n)` (already bound)."""
        if node_type == "Person":
            return "MATCH (n)-[:HAD]->(v:Visit)"
        if node_type in ("Institution", "Pharmacy"):
            return "MATCH (n)<-[:AT]-(v:Visit)"
        if node_type == "Practitioner":
            return "MATCH (n)<-[:ATTENDED_BY]-(v:Visit)"
        if node_type == "Drug":
            return "MATCH (n)<-[:DISPENSED]-(v:Visit)"
        rel = "USES_PHONE" if node_type == "Phone" else "LIVES_AT"
        return f"MATCH (n)<-[:{rel}]-(:Person)-[:HAD]->(v:Visit)"

    def _timeline_rows(self, node_type: str, key: str, since: datetime | None, until: datetime | None,
                       limit: int) -> list[VisitRow]:
        q = (f"MATCH (n:{node_type} {{{NODE_KEYS[node_type]}: $key}}) {self._visit_match(node_type)} "
             "WHERE v.begntime >= $lo AND v.begntime < $hi WITH DISTINCT v "
             "ORDER BY v.begntime, v.mdtrt_id LIMIT $limit " + self._VISIT_RETURN)
        return self._visit_rows(self._rows(q, _VISIT_COLS, key=key, lo=since or _LO, hi=until or _HI, limit=limit))

    # Extra profile figures per type: (name, subquery over the bound `n` returning one count as that name).
    _STAT_COUNTS: dict[str, tuple[tuple[str, str], ...]] = {
        "Person": (("institutions", "MATCH (n)-[r:VISITED]->() RETURN count(r) AS institutions"),
                   ("practitioners", "MATCH (n)-[r:TREATED_BY]->() RETURN count(r) AS practitioners"),
                   ("co_admitted", "MATCH (n)-[r:CO_ADMITTED]-() RETURN count(r) AS co_admitted")),
        "Institution": (("persons", "MATCH (n)<-[r:VISITED]-() RETURN count(r) AS persons"),
                        ("practitioners", "MATCH (n)<-[:AT]-(:Visit)-[:ATTENDED_BY]->(d:Practitioner) "
                                          "RETURN count(DISTINCT d) AS practitioners"),
                        ("staff", "MATCH (n)<-[r:WORKS_AT]-() RETURN count(r) AS staff")),
        "Practitioner": (("persons", "MATCH (n)<-[r:TREATED_BY]-() RETURN count(r) AS persons"),
                         ("institutions", "MATCH (n)<-[:ATTENDED_BY]-(:Visit)-[:AT]->(i) "
                                          "RETURN count(DISTINCT i) AS institutions")),
        "Drug": (("amount_c", "MATCH (n)<-[r:DISPENSED]-(:Visit) RETURN sum(round(coalesce(r.amount, 0.0) * 100)) "
                              "AS amount_c"),
                 ("quantity", "MATCH (n)<-[r:DISPENSED]-(:Visit) RETURN sum(coalesce(r.cnt, 0.0)) AS quantity"),
                 ("persons", "MATCH (n)<-[:DISPENSED]-(:Visit)<-[:HAD]-(p:Person) RETURN count(DISTINCT p) AS persons"),
                 ("institutions", "MATCH (n)<-[:DISPENSED]-(:Visit)-[:AT]->(i) "
                                  "RETURN count(DISTINCT i) AS institutions")),
        "Phone": (("person_keys", "MATCH (n)<-[:USES_PHONE]-(p:Person) RETURN collect(DISTINCT p.psn_no) "
                                  "AS person_keys"),),
        "Address": (("person_keys", "MATCH (n)<-[:LIVES_AT]-(p:Person) RETURN collect(DISTINCT p.psn_no) "
                                    "AS person_keys"),),
    }
    _STAT_COUNTS["Pharmacy"] = _STAT_COUNTS["Institution"]

    def _stats(self, node_type: str, key: str) -> dict[str, Any]:
        extra = self._STAT_COUNTS.get(node_type, ())
        q = (f"MATCH (n:{node_type} {{{NODE_KEYS[node_type]}: $key}}) "
             f"CALL (n) {{ {self._visit_match(node_type)} WITH DISTINCT v "
             "RETURN count(v) AS visits, sum(round(coalesce(v.medfee_sumamt, 0.0) * 100)) AS c, "
             "sum(round(coalesce(v.fund_pay_sumamt, 0.0) * 100)) AS fc, min(v.begntime) AS first, "
             "max(v.begntime) AS last } "
             + " ".join(f"CALL (n) {{ {sub} }}" for _, sub in extra)
             + " RETURN visits, c, fc, first, last" + "".join(f", {name}" for name, _ in extra))
        r = self._run(q, key=key)[0]
        stats: dict[str, Any] = {
            "visits": int(r["visits"]), "amount": round(int(r["c"] or 0) / 100, 2),
            "fund_amount": round(int(r["fc"] or 0) / 100, 2),
            "first": normalize_value(r["first"]), "last": normalize_value(r["last"]),
        }
        if node_type == "Drug":
            stats["amount"] = round(int(r["amount_c"] or 0) / 100, 2)
            stats["quantity"] = round(float(r["quantity"] or 0), 2)
            stats["persons"] = int(r["persons"])
            stats["institutions"] = int(r["institutions"])
        elif node_type in ("Phone", "Address"):
            persons = sorted(str(x) for x in r["person_keys"])
            stats["persons"] = len(persons)
            stats["person_keys"] = persons[:MAX_PERSON_KEYS]
        else:
            for name, _ in extra:
                stats[name] = int(r[name])
        return stats

