"""`EmbeddedStore`: the graph queries answered in-process from the claims store (no Neo4j needed).

On open it reads the entities and the aggregated relationships (semantics in `fraudnet.graph.query_base`)
from the claims store's DuckDB tables into an `EntityGraph` (numpy arrays with a CSR adjacency), so ego networks
and paths without a time window are answered in memory in a few milliseconds. Time-windowed aggregates, visits,
timelines and profile figures are computed with SQL on DuckDB through one cursor per thread. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudnet.claims.store import ClaimsStore
from fraudnet.contract import INPATIENT_MED_TYPES
from fraudnet.errors import CypherNotSupportedError, StoreError
from fraudnet.graph.entity_graph import EDGE_TYPE_CODES, EgoIndex, EntityGraph, NodeTable
from fraudnet.graph.model import EDGE_TYPES, Edge, Node, node_id, split_node_id
from fraudnet.graph.query_base import (
    MAX_PERSON_KEYS,
    NODE_PROPS,
    BaseGraphStore,
    VisitRow,
    make_edge,
    normalize_value,
)
from fraudnet.graph.store import GraphRefresh, ProgressFn, StoreStatus

__all__ = ["EmbeddedStore", "EgoIndex", "DRUG_LIST_TYPES"]

log = logging.getLogger(__name__)

# Catalogue items that are Drug nodes: western/patent and herbal medicines, and key monitored drugs.
DRUG_LIST_TYPES: tuple[str, ...] = ("101", "102")
_VISIT_NAMES = ("mdtrt_id", "psn_no", "fixmedins_code", "atddr_no", "med_type", "begntime", "endtime", "dise_codg",
                "mc", "fc")
_LO = datetime(1, 1, 1)
_HI = datetime(9999, 12, 31)
_INPATIENT = sorted(INPATIENT_MED_TYPES)


# SQL fragments (DuckDB) defining the node sets; the Neo4j loader writes the same sets.
_DRUG_SQL = f"""
    SELECT hilist_code AS key, hilist_name, list_type, key_drug_flag FROM hilist
    WHERE list_type IN {DRUG_LIST_TYPES!r} OR key_drug_flag = '1'
    UNION ALL
    SELECT hilist_code AS key, min(hilist_name), min(list_type), NULL FROM fee_list
    WHERE list_type IN {DRUG_LIST_TYPES!r} AND hilist_code NOT IN (SELECT hilist_code FROM hilist)
    GROUP BY hilist_code
"""


def _positions(column: pa.ChunkedArray, index: pd.Index) -> np.ndarray:
    """Each value's position in `index` (-1: not in it, or null), matched in Arrow: a column of 15M ids would
    otherwise become 15M Python strings just to be looked up."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        found = pc.index_in(column, value_set=pa.array(index.tolist(), type=column.type))
        return found.fill_null(-1).to_numpy().astype(np.int64)
    return index.get_indexer(column.to_pandas())


def _keys_by_type(ids: Sequence[str]) -> dict[str, list[str]]:
    """Node ids `Type:key` grouped as type → keys."""
    keys: dict[str, list[str]] = {}
    for nid in ids:
        t, k = split_node_id(nid)
        keys.setdefault(t, []).append(k)
    return keys


