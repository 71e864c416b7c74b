"""Collusion rings (团伙同进同出, 虚假住院): persons admitted together beyond chance — tight rings, rotating pools."""

from __future__ import annotations

import functools
import heapq
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import igraph as ig
import numpy as np
import pandas as pd
from scipy.stats import binom, poisson

from fraudnet.detectors.base import DetectionContext, Lead
from fraudnet.detectors.ring_communities import (
    batch_components,
    batch_sizes_text,
    closed_members,
    community_candidates,
    community_neighbours,
    event_surprise,
    leiden_communities,
    pair_repeat_max,
    person_graph,
    scheduled_flags,
)
from fraudnet.errors import DetectorError
from fraudnet.graph.projection import (
    co_admission_events_of,
    co_admission_graph,
    co_admission_pairs_query,
    inpatient_admissions,
    person_links,
)

__all__ = ["CollusionRingDetector", "poisson_binomial_sf", "poisson_binomial_sf_many", "densest_block",
           "pair_blocks", "peeled_blocks"]

log = logging.getLogger(__name__)


def poisson_binomial_sf(probs: np.ndarray | list[float], j: int) -> float:
    """P(at least `j` successes) among independent trials with success probabilities `probs`."""
    p = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    p = p[p > 0]  # trials that cannot succeed change nothing
    if j <= 0:
        return 1.0
    if j > len(p):
        return 0.0
    if j <= 2 and p.max() < 1.0:  # closed form: 1 − P(0) − P(1)
        p0 = float(np.prod(1.0 - p))
        below = p0 if j == 1 else p0 * (1.0 + float(np.sum(p / (1.0 - p))))
        return float(min(1.0, max(0.0, 1.0 - below)))
    dist = np.zeros(len(p) + 1)
    dist[0] = 1.0
    for q in p:
        dist[1:] = dist[1:] * (1 - q) + dist[:-1] * q
        dist[0] *= 1 - q
    return float(min(1.0, max(0.0, dist[j:].sum())))


def poisson_binomial_sf_many(probs: np.ndarray, js: np.ndarray) -> np.ndarray:
    """Row-wise `poisson_binomial_sf`: P(at least js[w] successes) with success probabilities probs[w, :]."""
    n_rows, m = probs.shape
    dist = np.zeros((n_rows, m + 1))
    dist[:, 0] = 1.0
    for i in range(m):
        q = probs[:, i:i + 1]
        dist[:, 1:i + 2] = dist[:, 1:i + 2] * (1 - q) + dist[:, 0:i + 1] * q
        dist[:, 0] *= 1 - q[:, 0]
    keep = np.arange(m + 1)[None, :] >= np.asarray(js)[:, None]
    return np.clip((dist * keep).sum(axis=1), 0.0, 1.0)


@dataclass
class _Occasion:
    start: Any
    end: Any
    members: set[str]
    visits: list[str]
    crowd: int  # distinct persons admitted at the institution in that window (members included)
    term: float  # −log10 of the chance of that many members admitted in one window (volume adjusted)
    inst: str = ""


def _mixed_batches(batches: list[_Occasion], part_a: set[str], part_b: set[str]) -> int:
    """Batches with at least two members from each of two communities (a sign that they are one pool)."""
    return sum(1 for o in batches if len(o.members & part_a) >= 2 and len(o.members & part_b) >= 2)


@dataclass
class _Inst:
    """One institution's admissions sorted by date, as arrays for the per-group scans."""

    code: str
    frame: pd.DataFrame
    psn: np.ndarray
    days: np.ndarray  # datetime64[D]
    times: np.ndarray  # admission times
    mid: np.ndarray
    n_persons: int
    rows: dict[str, np.ndarray]

    @classmethod
    def of(cls, code: str, frame: pd.DataFrame, psn: np.ndarray) -> _Inst:
        """From the institution's rows, already in (date, visit id) order."""
        rows_l: dict[str, list[int]] = {}
        for i, p in enumerate(psn.tolist()):
            rows_l.setdefault(p, []).append(i)
        rows = {p: np.asarray(r, dtype=np.int64) for p, r in rows_l.items()}
        return cls(code, frame, psn, frame["adm_date"].to_numpy(dtype="datetime64[D]"),
                   frame["begntime"].to_numpy(dtype="datetime64[ns]"), frame["mdtrt_id"].to_numpy(dtype=object),
                   len(rows), rows)

    def rows_of(self, persons: list[str]) -> np.ndarray:
        """Row numbers (in date order) of these persons' admissions."""
        parts = [self.rows[p] for p in persons if p in self.rows]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def count(self, person: str) -> int:
        """The person's admissions here."""
        r = self.rows.get(person)
        return 0 if r is None else len(r)


