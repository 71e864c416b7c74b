"""Collusion rings (团伙同进同出, 虚假住院): the same persons admitted together at one institution again and again."""

from __future__ import annotations

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
from fraudnet.errors import DetectorError
from fraudnet.graph.projection import co_admission_graph, co_admission_pairs, inpatient_admissions, person_links

__all__ = ["CollusionRingDetector", "poisson_binomial_sf", "densest_block"]

log = logging.getLogger(__name__)


def poisson_binomial_sf(probs: np.ndarray | list[float], j: int) -> float:
    """P(at least `j` successes) among independent trials with success probabilities `probs`."""
    p = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    if j <= 0:
        return 1.0
    if j > len(p):
        return 0.0
    dist = np.zeros(len(p) + 1)
    dist[0] = 1.0
    for q in p:
        dist[1:] = dist[1:] * (1 - q) + dist[:-1] * q
        dist[0] *= 1 - q
    return float(min(1.0, max(0.0, dist[j:].sum())))


@dataclass
class _Occasion:
    start: Any
    end: Any
    members: set[str]
    visits: list[str]
    crowd: int  # distinct persons admitted at the institution in that window (members included)
    term: float  # −log10 of the chance of that many members admitted in one window (volume adjusted)


class CollusionRingDetector:
    """Find groups of persons co-admitted at the same institution on many occasions, far beyond chance.

    Method: the co-admission projection (inpatient admissions at one institution within ±`window_days`) keeps
    pairs co-admitted on at least `min_pair_occasions` distinct days whose Poisson surprise against
    n_a·n_b·(2w+1)/D (each person's admissions there, D = days of data) is below `pair_pvalue`; groups are dense
    lockstep blocks of that graph, peeled greedily (FRAUDAR-style densest subgraph, edge weight = the pair's
    −log10 surprise) from each connected component in turn (deterministic: no randomness). A block then takes
    in the persons admitted in at least two of its occasion windows when fewer than `join_chance` persons of
    the institution would be by chance (binomial on their admissions, times the institution's persons): members
    who came to only some occasions. Each group
    is scored on its *repeat* occasions: for every window where j members were admitted together, the chance
    that j or more of the m members fall in one window, given each member's admission count and the
    institution's admission volume around that date (excluding the group), is a Poisson-binomial tail scaled
    by the number of windows in the period. The strongest occasion defines the group and is not counted (a
    one-off group admission — an outbreak, an accident — scores nothing); the other occasions' −log10
    surprises add up. Similar diagnoses, stays and fees and a shared phone add a bounded bonus. The score is
    a logistic of that total, so it means the same on any city.

    Parameters
    ----------
    window_days : int, default 1
        Admissions within this many days of each other count as together (same day or ±1 day).
    min_pair_occasions : int, default 2
        Distinct co-admission days a pair needs to enter the graph.
    pair_pvalue : float, default 0.01
        Pairs whose repeat is more likely than this by chance are left out of the graph.
    min_group_size : int, default 3
        Fewest persons in a group.
    min_occasions : int, default 3
        Fewest occasions with at least `together_share` of the group present (and ≥ 2 persons).
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
        ]
        for name, value, ok in checks:
            if not ok:
                raise DetectorError(f"CollusionRingDetector: parameter {name}={value!r} is out of range")

    # ------------------------------------------------------------------ run
    def run(self, context: DetectionContext) -> list[Lead]:
        """Return one lead per co-admission ring."""
        self._validate()
        adm = inpatient_admissions(context)
        if adm.empty:
            self.groups_ = []
            return []
        adm = adm.copy()
        adm["adm_date"] = pd.to_datetime(adm["adm_date"])
        d0, d1 = adm["adm_date"].min(), adm["adm_date"].max()
        self.period_days_ = max(30.0, float((d1 - d0).days + 1))
        width = 2 * int(self.window_days) + 1

        pairs = co_admission_pairs(context, self.window_days, self.min_pair_occasions)
        if pairs.empty:
            self.groups_ = []
            return []
        pairs = pairs.copy()
        lam = pairs["n_a"].astype(float) * pairs["n_b"].astype(float) * width / self.period_days_
        pairs["pair_p"] = poisson.sf(pairs["occasions"].astype(float) - 1, lam)
        kept = pairs[pairs["pair_p"] <= self.pair_pvalue]
        self.pairs_kept_ = len(kept)
        kept = kept.assign(surprise=-np.log10(np.maximum(kept["pair_p"].to_numpy(dtype=float), 1e-300)))
        graph = co_admission_graph(kept)
        groups = self._groups(graph)
        self.groups_ = groups

        by_inst = dict(list(adm.groupby("fixmedins_code", sort=False)))
        phones = self._phones(context)
        leads = []
        for inst, members in groups:
            lead = self._score_group(inst, members, by_inst[inst], phones, width)
            if lead is not None:
                leads.append(lead)
        since = getattr(context, "since", None)
        if since is not None:
            leads = [ld for ld in leads if ld.period_end is None or ld.period_end >= since]
        leads.sort(key=lambda ld: -ld.score)
        return leads

    # ------------------------------------------------------------------ grouping
    def _groups(self, graph: ig.Graph) -> list[tuple[str, list[str]]]:
        """Dense lockstep blocks: repeated greedy peeling (FRAUDAR-style densest subgraph) per component."""
        out: list[tuple[str, list[str]]] = []
        if graph.vcount() == 0:
            return out
        weights = graph.es["surprise"]
        for comp in graph.connected_components():
            if len(comp) < self.min_group_size:
                continue
            remaining = set(comp)
            while len(remaining) >= self.min_group_size:
                block = densest_block(graph, remaining, weights)
                if len(block) < 2:
                    break
                remaining -= block
                for part in graph.subgraph(sorted(block)).connected_components():
                    if len(part) >= self.min_group_size:
                        ids = sorted(block)
                        vs = [ids[i] for i in part]
                        out.append((graph.vs[vs[0]]["fixmedins_code"], sorted(graph.vs[i]["psn_no"] for i in vs)))
        return out

    @staticmethod
    def _phones(context: Any) -> dict[str, set[str]]:
        try:
            links = person_links(context)
        except Exception:  # noqa: BLE001 — psn_info without hashed phones: the bonus is simply not available
            log.debug("no person links for the shared-phone bonus", exc_info=True)
            return {}
        links = links[links["link_type"] == "phone"]
        out: dict[str, set[str]] = {}
        for psn, key in zip(links["psn_no"], links["key"], strict=True):
            out.setdefault(psn, set()).add(key)
        return out

    # ------------------------------------------------------------------ scoring
    def _occasions(self, members: list[str], inst_adm: pd.DataFrame, width: int) -> list[_Occasion]:
        member_set = set(members)
        mine = inst_adm[inst_adm["psn_no"].isin(member_set)].sort_values("adm_date")
        others = inst_adm[~inst_adm["psn_no"].isin(member_set)]
        counts = Counter(mine["psn_no"])
        n_others = len(others)
        period = self.period_days_
        half = int(self.intensity_days)
        span = 2 * half + 1
        other_days = np.sort(others["adm_date"].to_numpy(dtype="datetime64[D]")) if n_others else None
        other_sorted = others.sort_values("adm_date")
        other_psn = other_sorted["psn_no"].to_numpy()
        other_sorted_days = other_sorted["adm_date"].to_numpy(dtype="datetime64[D]")
        base_rate = (n_others + period / span) / period  # per day, with one pseudo-admission per window

        occasions: list[_Occasion] = []
        cluster: list[int] = []
        first = None
        rows = mine.reset_index(drop=True)
        dates = rows["adm_date"].to_numpy(dtype="datetime64[D]")

        def close(idx: list[int]) -> None:
            if not idx:
                return
            sub = rows.iloc[idx]
            present = set(sub["psn_no"])
            if len(present) < 2:
                return
            mid = dates[idx[0]] + (dates[idx[-1]] - dates[idx[0]]) // 2
            if other_days is not None:
                lo = np.searchsorted(other_days, mid - np.timedelta64(half, "D"), side="left")
                hi = np.searchsorted(other_days, mid + np.timedelta64(half, "D"), side="right")
                c = hi - lo
            else:
                c = 0
            rho = max(1.0, ((c + 1) / span) / base_rate)
            probs = [min(0.999, counts[p] * width * rho / period) for p in members]
            tail = poisson_binomial_sf(probs, len(present))
            expected_windows = (period / width) * tail
            term = max(0.0, -math.log10(max(expected_windows, 1e-300))) if expected_windows < 1 else 0.0
            lo_w = np.searchsorted(other_sorted_days, dates[idx[0]], side="left")
            hi_w = np.searchsorted(other_sorted_days, dates[idx[-1]], side="right")
            crowd = len(present) + len(set(other_psn[lo_w:hi_w]))
            occasions.append(
                _Occasion(sub["adm_date"].min(), sub["adm_date"].max(), present, sub["mdtrt_id"].tolist(), crowd, term)
            )

        # Windows anchored at their first admission and at most 2w days long, so that chance clusters
        # in a busy institution cannot chain into long runs.
        for i, d in enumerate(dates):
            if first is not None and (d - first) > np.timedelta64(width - 1, "D"):
                close(cluster)
                cluster = []
                first = None
            if first is None:
                first = d
            cluster.append(i)
        close(cluster)
        return occasions

    def _joiners(self, members: list[str], occasions: list[_Occasion], inst_adm: pd.DataFrame,
                 width: int) -> set[str]:
        """Persons admitted in ≥ 2 of the group's occasion windows more often than chance allows."""
        if len(occasions) < 2:
            return set()
        member_set = set(members)
        others = inst_adm[~inst_adm["psn_no"].isin(member_set)]
        days = others["adm_date"].to_numpy(dtype="datetime64[D]")
        hits: Counter[str] = Counter()
        for o in occasions:
            lo = np.datetime64(pd.Timestamp(o.start).date(), "D")
            inside = (days >= lo) & (days <= lo + np.timedelta64(width - 1, "D"))
            hits.update(set(others.loc[inside, "psn_no"]))
        cands = [p for p, k in hits.items() if k >= 2]
        if not cands:
            return set()
        n_adm = Counter(others.loc[others["psn_no"].isin(set(cands)), "psn_no"])
        q = min(1.0, len(occasions) * width / self.period_days_)
        n_persons = inst_adm["psn_no"].nunique()
        return {p for p in cands if n_persons * binom.sf(hits[p] - 1, n_adm[p], q) < self.join_chance}

    def _score_group(
        self, inst: str, members: list[str], inst_adm: pd.DataFrame, phones: dict[str, set[str]], width: int
    ) -> Lead | None:
        occasions = self._occasions(members, inst_adm, width)
        # Keep the core: persons present on at least two occasions; recompute once on the core.
        presence = Counter(p for o in occasions for p in o.members)
        core = sorted(p for p in members if presence[p] >= 2)
        if len(core) < self.min_group_size:
            return None
        if len(core) < len(members):
            members = core
            occasions = self._occasions(members, inst_adm, width)
        joiners = self._joiners(members, occasions, inst_adm, width)
        if joiners:
            members = sorted(set(members) | joiners)
            occasions = self._occasions(members, inst_adm, width)
        m = len(members)
        need = max(2, math.ceil(self.together_share * m))
        together = [o for o in occasions if len(o.members) >= need]
        if len(together) < self.min_occasions:
            return None

        # The strongest occasion defines the group: its term is not evidence, and picking its members out of
        # the crowd admitted in that window costs log10 C(crowd, present) (the look-elsewhere penalty).
        defining = max(occasions, key=lambda o: o.term)
        selection = _log10_comb(defining.crowd, len(defining.members))
        repeat_surprise = max(0.0, float(sum(o.term for o in occasions) - defining.term - selection))

        evidence_ids = [v for o in occasions for v in o.visits]
        ev = inst_adm[inst_adm["mdtrt_id"].isin(set(evidence_ids))]
        # Similarity of diagnoses, stays and fees; a shared (recruiter) phone.
        dise_top, dise_share = "", 0.0
        if ev["dise3"].astype(bool).any():
            vc = ev.loc[ev["dise3"].astype(bool), "dise3"].value_counts()
            dise_top, dise_share = str(vc.index[0]), float(vc.iloc[0] / len(ev))
        los_cv = _cv(ev["los_days"])
        fee_cv = _cv(ev["medfee_sumamt"])
        phone_count = Counter(k for p in members for k in phones.get(p, ()))
        shared_phone = max(phone_count.values(), default=0)
        # Similarity counts only where it stands out from the institution's own case mix.
        inst_dise_share = float((inst_adm["dise3"] == dise_top).mean()) if dise_top else 1.0
        inst_los_cv = _cv(inst_adm["los_days"])
        inst_fee_cv = _cv(inst_adm["medfee_sumamt"])
        bonus = 0.0
        if dise_share >= 0.6 and inst_dise_share <= 0.5 * dise_share:
            bonus += 1.0
        if los_cv is not None and inst_los_cv and los_cv <= 0.5 * inst_los_cv:
            bonus += 0.5
        if fee_cv is not None and inst_fee_cv and fee_cv <= 0.5 * inst_fee_cv:
            bonus += 0.5
        if shared_phone >= 2:
            bonus += 1.0
        bonus = min(bonus, 3.0) if repeat_surprise > 0 else 0.0
        total = repeat_surprise + bonus
        score = 1.0 / (1.0 + math.exp(-(total - self.score_midpoint) / self.score_scale))
        if score < self.min_score:
            return None

        # Baseline ratio: observed co-admitted pair-occasions vs what the members' admission counts give by chance.
        counts = Counter(inst_adm.loc[inst_adm["psn_no"].isin(set(members)), "psn_no"])
        observed_pairs = sum(len(o.members) * (len(o.members) - 1) / 2 for o in occasions)
        n_inst = len(inst_adm)
        inst_days = self.period_days_
        expected_pairs = 0.0
        ms = [counts[p] for p in members]
        for i in range(m):
            for j in range(i + 1, m):
                expected_pairs += ms[i] * ms[j] * width / inst_days
        ratio = observed_pairs / expected_pairs if expected_pairs > 0 else float("inf")

        practitioners = sorted({str(x) for x in ev["atddr_no"].dropna() if str(x)})
        prac_counts = Counter(str(x) for x in ev["atddr_no"].dropna() if str(x))
        amount = float(ev["fund_pay_sumamt"].sum())
        start, end = ev["begntime"].min(), ev["begntime"].max()
        days = len(together)
        ratio_txt = f"{ratio:.1f}" if math.isfinite(ratio) else "∞"
        dise_txt = f"{dise_top} ({dise_share:.0%})" if dise_top else "-"
        explanation_en = (
            f"{m} persons admitted together (within ±{self.window_days} day) on {days} occasions at {inst} "
            f"({len(occasions)} co-admission windows, {len(evidence_ids)} stays), {ratio_txt}× the chance "
            f"co-admission expected from their admissions and the institution's volume ({n_inst} admissions); "
            f"repeat surprise 10^-{repeat_surprise:.1f}; main diagnosis {dise_txt}"
            + (f"; {shared_phone} members share one phone" if shared_phone >= 2 else "")
            + (f"; doctors {', '.join(practitioners[:3])}" if practitioners else "")
            + "."
        )
        explanation_zh = (
            f"{m}名参保人在{inst}同日(±{self.window_days}天)入院{days}次（共{len(occasions)}个同进窗口、"
            f"{len(evidence_ids)}次住院），为按其入院次数和该机构入院量（{n_inst}人次）推算的偶然同进期望的"
            f"{ratio_txt}倍；重复同进的偶然概率约10^-{repeat_surprise:.1f}；主要诊断{dise_txt}"
            + (f"；其中{shared_phone}人共用同一手机号" if shared_phone >= 2 else "")
            + (f"；主诊医师{'、'.join(practitioners[:3])}" if practitioners else "")
            + "。"
        )
        features = {
            "group_size": m,
            "occasions_together": days,
            "co_admission_windows": len(occasions),
            "stays": len(evidence_ids),
            "baseline_ratio": round(ratio, 2) if math.isfinite(ratio) else None,
            "observed_pair_occasions": observed_pairs,
            "expected_pair_occasions": round(expected_pairs, 3),
            "repeat_surprise_log10": round(repeat_surprise, 2),
            "bonus": bonus,
            "selection_penalty_log10": round(selection, 2),
            "defining_window_crowd": defining.crowd,
            "institution_admissions": n_inst,
            "top_diagnosis": dise_top,
            "top_diagnosis_share": round(dise_share, 3),
            "los_cv": None if los_cv is None else round(los_cv, 3),
            "fee_cv": None if fee_cv is None else round(fee_cv, 3),
            "shared_phone_members": shared_phone,
            "practitioner_visits": dict(prac_counts),
            "occasion_dates": [str(pd.Timestamp(o.start).date()) for o in occasions],
            "occasion_sizes": [len(o.members) for o in occasions],
        }
        return Lead(
            kind=self.kind,
            score=score,
            persons=members,
            practitioners=practitioners,
            institutions=[inst],
            evidence=evidence_ids,
            amount_at_risk=amount,
            period_start=None if pd.isna(start) else pd.Timestamp(start).to_pydatetime(),
            period_end=None if pd.isna(end) else pd.Timestamp(end).to_pydatetime(),
            explanation_zh=explanation_zh,
            explanation_en=explanation_en,
            features=features,
        )


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


def _log10_comb(n: int, k: int) -> float:
    if k <= 0 or k >= n:
        return 0.0
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(10)


def _cv(values: pd.Series) -> float | None:
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if len(v) < 2 or v.mean() <= 0:
        return None
    return float(v.std(ddof=0) / v.mean())
