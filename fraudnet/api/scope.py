"""A scoped principal's view of the graph store, the lead store and search (rules in `fraudnet.claims.scope`).

Routers take the graph store and the lead store through `ScopedStoreDep` and `ScopedLeadsDep`: for a token
without a scope these are the context's own stores (nothing changes); for a scoped token they are wrappers that
answer 404 for an entity or lead outside the scope (the same answer as for one that does not exist, so existence
is not leaked), filter lists, and show entities outside the scope in graph answers as opaque placeholders
(`Outside:<token>`, label "outside your scope / 超出权限范围", no properties) joined to the visible nodes only by
`OUTSIDE` edges that carry how many relationships they stand for. Scoped ego networks are answered in the server
process (`fraudnet.api.ego.EgoService`), never by the forked graph workers. `Scopes` is the service the routers'
dependencies (`fraudnet.api.deps`) get these views from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import pandas as pd

from fraudnet.api.claims_access import ClaimsAccess, ThreadCursor
from fraudnet.api.graph_holder import GraphStoreHolder
from fraudnet.api.lead_queries import LeadQueries
from fraudnet.api.principal import Principal
from fraudnet.claims.leads import MAX_LIMIT
from fraudnet.claims.queries import evidence_visits, search_entities
from fraudnet.claims.scope import (
    OUTSIDE_LABEL,
    OUTSIDE_TYPE,
    ScopeIndex,
    is_outside,
    outside_id,
    scope_index,
)
from fraudnet.errors import NotFoundError
from fraudnet.graph.model import (
    DEFAULT_NODE_CAP,
    Edge,
    EntityProfile,
    GraphPath,
    Node,
    Subgraph,
    TimelineEvent,
    split_node_id,
)
from fraudnet.graph.query_base import MAX_TIMELINE
from fraudnet.graph.store import GraphQueries

__all__ = ["ScopeView", "ScopedGraphStore", "ScopedLeads", "Scopes", "OUTSIDE_EDGE"]

OUTSIDE_EDGE = "OUTSIDE"
MAX_SCOPED_SEARCH = 20_000  # matches a scoped search reads at most before filtering
_MEMBER_TYPES = {"persons": "Person", "practitioners": "Practitioner", "institutions": "Institution"}


def _not_found(node_id: str, store_name: str) -> NotFoundError:
    """The graph store's own answer for an unknown entity, word for word: an entity outside the scope must be
    indistinguishable from one that does not exist."""
    node_type, key = split_node_id(node_id)
    return NotFoundError(f"{node_type} '{key}' not found ({store_name} store)")


class ScopeView:
    """One scoped principal's questions against the current data (the `ScopeIndex` is read lazily, on the
    thread that first needs it, and shared while leads and graph stay the same)."""

    def __init__(self, claims: ClaimsAccess, graph: GraphStoreHolder, leads: LeadQueries,
                 principal: Principal) -> None:
        assert principal.scope is not None
        self.con = claims.con
        self.graph = graph
        self.leads = leads
        self.scope = principal.scope
        self._index: ScopeIndex | None = None

    @property
    def index(self) -> ScopeIndex:
        """Read again when the leads change, the graph store is replaced or a new ingest batch finished (with
        Neo4j an ingest keeps the store object: persons who moved district must not keep their old scope)."""
        if self._index is None:
            version = (self.leads.version, id(self.graph.store), _last_batch(self.con))
            self._index = scope_index(self.con, self.scope, version)
        return self._index

    # ------------------------------------------------------------------ entities and visits
    def sees(self, node_id: str) -> bool:
        """Whether an entity node is in scope (Visit nodes: `visible_visits`)."""
        node_type, key = split_node_id(node_id)
        if node_type == "Visit":
            return bool(self.visible_visits([key]))
        return self.index.sees_entity(node_type, key)

    def require(self, node_id: str) -> None:
        """NotFoundError (404, as for an unknown id) for an entity outside the scope."""
        if not self.sees(node_id):
            raise _not_found(node_id, self.graph.store.name)

    def visible_visits(self, mdtrt_ids: Sequence[str]) -> set[str]:
        """The visits among `mdtrt_ids` whose person or institution is in scope."""
        ids = sorted({str(i) for i in mdtrt_ids})
        if not ids:
            return set()
        import duckdb

        try:
            rows = self.con.execute("SELECT mdtrt_id, psn_no, fixmedins_code FROM visit_fact "
                                        "WHERE mdtrt_id IN (SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()
        except duckdb.CatalogException:
            return set()
        return {str(m) for m, p, f in rows if self.index.sees_visit(p, f)}

    def visit_fields(self, visit: dict[str, Any]) -> dict[str, Any]:
        """A visible visit's record with its person, institution and attending practitioner replaced by their
        placeholder tokens where they are outside the scope (a B patient's stay at an A hospital shows A the stay,
        not the patient's number)."""
        out = dict(visit)
        for column, node_type in (("psn_no", "Person"), ("fixmedins_code", "Institution"),
                                  ("atddr_no", "Practitioner")):
            key = out.get(column)
            if key and not self.index.sees_entity(node_type, str(key)):
                out[column] = outside_id(f"{node_type}:{key}")
        return out

    def placeholder(self, node_id: str) -> Node:
        """The border node shown instead of an entity outside the scope: an opaque id, no properties."""
        pid = outside_id(node_id)
        return Node(id=pid, type=OUTSIDE_TYPE, key=pid.partition(":")[2], label=OUTSIDE_LABEL, props={}, risk=None)

    def mask_subgraph(self, sub: Subgraph, keep: Sequence[str] = ()) -> Subgraph:
        """Nodes outside the scope as placeholders; an edge between two visible nodes as it is; the edges between
        a visible node and one placeholder as one `OUTSIDE` edge whose `props.edges` counts them; edges between
        two outside nodes dropped, and placeholders left without an edge too (unless their id is in `keep`)."""
        visits = self.visible_visits([n.key for n in sub.nodes if n.type == "Visit"])
        shown: dict[str, str] = {}  # node id → id shown
        nodes: list[Node] = []
        hidden: dict[str, Node] = {}
        for n in sub.nodes:
            visible = n.key in visits if n.type == "Visit" else self.index.sees_entity(n.type, n.key)
            if visible:
                shown[n.id] = n.id
                nodes.append(replace(n, props=self.visit_fields(n.props or {})) if n.type == "Visit" else n)
            else:
                ph = self.placeholder(n.id)
                shown[n.id] = ph.id
                hidden.setdefault(ph.id, ph)
        edges: list[Edge] = []
        border: dict[tuple[str, str], int] = {}
        for e in sub.edges:
            s, t = shown.get(e.source, outside_id(e.source)), shown.get(e.target, outside_id(e.target))
            s_out, t_out = is_outside(s), is_outside(t)
            if not s_out and not t_out:
                edges.append(e)
            elif s_out != t_out:
                pair = (s, t) if t_out else (t, s)
                border[pair] = border.get(pair, 0) + 1
        for (inside, outside), count in border.items():
            edges.append(Edge(id=f"{OUTSIDE_EDGE}:{inside}->{outside}", type=OUTSIDE_EDGE, source=inside,
                              target=outside, props={"edges": count}))
        linked = {o for _, o in border} | {k for k in keep if is_outside(k)}
        for k in keep:
            if is_outside(k) and k not in hidden:
                hidden[k] = Node(id=k, type=OUTSIDE_TYPE, key=k.partition(":")[2], label=OUTSIDE_LABEL)
        nodes.extend(ph for pid, ph in hidden.items() if pid in linked)
        return Subgraph(nodes=nodes, edges=edges, truncated=sub.truncated)

    # ------------------------------------------------------------------ leads
    def mask_leads(self, leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`mask_lead` of each, with the evidence visits of all of them looked up in one query."""
        visible = self.visible_visits([v for lead in leads for v in lead.get("evidence") or []])
        return [self.mask_lead(lead, visible) for lead in leads]

    def mask_lead(self, lead: dict[str, Any], visible_evidence: set[str] | None = None) -> dict[str, Any]:
        """A visible lead with its out-of-scope members replaced by their placeholder tokens (also inside the
        explanations and features) and only the evidence visits in scope (`visible_evidence`: looked up already)."""
        out = dict(lead)
        swap: dict[str, str] = {}
        for column, node_type in _MEMBER_TYPES.items():
            members = []
            for key in lead.get(column) or []:
                if self.index.sees_member(column, str(key)):
                    members.append(key)
                else:
                    swap[str(key)] = outside_id(f"{node_type}:{key}")
                    members.append(swap[str(key)])
            out[column] = members
        if "evidence" in lead:
            evidence = list(lead.get("evidence") or [])
            visible = self.visible_visits(evidence) if visible_evidence is None else visible_evidence
            out["evidence"] = [v for v in evidence if str(v) in visible]
            if "evidence_count" in lead:
                out["evidence_count"] = len(out["evidence"])
        if swap:
            for key in ("explanation_zh", "explanation_en", "features", "raised"):
                if key in out:
                    out[key] = _swap_text(out[key], swap)
        return out

    def lead_visible(self, lead_id: str) -> bool:
        return self.index.sees_lead(lead_id)


def _last_batch(con: Any) -> Any:
    """The newest ingest batch and when it finished (None before any ingest)."""
    import duckdb

    try:
        return con.execute("SELECT max(batch_id), max(finished_at) FROM ingest_batches").fetchone()
    except duckdb.Error:
        return None


def _swap_text(value: Any, swap: dict[str, str]) -> Any:
    """`value` (text, or lists/dicts of it) with every out-of-scope key replaced by its placeholder token."""
    if isinstance(value, str):
        for key in sorted(swap, key=len, reverse=True):
            if key in value:
                value = value.replace(key, swap[key])
        return value
    if isinstance(value, list):
        return [_swap_text(v, swap) for v in value]
    if isinstance(value, dict):
        return {_swap_text(k, swap): _swap_text(v, swap) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------- graph store
class ScopedGraphStore:
    """The graph store's read queries cut to one scope (only these methods: no Cypher, no ego index)."""

    def __init__(self, store: GraphQueries, view: ScopeView) -> None:
        self._store = store
        self.view = view
        self.name = store.name

    def profile(self, node_id: str) -> EntityProfile:
        self.view.require(node_id)
        found = self._store.profile(node_id)
        stats = dict(found.stats or {})
        if "person_keys" in stats:
            keys = [k for k in stats["person_keys"] or [] if self.view.index.sees_person(k)]
            stats["person_keys"] = keys
            stats["persons"] = len(keys)
        return replace(found, stats=stats)

    def timeline(self, node_id: str, since: datetime | None = None, until: datetime | None = None,
                 limit: int = 1000) -> list[TimelineEvent]:
        """Visible visits of the entity; when some were cut, read further (up to 10,000) to fill `limit`."""
        self.view.require(node_id)
        events = self._store.timeline(node_id, since=since, until=until, limit=limit)
        shown = [e for e in events if self.view.index.sees_visit(e.psn_no, e.fixmedins_code)]
        if len(shown) < len(events) and len(events) == limit and limit < MAX_TIMELINE:
            events = self._store.timeline(node_id, since=since, until=until, limit=MAX_TIMELINE)
            shown = [e for e in events if self.view.index.sees_visit(e.psn_no, e.fixmedins_code)]
        return [self._masked_event(e) for e in shown[:limit]]

    def _masked_event(self, event: TimelineEvent) -> TimelineEvent:
        fields = {k: getattr(event, k) for k in ("psn_no", "fixmedins_code", "atddr_no")}
        masked = self.view.visit_fields(fields)
        return event if masked == fields else replace(event, **masked)

    def ego_network(self, node_id: str, depth: int = 1, node_types: Sequence[str] | None = None,
                    since: datetime | None = None, until: datetime | None = None,
                    max_nodes: int = DEFAULT_NODE_CAP) -> Subgraph:
        self.view.require(node_id)
        return self.view.mask_subgraph(self._store.ego_network(node_id, depth, node_types, since, until, max_nodes))

    def shortest_paths(self, source_id: str, target_id: str, max_depth: int = 4,
                       max_paths: int = 10) -> list[GraphPath]:
        """Paths between two visible entities; nodes outside the scope on the way appear as placeholders and
        the edges touching them keep only their type."""
        self.view.require(source_id)
        self.view.require(target_id)
        out = []
        for p in self._store.shortest_paths(source_id, target_id, max_depth=max_depth, max_paths=max_paths):
            ids = {n: (n if self.view.sees(n) else outside_id(n)) for n in p.nodes}
            edges = [e if ids.get(e.source, e.source) == e.source and ids.get(e.target, e.target) == e.target
                     else Edge(id=f"{OUTSIDE_EDGE}:{ids[e.source]}->{ids[e.target]}", type=OUTSIDE_EDGE,
                               source=ids[e.source], target=ids[e.target], props={"edges": 1})
                     for e in p.edges]
            out.append(GraphPath(nodes=[ids[n] for n in p.nodes], edges=edges))
        return out

    def subgraph(self, node_ids: Sequence[str], include_visits: bool = True, since: datetime | None = None,
                 until: datetime | None = None, evidence: Sequence[str] | None = None) -> Subgraph:
        """The subgraph of visible members (404 for a member outside the scope; placeholder ids from a paths
        answer are kept as placeholders) with only the visible evidence visits."""
        members = [n for n in node_ids if not is_outside(n)]
        hidden = [n for n in members if not self.view.sees(n)]  # also the ids that do not exist: same answer
        if hidden:
            raise NotFoundError(f"unknown node id(s): {', '.join(hidden[:10])} ({self.name} store)")
        ev = sorted(self.view.visible_visits(evidence)) if evidence else evidence
        sub = self._store.subgraph(members, include_visits=include_visits, since=since, until=until, evidence=ev) \
            if members else Subgraph()
        return self.view.mask_subgraph(sub, keep=[n for n in node_ids if is_outside(n)])



# ---------------------------------------------------------------------------------------------- lead store
class ScopedLeads:
    """The lead store as one principal may use it: everything for an unscoped token; for a scoped one only the
    visible leads (404 for others, also for case actions), members outside the scope masked."""

    def __init__(self, leads: LeadQueries, view: ScopeView | None) -> None:
        self._leads = leads
        self._store = leads.store
        self.view = view

    def lead_page(self, render_row: Callable[[dict], bytes], envelope: dict[str, Any],
                  **query: Any) -> tuple[bytes, int]:
        """A page of the lead list as JSON (`LeadQueries.page`; its caches serve unscoped tokens only)."""
        if self.view is None:
            return self._leads.page(render_row, envelope, **query)
        rows, total = self.list(**query)
        body = b"".join((b'{"items":[', b",".join(render_row(r) for r in rows), b"],",
                         orjson.dumps({"total": total, **envelope})[1:]))
        return body, total

    def _visible_ids(self, **query: Any) -> list[str]:
        ids, total = self._store.page_ids(**{**query, "offset": 0, "limit": MAX_LIMIT})
        while len(ids) < total:  # more matching leads than one read gives
            more, _ = self._store.page_ids(**{**query, "offset": len(ids), "limit": MAX_LIMIT})
            if not more:
                break
            ids += more
        return [i for i in ids if self.view.lead_visible(i)]  # type: ignore[union-attr]

    def list(self, *, offset: int = 0, limit: int = 50, **query: Any) -> tuple[list[dict], int]:
        if self.view is None:
            return self._store.list(offset=offset, limit=limit, **query)
        self._store.check_page(offset, limit)
        for column, filter_name in (("persons", "person"), ("practitioners", "practitioner"),
                                    ("institutions", "institution")):
            value = query.get(filter_name)
            if value and not self.view.index.sees_member(column, str(value)):
                return [], 0  # filtering by an outside member would tell which visible lead names it
        ids = self._visible_ids(**query)
        page = ids[offset:offset + limit]
        rows = self._store.summaries(page)
        return self.view.mask_leads([rows[i] for i in page if i in rows]), len(ids)

    def evidence_visits(self, mdtrt_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The lead's evidence visits (`claims.queries.evidence_visits`), members outside the scope masked."""
        rows = evidence_visits(self._leads.con, mdtrt_ids)
        return rows if self.view is None else [self.view.visit_fields(r) for r in rows]

    def kinds(self) -> list[dict]:
        if self.view is None:
            return self._store.kinds()
        counts: dict[str, dict[str, Any]] = {}
        for row in self._store.summaries(self._visible_ids()).values():
            c = counts.setdefault(row["kind"], {"kind": row["kind"], "count": 0, "red": 0, "orange": 0, "yellow": 0})
            c["count"] += 1
            if row.get("severity") in ("red", "orange", "yellow"):
                c[row["severity"]] += 1
        return [counts[k] for k in sorted(counts)]

    @property
    def con(self) -> ThreadCursor:
        """The claims store connection the leads are read through (the calling thread's cursor)."""
        return self._leads.con

    def require(self, lead_id: str) -> dict:
        """The lead as `get` gives it; NotFoundError (404) for an unknown lead or one outside the scope."""
        lead = self.get(lead_id)
        if lead is None:
            raise NotFoundError(f"lead {lead_id!r} not found / 线索不存在")
        return lead

    def get(self, lead_id: str) -> dict | None:
        if self.view is not None and not self.view.lead_visible(lead_id):
            return None
        lead = self._store.get(lead_id)
        return lead if lead is None or self.view is None else self.view.mask_lead(lead)

    def leads_for_entity(self, entity_type: str, entity_id: str) -> list[dict]:
        if self.view is None:
            return self._store.leads_for_entity(entity_type, entity_id)
        self.view.require(f"{entity_type}:{entity_id}")
        return self.view.mask_leads([r for r in self._store.leads_for_entity(entity_type, entity_id)
                                     if self.view.lead_visible(r["lead_id"])])

    def entity_scores(self) -> pd.DataFrame:
        return _entity_rows(self.view, self._store.entity_scores())

    def _check(self, lead_id: str) -> None:
        if self.view is not None and not self.view.lead_visible(lead_id):
            raise NotFoundError(f"lead {lead_id!r} not found / 线索不存在")

    def set_status(self, lead_id: str, *args: Any) -> dict:
        self._check(lead_id)
        return self._store.set_status(lead_id, *args)

    def assign(self, lead_id: str, *args: Any) -> dict:
        self._check(lead_id)
        return self._store.assign(lead_id, *args)

    def add_note(self, lead_id: str, *args: Any) -> dict:
        self._check(lead_id)
        return self._store.add_note(lead_id, *args)


def _entity_rows(view: ScopeView | None, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of an `entity_type`, `entity_id` frame whose entity is in scope (Institution covers pharmacies)."""
    if view is None or not len(frame):
        return frame
    keep = [view.index.sees_entity(str(t), str(k)) for t, k in zip(frame["entity_type"], frame["entity_id"],
                                                                    strict=True)]
    return frame[keep].reset_index(drop=True)


class Scopes:
    """What a principal may see: for a token without a scope the stores themselves, for a scoped token their views
    cut to the scope (`ScopeView`)."""

    def __init__(self, claims: ClaimsAccess, graph: GraphStoreHolder, leads: LeadQueries) -> None:
        self._claims = claims
        self._graph = graph
        self._leads = leads

    def view(self, principal: Principal) -> ScopeView | None:
        """The principal's scope view, or None for a token that sees the whole workspace."""
        if principal.scope is None:
            return None
        return ScopeView(self._claims, self._graph, self._leads, principal)

    def graph(self, principal: Principal) -> GraphQueries:
        """The graph store as the principal may read it: the store itself, or a `ScopedGraphStore`."""
        view = self.view(principal)
        store = self._graph.store
        return store if view is None else ScopedGraphStore(store, view)

    def leads(self, principal: Principal) -> ScopedLeads:
        """The lead store as the principal may use it."""
        return ScopedLeads(self._leads, self.view(principal))

    def entity_frame(self, principal: Principal, frame: pd.DataFrame) -> pd.DataFrame:
        """A table of entities (columns `entity_type`, `entity_id`: labels, model scores) cut to the caller's scope."""
        return _entity_rows(self.view(principal), frame)

    def search(self, principal: Principal, q: str, limit: int, by_name: bool) -> list[dict[str, Any]]:
        """`search_entities` with hits outside the scope left out. The matches are read in growing batches (up to
        `MAX_SCOPED_SEARCH`) until `limit` visible ones are found: a query whose first matches all lie outside the
        scope (a short key prefix in a large city) may find fewer; a longer query narrows it."""
        con = self._claims.con
        view = self.view(principal)
        if view is None:
            return search_entities(con, q, limit=limit, by_name=by_name)
        batch = max(limit * 20, 200)
        while True:
            hits = search_entities(con, q, limit=batch, by_name=by_name)
            shown = [h for h in hits if view.index.sees_entity(h["type"], h["key"])]
            if len(shown) >= limit or len(hits) < batch or batch >= MAX_SCOPED_SEARCH:
                return shown[:limit]
            batch = min(batch * 10, MAX_SCOPED_SEARCH)