def _bounds(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    return (since or _LO), (until or _HI)


class EmbeddedStore(EntityGraph, BaseGraphStore):
    """In-process `GraphStore` over a `ClaimsStore` (anything with a DuckDB `.con`)."""

    name = "embedded"
    _static_edges_sorted = True

    def __init__(self, claims: Any) -> None:
        super().__init__()
        self._claims = claims
        self._local = threading.local()
        self._cursors: list[Any] = []
        started = time.perf_counter()
        try:
            self._load()
        except duckdb.Error as exc:
            raise StoreError(f"cannot build the embedded graph from the claims store: {exc}") from exc
        log.info("embedded graph: %d nodes, %d edges in %.2f s", self.node_count, self.edge_count,
                 time.perf_counter() - started)

    # ---- GraphStore capabilities ---------------------------------------------------------------------------
    supports_cypher = False
    syncs_leads = False

    def status(self) -> StoreStatus:
        return StoreStatus(store=self.name)

    def projection(self) -> EmbeddedStore:
        """The store is its own in-memory entity graph."""
        return self

    def start_projection(self, poll_s: float, on_change: Callable[[], None] | None = None) -> bool:
        return False  # built on open; nothing to read in the background

    def refreshed(self, claims: ClaimsStore, progress: ProgressFn | None = None) -> GraphRefresh:
        """A new store built from this store's claims store (the arrays are immutable once built)."""
        return GraphRefresh(EmbeddedStore(self._claims), {"graph_store": "embedded store rebuilt"})

    def sync_leads(self, leads: Sequence[dict[str, Any]]) -> int:
        return 0  # the leads live in the claims store this store reads

    def run_read_cypher(self, query: str, params: dict[str, Any] | None = None, limit: int = 1000,
                        timeout: float = 15.0) -> dict[str, Any]:
        raise CypherNotSupportedError(self.name)

    # ---- loading -----------------------------------------------------------------------------------------
    def _cur(self) -> Any:
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._claims.con.cursor()
            self._local.cur = cur
            with self._lock:
                self._cursors.append(cur)
        return cur

    def _rows(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return self._cur().execute(query, params or []).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"claims store query failed: {exc}") from exc

    def _table_exists(self, name: str) -> bool:
        rows = self._rows("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
        return bool(rows[0][0])

    def _load(self) -> None:
        tables: dict[str, NodeTable] = {}

        def add_type(node_type: str, query: str) -> None:
            cur = self._cur().execute(query)
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
            colpos = {c: i for i, c in enumerate(cols)}
            wanted = NODE_PROPS[node_type]
            tables[node_type] = NodeTable(
                [str(r[0]) for r in rows],
                [tuple(normalize_value(r[colpos[p]]) if p in colpos else None for p in wanted) for r in rows])

        add_type("Person", "SELECT psn_no AS key, * FROM psn_info")
        add_type("Practitioner", "SELECT prac_psn_code AS key, * FROM prac_info" if self._table_exists("prac_info")
                 else "SELECT NULL::VARCHAR AS key WHERE false")
        add_type("Institution", "SELECT fixmedins_code AS key, * FROM medins_info "
                                "WHERE fixmedins_type IS DISTINCT FROM '2'")
        add_type("Pharmacy", "SELECT fixmedins_code AS key, * FROM medins_info WHERE fixmedins_type = '2'")
        add_type("Drug", _DRUG_SQL if self._table_exists("hilist") else "SELECT NULL::VARCHAR AS key WHERE false")
        add_type("Phone", "SELECT mob_hash AS key, min(mob_masked) AS masked FROM psn_info "
                          "WHERE mob_hash IS NOT NULL AND mob_hash <> '' GROUP BY mob_hash")
        add_type("Address", "SELECT addr_key AS key, min(live_addr) AS live_addr FROM psn_info "
                            "WHERE addr_key IS NOT NULL AND addr_key <> '' GROUP BY addr_key")

        # Edges: SQL yields (source id, target id, …) strings; the builder maps them to node indices.
        inst_case = ("CASE WHEN i.fixmedins_type = '2' THEN 'Pharmacy:' ELSE 'Institution:' END "
                     "|| v.fixmedins_code")
        agg = ("count(*)::BIGINT AS visits, sum(round(v.medfee_sumamt * 100))::BIGINT AS cents, "
               "min(v.begntime) AS first, max(v.begntime) AS last")
        parts = [
            ("VISITED", f"SELECT 'Person:' || v.psn_no AS s, {inst_case} AS t, {agg} FROM visit_fact v "
                        "JOIN medins_info i ON i.fixmedins_code = v.fixmedins_code GROUP BY v.psn_no, 2"),
            ("TREATED_BY", f"SELECT 'Person:' || v.psn_no AS s, 'Practitioner:' || v.atddr_no AS t, {agg} "
                           "FROM visit_fact v WHERE v.atddr_no IS NOT NULL GROUP BY v.psn_no, v.atddr_no"),
            ("CO_ADMITTED", "WITH a AS (SELECT DISTINCT psn_no, fixmedins_code, CAST(begntime AS DATE) AS d "
                            "FROM visit_fact WHERE med_type IN (SELECT unnest(?::VARCHAR[]))) "
                            "SELECT 'Person:' || x.psn_no AS s, 'Person:' || y.psn_no AS t, "
                            "count(*)::BIGINT AS visits, 0::BIGINT AS cents, NULL::TIMESTAMP AS first, "
                            "NULL::TIMESTAMP AS last FROM a x JOIN a y "
                            "ON x.fixmedins_code = y.fixmedins_code AND x.d = y.d AND x.psn_no < y.psn_no "
                            "GROUP BY x.psn_no, y.psn_no HAVING count(*) >= 2"),
            ("WORKS_AT", "SELECT DISTINCT 'Practitioner:' || p.prac_psn_code AS s, CASE WHEN i.fixmedins_type = '2' "
                         "THEN 'Pharmacy:' ELSE 'Institution:' END || p.fixmedins_code AS t, 0::BIGINT AS visits, "
                         "0::BIGINT AS cents, NULL::TIMESTAMP AS first, NULL::TIMESTAMP AS last FROM prac_info p "
                         "JOIN medins_info i ON i.fixmedins_code = p.fixmedins_code"),
            ("USES_PHONE", "SELECT DISTINCT 'Person:' || psn_no AS s, 'Phone:' || mob_hash AS t, 0::BIGINT AS visits, "
                           "0::BIGINT AS cents, NULL::TIMESTAMP AS first, NULL::TIMESTAMP AS last FROM psn_info "
                           "WHERE mob_hash IS NOT NULL AND mob_hash <> ''"),
            ("LIVES_AT", "SELECT DISTINCT 'Person:' || psn_no AS s, 'Address:' || addr_key AS t, 0::BIGINT AS visits, "
                         "0::BIGINT AS cents, NULL::TIMESTAMP AS first, NULL::TIMESTAMP AS last FROM psn_info "
                         "WHERE addr_key IS NOT NULL AND addr_key <> ''"),
        ]

        def edge_part(etype: str, query: str) -> pd.DataFrame:
            df = self._cur().execute(query, [_INPATIENT] if etype == "CO_ADMITTED" else []).df()
            df["et"] = EDGE_TYPE_CODES[etype]
            return df

        # a generator: each part is read when the builder codes it, so one part's id strings are in memory at once
        self._build_entity_graph(tables, (edge_part(etype, query) for etype, query in parts))
        inst_type = dict.fromkeys(self._props["Institution"]["pos"], "Institution")
        inst_type.update(dict.fromkeys(self._props["Pharmacy"]["pos"], "Pharmacy"))
        self._inst_type = inst_type
        self._prac_known = set(self._props["Practitioner"]["pos"])
        self._load_visits()

    def _load_visits(self) -> None:
        """Visits in memory (Arrow columns, ordered by begntime, mdtrt_id) with a CSR index per entity."""
        table = self._cur().sql(
            f"SELECT {self._VISIT_COLS} FROM visit_fact ORDER BY begntime, mdtrt_id").to_arrow_table()
        table = table.rename_columns(list(_VISIT_NAMES)).combine_chunks()
        self._vt = table
        self._vbegn = table.column("begntime").to_numpy().astype("datetime64[us]")
        self._vmc = table.column("mc").fill_null(0).to_numpy().astype(np.int64)
        self._vfc = table.column("fc").fill_null(0).to_numpy().astype(np.int64)

        def csr(column: str, keys: Sequence[str]) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
            index = pd.Index(list(keys))
            codes = _positions(table.column(column), index)
            valid = np.flatnonzero(codes >= 0)
            order = valid[np.argsort(codes[valid], kind="stable")]
            indptr = np.zeros(len(index) + 1, dtype=np.int64)
            np.cumsum(np.bincount(codes[valid], minlength=len(index)), out=indptr[1:])
            return index, indptr, order, codes

        self._v_person = csr("psn_no", list(self._props["Person"]["pos"]))
        self._v_inst = csr("fixmedins_code", list(self._inst_type))
        self._v_prac = csr("atddr_no", list(self._props["Practitioner"]["pos"]))

    def _visit_positions(self, node_type: str, key: str) -> np.ndarray | None:
        """Row positions (in time order) of the visits involving an entity, or None for SQL-only types."""
        if node_type == "Person":
            csr = self._v_person
        elif node_type in ("Institution", "Pharmacy"):
            csr = self._v_inst
        elif node_type == "Practitioner":
            csr = self._v_prac
        elif node_type in ("Phone", "Address"):
            parts = [self._visit_positions("Person", p) for p in self._persons_sharing(node_type, key)]
            parts = [x for x in parts if x is not None]
            return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
        else:
            return None
        i = csr[0].get_indexer([key])[0]
        if i < 0:
            return np.empty(0, dtype=np.int64)
        return csr[2][csr[1][i]:csr[1][i + 1]]

    def _in_window(self, pos: np.ndarray, since: datetime | None, until: datetime | None) -> np.ndarray:
        """The positions (sorted by time) whose begntime lies in [since, until)."""
        if since is None and until is None:
            return pos
        b = self._vbegn[pos]
        a = np.searchsorted(b, np.datetime64(since, "us"), side="left") if since is not None else 0
        z = np.searchsorted(b, np.datetime64(until, "us"), side="left") if until is not None else len(pos)
        return pos[a:z]

    def _visit_rows_at(self, pos: np.ndarray) -> list[VisitRow]:
        cols = self._vt.take(pa.array(pos, type=pa.int64())).to_pydict()
        rows = zip(*(cols[c] for c in _VISIT_NAMES), strict=True)
        return self._visit_rows(list(rows))

    # ---- windowed aggregates (SQL) -------------------------------------------------------------------------
    def _window_edges(self, since: datetime | None, until: datetime | None, keys: dict[str, list[str]] | None,
                      mode: str | None) -> list[tuple[Any, ...]]:
        """Aggregated edges (type, source id, target id, visits, cents, first, last, times) in the window.

        `keys` (by node type) restricts to edges touching those nodes (`mode="any"`) or with both ends among
        them (`mode="both"`); None means every edge.
        """
        lo, hi = _bounds(since, until)
        persons = list((keys or {}).get("Person", []))
        insts = list((keys or {}).get("Institution", [])) + list((keys or {}).get("Pharmacy", []))
        pracs = list((keys or {}).get("Practitioner", []))
        joiner = " AND " if mode == "both" else " OR "
        out: list[tuple[Any, ...]] = []

        def restrict(left: str, lkeys: list[str], right: str, rkeys: list[str], params: list[Any]) -> str:
            if keys is None:
                return ""
            params.extend([lkeys, rkeys])
            return (f" AND ({left} IN (SELECT unnest(?::VARCHAR[])){joiner}"
                    f"{right} IN (SELECT unnest(?::VARCHAR[])))")

        params: list[Any] = [lo, hi]
        where = restrict("psn_no", persons, "fixmedins_code", insts, params)
        if keys is None or persons or insts:
            for r in self._rows(
                "SELECT psn_no, fixmedins_code, count(*), sum(round(medfee_sumamt * 100))::BIGINT, "
                "min(begntime), max(begntime) FROM visit_fact WHERE begntime >= ? AND begntime < ?"
                f"{where} GROUP BY 1, 2", params,
            ):
                t = self._inst_type.get(str(r[1]))
                if t:
                    out.append(("VISITED", node_id("Person", r[0]), node_id(t, r[1]), r[2], r[3] or 0, r[4], r[5],
                                None))
        params = [lo, hi]
        where = restrict("psn_no", persons, "atddr_no", pracs, params)
        if keys is None or persons or pracs:
            for r in self._rows(
                "SELECT psn_no, atddr_no, count(*), sum(round(medfee_sumamt * 100))::BIGINT, "
                "min(begntime), max(begntime) FROM visit_fact WHERE begntime >= ? AND begntime < ? "
                f"AND atddr_no IS NOT NULL{where} GROUP BY 1, 2", params,
            ):
                if str(r[1]) in self._prac_known:
                    out.append(("TREATED_BY", node_id("Person", r[0]), node_id("Practitioner", r[1]), r[2],
                                r[3] or 0, r[4], r[5], None))
        params = [lo, hi, _INPATIENT]
        where = restrict("x.psn_no", persons, "y.psn_no", persons, params)
        if keys is None or persons:
            for r in self._rows(
                "WITH a AS (SELECT DISTINCT psn_no, fixmedins_code, CAST(begntime AS DATE) AS d FROM visit_fact "
                "WHERE begntime >= ? AND begntime < ? AND med_type IN (SELECT unnest(?::VARCHAR[]))) "
                "SELECT x.psn_no, y.psn_no, count(*) FROM a x JOIN a y ON x.fixmedins_code = y.fixmedins_code "
                f"AND x.d = y.d AND x.psn_no < y.psn_no WHERE true{where} GROUP BY 1, 2 HAVING count(*) >= 2",
                params,
            ):
                out.append(("CO_ADMITTED", node_id("Person", r[0]), node_id("Person", r[1]), r[2], 0, None, None,
                            r[2]))
        return out

    # ---- primitives ------------------------------------------------------------------------------------------
    def _nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        return {n.id: n for n in self._nodes_at(self._idx(ids))}

    def _candidates_static(self, frontier: Sequence[str], exclude: set[str], types: Sequence[str],
                           limit: int) -> list[str]:
        taken = np.zeros(len(self._ids), dtype=bool)
        excl = self._idx(list(exclude))
        if len(excl):
            taken[excl] = True
        found = self._candidate_idx(self._idx(frontier), taken, self._allowed(types), limit)
        return [self._ids[i] for i in found.tolist()]

    def _window_incident(self, ids: Sequence[str], since: datetime | None, until: datetime | None,
                         mode: str) -> list[Edge]:
        """Edges touching (`any`) or within (`both`) `ids`: structural ones from memory, the rest by SQL."""
        keys = _keys_by_type(ids)
        idset = set(ids)
        edges: list[Edge] = []
        for r in self._window_edges(since, until, keys, mode):
            if r[1] not in self._index or r[2] not in self._index:
                continue
            if mode == "both" and not (r[1] in idset and r[2] in idset):
                continue
            props = {"times": int(r[7])} if r[0] == "CO_ADMITTED" else {}
            edges.append(make_edge(r[0], r[1], r[2], r[3], r[4], r[5], r[6], props))
        idx = self._idx(ids)
        pos, _ = self._incident(idx)
        structural = {EDGE_TYPE_CODES["WORKS_AT"], EDGE_TYPE_CODES["USES_PHONE"], EDGE_TYPE_CODES["LIVES_AT"]}
        inset = np.zeros(len(self._ids), dtype=bool)
        inset[idx] = True
        sel = np.unique(self._eidx[pos])
        sel = sel[np.isin(self._et[sel], list(structural))]
        if mode == "both":
            sel = sel[inset[self._src[sel]] & inset[self._dst[sel]]]
        edges.extend(self._edges_at(sel))
        return edges

    def _visit_rows(self, rows: list[tuple[Any, ...]]) -> list[VisitRow]:
        out = []
        for r in rows:
            out.append(VisitRow(
                mdtrt_id=str(r[0]), psn_no=str(r[1]), fixmedins_code=str(r[2]),
                atddr_no=None if r[3] is None else str(r[3]), med_type=str(r[4]),
                begntime=normalize_value(r[5]), endtime=normalize_value(r[6]),
                dise_codg=None if r[7] is None else str(r[7]), medfee_cents=int(r[8] or 0), fund_cents=int(r[9] or 0),
                inst_type=self._inst_type.get(str(r[2])), prac_known=r[3] is not None and str(r[3]) in self._prac_known,
            ))
        return out

    def _visits_by_id(self, mdtrt_ids: Sequence[str]) -> list[VisitRow]:
        return self._visit_rows(self._rows(
            f"SELECT {self._VISIT_COLS} FROM visit_fact WHERE mdtrt_id IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY begntime, mdtrt_id", [list(mdtrt_ids)]))

    def _visits_connecting(self, members: Sequence[str], since: datetime | None, until: datetime | None,
                           limit: int) -> list[VisitRow]:
        keys = _keys_by_type(members)
        persons = keys.get("Person", [])
        insts = [k for k in keys.get("Institution", []) if self._inst_type.get(k) == "Institution"]
        insts += [k for k in keys.get("Pharmacy", []) if self._inst_type.get(k) == "Pharmacy"]
        pracs = [k for k in keys.get("Practitioner", []) if k in self._prac_known]
        if not persons or not (insts or pracs):
            return []
        parts = [self._visit_positions("Person", p) for p in persons]
        pos = np.sort(np.concatenate([x for x in parts if x is not None] or [np.empty(0, dtype=np.int64)]))
        inst_codes = self._v_inst[0].get_indexer(insts)
        inst_codes = inst_codes[inst_codes >= 0]
        prac_codes = self._v_prac[0].get_indexer(pracs)
        prac_codes = prac_codes[prac_codes >= 0]
        keep = np.isin(self._v_inst[3][pos], inst_codes) | np.isin(self._v_prac[3][pos], prac_codes)
        return self._visit_rows_at(self._in_window(pos[keep], since, until)[:limit])

    def _persons_sharing(self, node_type: str, key: str) -> list[str]:
        col = "mob_hash" if node_type == "Phone" else "addr_key"
        return [r[0] for r in self._rows(f"SELECT DISTINCT psn_no FROM psn_info WHERE {col} = ? ORDER BY 1", [key])]

    def _visit_filter(self, node_type: str, key: str) -> tuple[str, list[Any]]:
        if node_type == "Person":
            return "psn_no = ?", [key]
        if node_type in ("Institution", "Pharmacy"):
            return "fixmedins_code = ?", [key]
        if node_type == "Practitioner":
            return "atddr_no = ?", [key]
        if node_type == "Drug":
            return "mdtrt_id IN (SELECT mdtrt_id FROM fee_list WHERE hilist_code = ?)", [key]
        col = "mob_hash" if node_type == "Phone" else "addr_key"
        return f"psn_no IN (SELECT psn_no FROM psn_info WHERE {col} = ?)", [key]

    def _timeline_rows(self, node_type: str, key: str, since: datetime | None, until: datetime | None,
                       limit: int) -> list[VisitRow]:
        pos = self._visit_positions(node_type, key)
        if pos is not None:
            return self._visit_rows_at(self._in_window(pos, since, until)[:limit])
        lo, hi = _bounds(since, until)
        cond, params = self._visit_filter(node_type, key)
        return self._visit_rows(self._rows(
            f"SELECT {self._VISIT_COLS} FROM visit_fact WHERE {cond} AND begntime >= ? AND begntime < ? "
            "ORDER BY begntime, mdtrt_id LIMIT ?", [*params, lo, hi, limit]))

    def _stats(self, node_type: str, key: str) -> dict[str, Any]:
        vpos = self._visit_positions(node_type, key)
        if vpos is not None:
            first = self._vbegn[vpos[0]].tolist() if len(vpos) else None
            last = self._vbegn[vpos[-1]].tolist() if len(vpos) else None
            r: Any = (len(vpos), int(self._vmc[vpos].sum()), int(self._vfc[vpos].sum()), first, last)
        else:
            cond, params = self._visit_filter(node_type, key)
            r = self._rows(
                "SELECT count(*), sum(round(medfee_sumamt * 100))::BIGINT, "
                "sum(round(fund_pay_sumamt * 100))::BIGINT, "
                f"min(begntime), max(begntime) FROM visit_fact WHERE {cond}", params)[0]
        stats: dict[str, Any] = {
            "visits": int(r[0]), "amount": round(int(r[1] or 0) / 100, 2),
            "fund_amount": round(int(r[2] or 0) / 100, 2),
            "first": normalize_value(r[3]), "last": normalize_value(r[4]),
        }
        nid = node_id(node_type, key)
        i = self._index[nid]
        pos, _ = self._incident(np.asarray([i], dtype=np.int64))
        et = [EDGE_TYPES[int(t)] for t in self._et[self._eidx[pos]]]
        if node_type == "Person":
            stats["institutions"] = sum(1 for t in et if t == "VISITED")
            stats["practitioners"] = sum(1 for t in et if t == "TREATED_BY")
            stats["co_admitted"] = sum(1 for t in et if t == "CO_ADMITTED")
        elif node_type in ("Institution", "Pharmacy"):
            stats["persons"] = sum(1 for t in et if t == "VISITED")
            codes = self._v_prac[3][vpos]
            stats["practitioners"] = int(len(np.unique(codes[codes >= 0])))
            stats["staff"] = sum(1 for t in et if t == "WORKS_AT")
        elif node_type == "Practitioner":
            stats["persons"] = sum(1 for t in et if t == "TREATED_BY")
            codes = self._v_inst[3][vpos]
            stats["institutions"] = int(len(np.unique(codes[codes >= 0])))
        elif node_type == "Drug":
            d = self._rows(
                "SELECT count(DISTINCT v.mdtrt_id), sum(round(f.det_item_fee_sumamt * 100))::BIGINT, "
                "round(sum(f.cnt), 2), count(DISTINCT v.psn_no), count(DISTINCT v.fixmedins_code), "
                "min(v.begntime), max(v.begntime) "
                "FROM fee_list f JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id WHERE f.hilist_code = ?", [key])[0]
            stats.update({"visits": int(d[0]), "amount": round(int(d[1] or 0) / 100, 2),
                          "quantity": round(float(d[2] or 0), 2), "persons": int(d[3]), "institutions": int(d[4]),
                          "first": normalize_value(d[5]), "last": normalize_value(d[6])})
            stats["fund_amount"] = round(int(r[2] or 0) / 100, 2)
        else:
            persons = self._persons_sharing(node_type, key)
            stats["persons"] = len(persons)
            stats["person_keys"] = persons[:MAX_PERSON_KEYS]
        return stats

    def close(self) -> None:
        with self._lock:
            for cur in self._cursors:
                try:
                    cur.close()
                except duckdb.Error:  # already closed with its connection
                    pass
            self._cursors.clear()
