"""Rotating-pool rings: communities of the co-admission graph (Leiden), their batches, closedness and shape."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

import igraph as ig
import numpy as np
import pandas as pd

__all__ = [
    "event_surprise",
    "person_graph",
    "leiden_communities",
    "community_candidates",
    "community_neighbours",
    "pair_repeat_max",
    "batch_components",
    "scheduled_flags",
    "SCHEDULED_CARE",
    "DAY_CASE_LOS",
]

# Diagnoses treated on a fixed schedule (chemotherapy, radiotherapy, dialysis): a cohort of such patients returns
# together on the same cycle legitimately. ICD-10 neoplasms C00–D49, Z51 (other medical care: chemo/radio), Z49
# (dialysis care), N18 (chronic kidney disease).
SCHEDULED_CARE = ("C", "D0", "D1", "D2", "D3", "D4", "Z51", "Z49", "N18")
DAY_CASE_LOS = 1  # stays of at most this many nights are day cases


def event_surprise(events: pd.DataFrame) -> np.ndarray:
    """−log10 of the chance of each co-admission: that one person falls in the other's window by chance.

    p = 1 − exp(−√(n_a·n_b) · crowd / n_inst): `crowd / n_inst` is the share of the institution's admissions in
    that window (busy days give a large share, hence little surprise) and √(n_a·n_b) the pair's admissions there.
    """
    n = np.sqrt(events["n_a"].to_numpy(dtype=float) * events["n_b"].to_numpy(dtype=float))
    share = events["crowd"].to_numpy(dtype=float) / np.maximum(events["n_inst"].to_numpy(dtype=float), 1.0)
    p = -np.expm1(-n * share)
    return -np.log10(np.clip(p, 1e-300, 1.0))


def person_graph(events: pd.DataFrame, weights: np.ndarray) -> ig.Graph:
    """Undirected person graph (all institutions together): edge weight = summed surprise of the pair's events."""
    if events.empty:
        return ig.Graph()
    pairs = pd.DataFrame({"a": events["psn_a"].to_numpy(), "b": events["psn_b"].to_numpy(), "w": weights})
    pairs = pairs[pairs["w"] > 0].groupby(["a", "b"], sort=True)["w"].sum().reset_index()
    names = pd.Index(sorted(set(pairs["a"]) | set(pairs["b"])))
    g = ig.Graph(n=len(names), edges=list(zip(names.get_indexer(pairs["a"]), names.get_indexer(pairs["b"]),
                                              strict=True)))
    g.vs["name"] = names.tolist()
    g.es["weight"] = pairs["w"].astype(float).tolist()
    return g


def leiden_communities(graph: ig.Graph, max_size: int, resolution: float = 1.0, seed: int = 0) -> list[list[str]]:
    """Modularity communities (igraph's Leiden at this `resolution`, seeded so the same data give the same
    groups); any community larger than `max_size` is split again by Leiden on its own subgraph, once."""
    if graph.vcount() == 0 or graph.ecount() == 0:
        return []
    previous = ig.set_random_number_generator(random.Random(seed))
    try:
        parts = _leiden(graph, resolution)
        out: list[list[int]] = []
        for part in parts:
            if len(part) > max_size:
                sub = graph.subgraph(part)
                out.extend([[part[i] for i in q] for q in _leiden(sub, resolution)])
            else:
                out.append(part)
    finally:
        ig.set_random_number_generator(previous if previous is not None else random)
    names = graph.vs["name"]
    return [sorted(names[i] for i in part) for part in out]


def _leiden(graph: ig.Graph, resolution: float) -> list[list[int]]:
    clus = graph.community_leiden(objective_function="modularity", weights="weight", n_iterations=-1,
                                  resolution=resolution)
    return [list(c) for c in clus]


