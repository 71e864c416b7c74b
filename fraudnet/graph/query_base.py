"""The query semantics both graph stores share: traversal order, node caps, paths and subgraphs.

`BaseGraphStore` implements the `GraphStore` protocol once on top of a few primitives that each backend
(`EmbeddedStore`, `Neo4jStore`) answers from its own data; the rules below are what makes both give equal
answers (the contract tests in `tests/test_graph_store_contract.py` check it).

**Entity graph.** Nodes: Person, Practitioner, Institution, Pharmacy, Phone, Address (Drug nodes have a profile
and a timeline but no entity edges, so a Drug's ego network is the Drug alone). Edges (stored direction):

- `VISITED` Person→Institution|Pharmacy: all valid visits (`visit_fact`) of the person there:
  `visits` = count, `amount` = Σ net `medfee_sumamt`, `first`/`last` = min/max `begntime`.
- `TREATED_BY` Person→Practitioner: the same aggregates over visits whose `atddr_no` is that practitioner.
- `CO_ADMITTED` Person→Person (source key < target key): the number of distinct (institution, admission date)
  on which both were admitted as inpatients (`med_type` in `contract.INPATIENT_MED_TYPES`), kept when ≥ 2;
  `visits` = `props["times"]` = that number, `amount` 0, no first/last.
- `WORKS_AT` Practitioner→Institution|Pharmacy (`prac_info.fixmedins_code`), `USES_PHONE` Person→Phone
  (`mob_hash`), `LIVES_AT` Person→Address (`addr_key`): structural, `visits` 0, `amount` 0.

Traversal ignores direction. Amounts are yuan rounded to 2 decimals; orderings use integer cents.

**Time window** `[since, until)` on visit `begntime`: `VISITED`, `TREATED_BY` and `CO_ADMITTED` are recomputed
from the visits in the window (an edge without visits in the window disappears, `CO_ADMITTED` still needs ≥ 2);
structural edges stay.

**Ego network.** Depth 1..`MAX_DEPTH` hops. With `node_types`, only nodes of those types are kept *and
traversed* (the centre always stays). Breadth first, layer by layer: the candidates of layer k+1 are the nodes
adjacent to layer k not yet taken, ordered by (Σ cents of the edges joining them to layer k desc, type order of
`model.NODE_TYPES`, key); they are taken in that order while fewer than `max_nodes` nodes are in the answer. If
a candidate is left out, `truncated` is True and no further layer is explored. Nodes come in the order taken;
edges are every entity edge among the answer's nodes, ordered by (`EDGE_TYPES` order, source, target).

**Shortest paths.** Unweighted, undirected, over the entity graph without window or type filter, up to
`max_depth` hops (1..6): all shortest paths, in lexicographic order of their node-id sequences, the first
`max_paths`. Between a pair of nodes the path uses the edge first in `EDGE_TYPES` order.

**Subgraph.** Member entities sorted by (type order, key), then Visit nodes: first the `evidence` visits
(unknown ids are ignored; taken whatever the window; `props["evidence"] = True`), then, with `include_visits`,
every visit in the window whose person is a member and whose institution/pharmacy or attending practitioner is
a member; both groups ordered by (begntime, mdtrt_id). Visits stop at `MAX_NODE_CAP` nodes (`truncated`).
Edges: entity edges among members, then `HAD` (Person→Visit), `AT` (Visit→Institution|Pharmacy) and
`ATTENDED_BY` (Visit→Practitioner) between answer nodes; same edge order as above.

**Timeline.** Visits involving the entity (Person: its visits; Institution/Pharmacy: visits there;
Practitioner: visits it attended; Drug: visits that dispensed it; Phone/Address: visits of the persons sharing
it), in the window, ordered by (begntime, mdtrt_id), at most `limit` (1..10000).

**Profile stats** (all visits): `visits`, `amount` (Σ medfee), `fund_amount` (Σ fund_pay), `first`, `last`, and
per type: Person `institutions` (distinct institutions and pharmacies), `practitioners` (distinct attending
practitioners known as nodes), `co_admitted` (CO_ADMITTED partners); Institution/Pharmacy `persons`,
`practitioners` (attending practitioners of its visits), `staff` (WORKS_AT); Practitioner `persons`,
`institutions` (where its visits took place); Drug `persons`, `institutions`, `quantity` (Σ dispensed cnt, 2
decimals), `amount` is then Σ dispensed fee amounts; Phone/Address `persons` (count) and `person_keys` (sorted
psn_no, at most 100) — visit figures over the visits of those persons.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fraudnet.errors import NotFoundError, QueryLimitError
from fraudnet.graph.model import (
    DEFAULT_NODE_CAP,
    EDGE_TYPES,
    ENTITY_TYPES,
    MAX_DEPTH,
    MAX_NODE_CAP,
    NODE_TYPES,
    Edge,
    EntityProfile,
    GraphPath,
    Node,
    Subgraph,
    TimelineEvent,
    node_id,
    split_node_id,
)

__all__ = [
    "BaseGraphStore",
    "TRAVERSED_TYPES",
    "TYPE_ORDER",
    "EDGE_ORDER",
    "NODE_PROPS",
    "MAX_PATH_DEPTH",
    "MAX_TIMELINE",
    "VisitRow",
    "edge_id",
    "ego_types",
    "make_edge",
    "normalize_value",
    "sort_edges",
]

TRAVERSED_TYPES: tuple[str, ...] = ("Person", "Practitioner", "Institution", "Pharmacy", "Phone", "Address")
TYPE_ORDER: dict[str, int] = {t: i for i, t in enumerate(NODE_TYPES)}
EDGE_ORDER: dict[str, int] = {t: i for i, t in enumerate(EDGE_TYPES)}
MAX_PATH_DEPTH = 6
MAX_TIMELINE = 10_000
MAX_PERSON_KEYS = 100

# Node properties answered for each type (missing values are None), the same on every store.
NODE_PROPS: dict[str, tuple[str, ...]] = {
    "Person": ("psn_name", "gend", "brdy", "certno_masked", "mob_masked", "insutype", "insuplc_admdvs",
               "live_admdvs"),
    "Institution": ("fixmedins_name", "fixmedins_type", "hosp_lv", "medins_natu", "admdvs", "aprv_bed_cnt",
                    "lnt", "lat"),
    "Pharmacy": ("fixmedins_name", "fixmedins_type", "hosp_lv", "medins_natu", "admdvs", "aprv_bed_cnt",
                 "lnt", "lat"),
    "Practitioner": ("prac_psn_name", "prac_psn_type", "fixmedins_code", "dept_code", "dept_name"),
    "Drug": ("hilist_name", "list_type", "key_drug_flag"),
    "Phone": ("masked",),
    "Address": ("live_addr",),
    "Visit": ("med_type", "begntime", "endtime", "dise_codg", "medfee_sumamt", "fund_pay_sumamt"),
}
# Property giving a node's display label (falls back to the key).
LABEL_PROP: dict[str, str] = {
    "Person": "psn_name", "Institution": "fixmedins_name", "Pharmacy": "fixmedins_name",
    "Practitioner": "prac_psn_name", "Drug": "hilist_name", "Phone": "masked", "Address": "live_addr",
}


def normalize_value(value: Any) -> Any:
    """Plain Python value for a property: naive datetimes, dates, floats, str; NaN/NaT → None."""
    if value is None:
        return None
    to_native = getattr(value, "to_native", None)  # neo4j.time types
    if to_native is not None:
        value = to_native()
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        if value != value:  # NaT
            return None
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return value
    if isinstance(value, float):
        return None if value != value else value
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar
        return normalize_value(value.item())
    if type(value).__name__ == "Decimal":
        return float(value)
    return value


def cents(amount: Any) -> int:
    """Integer cents of a yuan amount (None → 0)."""
    if amount is None:
        return 0
    return int(round(float(amount) * 100))


def edge_id(edge_type: str, source: str, target: str) -> str:
    """Stable edge id, the same on every store."""
    return f"{edge_type}:{source}->{target}"


def make_edge(edge_type: str, source: str, target: str, visits: Any = 0, amount_cents: Any = 0,
              first: Any = None, last: Any = None, props: dict[str, Any] | None = None) -> Edge:
    """An `Edge` with normalised values (amount from integer cents, naive datetimes)."""
    return Edge(
        id=edge_id(edge_type, source, target), type=edge_type, source=source, target=target,
        visits=int(visits or 0), amount=round(int(amount_cents or 0) / 100, 2),
        first=normalize_value(first), last=normalize_value(last), props=dict(props or {}),
    )


def sort_edges(edges: list[Edge]) -> list[Edge]:
    """Edges in answer order: (EDGE_TYPES order, source, target), duplicates (same id) dropped."""
    seen: dict[str, Edge] = {}
    for e in edges:
        seen.setdefault(e.id, e)
    return sorted(seen.values(), key=lambda e: (EDGE_ORDER.get(e.type, 99), e.source, e.target))


def node_sort_key(nid: str) -> tuple[int, str]:
    t, k = split_node_id(nid)
    return TYPE_ORDER.get(t, 99), k


@dataclass
class VisitRow:
    """One visit as the stores answer it for subgraphs and timelines."""

    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    atddr_no: str | None
    med_type: str
    begntime: datetime
    endtime: datetime | None
    dise_codg: str | None
    medfee_cents: int
    fund_cents: int
    inst_type: str | None = None  # "Institution" / "Pharmacy" (None if the institution is unknown)
    prac_known: bool = False  # the attending practitioner is a Practitioner node

    def sort_key(self) -> tuple[datetime, str]:
        return self.begntime, self.mdtrt_id

    def to_event(self) -> TimelineEvent:
        return TimelineEvent(
            mdtrt_id=self.mdtrt_id, begntime=self.begntime, endtime=self.endtime, med_type=self.med_type,
            psn_no=self.psn_no, fixmedins_code=self.fixmedins_code, atddr_no=self.atddr_no,
            dise_codg=self.dise_codg, medfee_sumamt=round(self.medfee_cents / 100, 2),
            fund_pay_sumamt=round(self.fund_cents / 100, 2),
        )

    def to_node(self, evidence: bool) -> Node:
        props = {
            "med_type": self.med_type, "begntime": self.begntime, "endtime": self.endtime,
            "dise_codg": self.dise_codg, "medfee_sumamt": round(self.medfee_cents / 100, 2),
            "fund_pay_sumamt": round(self.fund_cents / 100, 2), "psn_no": self.psn_no,
            "fixmedins_code": self.fixmedins_code, "atddr_no": self.atddr_no, "evidence": evidence,
        }
        return Node(id=node_id("Visit", self.mdtrt_id), type="Visit", key=self.mdtrt_id, label=self.mdtrt_id,
                    props=props)


def build_node(node_type: str, key: str, raw: dict[str, Any]) -> Node:
    """A `Node` with the type's fixed property set (see NODE_PROPS) and its label."""
    props = {p: normalize_value(raw.get(p)) for p in NODE_PROPS.get(node_type, ())}
    label_value = props.get(LABEL_PROP.get(node_type, ""))
    label = str(label_value) if label_value not in (None, "") else key
    return Node(id=node_id(node_type, key), type=node_type, key=key, label=label, props=props)