class CollusionRingDetector:
    """Find groups of persons admitted together far beyond chance: tight rings and rotating pools, one score.

    Two shapes, two ways of finding candidates, one test:

    * Tight rings (the same persons together again and again): the co-admission projection (inpatient
      admissions at one institution within ±`window_days`) keeps pairs co-admitted on at least
      `min_pair_occasions` distinct days whose Poisson surprise against n_a·n_b·(2w+1)/D is below `pair_pvalue`;
      groups are dense lockstep blocks of that graph, peeled greedily (FRAUDAR-style densest subgraph).
    * Rotating pools (a recruiter's pool of a dozen to a few dozen admitted a few at a time, each member two or
      three times a year, so no pair repeats often while the group does): every co-admission of two persons
      with ≥ 2 admissions is an edge weighted by its surprise given the window's share of the institution's
      admissions (`event_surprise`; edges likelier than `event_pvalue` dropped, so busy days add little); the
      person graph spans all institutions (a pool moved between hospitals stays one community). Leiden
      communities (igraph's built-in `community_leiden`, modularity, at each of `resolutions`) with three or
      more members together on ≥ `min_occasions` days are kept, merged with a neighbouring community when the
      union says more than the two apart, trimmed to the persons in ≥ 2 batches and to the institutions with
      ≥ 2 batches, and cut into batch-connected groups of at most `max_pool` persons.

    The test: for every window where j members were admitted together, the chance that j or more of the m
    members fall in one window, given each member's admission count there and the institution's volume around
    that date, is a Poisson-binomial tail scaled by the number of windows in the period. The strongest occasion
    defines the group and is not counted (an outbreak scores nothing), picking its members out of that window's
    crowd costs log10 C(crowd, present); the other windows' −log10 surprises add up. A pair-repeat block takes
    in persons admitted in ≥ 2 of its windows when fewer than `join_chance` persons would be by chance. A
    community is picked *for* co-admitting, so its surprise is taken net of what communities reach by chance:
    the institution's admissions are dealt to its own patients at random (`null_rounds` shuffles), the same
    search is run, and the level chance exceeds with probability `null_alpha` (exponential tail) is subtracted.
    Scheduled care (chemotherapy/radiotherapy Z51, dialysis Z49, neoplasms C00–D49, CKD N18, day cases ≤ 1
    night) returns in cohorts on a fixed cycle legitimately and is left out of the admissions. Similar
    diagnoses, stays and fees (where they stand out from the institutions' mix), a shared phone or address and
    a closed pool (members admitted only in its batches) add a bounded bonus. The score is a logistic of the
    total, so it means the same on any city; the explanation names the shape (ring or pool) with its figures.

    Parameters
    ----------
    window_days : int, default 1
        Admissions within this many days of each other count as together (same day or ±1 day).
    min_pair_occasions : int, default 2
        Distinct co-admission days a pair needs to enter the pair graph.
    pair_pvalue : float, default 0.01
        Pairs whose repeat is more likely than this by chance are left out of the pair graph.
    min_group_size : int, default 3
        Fewest persons in a group.
    min_occasions : int, default 3
        Fewest batches: windows with at least `together_share` of the group present (and ≥ 2 persons), or, for a
        community, ≥ 3 members in a window that alone is beyond chance.
    together_share : float, default 0.5
        Share of the group that must be present for an occasion to count as the group together.
    intensity_days : int, default 14
        Half-width of the window used to estimate the institution's admission volume around an occasion.
    score_midpoint : float, default 6.0
        Total −log10 surprise at which the score is 0.5.
    score_scale : float, default 1.5
        Logistic scale of the score (red ≥ 0.8 ⇔ surprise ≥ midpoint + 1.39·scale).
    min_score : float, default 0.3
        Leads below this score are not returned.
    join_chance : float, default 0.5
        A person seen in several of a group's occasion windows joins it when fewer than this many of the
        institution's persons would be seen that often by chance.
    event_pvalue : float, default 0.3
        A co-admission likelier than this by chance (busy window, frequent patients) is no edge of the person graph.
        Only a pre-screen that keeps the graph sparse — the group test and its shuffle null decide. It is loose
        because an event's chance is conditioned on the window's crowd, which includes the batch itself: at a
        hospital with ~90 admissions a year, a batch of 7 pool members makes each pair's event look 15 % likely,
        and a cut at 10 % dropped the whole pool before it could be tested as a group.
    max_pool : int, default 60
        Largest community searched as one pool (bigger Leiden communities are split again; bigger groups dropped).
    resolutions : tuple of float, default (1.0, 0.5)
        Leiden modularity resolutions searched (0.5 keeps a pool's batch cliques together).
    null_rounds : int, default 2
        Shuffles of each institution's admissions used to measure what community search finds by chance.
    null_alpha : float, default 0.2
        Chance that a shuffled data set shows a community above the level subtracted from real communities.
    """

    kind = "collusion_ring"
    requires: tuple[str, ...] = ()  # admission dates of inpatient stays only (required mdtrt fields)

    def __init__(
        self,
        window_days: int = 1,
        min_pair_occasions: int = 2,
        pair_pvalue: float = 0.01,
        min_group_size: int = 3,
        min_occasions: int = 3,
        together_share: float = 0.5,
        intensity_days: int = 14,
        score_midpoint: float = 6.0,
        score_scale: float = 1.5,
        min_score: float = 0.3,
        join_chance: float = 0.5,
        event_pvalue: float = 0.3,
        max_pool: int = 60,
        resolutions: tuple[float, ...] = (1.0, 0.5),
        null_rounds: int = 2,
        null_alpha: float = 0.2,
    ) -> None:
        self.window_days = window_days
        self.min_pair_occasions = min_pair_occasions
        self.pair_pvalue = pair_pvalue
        self.min_group_size = min_group_size
        self.min_occasions = min_occasions
        self.together_share = together_share
        self.intensity_days = intensity_days
        self.score_midpoint = score_midpoint
        self.score_scale = score_scale
        self.min_score = min_score
        self.join_chance = join_chance
        self.event_pvalue = event_pvalue
        self.max_pool = max_pool
        self.resolutions = tuple(resolutions)
        self.null_rounds = null_rounds
        self.null_alpha = null_alpha

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        checks = [
            ("window_days", self.window_days, self.window_days >= 0),
            ("min_pair_occasions", self.min_pair_occasions, self.min_pair_occasions >= 2),
            ("pair_pvalue", self.pair_pvalue, 0 < self.pair_pvalue <= 1),
            ("min_group_size", self.min_group_size, self.min_group_size >= 2),
            ("min_occasions", self.min_occasions, self.min_occasions >= 2),
            ("together_share", self.together_share, 0 < self.together_share <= 1),
            ("intensity_days", self.intensity_days, self.intensity_days >= 1),
            ("score_scale", self.score_scale, self.score_scale > 0),
            ("min_score", self.min_score, 0 <= self.min_score <= 1),
            ("join_chance", self.join_chance, self.join_chance >= 0),
            ("event_pvalue", self.event_pvalue, 0 < self.event_pvalue <= 1),
            ("max_pool", self.max_pool, self.max_pool >= self.min_group_size),
            ("resolutions", self.resolutions, len(self.resolutions) > 0 and all(r > 0 for r in self.resolutions)),
            ("null_rounds", self.null_rounds, self.null_rounds >= 1),
            ("null_alpha", self.null_alpha, 0 < self.null_alpha < 1),
        ]
        for name, value, ok in checks:
            if not ok:
                raise DetectorError(f"CollusionRingDetector: parameter {name}={value!r} is out of range")

    # ------------------------------------------------------------------ run
    def run(self, context: DetectionContext) -> list[Lead]:
        """Return one lead per co-admission ring: tight rings (repeated pairs) and rotating pools (communities)."""
        self._validate()
        self._memo: dict[tuple[Any, ...], tuple[_Inst, list[_Occasion]]] = {}
        adm = inpatient_admissions(context)
        adm = adm.assign(adm_date=pd.to_datetime(adm["adm_date"])).dropna(subset=["adm_date"]) if len(adm) else adm
        self.groups_ = []
        if adm.empty:
            return []
        d0, d1 = adm["adm_date"].min(), adm["adm_date"].max()
        self.period_days_ = max(30.0, float((d1 - d0).days + 1))
        width = 2 * int(self.window_days) + 1
        # Scheduled care (chemotherapy, dialysis, day cases) returns in cohorts legitimately: not ring evidence.
        adm = adm[~scheduled_flags(adm)]
        by_inst = self._institutions(adm)
        groups: list[tuple[list[str], list[str], dict[str, float] | None]] = [
            (insts, members, None) for insts, members in self._pair_groups(context)]
        chance = self._chance_levels(adm, width)
        self.chance_levels_ = chance
        groups += [(insts, members, chance) for insts, members in self._community_groups(adm, by_inst, width)]
        self.groups_ = groups
        links = self._links(context, {p for _, members, _ in groups for p in members})
        stays: dict[str, list[str]] = {}
        for psn, mid in zip(adm["psn_no"].tolist(), adm["mdtrt_id"].tolist(), strict=True):
            stays.setdefault(psn, []).append(mid)
        leads = []
        for insts, members, levels in groups:
            lead = self._score_group(insts, members, by_inst, links, width, levels, stays)
            if lead is not None:
                leads.append(lead)
        self._memo = {}
        leads = _dedupe(leads)
        since = getattr(context, "since", None)
        if since is not None:
            leads = [ld for ld in leads if ld.period_end is None or ld.period_end >= since]
        leads.sort(key=lambda ld: (-ld.score, ld.lead_id))
        return leads

    def _pair_groups(self, context: Any) -> list[tuple[list[str], list[str]]]:
        """Tight rings: pairs co-admitted more often than chance, peeled into dense blocks — one institution at a
        time (`context.per_group`: on Spark the peeling runs on the executors and only the blocks come back)."""
        query, params = co_admission_pairs_query(self.window_days, self.min_pair_occasions)
        peel = functools.partial(pair_blocks, period_days=float(self.period_days_), window_days=int(self.window_days),
                                 pair_pvalue=float(self.pair_pvalue), min_group_size=int(self.min_group_size))
        blocks = context.per_group(query, params, ["fixmedins_code"], peel, PAIR_BLOCK_SCHEMA)
        if blocks.empty:
            return []
        return [([str(inst)], sorted(str(p) for p in members))
                for (inst, _), members in blocks.groupby(["fixmedins_code", "block"], sort=True)["psn_no"]]

    @staticmethod
    def _institutions(adm: pd.DataFrame) -> dict[str, _Inst]:
        a = adm.sort_values(["fixmedins_code", "adm_date", "mdtrt_id"], kind="stable").reset_index(drop=True)
        codes = a["fixmedins_code"].to_numpy(dtype=object)
        psn = a["psn_no"].to_numpy(dtype=object)
        cuts = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(a)]
        return {str(codes[lo]): _Inst.of(str(codes[lo]), a.iloc[lo:hi], psn[lo:hi])
                for lo, hi in zip(cuts[:-1], cuts[1:], strict=True) if hi > lo}

    def _community_groups(self, adm: pd.DataFrame, by_inst: dict[str, _Inst],
                          width: int) -> list[tuple[list[str], list[str]]]:
        """Rotating pools: Leiden communities of the person co-admission graph (all institutions) at each of
        `resolutions` (a pool is a chain of batch cliques that full-resolution modularity may cut apart)."""
        events = co_admission_events_of(adm, self.window_days, min_admissions=2)
        if events.empty:
            return []
        weights = event_surprise(events)
        keep = weights >= -math.log10(self.event_pvalue)
        events, weights = events[keep], weights[keep]
        graph = person_graph(events, weights)
        out: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        for resolution in self.resolutions:
            communities = leiden_communities(graph, self.max_pool, resolution)
            for insts, members in self._merged(events, weights, communities, by_inst, width):
                out.setdefault(tuple(members), (insts, members))
        return list(out.values())

    def _merged(self, events: pd.DataFrame, weights: np.ndarray, communities: list[list[str]],
                by_inst: dict[str, _Inst], width: int) -> list[tuple[list[str], list[str]]]:
        """Pre-screened communities, each merged with a neighbouring community when the union says more than the
        two apart, cut into batch-connected groups."""
        cands = community_candidates(events, communities, self.min_group_size, self.min_occasions, self.window_days)
        if not cands:
            return []
        neighbours, insts_of = community_neighbours(events, weights, communities)
        alone: dict[int, float] = {}

        def raw_of(c: int, insts: list[str]) -> float:
            if c not in alone:
                found = self._community(insts, communities[c], by_inst, width)
                alone[c] = found["raw"] if found is not None else 0.0
            return alone[c]

        out: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        for insts, members, c in cands:
            best = raw_of(c, insts)
            for j in neighbours.get(c, []):
                union = sorted(set(members) | set(communities[j]))
                if len(union) > self.max_pool:
                    continue
                union_insts = sorted(set(insts) | insts_of.get(j, set()))
                found = self._community(union_insts, union, by_inst, width)
                # one pool split in two: together they say more than the two parts apart, and a batch mixes the two
                # halves (two rings at two hospitals, joined only by a stray patient or two, have no such batch)
                if (found is not None and _mixed_batches(found["batches"], set(members), set(communities[j])) >= 1
                        and found["raw"] > best + max(0.0, raw_of(j, sorted(insts_of.get(j, set()))))):
                    members, insts, best = union, union_insts, found["raw"]
            found = self._community(insts, members, by_inst, width)
            if found is None:
                continue
            # separate pools that landed in one community share no batch: one group each
            for part in batch_components(o.members for o in found["batches"]):
                if len(part) >= self.min_group_size:
                    out.setdefault(tuple(part), (sorted({o.inst for o in found["batches"]}), part))
        return list(out.values())

    def _chance_levels(self, adm: pd.DataFrame, width: int) -> dict[str, float]:
        """Per institution, the repeat surprise that communities reach by chance alone.

        Each institution's admissions are dealt to its own patients at random (`null_rounds` shuffles: same
        persons, same counts, same daily volume, no group) and the communities found there are scored like real
        ones — communities are picked *for* co-admitting, so this is what the picking alone gives. Their positive
        surprises are fitted with an exponential tail (mean β, rate λ per data set); the level is the surprise
        that chance exceeds with probability `null_alpha`: β·ln(λ/α), β at least 1 decade.
        """
        found_by_inst: dict[str, list[float]] = {}
        for r in range(int(self.null_rounds)):
            rng = np.random.default_rng(r)
            psn = adm["psn_no"].to_numpy(dtype=object).copy()
            for idx in adm.groupby("fixmedins_code", sort=True).indices.values():
                psn[idx] = psn[rng.permutation(idx)]
            shuffled = adm.assign(psn_no=psn)
            by_inst = self._institutions(shuffled)
            for insts, members in self._community_groups(shuffled, by_inst, width):
                found = self._community(insts, members, by_inst, width)
                if found is not None and found["raw"] > 0:
                    inst = max(sorted(found["share"]), key=lambda i: found["share"][i])
                    found_by_inst.setdefault(inst, []).append(found["raw"])
        levels = {}
        for inst, values in found_by_inst.items():
            rate = len(values) / int(self.null_rounds)
            beta = max(1.0, float(np.mean(values)))
            levels[inst] = beta * math.log(rate / self.null_alpha) if rate > self.null_alpha else 0.0
        return levels

    @staticmethod
    def _links(context: Any, persons: set[str]) -> dict[str, set[tuple[str, str]]]:
        """Each of `persons`' shared phones and addresses as (link_type, key)."""
        try:
            links = person_links(context)
        except Exception:  # noqa: BLE001 — psn_info without hashed phones: the bonus is simply not available
            log.debug("no person links for the shared-phone bonus", exc_info=True)
            return {}
        out: dict[str, set[tuple[str, str]]] = {}
        links = links[links["psn_no"].isin(persons)]
        for psn, kind, key in zip(links["psn_no"], links["link_type"], links["key"], strict=True):
            out.setdefault(psn, set()).add((kind, key))
        return out

    # ------------------------------------------------------------------ scoring
    def _occasions(self, members: list[str], inst: _Inst, width: int) -> list[_Occasion]:
        """The group's co-admission windows at one institution, each with its volume-adjusted chance term."""
        mine = inst.rows_of(members)
        if len(mine) < 2:
            return []
        dates = inst.days[mine]
        psn = inst.psn[mine]
        # Windows anchored at their first admission and at most 2w days long, so that chance clusters
        # in a busy institution cannot chain into long runs; only windows with ≥ 2 members count.
        day_no = dates.astype("int64").tolist()
        windows: list[tuple[int, int, set[str]]] = []
        start = 0
        for i in range(1, len(day_no) + 1):
            if i == len(day_no) or day_no[i] - day_no[start] > width - 1:
                present = set(psn[start:i].tolist())
                if len(present) >= 2:
                    windows.append((start, i, present))
                start = i
        if not windows:
            return []
        terms = self._window_terms(members, inst, dates, windows, width)
        out = []
        for (lo, hi, present), term in zip(windows, terms, strict=True):
            rows = mine[lo:hi]
            a = np.searchsorted(inst.days, dates[lo], side="left")
            b = np.searchsorted(inst.days, dates[hi - 1], side="right")
            crowd = len(set(inst.psn[a:b].tolist()) | present)
            times = inst.times[rows]
            out.append(_Occasion(times.min(), times.max(), present, inst.mid[rows].tolist(), crowd, float(term),
                                 inst.code))
        return out

    def _window_terms(self, members: list[str], inst: _Inst, dates: np.ndarray,
                      windows: list[tuple[int, int, set[str]]], width: int) -> np.ndarray:
        """−log10 of the expected number of windows in the period with that many members admitted together,
        given each member's admissions here and the institution's volume around the window (all windows at once)."""
        period = self.period_days_
        half = np.timedelta64(int(self.intensity_days), "D")
        span = 2 * int(self.intensity_days) + 1
        counts = np.array([inst.count(p) for p in members], dtype=float)
        counts = counts[counts > 0]
        base_rate = (len(inst.psn) - counts.sum() + period / span) / period  # one pseudo-admission per window
        lo = dates[[w[0] for w in windows]]
        hi = dates[[w[1] - 1 for w in windows]]
        mid = lo + (hi - lo) // 2
        # admissions of others within ±intensity_days: all admissions there minus the group's
        c = (np.searchsorted(inst.days, mid + half, side="right") - np.searchsorted(inst.days, mid - half)
             - (np.searchsorted(dates, mid + half, side="right") - np.searchsorted(dates, mid - half)))
        rho = np.maximum(1.0, ((c + 1) / span) / base_rate)
        probs = np.minimum(0.999, counts[None, :] * width * rho[:, None] / period)
        tails = poisson_binomial_sf_many(probs, np.array([len(w[2]) for w in windows]))
        expected = (period / width) * tails
        return np.where(expected < 1, -np.log10(np.maximum(expected, 1e-300)), 0.0)

    def _joiners(self, members: list[str], occasions: list[_Occasion], inst: _Inst, width: int) -> set[str]:
        """Persons admitted in ≥ 2 of the group's occasion windows more often than chance allows."""
        if len(occasions) < 2:
            return set()
        member_set = set(members)
        hits: Counter[str] = Counter()
        for o in occasions:
            lo = np.datetime64(o.start, "D")
            a = np.searchsorted(inst.days, lo, side="left")
            b = np.searchsorted(inst.days, lo + np.timedelta64(width - 1, "D"), side="right")
            hits.update(set(inst.psn[a:b].tolist()) - member_set)
        cands = [p for p, k in hits.items() if k >= 2]
        q = min(1.0, len(occasions) * width / self.period_days_)
        n_persons = inst.n_persons
        return {p for p in cands if n_persons * binom.sf(hits[p] - 1, inst.count(p), q) < self.join_chance}

    def _group_occasions(self, insts: list[str], members: list[str], by_inst: dict[str, _Inst],
                         width: int) -> list[_Occasion]:
        """The group's co-admission windows at each of its institutions (memoised per data set within a run)."""
        memo = self.__dict__.setdefault("_memo", {})
        out: list[_Occasion] = []
        for inst in insts:
            key = (id(by_inst[inst]), inst, tuple(sorted(members)))
            if key not in memo:
                memo[key] = (by_inst[inst], self._occasions(members, by_inst[inst], width))
            out.extend(memo[key][1])
        return out

    def _members(self, insts: list[str], members: list[str], by_inst: dict[str, _Inst],
                 width: int) -> tuple[list[str], list[_Occasion]]:
        """The core (persons present on ≥ 2 occasions) plus joiners, and the group's occasions."""
        occasions = self._group_occasions(insts, members, by_inst, width)
        presence = Counter(p for o in occasions for p in o.members)
        core = sorted(p for p in members if presence[p] >= 2)
        if len(core) < self.min_group_size:
            return core, []
        if len(core) < len(members):
            members = core
            occasions = self._group_occasions(insts, members, by_inst, width)
        joiners: set[str] = set()
        for inst in insts:
            joiners |= self._joiners(members, [o for o in occasions if o.inst == inst], by_inst[inst], width)
        if joiners:
            members = sorted(set(members) | joiners)
            occasions = self._group_occasions(insts, members, by_inst, width)
        return members, occasions

    def _repeat(self, insts: list[str], members: list[str], by_inst: dict[str, _Inst], width: int,
                pools: bool = True) -> dict[str, Any] | None:
        """The group's members, occasions, batches and repeat surprise (−log10, before any chance level)."""
        members, occasions = self._members(insts, members, by_inst, width)
        if len(members) < self.min_group_size:
            return None
        need = max(2, math.ceil(self.together_share * len(members)))
        # Batches: the group together (a share of it), or, for a community (`pools`), a window of ≥ 3 members
        # that alone is beyond chance (a rotating pool's batch).
        batches = [o for o in occasions if len(o.members) >= need or (pools and o.term > 0 and len(o.members) >= 3)]
        if len(batches) < self.min_occasions:
            return None
        # The strongest occasion defines the group: its term is not evidence, and picking its members out of
        # the crowd admitted in that window costs log10 C(crowd, present) (the look-elsewhere penalty).
        defining = max(occasions, key=lambda o: o.term)
        selection = _log10_comb(defining.crowd, len(defining.members))
        raw = float(sum(o.term for o in occasions) - defining.term - selection)
        share: Counter[str] = Counter()
        for o in occasions:
            share[o.inst] += o.term
        return {"members": members, "occasions": occasions, "batches": batches, "need": need,
                "defining": defining, "selection": selection, "raw": raw, "share": share}

    def _community(self, insts: list[str], members: list[str], by_inst: dict[str, _Inst],
                   width: int) -> dict[str, Any] | None:
        """`_repeat` of a community on its batch core: persons in ≥ 2 of its batches (a patient met by chance in
        a window or two is not in the pool), on the institutions where it had ≥ 2 batches (a pool moved between
        hospitals has several at each; a stray window at a big hospital is chance)."""
        found = self._repeat(insts, members, by_inst, width, pools=True)
        if found is None:
            return None
        in_batches = Counter(p for o in found["batches"] for p in o.members)
        core = sorted(p for p in found["members"] if in_batches[p] >= 2)
        per_inst = Counter(o.inst for o in found["batches"])
        keep = sorted(i for i, k in per_inst.items() if k >= 2) or [per_inst.most_common(1)[0][0]]
        if keep != sorted(insts) or core != found["members"]:
            if len(core) < self.min_group_size:
                return None
            found = self._repeat(keep, core, by_inst, width, pools=True)
        # a recruiter's pool is a dozen to a few dozen persons; a bigger "community" is a busy ward
        if found is not None and len(found["members"]) > self.max_pool:
            return None
        return found

    def _score_group(
        self, insts: list[str], members: list[str], by_inst: dict[str, _Inst],
        links: dict[str, set[tuple[str, str]]], width: int, levels: dict[str, float] | None,
        stays: dict[str, list[str]],
    ) -> Lead | None:
        """One group's lead, in three phases: its occasions and batches, their surprise against chance (with the
        similarity bonus), then the explained lead; None when the group is not a ring or scores too low."""
        if levels is None:
            found = self._repeat(insts, members, by_inst, width, pools=False)
        else:
            found = self._community(insts, members, by_inst, width)
        if found is None:
            return None
        judged = self._judge(found, by_inst, links, levels, stays)
        if judged["score"] < self.min_score:
            return None
        return self._group_lead(found, judged, width)

    def _judge(self, found: dict[str, Any], by_inst: dict[str, _Inst], links: dict[str, set[tuple[str, str]]],
               levels: dict[str, float] | None, stays: dict[str, list[str]]) -> dict[str, Any]:
        """The group's repeat surprise above the chance level of its institutions, the similarity bonus and the
        calibrated score, with the evidence rows they were measured on."""
        members, occasions = found["members"], found["occasions"]
        # A community is compared to what chance gives communities at its institutions (weighted by where its
        # evidence lies).
        chance = 0.0
        if levels is not None:
            total_terms = sum(found["share"].values())
            if total_terms:
                chance = sum(levels.get(i, 0.0) * t for i, t in found["share"].items()) / total_terms
        repeat_surprise = max(0.0, found["raw"] - max(0.0, chance))
        evidence_ids = [v for o in occasions for v in o.visits]
        inst_adm = pd.concat([by_inst[i].frame for i in sorted({o.inst for o in occasions})])
        ev = inst_adm[inst_adm["mdtrt_id"].isin(set(evidence_ids))]
        closed = closed_members(members, set(evidence_ids), stays)
        sim = self._similarity(ev, inst_adm, members, links, closed)
        bonus = min(sim["bonus"], 3.0) if repeat_surprise > 0 else 0.0
        total = repeat_surprise + bonus
        score = 1.0 / (1.0 + math.exp(-(total - self.score_midpoint) / self.score_scale))
        return {"chance": chance, "surprise": repeat_surprise, "bonus": bonus, "score": score, "sim": sim,
                "closed": closed, "evidence_ids": evidence_ids, "inst_adm": inst_adm, "ev": ev}

    def _group_lead(self, found: dict[str, Any], judged: dict[str, Any], width: int) -> Lead:
        """The lead of a judged group: its shape, figures, explanation and evidence."""
        members, occasions, batches = found["members"], found["occasions"], found["batches"]
        sim, ev, inst_adm, evidence_ids = judged["sim"], judged["ev"], judged["inst_adm"], judged["evidence_ids"]
        m, need, defining = len(members), found["need"], found["defining"]
        lead_insts = sorted({o.inst for o in batches})
        sizes = [len(o.members) for o in batches]
        shape = "pool" if float(np.median(sizes)) < need else "ring"
        observed_pairs, expected_pairs = self._pair_baseline(members, occasions, inst_adm, lead_insts, width)
        ratio = observed_pairs / expected_pairs if expected_pairs > 0 else float("inf")
        practitioners = sorted({str(x) for x in ev["atddr_no"].dropna() if str(x)})
        facts = {
            "m": m, "insts": lead_insts, "batches": len(batches), "sizes": sizes, "windows": len(occasions),
            "stays": len(evidence_ids), "ratio": ratio, "n_inst": len(inst_adm), "surprise": judged["surprise"],
            "pair_max": pair_repeat_max(o.members for o in occasions), "closed": judged["closed"],
            "practitioners": practitioners, **sim,
        }
        en, zh = self._explain(shape, facts)
        start, end = ev["begntime"].min(), ev["begntime"].max()
        features = {
            "shape": shape,
            "group_size": m,
            "occasions_together": len(batches),
            "batch_sizes": sizes,
            "co_admission_windows": len(occasions),
            "stays": len(evidence_ids),
            "baseline_ratio": round(ratio, 2) if math.isfinite(ratio) else None,
            "observed_pair_occasions": observed_pairs,
            "expected_pair_occasions": round(expected_pairs, 3),
            "pair_max_together": facts["pair_max"],
            "closed_members": judged["closed"],
            "repeat_surprise_log10": round(judged["surprise"], 2),
            "bonus": judged["bonus"],
            "selection_penalty_log10": round(found["selection"], 2),
            "chance_level_log10": round(judged["chance"], 2),
            "defining_window_crowd": defining.crowd,
            "institution_admissions": len(inst_adm),
            "top_diagnosis": sim["dise_top"],
            "top_diagnosis_share": round(sim["dise_share"], 3),
            "los_cv": None if sim["los_cv"] is None else round(sim["los_cv"], 3),
            "fee_cv": None if sim["fee_cv"] is None else round(sim["fee_cv"], 3),
            "shared_phone_members": sim["shared_phone"],
            "shared_address_members": sim["shared_address"],
            "practitioner_visits": dict(Counter(str(x) for x in ev["atddr_no"].dropna() if str(x))),
            "occasion_dates": [str(pd.Timestamp(o.start).date()) for o in occasions],
            "occasion_sizes": [len(o.members) for o in occasions],
            "occasion_institutions": [o.inst for o in occasions],
        }
        return Lead(
            kind=self.kind,
            score=judged["score"],
            persons=members,
            practitioners=practitioners,
            institutions=lead_insts,
            evidence=evidence_ids,
            amount_at_risk=float(ev["fund_pay_sumamt"].sum()),
            period_start=None if pd.isna(start) else pd.Timestamp(start).to_pydatetime(),
            period_end=None if pd.isna(end) else pd.Timestamp(end).to_pydatetime(),
            explanation_zh=zh,
            explanation_en=en,
            features=features,
        )

    @staticmethod
    def _similarity(ev: pd.DataFrame, inst_adm: pd.DataFrame, members: list[str],
                    links: dict[str, set[tuple[str, str]]], closed: int) -> dict[str, Any]:
        """Similar diagnoses, stays and fees (where they stand out from the institutions' own case mix), a shared
        phone or address, a closed pool: a bounded bonus with its figures."""
        dise_top, dise_share = "", 0.0
        if ev["dise3"].astype(bool).any():
            vc = ev.loc[ev["dise3"].astype(bool), "dise3"].value_counts()
            dise_top, dise_share = str(vc.index[0]), float(vc.iloc[0] / len(ev))
        los_cv, fee_cv = _cv(ev["los_days"]), _cv(ev["medfee_sumamt"])
        inst_dise_share = float((inst_adm["dise3"] == dise_top).mean()) if dise_top else 1.0
        inst_los_cv, inst_fee_cv = _cv(inst_adm["los_days"]), _cv(inst_adm["medfee_sumamt"])
        shared = {kind: max(Counter(k for p in members for t, k in links.get(p, ()) if t == kind).values(),
                            default=0) for kind in ("phone", "address")}
        bonus = 0.0
        if dise_share >= 0.6 and inst_dise_share <= 0.5 * dise_share:
            bonus += 1.0
        if los_cv is not None and inst_los_cv and los_cv <= 0.5 * inst_los_cv:
            bonus += 0.5
        if fee_cv is not None and inst_fee_cv and fee_cv <= 0.5 * inst_fee_cv:
            bonus += 0.5
        if shared["phone"] >= 2:
            bonus += 1.0
        if shared["address"] >= 2:
            bonus += 0.5
        if closed >= 0.75 * len(members):
            bonus += 0.5
        return {"bonus": bonus, "dise_top": dise_top, "dise_share": dise_share, "los_cv": los_cv, "fee_cv": fee_cv,
                "shared_phone": shared["phone"], "shared_address": shared["address"]}

    def _pair_baseline(self, members: list[str], occasions: list[_Occasion], inst_adm: pd.DataFrame,
                       insts: list[str], width: int) -> tuple[float, float]:
        """Observed co-admitted pair-occasions vs what the members' admission counts give by chance."""
        observed = float(sum(len(o.members) * (len(o.members) - 1) / 2 for o in occasions))
        mine = inst_adm[inst_adm["psn_no"].isin(set(members))]
        expected = 0.0
        for inst in insts:
            c = mine.loc[mine["fixmedins_code"] == inst, "psn_no"].value_counts().to_numpy(dtype=float)
            expected += (c.sum() ** 2 - (c**2).sum()) / 2 * width / self.period_days_
        return observed, expected

    def _explain(self, shape: str, f: dict[str, Any]) -> tuple[str, str]:
        """English and Chinese explanation naming the shape (tight ring or rotating pool) with its figures."""
        w, insts = self.window_days, ", ".join(f["insts"])
        ratio_txt = f"{f['ratio']:.1f}" if math.isfinite(f["ratio"]) else "∞"
        dise_txt = f"{f['dise_top']} ({f['dise_share']:.0%})" if f["dise_top"] else "-"
        sizes = batch_sizes_text(f["sizes"])
        m, b = f["m"], f["batches"]
        if shape == "pool":
            head_en = (f"pool of {m} persons admitted in {b} batches of {sizes} at {insts} (within ±{w} day; "
                       f"{f['windows']} co-admission windows, {f['stays']} stays); no pair together more than "
                       f"{f['pair_max']} times; {f['closed']} of {m} members' inpatient stays are all in these "
                       f"windows")
            head_zh = (f"{m}人的人员池在{insts}分{b}批（每批{sizes}人，±{w}天内）入院（共{f['windows']}个同进窗口、"
                       f"{f['stays']}次住院）；任意两人同批不超过{f['pair_max']}次；{m}人中{f['closed']}人的住院"
                       f"全部在这些批次中")
        else:
            head_en = (f"{m} persons admitted together (within ±{w} day) on {b} occasions at {insts} "
                       f"({f['windows']} co-admission windows, {f['stays']} stays)")
            head_zh = (f"{m}名参保人在{insts}同日(±{w}天)入院{b}次（共{f['windows']}个同进窗口、"
                       f"{f['stays']}次住院）")
        prac = f["practitioners"]
        en = (head_en + f", {ratio_txt}× the chance co-admission expected from their admissions and the "
              f"institution's volume ({f['n_inst']} admissions); repeat surprise 10^-{f['surprise']:.1f}; "
              f"main diagnosis {dise_txt}"
              + (f"; {f['shared_phone']} members share one phone" if f["shared_phone"] >= 2 else "")
              + (f"; {f['shared_address']} share one address" if f["shared_address"] >= 2 else "")
              + (f"; doctors {', '.join(prac[:3])}" if prac else "") + ".")
        zh = (head_zh + f"，为按其入院次数和该机构入院量（{f['n_inst']}人次）推算的偶然同进期望的{ratio_txt}倍；"
              f"重复同进的偶然概率约10^-{f['surprise']:.1f}；主要诊断{dise_txt}"
              + (f"；其中{f['shared_phone']}人共用同一手机号" if f["shared_phone"] >= 2 else "")
              + (f"；{f['shared_address']}人同一住址" if f["shared_address"] >= 2 else "")
              + (f"；主诊医师{'、'.join(prac[:3])}" if prac else "") + "。")
        return en, zh


