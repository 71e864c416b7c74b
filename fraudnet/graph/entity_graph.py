"""`EntityGraph`: the entity graph in memory — numpy arrays with an undirected CSR adjacency — answering ego
networks (and edge look-ups) without a time window in a few milliseconds.

Both graph stores hold one: `EmbeddedStore` builds it from the claims store, `Neo4jStore` reads it out of Neo4j
(`graph.neo4j_projection`, the way a GDS projection is read) so that link-chart ego networks need not expand hubs
in Cypher. The builder takes plain tables, so every source gives the same arrays, and the answers follow the
semantics of `graph.query_base` exactly (the store contract tests compare them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from fraudnet.errors import NotFoundError
from fraudnet.graph import ego_kernels
from fraudnet.graph.model import (
    DEFAULT_NODE_CAP,
    EDGE_TYPES,
    ENTITY_TYPES,
    NODE_TYPES,
    Edge,
    Node,
    Subgraph,
    node_id,
    split_node_id,
)
from fraudnet.graph.query_base import LABEL_PROP, NODE_PROPS, TRAVERSED_TYPES, TYPE_ORDER, ego_types

__all__ = ["EntityGraph", "EgoIndex", "NodeTable", "EDGE_COLUMNS", "EDGE_TYPE_CODES"]

# Columns of the edge frame `EntityGraph` is built from: `s`, `t` node ids (`Type:key`), `et` the position of the
# edge type in `EDGE_TYPES`, `visits`, `cents` (integer cents), `first`, `last` (timestamps or null).
EDGE_COLUMNS = ("s", "t", "et", "visits", "cents", "first", "last")
EDGE_TYPE_CODES = {t: i for i, t in enumerate(EDGE_TYPES)}


def _coded_edges(index: pd.Index, part: pd.DataFrame) -> pd.DataFrame:
    """An edge part with its `s`/`t` ids replaced by node positions in `index`; edges to unknown nodes dropped."""
    part = part.assign(s=index.get_indexer(part["s"]), t=index.get_indexer(part["t"]))
    return part[(part["s"] >= 0) & (part["t"] >= 0)]


class NodeTable(NamedTuple):
    """The nodes of one type: their keys and, per key, the values of `NODE_PROPS[type]` in that order."""

    keys: list[str]
    rows: list[tuple[Any, ...]]


class EgoIndex(NamedTuple):
    """An ego network as positions in an `EntityGraph`: `nodes` (answer order), `edges` (answer order)."""

    nodes: np.ndarray
    edges: np.ndarray
    truncated: bool


class EntityGraph:
    """The entity nodes and aggregated entity edges as arrays; `_build_entity_graph` fills them.

    A mixin: `EmbeddedStore` is one, and `graph.neo4j_projection.Neo4jProjection` is one standing alone. `name`
    is the store named in not-found messages. Layers and edges are worked out by the compiled loops of
    `graph.ego_kernels` (`use_kernels`; the numpy code beside them is their reference and fallback).
    """

    name = "embedded"

    def _build_entity_graph(self, tables: dict[str, NodeTable],
                            edges: pd.DataFrame | Iterable[pd.DataFrame]) -> None:
        """Index `tables` (node type → keys and property rows, any order) and `edges` (columns `EDGE_COLUMNS`; one
        frame, or parts in order — read lazily, after the nodes); edges with an end that is not a node are left out."""
        ids: list[str] = []
        types: list[int] = []
        keys: list[str] = []
        self._props: dict[str, dict[str, Any]] = {}  # type -> {"pos": {key: i}, "names": props, "rows": [tuple]}
        for node_type, table in tables.items():
            order = sorted(range(len(table.keys)), key=lambda i: str(table.keys[i]))
            pos: dict[str, int] = {}
            data = []
            t = TYPE_ORDER[node_type]
            for i in order:
                k = str(table.keys[i])
                pos[k] = len(data)
                data.append(table.rows[i])
                ids.append(node_id(node_type, k))
                types.append(t)
                keys.append(k)
            self._props[node_type] = {"pos": pos, "names": NODE_PROPS[node_type], "rows": data}
        self._ids = ids
        self._index = {nid: i for i, nid in enumerate(ids)}
        self._type = np.asarray(types, dtype=np.int8)
        self._keys = keys
        order = sorted(range(len(ids)), key=lambda i: (types[i], keys[i]))
        rank = np.empty(len(ids), dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(len(ids), dtype=np.int64)
        self._rank = rank
        self._index_node_rows()

        index = pd.Index(ids)
        # parts are coded one at a time, so that only one part's id strings are held at once (GBs at the L tier)
        parts = [edges] if isinstance(edges, pd.DataFrame) else edges
        edges = pd.concat([_coded_edges(index, part) for part in parts], ignore_index=True)
        self._src = edges["s"].to_numpy(dtype=np.int64)
        self._dst = edges["t"].to_numpy(dtype=np.int64)
        self._et = edges["et"].to_numpy(dtype=np.int8)
        self._visits = edges["visits"].fillna(0).to_numpy(dtype=np.int64)
        self._cents = edges["cents"].fillna(0).to_numpy(dtype=np.int64)
        self._first = pd.to_datetime(edges["first"]).to_numpy(dtype="datetime64[us]")
        self._last = pd.to_datetime(edges["last"]).to_numpy(dtype="datetime64[us]")
        src = self._src
        del edges
        self._amount = np.round(self._cents / 100, 2)
        # Global answer order of the edges: (EDGE_TYPES order, source id, target id) as strings compare.
        idrank = np.empty(len(ids), dtype=np.int64)
        idrank[np.asarray(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)] = np.arange(len(ids))
        self._erank = np.empty(len(src), dtype=np.int64)
        if len(src):
            self._erank[np.lexsort((idrank[self._dst], idrank[self._src], self._et))] = np.arange(len(src))
        n = len(ids)
        m = len(src)
        # Undirected CSR: for each node, its incident edge indices and the node at the other end.
        ends = np.concatenate([self._src, self._dst])
        others = np.concatenate([self._dst, self._src])
        eidx = np.concatenate([np.arange(m, dtype=np.int64), np.arange(m, dtype=np.int64)])
        # Each node's neighbours sorted by index: a layer's neighbour list is then a few sorted runs (cheap to merge).
        order_e = np.lexsort((others, ends))
        self._nbr = others[order_e]
        self._eidx = eidx[order_e]
        # Per CSR position: the neighbour's type and the edge's cents (contiguous reads during expansion).
        self._ntype = self._type[self._nbr]
        self._ncents = self._cents[self._eidx]
        counts = np.bincount(ends, minlength=n) if m else np.zeros(n, dtype=np.int64)
        self._indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=self._indptr[1:])
        self._scratch_local = threading.local()
        self.use_kernels = ego_kernels.AVAILABLE
        if self.use_kernels and n:  # compile (or load from numba's cache) now, before any graph worker forks
            taken = np.zeros(n, dtype=bool)
            first = np.zeros(1, dtype=np.int64)
            self._candidate_idx(first, taken, np.ones(len(NODE_TYPES), dtype=bool), 1)
            self._edges_among_idx(first, taken)

    @property
    def node_count(self) -> int:
        return len(self._ids)

    @property
    def edge_count(self) -> int:
        return len(self._src)

    def has_node(self, node_id: str) -> bool:
        """Whether the graph holds the entity `node_id` (`Type:key`)."""
        return node_id in self._index

    def _indexed(self, nid: str) -> Node:
        """The node `nid`, with the messages `BaseGraphStore._require` gives for a bad or unknown id."""
        node_type, key = split_node_id(nid)
        if node_type not in ENTITY_TYPES or not key:
            raise NotFoundError(f"unknown node id '{nid}': expected Type:key with Type one of "
                                f"{', '.join(ENTITY_TYPES)}")
        i = self._index.get(nid)
        if i is None:
            raise NotFoundError(f"{node_type} '{key}' not found ({self.name} store)")
        return self._nodes_at(np.asarray([i], dtype=np.int64))[0]

    def _idx(self, ids: Sequence[str]) -> np.ndarray:
        return np.asarray([self._index[i] for i in ids if i in self._index], dtype=np.int64)

    def _incident(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the CSR arrays) of every edge incident to the nodes `idx`."""
        starts = self._indptr[idx]
        lengths = self._indptr[idx + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        pos = offsets + np.arange(total, dtype=np.int64)
        return pos, np.repeat(idx, lengths)

    def _positions(self, idx: np.ndarray) -> np.ndarray:
        """The CSR positions of the edges incident to the nodes `idx` (`_incident` without the owners)."""
        if len(idx) <= 64:
            starts = self._indptr[idx].tolist()
            ends = self._indptr[idx + 1].tolist()
            if len(starts) == 1:
                return np.arange(starts[0], ends[0], dtype=np.int64)
            return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in zip(starts, ends, strict=True)]
                                  or [np.empty(0, dtype=np.int64)])
        return self._incident(idx)[0]

    def _edges_at(self, sel: np.ndarray) -> list[Edge]:
        """`Edge` objects (fresh on every call) for the edge indices `sel`."""
        ids = self._ids
        out = []
        for s, d, t, v, a, f, la in zip(self._src[sel].tolist(), self._dst[sel].tolist(), self._et[sel].tolist(),
                                        self._visits[sel].tolist(), self._amount[sel].tolist(),
                                        self._first[sel].tolist(), self._last[sel].tolist(), strict=True):
            etype = EDGE_TYPES[t]
            src, dst = ids[s], ids[d]
            out.append(Edge(id=f"{etype}:{src}->{dst}", type=etype, source=src, target=dst, visits=v, amount=a,
                            first=f, last=la, props={"times": v} if etype == "CO_ADMITTED" else {}))
        return out

    @staticmethod
    def _allowed(types: Sequence[str]) -> np.ndarray:
        allowed = np.zeros(len(NODE_TYPES), dtype=bool)
        allowed[[TYPE_ORDER[t] for t in types]] = True
        return allowed

    # Neighbour entries from which `_candidate_idx` scatters into node-indexed arrays instead of sorting.
    _SCATTER_MIN = 20_000
    # Degree from which `_edges_among_idx` binary-searches a node's adjacency instead of scanning it.
    _HUB_MIN = 4096

    def _candidate_idx(self, fidx: np.ndarray, taken: np.ndarray, allowed: np.ndarray, limit: int) -> np.ndarray:
        """Node indices adjacent to `fidx`, of an allowed type, not `taken`, in candidate order, at most `limit`."""
        if self.use_kernels:
            acc, touched = self._scratch()
            return ego_kernels.top_candidates(self._indptr, self._nbr, self._ncents, self._ntype, self._rank,
                                              np.asarray(fidx, dtype=np.int64), taken.view(np.uint8), allowed,
                                              limit, acc, touched)
        return self._candidate_idx_numpy(fidx, taken, allowed, limit)

    def _scratch(self) -> tuple[np.ndarray, np.ndarray]:
        """This thread's node-sized scratch arrays for `ego_kernels.top_candidates` (sums, zero between calls; met
        nodes)."""
        local = self._scratch_local
        found = getattr(local, "arrays", None)
        if found is None:
            n = len(self._ids)
            found = local.arrays = (np.zeros(n, dtype=np.int64), np.empty(n, dtype=np.int64))
        return found

    def _candidate_idx_numpy(self, fidx: np.ndarray, taken: np.ndarray, allowed: np.ndarray,
                             limit: int) -> np.ndarray:
        """`_candidate_idx` in numpy: the reference the compiled kernel is tested against, and its fallback."""
        pos = self._positions(fidx)
        nb = self._nbr[pos]
        mask = ~taken[nb]
        if not allowed[[TYPE_ORDER[t] for t in TRAVERSED_TYPES]].all():  # entity edges join only these types
            mask &= allowed[self._ntype[pos]]
        nb = nb[mask]
        if not len(nb):
            return nb
        cents = self._ncents[pos[mask]]
        if len(nb) >= self._SCATTER_MIN:
            # Hubs in the frontier: sum per neighbour by scattering into node-indexed arrays, O(E + N), instead of
            # sorting the E neighbour entries (≈ 5× faster for the 50k–250k entries behind a few institutions).
            n = len(self._ids)
            present = np.zeros(n, dtype=bool)
            present[nb] = True
            uniq = np.flatnonzero(present)
            score = np.bincount(nb, weights=cents, minlength=n)[uniq].round().astype(np.int64)
        else:
            if len(nb) > 1 and not (nb[1:] >= nb[:-1]).all():
                order = np.argsort(nb, kind="stable")  # merges the sorted runs of the frontier nodes
                nb, cents = nb[order], cents[order]
            starts = np.flatnonzero(np.concatenate(([True], nb[1:] != nb[:-1])))
            uniq = nb[starts]
            score = np.add.reduceat(cents, starts)
        # One int64 key: score desc, then the (type order, key) rank; keys are unique, so the order is total.
        key = -score.astype(np.int64) * len(self._ids) + self._rank[uniq]
        if len(key) > limit:
            part = np.argpartition(key, limit - 1)[:limit]
            uniq, key = uniq[part], key[part]
        return uniq[np.argsort(key)]

    def _ego_static(self, centre: Node, depth: int, types: Sequence[str], max_nodes: int) -> Subgraph | None:
        """The ego network without a window, in node-index space (the base class's layer rule, vectorised)."""
        found = self._ego_idx(centre, depth, types, max_nodes)
        if found is None:
            return None
        idx, sel, truncated = found
        return Subgraph(nodes=self._nodes_at(idx), edges=self._edges_at(sel), truncated=truncated)

    def ego_index(self, node_id: str, depth: int = 1, node_types: Sequence[str] | None = None,
                  max_nodes: int = DEFAULT_NODE_CAP) -> EgoIndex:
        """`ego_network` without a time window as positions: the nodes for `node_at`, the edges for `edge_at`,
        in answer order. For callers that render answers themselves and keep what they rendered per node."""
        types = ego_types(depth, node_types, None, None, max_nodes)
        found = self._ego_idx(self._indexed(node_id), depth, types, max_nodes)
        if found is None:  # pragma: no cover - every indexed node has a position
            raise NotFoundError(f"{node_id} is not in the {self.name} graph")
        return EgoIndex(*found)

    def nodes_at(self, positions: Sequence[int]) -> list[Node]:
        """The nodes at `ego_index` node positions (fresh objects)."""
        return self._nodes_at(np.asarray(positions, dtype=np.int64))

    def person_ids_at(self, positions: np.ndarray) -> list[str]:
        """The ids of the Person nodes among `ego_index` node positions, in their order."""
        positions = np.asarray(positions, dtype=np.int64)
        persons = positions[self._type[positions] == TYPE_ORDER["Person"]].tolist()
        return list(itemgetter(*persons)(self._ids)) if len(persons) > 1 else [self._ids[i] for i in persons]

    def edges_at(self, positions: Sequence[int]) -> list[Edge]:
        """The edges at `ego_index` edge positions (fresh objects)."""
        return self._edges_at(np.asarray(positions, dtype=np.int64))

    def _ego_idx(self, centre: Node, depth: int, types: Sequence[str],
                 max_nodes: int) -> tuple[np.ndarray, np.ndarray, bool] | None:
        c = self._index.get(centre.id)
        if c is None:
            return None
        taken = np.zeros(len(self._ids), dtype=bool)
        taken[c] = True
        parts = [np.asarray([c], dtype=np.int64)]
        count = 1
        frontier = parts[0]
        truncated = False
        if centre.type in TRAVERSED_TYPES and types:
            allowed = self._allowed(types)
            for _ in range(depth):
                room = max_nodes - count
                if room <= 0 or not len(frontier):
                    # No room left: any further neighbour would be cut, so check whether one exists.
                    if room <= 0 and len(frontier) and len(self._candidate_idx(frontier, taken, allowed, 1)):
                        truncated = True
                    break
                cands = self._candidate_idx(frontier, taken, allowed, room + 1)
                if len(cands) > room:
                    truncated = True
                    cands = cands[:room]
                parts.append(cands)
                taken[cands] = True
                count += len(cands)
                frontier = cands
                if truncated:
                    break
        idx = np.concatenate(parts)
        sel = self._edges_among_idx(idx, taken)
        return idx, sel[np.argsort(self._erank[sel])], truncated

    def _edges_among_idx(self, idx: np.ndarray, member: np.ndarray) -> np.ndarray:
        """Edge indices with both ends among `idx` (`member` marks them), each once, in index order."""
        if self.use_kernels:
            found = ego_kernels.edges_among(self._indptr, self._nbr, self._eidx, np.asarray(idx, dtype=np.int64),
                                            member.view(np.uint8), max(8 * len(idx), self._HUB_MIN))
            found.sort()
            return found
        return self._edges_among_numpy(idx, member)

    def _edges_among_numpy(self, idx: np.ndarray, member: np.ndarray) -> np.ndarray:
        """`_edges_among_idx` in numpy (reference and fallback).

        A small node's adjacency is scanned; a hub's (degree far above the member count) is binary-searched for
        the members, since an edge between a hub and a small node is found from the small node's side anyway.
        """
        deg = self._indptr[idx + 1] - self._indptr[idx]
        big = deg > max(8 * len(idx), self._HUB_MIN)
        pos = self._positions(idx[~big]) if (~big).any() else np.empty(0, dtype=np.int64)
        found = [self._eidx[pos[member[self._nbr[pos]]]]]
        if big.any():
            members = np.sort(idx)
            for hub in idx[big].tolist():
                start, end = int(self._indptr[hub]), int(self._indptr[hub + 1])
                nbrs = self._nbr[start:end]  # sorted by neighbour index
                lo = np.searchsorted(nbrs, members, "left")
                counts = np.searchsorted(nbrs, members, "right") - lo
                total = int(counts.sum())
                if total:
                    run_starts = np.repeat(start + lo - (np.cumsum(counts) - counts), counts)
                    found.append(self._eidx[run_starts + np.arange(total, dtype=np.int64)])
        return np.unique(np.concatenate(found))

    def _nodes_at(self, idx: np.ndarray) -> list[Node]:
        """`Node` objects (fresh on every call) for the node indices `idx`, in that order."""
        ids, keys, rows, labels, names = self._ids, self._keys, self._node_rows, self._labels, self._type_names
        return [Node(id=ids[i], type=NODE_TYPES[t], key=keys[i], label=labels[i],
                     props=dict(zip(names[t], rows[i], strict=True)))
                for i, t in zip(idx.tolist(), self._type[idx].tolist(), strict=True)]

    def _index_node_rows(self) -> None:
        """Per node index: its property row and display label (built once; ego answers read them by index)."""
        rows: list[tuple] = [()] * len(self._ids)
        labels: list[str] = list(self._keys)
        names: list[tuple[str, ...]] = [()] * len(NODE_TYPES)
        for tname, table in self._props.items():
            t = TYPE_ORDER[tname]
            names[t] = tuple(table["names"])
            label_at = table["names"].index(LABEL_PROP[tname]) if LABEL_PROP.get(tname) in table["names"] else -1
            for k, p in table["pos"].items():
                i = self._index[node_id(tname, k)]
                rows[i] = table["rows"][p]
                if label_at >= 0:
                    value = rows[i][label_at]
                    if value not in (None, ""):
                        labels[i] = str(value)
        self._node_rows, self._labels, self._type_names = rows, labels, names

    def _edges_static(self, ids: Sequence[str]) -> list[Edge]:
        idx = self._idx(ids)
        pos, _ = self._incident(idx)
        inset = np.zeros(len(self._ids), dtype=bool)
        inset[idx] = True
        sel = np.unique(self._eidx[pos[inset[self._nbr[pos]]]])
        return self._edges_at(sel[np.argsort(self._erank[sel])])

    def _adjacent(self, ids: Sequence[str]) -> list[Edge]:
        pos, _ = self._incident(self._idx(ids))
        return self._edges_at(np.unique(self._eidx[pos]))

    # ---- visits --------------------------------------------------------------------------------------------
    _VISIT_COLS = ("mdtrt_id, psn_no, fixmedins_code, atddr_no, med_type, begntime, endtime, dise_codg, "
                   "round(medfee_sumamt * 100)::BIGINT, round(fund_pay_sumamt * 100)::BIGINT")

