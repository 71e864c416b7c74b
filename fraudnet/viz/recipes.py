"""Evidence-first chart recipes: per lead kind, the nodes and summarised links that prove the scheme.

- collusion ring: members, their doctors and institution, the phones/addresses they share, and one *occasion*
  node per co-admission window (persons → occasion → institution) instead of one tile per stay;
- card skimming: the operator(s) who swiped, their pharmacy, the cards (persons) and the bursts as time nodes;
- drug resale: leader, collectors and connectors, their shared phones/addresses, prescribers and dispensing
  institutions, the drug with quantities and days of supply per person;
- other kinds: the members, shared contacts and the evidence visits (as before).

Visits of the evidence are summarised into links (`props.summary` "24 stays, 2025-02-10…06-03, ¥81,240" in
both languages, `props.visit_ids` for the visit list). Synthetic nodes (`Occasion`, `Burst`, `Operator`) carry
their figures in `props`; the front-end writes their labels in the user's language.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from fraudnet.claims.chart_facts import ChartVisit, DrugFill, chart_visits, drug_fills, shared_contacts
from fraudnet.claims.queries import resolve_members
from fraudnet.errors import NotFoundError
from fraudnet.graph.model import Edge, Node, Subgraph, node_id

__all__ = ["lead_chart", "visit_summary", "SCHEME_KINDS", "BURST_GAP"]

SCHEME_KINDS = ("collusion_ring", "card_skimming", "drug_resale")
BURST_GAP = timedelta(hours=3)  # evidence swipes of one operator further apart than this start a new burst
OCCASION_DAYS = 3  # stays up to this many days after an occasion's first date belong to it
_UNITS = {"stay": ("次住院", "stays"), "fill": ("次取药", "fills"), "visit": ("次就诊", "visits")}


def _visit_unit(visits: Iterable[ChartVisit]) -> str:
    kinds = {("stay" if (v.med_type or "").startswith("2") else "fill" if v.fixmedins_type == "2" else "visit")
             for v in visits}
    return kinds.pop() if len(kinds) == 1 else "visit"


def _day(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d") if t else "?"


def visit_summary(visits: Sequence[ChartVisit]) -> dict[str, Any]:
    """Figures of a group of visits and its one-line summary in both languages:
    `24 stays, 2025-02-10…06-03, ¥81,240` / `24次住院，2025-02-10…06-03，¥81,240`."""
    times = [v.begntime for v in visits if v.begntime]
    first, last = (min(times), max(times)) if times else (None, None)
    amount = round(sum(v.fund_pay for v in visits), 2)
    unit = _visit_unit(visits)
    span = _day(first) if first and last and first.date() == last.date() else (
        f"{_day(first)}…{last.strftime('%m-%d') if first and last and first.year == last.year else _day(last)}")
    zh_unit, en_unit = _UNITS[unit]
    n = len(visits)
    return {
        "visits": n, "amount": amount, "first": first, "last": last, "unit": unit,
        "summary_zh": f"{n}{zh_unit}，{span}，¥{amount:,.0f}",
        "summary_en": f"{n} {en_unit if n != 1 else en_unit[:-1]}, {span}, ¥{amount:,.0f}",
        "visit_ids": [v.mdtrt_id for v in visits],
    }


def _edge(edge_type: str, source: str, target: str, visits: Sequence[ChartVisit] = (),
          **props: Any) -> Edge:
    s = visit_summary(visits) if visits else None
    eid = f"{edge_type}:{source}->{target}"
    if s is None:
        return Edge(id=eid, type=edge_type, source=source, target=target, props=props)
    fig = {k: s[k] for k in ("summary_zh", "summary_en", "visit_ids", "unit")}
    return Edge(id=eid, type=edge_type, source=source, target=target, visits=s["visits"], amount=s["amount"],
                first=s["first"], last=s["last"], props={**fig, **props})


def _place_id(v: ChartVisit) -> str:
    return node_id("Pharmacy" if str(v.fixmedins_type or "") == "2" else "Institution", v.fixmedins_code)


def lead_chart(lead: dict[str, Any], store: Any, con: Any) -> Subgraph:
    """The chart of `lead` by its kind's recipe (see the module docstring). Raises NotFoundError when none of
    the lead's members is in the graph."""
    persons = [str(p) for p in lead.get("persons") or []]
    members = resolve_members(con, persons, lead.get("practitioners") or [], lead.get("institutions") or [])
    if not members:
        raise NotFoundError(f"lead {lead.get('lead_id')!r}: none of its members is in the graph")
    kind = str(lead.get("kind") or "")
    evidence = [str(e) for e in lead.get("evidence") or []]
    contacts = shared_contacts(con, persons)
    contact_ids = [node_id(t, k) for t, k, _ in contacts]
    if kind not in SCHEME_KINDS:
        sub = store.subgraph(members + contact_ids, include_visits=True, evidence=evidence)
        return _mark_roles(sub, lead, "generic")
    sub = store.subgraph(members + contact_ids, include_visits=False)
    visits = chart_visits(con, evidence)
    member_set = set(members)
    # Visit-count links among members come back as the evidence summaries below; other relationships stay.
    # Rings: the occasions show who was admitted together, pairwise CO_ADMITTED links would only clutter.
    dropped = ("VISITED", "TREATED_BY", "CO_ADMITTED") if kind == "collusion_ring" else ("VISITED", "TREATED_BY")
    keep = [e for e in sub.edges if e.type not in dropped]
    nodes = list(sub.nodes)
    if kind == "collusion_ring":
        extra_nodes, extra_edges = _ring(lead, visits, member_set)
    elif kind == "card_skimming":
        extra_nodes, extra_edges = _skimming(lead, visits, member_set)
    else:
        fills = drug_fills(con, evidence)
        named = {str(d) for d in (lead.get("features") or {}).get("drugs") or []} if isinstance(
            lead.get("features"), dict) else set()
        if named:  # the drug(s) the detector named, not every key drug on the same visits
            fills = [f for f in fills if f.hilist_code in named] or fills
        extra_nodes, extra_edges = _resale(lead, visits, fills, member_set)
    nodes += extra_nodes
    # A member outside the caller's scope comes back as an opaque node: links to its raw id are dropped.
    present = {n.id for n in nodes}
    edges = keep + [e for e in extra_edges if e.source in present and e.target in present]
    return _mark_roles(Subgraph(nodes=nodes, edges=edges, truncated=sub.truncated), lead, kind)