PAIR_BLOCK_SCHEMA = "fixmedins_code string, block long, psn_no string"


def pair_blocks(pairs: pd.DataFrame, period_days: float, window_days: int, pair_pvalue: float,
                min_group_size: int) -> pd.DataFrame:
    """One institution's tight rings: its `co_admission_pairs` rows kept when co-admitted more often than chance
    (Poisson, p ≤ `pair_pvalue`), peeled into dense blocks; rows (fixmedins_code, block, psn_no). Pure, and
    independent of the order of `pairs` (the per-group step of `CollusionRingDetector`)."""
    out = pd.DataFrame({"fixmedins_code": pd.Series(dtype=object), "block": pd.Series(dtype="int64"),
                        "psn_no": pd.Series(dtype=object)})
    if pairs.empty:
        return out
    pairs = pairs.sort_values(["fixmedins_code", "psn_a", "psn_b"], kind="stable").reset_index(drop=True)
    width = 2 * int(window_days) + 1
    lam = pairs["n_a"].astype(float) * pairs["n_b"].astype(float) * width / period_days
    pair_p = poisson.sf(pairs["occasions"].astype(float) - 1, lam)
    kept = pairs.assign(pair_p=pair_p)
    kept = kept[kept["pair_p"] <= pair_pvalue]
    kept = kept.assign(surprise=-np.log10(np.maximum(kept["pair_p"].to_numpy(dtype=float), 1e-300)))
    rows = [(inst, i, p) for i, (inst, members) in enumerate(peeled_blocks(co_admission_graph(kept), min_group_size))
            for p in members]
    if not rows:
        return out
    return pd.DataFrame(rows, columns=list(out.columns)).astype({"block": "int64"})


