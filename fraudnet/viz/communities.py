"""Communities of a big chart answer (Leiden, fixed seed): which group each node is drawn in and the group's head."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import igraph as ig

__all__ = ["BIG_CHART", "ENTITY_TYPES", "chart_communities", "annotate_communities"]

#: Above this many nodes a chart answer carries communities (the browser groups the chart by them).
BIG_CHART = 400
#: Node types that may head (name) a community: people and places, not visits or contacts.
ENTITY_TYPES = ("Person", "Practitioner", "Institution", "Pharmacy", "Drug")


def _get(e: Any, name: str) -> Any:
    return e.get(name) if isinstance(e, dict) else getattr(e, name, None)


def chart_communities(node_ids: list[str], edges: Iterable[Any], types: dict[str, str] | None = None,
                      seed: int = 14, resolution: float = 1.0) -> tuple[list[int], dict[int, str]]:
    """(community number of each node in `node_ids` order, the head node id of each community).

    Leiden (modularity) over the answer's links, weighted by visits + 1 (a link with visits binds more than a
    shared phone); the same answer always gives the same partition (`seed`). Communities are numbered by size,
    0 the largest; isolated nodes form their own. The head is the member with the most money on its links, among
    `types`' entity nodes when there are any. Edges naming nodes outside `node_ids` are ignored."""
    index = {nid: i for i, nid in enumerate(node_ids)}
    pairs: list[tuple[int, int]] = []
    weights: list[float] = []
    money = [0.0] * len(node_ids)
    for e in edges:
        s, t = index.get(_get(e, "source")), index.get(_get(e, "target"))
        if s is None or t is None or s == t:
            continue
        pairs.append((s, t))
        weights.append(1.0 + float(_get(e, "visits") or 0))
        amount = float(_get(e, "amount") or 0) + float(_get(e, "visits") or 0)
        money[s] += amount
        money[t] += amount
    g = ig.Graph(n=len(node_ids), edges=pairs, directed=False)
    try:  # igraph's random numbers from a private generator: the same answer, the same partition
        ig.set_random_number_generator(random.Random(seed))
        parts = g.community_leiden(objective_function="modularity", weights=weights or None,
                                   resolution=resolution, n_iterations=-1)
    finally:
        ig.set_random_number_generator(random)
    raw = list(parts.membership)
    sizes: dict[int, int] = {}
    for c in raw:
        sizes[c] = sizes.get(c, 0) + 1
    # Numbered by size (largest first), ties by the first node's position: stable for the same answer.
    first: dict[int, int] = {}
    for i, c in enumerate(raw):
        first.setdefault(c, i)
    order = sorted(sizes, key=lambda c: (-sizes[c], first[c]))
    renumber = {c: k for k, c in enumerate(order)}
    membership = [renumber[c] for c in raw]
    heads: dict[int, str] = {}
    best: dict[int, tuple[int, float, int]] = {}
    for i, c in enumerate(membership):
        entity = 1 if types is not None and types.get(node_ids[i]) in ENTITY_TYPES else 0
        key = (entity, money[i], -i)
        if c not in best or key > best[c]:
            best[c] = key
            heads[c] = node_ids[i]
    return membership, heads


def annotate_communities(out: dict[str, Any], threshold: int = BIG_CHART, seed: int = 14) -> dict[str, Any]:
    """A chart answer (`{nodes: [dicts], edges: [...]}`, already masked for its reader) with, above `threshold`
    nodes, `props.community` (number, 0 the largest), `props.community_size` and `props.community_head` (the id
    of the community's head node, whose label names the group) on every node. Smaller answers are returned as
    they are. Node `props` dicts are replaced, never changed in place (stores may share them)."""
    nodes = out.get("nodes") or []
    if len(nodes) <= threshold:
        return out
    ids = [n["id"] for n in nodes]
    types = {n["id"]: n.get("type") for n in nodes}
    membership, heads = chart_communities(ids, out.get("edges") or [], types, seed=seed)
    sizes: dict[int, int] = {}
    for c in membership:
        sizes[c] = sizes.get(c, 0) + 1
    for n, c in zip(nodes, membership, strict=True):
        n["props"] = {**(n.get("props") or {}), "community": c, "community_size": sizes[c],
                      "community_head": heads[c]}
    return out
