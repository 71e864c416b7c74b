"""Compiled inner loops of `EntityGraph`'s ego networks (numba): one pass over the frontier's adjacency per layer.

The numpy formulation of a layer (gather the neighbours, mask, scatter the cents into node-sized arrays, rank) makes
six passes over 100k–250k entries when the frontier holds hospitals, plus two over every node; these loops make one
over the entries and touch only the nodes they meet. They give exactly the answers of the numpy code in
`graph.entity_graph` (kept as the reference and as the fallback where numba is missing; tests compare the two).
Compiled once per process on first use (cached on disk by numba), before graph workers fork.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["AVAILABLE", "top_candidates", "edges_among"]

log = logging.getLogger(__name__)

try:  # pragma: no cover - numba is a pinned dependency; the fallback is for platforms without its wheels
    from numba import njit

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        def wrap(fn):
            return fn
        return wrap(args[0]) if args and callable(args[0]) else wrap


@njit(cache=True, nogil=True)
def _sift_down(keys: np.ndarray, vals: np.ndarray, size: int, i: int) -> None:
    """Restore the max-heap property of `keys[:size]` below position `i` (`vals` moves along)."""
    while True:
        left = 2 * i + 1
        if left >= size:
            return
        big = left
        if left + 1 < size and keys[left + 1] > keys[left]:
            big = left + 1
        if keys[big] <= keys[i]:
            return
        keys[i], keys[big] = keys[big], keys[i]
        vals[i], vals[big] = vals[big], vals[i]
        i = big


@njit(cache=True, nogil=True)
def top_candidates(indptr: np.ndarray, nbr: np.ndarray, ncents: np.ndarray, ntype: np.ndarray, rank: np.ndarray,
                   frontier: np.ndarray, state: np.ndarray, allowed: np.ndarray, limit: int, acc: np.ndarray,
                   touched: np.ndarray) -> np.ndarray:
    """Nodes adjacent to `frontier`, of an `allowed` type, not taken, in candidate order (Σ cents desc, then
    `rank`), at most `limit`.

    `state` (uint8 per node, the caller's `taken` flags viewed as bytes) is 1 for taken nodes; bit 2 marks a node
    met in this call and is cleared again before returning, as is `acc` (int64 per node, zero on entry). `touched`
    is node-sized scratch. Ranking key: `-score * n + rank[m]` (unique per node), the numpy code's key.
    """
    n = rank.shape[0]
    count = 0
    for f in frontier:
        for p in range(indptr[f], indptr[f + 1]):
            m = nbr[p]
            flags = state[m]
            if flags & 1 or not allowed[ntype[p]]:
                continue
            if not flags:
                state[m] = 2
                touched[count] = m
                count += 1
            acc[m] += ncents[p]
    size = min(limit, count)
    keys = np.empty(size, dtype=np.int64)
    vals = np.empty(size, dtype=np.int64)
    filled = 0
    for j in range(count):
        m = touched[j]
        key = -acc[m] * n + rank[m]
        acc[m] = 0
        state[m] = 0
        if filled < size:
            keys[filled] = key
            vals[filled] = m
            filled += 1
            if filled == size:
                for i in range(size // 2 - 1, -1, -1):
                    _sift_down(keys, vals, size, i)
        elif size > 0 and key < keys[0]:
            keys[0] = key
            vals[0] = m
            _sift_down(keys, vals, size, 0)
    order = np.argsort(keys[:filled])
    return vals[:filled][order]


@njit(cache=True, nogil=True)
def edges_among(indptr: np.ndarray, nbr: np.ndarray, eidx: np.ndarray, idx: np.ndarray, state: np.ndarray,
                big_degree: int) -> np.ndarray:
    """Edge indices with both ends among `idx` (`state`: uint8 per node, 1 for members), each once, unordered.

    A node of degree ≤ `big_degree` scans its adjacency and keeps an edge when the other end is a member that does
    not scan (a big one, marked with bit 2 during the call) or has a higher index; the edges between two big
    members are found by binary search in one's adjacency (sorted by neighbour index), so hospitals are never
    scanned.
    """
    k = idx.shape[0]
    bigs = np.empty(k, dtype=np.int64)
    nbig = 0
    cap = 0
    for i in range(k):
        u = idx[i]
        deg = indptr[u + 1] - indptr[u]
        if deg > big_degree:
            bigs[nbig] = u
            nbig += 1
            state[u] |= 2
        else:
            cap += deg
    big_nodes = np.sort(bigs[:nbig])
    # Runs of edges between pairs of big members: (start, length) per pair, counted before anything is written.
    starts = np.empty(nbig * nbig, dtype=np.int64)
    lengths = np.zeros(nbig * nbig, dtype=np.int64)
    pairs = 0
    for a in range(nbig):
        u = big_nodes[a]
        lo, hi = indptr[u], indptr[u + 1]
        for b in range(a + 1, nbig):
            v = big_nodes[b]
            first = lo + np.searchsorted(nbr[lo:hi], v)
            last = first
            while last < hi and nbr[last] == v:
                last += 1
            if last > first:
                starts[pairs] = first
                lengths[pairs] = last - first
                cap += last - first
                pairs += 1
    out = np.empty(cap, dtype=np.int64)
    count = 0
    for i in range(k):
        u = idx[i]
        if state[u] & 2:
            continue
        for p in range(indptr[u], indptr[u + 1]):
            v = nbr[p]
            flags = state[v]
            # v scans its own adjacency too unless it is big: then only the lower index keeps the edge.
            if flags & 2 or (flags and u < v):
                out[count] = eidx[p]
                count += 1
    for q in range(pairs):
        for p in range(starts[q], starts[q] + lengths[q]):
            out[count] = eidx[p]
            count += 1
    for a in range(nbig):
        state[big_nodes[a]] &= 1
    return out[:count]