def community_candidates(events: pd.DataFrame, communities: list[list[str]], min_size: int,
                         min_occasions: int, window_days: int) -> list[tuple[list[str], list[str], int]]:
    """(institutions, members, index) of communities with ≥ `min_size` persons and ≥ `min_occasions` distinct
    windows in which three or more of them were admitted together at one institution (vectorised pre-screen)."""
    label = {p: k for k, members in enumerate(communities) if len(members) >= min_size for p in members}
    if not label or events.empty:
        return []
    ca = events["psn_a"].map(label)
    cb = events["psn_b"].map(label)
    inside = events[(ca == cb) & ca.notna()].assign(c=ca[(ca == cb) & ca.notna()].astype(int))
    if inside.empty:
        return []
    # Batch occasions: days on which three or more of the community were admitted together at one institution
    # (days closer than the window merged); a pool's batch has at least three.
    ends = pd.concat([inside[["c", "fixmedins_code", "day", "psn_a"]].rename(columns={"psn_a": "p"}),
                      inside[["c", "fixmedins_code", "day", "psn_b"]].rename(columns={"psn_b": "p"})])
    per_day = ends.groupby(["c", "fixmedins_code", "day"])["p"].nunique()
    occ = per_day[per_day >= 3].reset_index()[["c", "fixmedins_code", "day"]]
    occ = occ.sort_values(["c", "fixmedins_code", "day"])
    gap = occ.groupby(["c", "fixmedins_code"])["day"].diff()
    occ = occ.assign(new=(gap.isna() | (gap > 2 * int(window_days))).astype(int))
    n_occ = occ.groupby("c")["new"].sum()
    out = []
    for c in n_occ[n_occ >= min_occasions].index:
        sub = inside[inside["c"] == c]
        insts = sorted(set(sub["fixmedins_code"]))
        out.append((insts, communities[int(c)], int(c)))
    return out


def community_neighbours(events: pd.DataFrame, weights: np.ndarray, communities: list[list[str]],
                         top: int = 2) -> tuple[dict[int, list[int]], dict[int, set[str]]]:
    """For each community, the `top` communities it shares the most co-admission surprise with (a pool that
    modularity split in two), and each community's institutions."""
    label = {p: k for k, members in enumerate(communities) for p in members}
    ca = events["psn_a"].map(label).to_numpy(dtype=float)
    cb = events["psn_b"].map(label).to_numpy(dtype=float)
    insts: dict[int, set[str]] = {}
    for c, inst in zip(np.concatenate([ca, cb]), np.concatenate([events["fixmedins_code"].to_numpy()] * 2),
                       strict=True):
        if not np.isnan(c):
            insts.setdefault(int(c), set()).add(str(inst))
    cross = (ca != cb) & ~np.isnan(ca) & ~np.isnan(cb)
    if not cross.any():
        return {}, insts
    lo, hi = np.minimum(ca[cross], cb[cross]), np.maximum(ca[cross], cb[cross])
    w = pd.DataFrame({"a": np.concatenate([lo, hi]).astype(int), "b": np.concatenate([hi, lo]).astype(int),
                      "w": np.concatenate([weights[cross], weights[cross]])})
    w = w.groupby(["a", "b"], sort=True)["w"].sum().reset_index().sort_values(["a", "w", "b"],
                                                                               ascending=[True, False, True])
    return {int(a): g["b"].head(top).astype(int).tolist() for a, g in w.groupby("a", sort=False)}, insts


def batch_components(batches: Iterable[set[str]]) -> list[list[str]]:
    """Persons linked by sharing a batch, as connected groups (two pools never share a batch)."""
    parent: dict[str, str] = {}

    def root(p: str) -> str:
        while parent.setdefault(p, p) != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for members in batches:
        ms = sorted(members)
        for p in ms[1:]:
            parent[root(p)] = root(ms[0])
    groups: dict[str, list[str]] = {}
    for p in sorted(parent):
        groups.setdefault(root(p), []).append(p)
    return sorted(groups.values(), key=lambda g: (-len(g), g))


def pair_repeat_max(occasion_members: Iterable[set[str]]) -> int:
    """Most occasions any one pair of persons shared (a rotating pool: small; a tight ring: every occasion)."""
    seen: Counter[tuple[str, str]] = Counter()
    for members in occasion_members:
        ms = sorted(members)
        seen.update((a, b) for i, a in enumerate(ms) for b in ms[i + 1:])
    return max(seen.values(), default=0)


def scheduled_flags(stays: pd.DataFrame) -> np.ndarray:
    """Per stay: scheduled care — a day case (≤ 1 night) or a scheduled-treatment diagnosis (`SCHEDULED_CARE`)."""
    if stays.empty:
        return np.zeros(0, dtype=bool)
    code = stays["dise_codg"].fillna("").astype(str).str.upper()
    day_case = pd.to_numeric(stays["los_days"], errors="coerce").fillna(DAY_CASE_LOS + 1) <= DAY_CASE_LOS
    return (code.str.startswith(SCHEDULED_CARE) | day_case).to_numpy(dtype=bool)


def batch_sizes_text(sizes: list[int]) -> str:
    """'3–7' or '4' for a list of batch sizes."""
    lo, hi = min(sizes), max(sizes)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def closed_members(members: list[str], occasion_stays: set[str], person_stays: dict[str, Any]) -> int:
    """Members all of whose inpatient stays (at any institution) are in the group's occasions."""
    return sum(1 for p in members if set(person_stays.get(p, ())) <= occasion_stays)