def _mark_roles(sub: Subgraph, lead: dict[str, Any], recipe: str) -> Subgraph:
    """Person roles of a resale chain (leader, collector, connector) and the recipe name on each node."""
    feats = lead.get("features") or {}
    roles: dict[str, str] = {}
    if isinstance(feats, dict):
        for p in feats.get("collectors") or []:
            roles[f"Person:{p}"] = "collector"
        for p in feats.get("connectors") or []:
            roles.setdefault(f"Person:{p}", "connector")
        if feats.get("leader"):
            roles[f"Person:{feats['leader']}"] = "leader"
    for n in sub.nodes:
        if n.id in roles:
            n.props = {**n.props, "role": roles[n.id]}
    return sub


def _ring(lead: dict[str, Any], visits: list[ChartVisit], members: set[str]) -> tuple[list[Node], list[Edge]]:
    """One Occasion node per co-admission window (the detector's occasion dates, ±1 day, same institution)."""
    feats = lead.get("features") if isinstance(lead.get("features"), dict) else {}
    dates = [datetime.fromisoformat(str(d)) for d in feats.get("occasion_dates") or []]
    insts = [str(i) for i in feats.get("occasion_institutions") or []]
    groups: dict[tuple[str, str], list[ChartVisit]] = defaultdict(list)
    for v in visits:
        if not v.begntime:
            continue
        best = None
        for d, inst in zip(dates, insts or [v.fixmedins_code] * len(dates), strict=False):
            delta = (v.begntime.date() - d.date()).days  # a window starts on its date and spans a few days
            gap = delta if delta >= 0 else 10 * -delta
            if inst == v.fixmedins_code and -1 <= delta <= OCCASION_DAYS and (best is None or gap < best[0]):
                best = (gap, d)
        day = best[1].date().isoformat() if best else v.begntime.date().isoformat()
        groups[(v.fixmedins_code, day)].append(v)
    nodes: list[Node] = []
    edges: list[Edge] = []
    for (inst, day), vs in sorted(groups.items(), key=lambda kv: kv[0][1]):
        oid = f"Occasion:{inst}|{day}"
        s = visit_summary(vs)
        people = sorted({v.psn_no for v in vs})
        nodes.append(Node(id=oid, type="Occasion", key=f"{inst}|{day}", label=f"{day} · {len(people)}",
                          props={"date": day, "institution": inst, "persons": len(people), "stays": len(vs),
                                 "amount": s["amount"], "first": s["first"], "last": s["last"],
                                 "evidence": True}))
        place = _place_id(vs[0])
        if place in members:
            edges.append(_edge("ADMITTED_AT", oid, place, vs))
        by_person: dict[str, list[ChartVisit]] = defaultdict(list)
        by_doc: dict[str, list[ChartVisit]] = defaultdict(list)
        for v in vs:
            by_person[v.psn_no].append(v)
            if v.atddr_no:
                by_doc[v.atddr_no].append(v)
        for p, pvs in sorted(by_person.items()):
            if f"Person:{p}" in members:
                edges.append(_edge("ADMITTED_IN", f"Person:{p}", oid, pvs))
        for d, dvs in sorted(by_doc.items()):
            if f"Practitioner:{d}" in members:
                edges.append(_edge("ATTENDED_BY", oid, f"Practitioner:{d}", dvs))
    return nodes, edges