def peeled_blocks(graph: ig.Graph, min_group_size: int) -> list[tuple[str, list[str]]]:
    """Dense lockstep blocks: repeated greedy peeling (FRAUDAR-style densest subgraph) per component."""
    out: list[tuple[str, list[str]]] = []
    if graph.vcount() == 0:
        return out
    weights = graph.es["surprise"]
    for comp in graph.connected_components():
        if len(comp) < min_group_size:
            continue
        remaining = set(comp)
        while len(remaining) >= min_group_size:
            block = densest_block(graph, remaining, weights)
            if len(block) < 2:
                break
            remaining -= block
            for part in graph.subgraph(sorted(block)).connected_components():
                if len(part) >= min_group_size:
                    ids = sorted(block)
                    vs = [ids[i] for i in part]
                    out.append((graph.vs[vs[0]]["fixmedins_code"], sorted(graph.vs[i]["psn_no"] for i in vs)))
    return out


def densest_block(graph: ig.Graph, vertices: set[int], weights: list[float]) -> set[int]:
    """Greedy peeling (Charikar; the FRAUDAR family): the subset of `vertices` of maximal average weighted degree.

    Repeatedly removes the vertex of least weighted degree inside the current set and returns the set that had
    the highest total edge weight per vertex along the way (ties: the larger set).
    """
    deg: dict[int, float] = dict.fromkeys(vertices, 0.0)
    nbrs: dict[int, list[tuple[int, float]]] = {v: [] for v in vertices}
    total = 0.0
    for e in graph.es.select(_within=list(vertices)):
        a, b = e.tuple
        w = float(weights[e.index])
        deg[a] += w
        deg[b] += w
        nbrs[a].append((b, w))
        nbrs[b].append((a, w))
        total += w
    heap = [(d, v) for v, d in deg.items()]
    heapq.heapify(heap)
    alive = set(vertices)
    best_density, best_size = total / max(1, len(alive)), len(alive)
    order: list[int] = []
    while len(alive) > 1:
        d, v = heapq.heappop(heap)
        if v not in alive or d != deg[v]:
            continue
        alive.discard(v)
        order.append(v)
        total -= deg[v]
        for u, w in nbrs[v]:
            if u in alive:
                deg[u] -= w
                heapq.heappush(heap, (deg[u], u))
        density = total / len(alive)
        if density > best_density + 1e-12:
            best_density, best_size = density, len(alive)
    removed = order[: len(vertices) - best_size]
    return set(vertices) - set(removed)


def _dedupe(leads: list[Lead]) -> list[Lead]:
    """One lead per ring: of two leads sharing half the smaller one's evidence, the higher score stays."""
    kept: list[Lead] = []
    for lead in sorted(leads, key=lambda ld: (-ld.score, -len(ld.evidence), ld.lead_id)):
        ev = set(lead.evidence)
        if all(len(ev & set(k.evidence)) < 0.5 * min(len(ev), len(k.evidence)) for k in kept):
            kept.append(lead)
    return kept


def _log10_comb(n: int, k: int) -> float:
    if k <= 0 or k >= n:
        return 0.0
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10)


def _cv(values: pd.Series) -> float | None:
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if len(v) < 2 or v.mean() <= 0:
        return None
    return float(v.std(ddof=0) / v.mean())