def ego_types(depth: int, node_types: Sequence[str] | None, since: datetime | None, until: datetime | None,
              max_nodes: int) -> tuple[str, ...]:
    """Check an ego network's arguments (`QueryLimitError` naming the bad one); the node types kept and traversed."""
    if not 1 <= depth <= MAX_DEPTH:
        raise QueryLimitError(f"depth {depth} is outside 1..{MAX_DEPTH}")
    if not 1 <= max_nodes <= MAX_NODE_CAP:
        raise QueryLimitError(f"max_nodes {max_nodes} is outside 1..{MAX_NODE_CAP}")
    BaseGraphStore._check_window(since, until)
    if node_types:
        unknown = [t for t in node_types if t not in NODE_TYPES]
        if unknown:
            raise QueryLimitError(f"unknown node type(s) {', '.join(unknown)}; known: {', '.join(NODE_TYPES)}")
        return tuple(t for t in TRAVERSED_TYPES if t in node_types)
    return TRAVERSED_TYPES


class BaseGraphStore(ABC):
    """`GraphStore` on top of backend primitives; see the module docstring for the exact semantics."""

    name: str = "base"
    # True when `_edges_static` already answers in edge order without duplicates (saves a sort per query).
    _static_edges_sorted: bool = False

    def __init__(self) -> None:
        self._lock = threading.Lock()

    # ---- primitives every backend answers -------------------------------------------------------------
    @abstractmethod
    def _nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        """Entity nodes (not Visit) for the ids that exist."""

    @abstractmethod
    def _candidates_static(self, frontier: Sequence[str], exclude: set[str], types: Sequence[str],
                           limit: int) -> list[str]:
        """Without a window: nodes of `types` adjacent to `frontier`, not in `exclude`, in candidate order."""

    @abstractmethod
    def _edges_static(self, ids: Sequence[str]) -> list[Edge]:
        """Without a window: entity edges with both ends in `ids`."""

    @abstractmethod
    def _window_incident(self, ids: Sequence[str], since: datetime | None, until: datetime | None,
                         mode: str) -> list[Edge]:
        """Entity edges recomputed for the window touching (`mode="any"`) or within (`"both"`) `ids`."""

    def _candidates(self, frontier: Sequence[str], exclude: set[str], types: Sequence[str],
                    since: datetime | None, until: datetime | None, limit: int) -> list[str]:
        """Nodes of `types` adjacent to `frontier`, not in `exclude`, in candidate order, at most `limit`."""
        if since is None and until is None:
            return self._candidates_static(frontier, exclude, types, limit)
        fset = set(frontier)
        allowed = set(types)
        score: dict[str, int] = {}
        for e in self._window_incident(frontier, since, until, "any"):
            for a, b in ((e.source, e.target), (e.target, e.source)):
                if a in fset and b not in exclude and split_node_id(b)[0] in allowed:
                    score[b] = score.get(b, 0) + cents(e.amount)
        ranked = sorted(score, key=lambda nid: (-score[nid], *node_sort_key(nid)))
        return ranked[:limit]

    def _edges_among(self, ids: Sequence[str], since: datetime | None, until: datetime | None) -> list[Edge]:
        """Entity edges with both ends in `ids` (window-recomputed)."""
        if since is None and until is None:
            edges = self._edges_static(ids)
            return edges if self._static_edges_sorted else sort_edges(edges)
        idset = set(ids)
        return sort_edges([e for e in self._window_incident(ids, since, until, "both")
                           if e.source in idset and e.target in idset])

    def _ego_static(self, centre: Node, depth: int, types: Sequence[str], max_nodes: int) -> Subgraph | None:
        """Optional backend fast path for an ego network without a window (same answer); None = not offered."""
        return None

    @abstractmethod
    def _adjacent(self, ids: Sequence[str]) -> list[Edge]:
        """Entity edges (no window) with at least one end in `ids`."""

    @abstractmethod
    def _visits_by_id(self, mdtrt_ids: Sequence[str]) -> list[VisitRow]:
        """The visits with these ids that exist."""

    @abstractmethod
    def _visits_connecting(self, members: Sequence[str], since: datetime | None, until: datetime | None,
                           limit: int) -> list[VisitRow]:
        """Visits of member persons at member institutions or with member practitioners, in order."""

    @abstractmethod
    def _timeline_rows(self, node_type: str, key: str, since: datetime | None, until: datetime | None,
                       limit: int) -> list[VisitRow]:
        """Visits involving the entity, in order, at most `limit`."""

    @abstractmethod
    def _stats(self, node_type: str, key: str) -> dict[str, Any]:
        """Profile figures of one entity (see the module docstring)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # ---- validation --------------------------------------------------------------------------------------
    def _require(self, nid: str) -> Node:
        node_type, key = split_node_id(nid)
        if node_type not in ENTITY_TYPES or not key:
            raise NotFoundError(f"unknown node id '{nid}': expected Type:key with Type one of "
                                f"{', '.join(ENTITY_TYPES)}")
        node = self._nodes([nid]).get(nid)
        if node is None:
            raise NotFoundError(f"{node_type} '{key}' not found ({self.name} store)")
        return node

    @staticmethod
    def _check_window(since: datetime | None, until: datetime | None) -> None:
        if since is not None and until is not None and until < since:
            raise QueryLimitError(f"time window until={until} is before since={since}")

    # ---- GraphStore -------------------------------------------------------------------------------------
    def profile(self, node_id: str) -> EntityProfile:
        node = self._require(node_id)
        stats = self._stats(node.type, node.key)
        return EntityProfile(id=node.id, type=node.type, key=node.key, label=node.label, props=node.props,
                             stats=stats)

    def _ego_request(self, node_id: str, depth: int, node_types: Sequence[str] | None, since: datetime | None,
                     until: datetime | None, max_nodes: int) -> tuple[Node, tuple[str, ...]]:
        """Check an ego network's arguments; (the centre node, the types kept and traversed)."""
        types = ego_types(depth, node_types, since, until, max_nodes)
        return self._require(node_id), types

    def ego_network(
        self,
        node_id: str,
        depth: int = 1,
        node_types: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        max_nodes: int = DEFAULT_NODE_CAP,
    ) -> Subgraph:
        centre, types = self._ego_request(node_id, depth, node_types, since, until, max_nodes)
        if since is None and until is None:
            fast = self._ego_static(centre, depth, types, max_nodes)
            if fast is not None:
                return fast
        taken: list[str] = [centre.id]
        taken_set = {centre.id}
        frontier = [centre.id]
        truncated = False
        if centre.type in TRAVERSED_TYPES:
            for _ in range(depth):
                room = max_nodes - len(taken)
                if room <= 0 or not frontier or not types:
                    # No room left: any further neighbour would be cut, so check whether one exists.
                    if room <= 0 and frontier and types and self._candidates(frontier, taken_set, types, since,
                                                                             until, 1):
                        truncated = True
                    break
                cands = self._candidates(frontier, taken_set, types, since, until, room + 1)
                if len(cands) > room:
                    truncated = True
                    cands = cands[:room]
                taken.extend(cands)
                taken_set.update(cands)
                frontier = cands
                if truncated:
                    break
        nodes = self._nodes(taken)
        edges = self._edges_among(taken, since, until)
        return Subgraph(nodes=[nodes[i] for i in taken if i in nodes], edges=edges, truncated=truncated)

    def shortest_paths(self, source_id: str, target_id: str, max_depth: int = 4,
                       max_paths: int = 10) -> list[GraphPath]:
        if not 1 <= max_depth <= MAX_PATH_DEPTH:
            raise QueryLimitError(f"max_depth {max_depth} is outside 1..{MAX_PATH_DEPTH}")
        if not 1 <= max_paths <= 1000:
            raise QueryLimitError(f"max_paths {max_paths} is outside 1..1000")
        src = self._require(source_id).id
        dst = self._require(target_id).id
        if src == dst:
            return [GraphPath(nodes=[src], edges=[])]
        if split_node_id(src)[0] not in TRAVERSED_TYPES or split_node_id(dst)[0] not in TRAVERSED_TYPES:
            return []
        pair_edge: dict[frozenset[str], Edge] = {}

        def expand(level: list[str], seen: dict[str, int], parents: dict[str, set[str]], depth: int) -> list[str]:
            level_set = set(level)
            new: set[str] = set()
            for e in self._adjacent(level):
                for a, b in ((e.source, e.target), (e.target, e.source)):
                    if a in level_set and (b not in seen or seen[b] == depth):
                        key = frozenset((a, b))
                        old = pair_edge.get(key)
                        if old is None or EDGE_ORDER.get(e.type, 99) < EDGE_ORDER.get(old.type, 99):
                            pair_edge[key] = e
                        if b not in seen:
                            seen[b] = depth
                            new.add(b)
                        parents.setdefault(b, set()).add(a)
            return sorted(new)

        fwd_seen, bwd_seen = {src: 0}, {dst: 0}
        fwd_par: dict[str, set[str]] = {}
        bwd_par: dict[str, set[str]] = {}
        fwd_level, bwd_level = [src], [dst]
        fdepth = bdepth = 0
        meet: list[str] = []
        while fdepth + bdepth < max_depth and fwd_level and bwd_level:
            if len(fwd_level) <= len(bwd_level):
                fdepth += 1
                fwd_level = expand(fwd_level, fwd_seen, fwd_par, fdepth)
                meet = [n for n in fwd_level if bwd_seen.get(n) == bdepth]
            else:
                bdepth += 1
                bwd_level = expand(bwd_level, bwd_seen, bwd_par, bdepth)
                meet = [n for n in bwd_level if fwd_seen.get(n) == fdepth]
            if meet:
                break
        if not meet:
            return []
        # Forward DAG children restricted to ancestors of the meeting nodes.
        useful = set(meet)
        stack = list(meet)
        while stack:
            n = stack.pop()
            for p in fwd_par.get(n, ()):
                if p not in useful:
                    useful.add(p)
                    stack.append(p)
        children: dict[str, list[str]] = {}
        for child, ps in fwd_par.items():
            if child in useful:
                for p in ps:
                    if p in useful:
                        children.setdefault(p, []).append(child)
        for lst in children.values():
            lst.sort()
        meet_set = set(meet)
        total = fdepth + bdepth
        paths: list[list[str]] = []

        def walk(path: list[str]) -> None:
            if len(paths) >= max_paths:
                return
            n = path[-1]
            if len(path) == total + 1:
                if n == dst:
                    paths.append(list(path))
                return
            if len(path) - 1 < fdepth:
                nxt = children.get(n, [])
            else:
                if len(path) - 1 == fdepth and n not in meet_set:
                    return
                nxt = sorted(bwd_par.get(n, ()))
            for m in nxt:
                path.append(m)
                walk(path)
                path.pop()
                if len(paths) >= max_paths:
                    return

        walk([src])
        return [GraphPath(nodes=p, edges=[pair_edge[frozenset((a, b))] for a, b in zip(p, p[1:], strict=False)])
                for p in paths]

    def subgraph(
        self,
        node_ids: Sequence[str],
        include_visits: bool = True,
        since: datetime | None = None,
        until: datetime | None = None,
        evidence: Sequence[str] | None = None,
    ) -> Subgraph:
        self._check_window(since, until)
        members = sorted(dict.fromkeys(node_ids), key=node_sort_key)
        if len(members) > MAX_NODE_CAP:
            raise QueryLimitError(f"{len(members)} node ids exceed the cap of {MAX_NODE_CAP}")
        nodes = self._nodes(members)
        missing = [m for m in members if m not in nodes]
        if missing:
            raise NotFoundError(f"unknown node id(s): {', '.join(missing[:10])} ({self.name} store)")
        out_nodes = [nodes[m] for m in members]
        edges = self._edges_among(members, since, until)
        room = MAX_NODE_CAP - len(out_nodes)
        truncated = False
        visits: list[tuple[VisitRow, bool]] = []
        ev_ids = sorted(set(evidence or ()))
        if ev_ids:
            ev_rows = sorted(self._visits_by_id(ev_ids), key=VisitRow.sort_key)
            visits.extend((v, True) for v in ev_rows)
        if include_visits:
            seen = {v.mdtrt_id for v, _ in visits}
            conn = self._visits_connecting(members, since, until, room + len(seen) + 1)
            visits.extend((v, False) for v in conn if v.mdtrt_id not in seen)
        if len(visits) > room:
            truncated = True
            visits = visits[:room]
        member_set = set(members)
        for v, is_ev in visits:
            vnode = v.to_node(is_ev)
            out_nodes.append(vnode)
            pid = node_id("Person", v.psn_no)
            if pid in member_set:
                edges.append(make_edge("HAD", pid, vnode.id))
            if v.inst_type:
                iid = node_id(v.inst_type, v.fixmedins_code)
                if iid in member_set:
                    edges.append(make_edge("AT", vnode.id, iid))
            if v.atddr_no and v.prac_known:
                did = node_id("Practitioner", v.atddr_no)
                if did in member_set:
                    edges.append(make_edge("ATTENDED_BY", vnode.id, did))
        return Subgraph(nodes=out_nodes, edges=sort_edges(edges), truncated=truncated)

    def timeline(self, node_id: str, since: datetime | None = None, until: datetime | None = None,
                 limit: int = 1000) -> list[TimelineEvent]:
        if not 1 <= limit <= MAX_TIMELINE:
            raise QueryLimitError(f"limit {limit} is outside 1..{MAX_TIMELINE}")
        self._check_window(since, until)
        node = self._require(node_id)
        rows = self._timeline_rows(node.type, node.key, since, until, limit)
        return [r.to_event() for r in rows]