def _bursts(vs: list[ChartVisit]) -> list[list[ChartVisit]]:
    out: list[list[ChartVisit]] = []
    for v in sorted(vs, key=lambda x: (x.begntime or datetime.min, x.mdtrt_id)):
        if out and v.begntime and out[-1][-1].begntime and v.begntime - out[-1][-1].begntime <= BURST_GAP:
            out[-1].append(v)
        else:
            out.append([v])
    return out


def _skimming(lead: dict[str, Any], visits: list[ChartVisit], members: set[str]) -> tuple[list[Node], list[Edge]]:
    """Operator nodes at their pharmacy; each operator's swipes split into bursts (time nodes)."""
    by_op: dict[tuple[str, str], list[ChartVisit]] = defaultdict(list)
    for v in visits:
        by_op[(v.fixmedins_code, v.opter_id or "?")].append(v)
    nodes: list[Node] = []
    edges: list[Edge] = []
    for (inst, opter), vs in sorted(by_op.items()):
        op_id = f"Operator:{inst}|{opter}"
        place = _place_id(vs[0])
        s = visit_summary(vs)
        nodes.append(Node(id=op_id, type="Operator", key=f"{inst}|{opter}", label=opter,
                          props={"opter_id": opter, "institution": inst, "cards": len({v.psn_no for v in vs}),
                                 "visits": len(vs), "amount": s["amount"]}))
        if place in members:
            edges.append(_edge("OPERATES_AT", op_id, place, vs))
        for b in _bursts(vs):
            start, end = b[0].begntime, b[-1].begntime
            bid = f"Burst:{inst}|{opter}|{start.isoformat() if start else b[0].mdtrt_id}"
            cards = sorted({v.psn_no for v in b})
            minutes = round((end - start).total_seconds() / 60, 1) if start and end else 0.0
            bs = visit_summary(b)
            nodes.append(Node(id=bid, type="Burst", key=bid.split(":", 1)[1], label=_day(start),
                              props={"start": start, "end": end, "minutes": minutes, "cards": len(cards),
                                     "visits": len(b), "amount": bs["amount"], "opter_id": opter,
                                     "institution": inst, "first": start, "last": end, "evidence": True}))
            edges.append(_edge("SWIPED", op_id, bid, b))
            by_card: dict[str, list[ChartVisit]] = defaultdict(list)
            for v in b:
                by_card[v.psn_no].append(v)
            for p, pvs in sorted(by_card.items()):
                if f"Person:{p}" in members:
                    edges.append(_edge("CARD_IN", f"Person:{p}", bid, pvs))
    return nodes, edges


def _resale(lead: dict[str, Any], visits: list[ChartVisit], fills: list[DrugFill],
            members: set[str]) -> tuple[list[Node], list[Edge]]:
    """Person → institution fills summarised, Person → Drug with quantity and days of supply, prescriber → Drug."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    by_place: dict[tuple[str, str], list[ChartVisit]] = defaultdict(list)
    for v in visits:
        by_place[(v.psn_no, _place_id(v))].append(v)
    for (p, place), vs in sorted(by_place.items()):
        if f"Person:{p}" in members and place in members:
            edges.append(_edge("FILLED_AT", f"Person:{p}", place, vs))
    by_visit = {v.mdtrt_id: v for v in visits}
    drugs: dict[str, list[DrugFill]] = defaultdict(list)
    for f in fills:
        drugs[f.hilist_code].append(f)
    for code, fs in sorted(drugs.items()):
        did = node_id("Drug", code)
        nodes.append(Node(id=did, type="Drug", key=code, label=fs[0].hilist_name or code,
                          props={"hilist_code": code, "hilist_name": fs[0].hilist_name, "fills": len(fs),
                                 "quantity": round(sum(f.cnt for f in fs), 2),
                                 "days_of_supply": round(sum(f.prd_days or 0 for f in fs), 1),
                                 "amount": round(sum(f.amount for f in fs), 2), "key_drug": True}))
        for who, key in (("Person", "psn_no"), ("Practitioner", "prescriber")):
            groups: dict[str, list[DrugFill]] = defaultdict(list)
            for f in fs:
                if getattr(f, key):
                    groups[str(getattr(f, key))].append(f)
            for k, gfs in sorted(groups.items()):
                src = f"{who}:{k}"
                if src not in members:
                    continue
                vs = [by_visit[f.mdtrt_id] for f in gfs if f.mdtrt_id in by_visit]
                edges.append(_edge("OBTAINED" if who == "Person" else "PRESCRIBED", src, did, vs,
                                   quantity=round(sum(f.cnt for f in gfs), 2),
                                   days_of_supply=round(sum(f.prd_days or 0 for f in gfs), 1),
                                   fills=len(gfs)))
    return nodes, edges


def case_chart(lead: dict[str, Any], node_ids: Sequence[str], hidden: Iterable[str], store: Any,
               con: Any) -> Subgraph:
    """A saved chart rebuilt from the data: the lead's recipe plus the entities added on the chart (expansion,
    search, paths), with every relationship among them; only `node_ids` (when given) minus `hidden`."""
    from fraudnet.graph.model import ENTITY_TYPES

    base = lead_chart(lead, store, con)
    have = {n.id for n in base.nodes}
    wanted = list(dict.fromkeys(node_ids))
    extra = [i for i in wanted if i not in have and i.split(":", 1)[0] in ENTITY_TYPES]
    nodes, edges = list(base.nodes), list(base.edges)
    if extra:
        entities = [n.id for n in base.nodes if n.type in ENTITY_TYPES]
        try:
            more = store.subgraph(entities + extra, include_visits=False)
        except NotFoundError:  # an entity gone from the data since the file was saved
            known = []
            for i in extra:
                try:
                    store.subgraph([i], include_visits=False)
                    known.append(i)
                except NotFoundError:
                    continue
            more = store.subgraph(entities + known, include_visits=False) if known else Subgraph()
        extra_set = set(extra)
        nodes += [n for n in more.nodes if n.id in extra_set]
        seen = {e.id for e in edges}
        edges += [e for e in more.edges if e.id not in seen and (e.source in extra_set or e.target in extra_set)]
    keep = (set(wanted) if wanted else {n.id for n in nodes}) - set(hidden)
    nodes = [n for n in nodes if n.id in keep]
    ids = {n.id for n in nodes}
    return Subgraph(nodes=nodes, edges=[e for e in edges if e.source in ids and e.target in ids],
                    truncated=base.truncated)


__all__ += ["case_chart"]
