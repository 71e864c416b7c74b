"""Card-skimming clusters (聚敛盗刷社保卡): bursts of strangers' cards settled by one operator with same baskets."""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom, poisson

from fraudnet.detectors.base import DetectionContext, Lead
from fraudnet.detectors.coverage import covered_clause
from fraudnet.errors import DetectorError

__all__ = ["CardSkimmingDetector"]

log = logging.getLogger(__name__)


def _tail_log10(p: np.ndarray | float) -> np.ndarray:
    return -np.log10(np.clip(np.asarray(p, dtype=float), 1e-300, 1.0))


# Order-free hash of a visit's distinct items (its basket): identical sets give identical values.
_BASKET_HASH = "bit_xor(DISTINCT hash(hilist_code))"


class CardSkimmingDetector:
    """Find operators (opter_id) or pharmacies settling many distinct cards in short bursts for strangers.

    Cards of one household (shared address key, else phone hash) count as one unit in every test below, so a
    family visiting together is not a burst of strangers.

    Needs settlement times to the minute and operator ids (`requires`): visit times all at midnight (dates
    exported as timestamps) or at one constant time would make every day's visits one "burst". Institutions
    whose outpatient/pharmacy visits mostly lack either (in every month, or in the months concerned) are left out
    — their visits form no burst and join no cluster (see `fraudnet.detectors.coverage`).

    Method (DuckDB SQL, then vectorised pandas): for every operator (institution + opter_id), any `min_cards`
    consecutive settlements within `window_minutes` are burst visits; burst visits are split into episodes at
    gaps over `gap_minutes`. Each episode gets four independent pieces
    of evidence, each a −log10 tail probability against that operator's/institution's own baseline (capped at
    `component_cap`, so one signal alone can never reach red):
    - burst: distinct units vs. a Poisson with the operator's usual rate at those hours (other days);
    - far strangers: cardholders living in another district (live_admdvs ≠ the institution's admdvs) who come to
      that institution on that one day only, vs. the institution's share of such visits (episode left out);
    - off hours (`offhours_start`–`offhours_end`): vs. the institution's usual off-hours share (binomial);
    - identical baskets: units with the episode's most common basket (the same set of hilist_codes) vs. that
      basket's rate on the operator's (then institution's) other visits, less log10 of the baskets seen; only
      when at least `basket_min_share` and `basket_min_count` of the units have it.
    Each episode pays log10 of its operator's number of burst episodes (look-elsewhere: a hospital cashier
    bursts every day). Episodes with enough evidence are joined into clusters: all strong episodes of one
    operator, and episodes that co-swiped at least `min_shared_cards` of the same skimmed cards (card co-swipe
    links made in SQL, their connected components by the engine's `components` step). Score =
    logistic((strongest episode + repeat and co-swipe bonus − `score_midpoint`) / `score_scale`); evidence = the
    skimmed visits (the burst visits carrying a strong signal).

    Where it runs (`fraudnet.engines`): the per-operator work — bursts and episodes — is SQL windows partitioned
    by operator, which Spark runs on its executors; the evidence is one vectorised row per episode here; the
    clusters cross operators and pharmacies by design (cards co-swiped elsewhere), so they come from the
    distributed components step, not from a per-operator group: on Spark only candidate episodes' component
    labels, one card-link total per cluster and the kept clusters' visits reach the driver.

    Parameters
    ----------
    window_minutes : int, default 120
        Sliding window for counting distinct cards per operator.
    min_cards : int, default 5
        Settlements within the window that make a burst.
    gap_minutes : int, default 30
        A longer pause between burst visits of an operator starts a new episode.
    offhours_start, offhours_end : int, default 22, 7
        Settlement hours [start, 24) ∪ [0, end) count as off hours.
    component_cap : float, default 6.0
        Cap of each signal's −log10 evidence.
    strong_signal : float, default 2.0
        A signal at least this strong selects its visits as evidence.
    basket_min_share : float, default 0.5
        Identical baskets count only when at least this share of the episode's visits has the modal basket.
    basket_min_count : int, default 5
        ... and at least this many households with it (a few identical baskets happen by chance).
    min_run_cards : int, default 10
        Skimming in small runs (two or three cards at a time, below `min_cards`) is looked for per operator when
        at least this many households' far-stranger visits come in runs (see `_stranger_run_leads`).
    link_min : float, default 4.0
        Episodes with less total evidence (or whose evidence is all burst) only join a cluster through shared
        cards; clusters need at least one episode above it.
    min_shared_cards : int, default 3
        Skimmed cards two operators must share to be joined.
    score_midpoint : float, default 8.0
        Evidence at which the score is 0.5.
    score_scale : float, default 2.0
        Logistic scale (red ≥ 0.8 ⇔ evidence ≥ midpoint + 2.77·scale ≈ two strong signals).
    min_score : float, default 0.3
        Clusters below this score are not returned.
    """

    kind = "card_skimming"
    requires = ("minute_times", "operator_ids")

    def __init__(
        self,
        window_minutes: int = 120,
        min_cards: int = 5,
        gap_minutes: int = 30,
        offhours_start: int = 22,
        offhours_end: int = 7,
        component_cap: float = 6.0,
        strong_signal: float = 2.0,
        basket_min_share: float = 0.5,
        basket_min_count: int = 5,
        min_run_cards: int = 10,
        link_min: float = 4.0,
        min_shared_cards: int = 3,
        score_midpoint: float = 8.0,
        score_scale: float = 2.0,
        min_score: float = 0.3,
    ) -> None:
        self.window_minutes = window_minutes
        self.min_cards = min_cards
        self.gap_minutes = gap_minutes
        self.offhours_start = offhours_start
        self.offhours_end = offhours_end
        self.component_cap = component_cap
        self.strong_signal = strong_signal
        self.basket_min_share = basket_min_share
        self.basket_min_count = basket_min_count
        self.min_run_cards = min_run_cards
        self.link_min = link_min
        self.min_shared_cards = min_shared_cards
        self.score_midpoint = score_midpoint
        self.score_scale = score_scale
        self.min_score = min_score

    def _validate(self) -> None:
        checks = [
            ("window_minutes", self.window_minutes, isinstance(self.window_minutes, int) and self.window_minutes > 0),
            ("min_cards", self.min_cards, isinstance(self.min_cards, int) and self.min_cards >= 2),
            ("gap_minutes", self.gap_minutes, isinstance(self.gap_minutes, int) and self.gap_minutes > 0),
            ("offhours_start", self.offhours_start, 0 <= self.offhours_start <= 24),
            ("offhours_end", self.offhours_end, 0 <= self.offhours_end <= 24),
            ("component_cap", self.component_cap, self.component_cap > 0),
            ("min_shared_cards", self.min_shared_cards, self.min_shared_cards >= 1),
            ("basket_min_share", self.basket_min_share, 0 <= self.basket_min_share <= 1),
            ("basket_min_count", self.basket_min_count, self.basket_min_count >= 1),
            ("min_run_cards", self.min_run_cards, self.min_run_cards >= 2),
            ("score_scale", self.score_scale, self.score_scale > 0),
            ("min_score", self.min_score, 0 <= self.min_score <= 1),
        ]
        for name, value, ok in checks:
            if not ok:
                raise DetectorError(f"CardSkimmingDetector: parameter {name}={value!r} is out of range")

    def _evidence_floor(self) -> float:
        """Total evidence whose score is `min_score` (inverse of the logistic)."""
        p = min(max(float(self.min_score), 1e-6), 1 - 1e-6)
        return self.score_midpoint + self.score_scale * math.log(p / (1 - p))

    def _is_off(self, hours: pd.Series) -> pd.Series:
        return (hours >= self.offhours_start) | (hours < self.offhours_end)

    # ------------------------------------------------------------------ SQL
    def _covered(self, context: Any, alias: str) -> str:
        """SQL condition keeping the visits (of `alias`) whose institution and month have every needed detail."""
        return " AND ".join(covered_clause(context, r, f"{alias}.fixmedins_code", f"{alias}.begntime")
                            for r in self.requires)

    _TEMP = "_fraudnet_skim_bursts"
    _TEMP_PI = "_fraudnet_skim_psn_inst"
    _TEMP_RUNS = "_fraudnet_skim_runs"
    _TEMP_SKIM = "_fraudnet_skim_skimmed"
    _TEMP_LINKS = "_fraudnet_skim_links"

    def _make_person_table(self, context: Any) -> None:
        """Temp table per (institution, person) over outpatient/pharmacy visits: visits, visit days, off-hours
        visits, whether the person lives in another district, and the household key (address, else phone)."""
        context.temp_table(
            self._TEMP_PI,
            f"""
            WITH pi AS (
                SELECT fixmedins_code, psn_no, count(*) AS n_visits,
                       count(DISTINCT CAST(begntime AS DATE)) AS n_days,
                       sum(CASE WHEN hour(begntime) >= $hs OR hour(begntime) < $he THEN 1 ELSE 0 END) AS n_off
                FROM visit_fact vf
                WHERE NOT is_inpatient AND NOT coalesce(refunded, FALSE) AND {self._covered(context, "vf")}
                GROUP BY ALL
            )
            SELECT pi.*,
                   (p.live_admdvs IS NOT NULL AND i.admdvs IS NOT NULL AND p.live_admdvs <> i.admdvs) AS far,
                   coalesce(nullif(p.addr_key, ''), nullif(p.mob_hash, ''), pi.psn_no) AS household
            FROM pi
            LEFT JOIN psn_info p ON p.psn_no = pi.psn_no
            LEFT JOIN medins_info i ON i.fixmedins_code = pi.fixmedins_code
            """,
            {"hs": int(self.offhours_start), "he": int(self.offhours_end)},
        )

    def _make_burst_table(self, context: Any) -> None:
        """Temp table of burst visits with their episode id, household, far-stranger and off-hours flags."""
        w = int(self.window_minutes)
        gap = int(self.gap_minutes)
        m = int(self.min_cards)
        # A visit is in a burst when one of the runs of m consecutive settlements containing it spans at most w
        # minutes; the previous visit's flag and the gap to it start episodes — all in one pass of lag/lead over a
        # single sort of the operator's visits. Episode ids are then a running count over the burst visits.

        def run_within(j: int) -> str:  # the run of m visits starting j rows before (j ≥ 0) the current one
            hi, lo = m - 1 - j, j
            end = f"lead(begntime, {hi}) OVER o" if hi > 0 else f"lag(begntime, {-hi}) OVER o"
            end = "begntime" if hi == 0 else end
            start = f"lag(begntime, {lo}) OVER o" if lo > 0 else "begntime"
            return f"({end} - {start} <= INTERVAL {w} MINUTE)"

        in_burst = " OR ".join(run_within(k) for k in range(m))
        prev_in_burst = " OR ".join(run_within(k + 1) for k in range(m))
        context.temp_table(
            self._TEMP,
            f"""
            WITH v AS (
                SELECT mdtrt_id, psn_no, fixmedins_code, opter_id, begntime, fund_pay_sumamt,
                       hash(fixmedins_code, opter_id) AS oph
                FROM visit_fact vf
                WHERE NOT is_inpatient AND NOT coalesce(refunded, FALSE)
                  AND opter_id IS NOT NULL AND opter_id <> '' AND {self._covered(context, "vf")}
            ),
            s AS (
                SELECT *, coalesce({in_burst}, FALSE) AS in_burst,
                       coalesce({prev_in_burst}, FALSE) AS prev_in_burst,
                       begntime - lag(begntime) OVER o AS gap
                FROM v
                WINDOW o AS (PARTITION BY oph ORDER BY begntime, mdtrt_id)
            ),
            e AS (
                SELECT *, CAST(sum(CASE WHEN NOT prev_in_burst OR gap > INTERVAL {gap} MINUTE THEN 1 ELSE 0 END)
                          OVER (ORDER BY oph, begntime, mdtrt_id ROWS UNBOUNDED PRECEDING) AS BIGINT) AS episode
                FROM s WHERE in_burst
            )
            SELECT e.mdtrt_id, e.psn_no, e.fixmedins_code, e.opter_id,
                   e.fixmedins_code || '|' || e.opter_id AS op,
                   e.episode,
                   e.begntime, e.fund_pay_sumamt,
                   coalesce(d.household, e.psn_no) AS household,
                   coalesce(d.far AND d.n_days <= 1, FALSE) AS far_stranger,
                   (hour(e.begntime) >= $hs OR hour(e.begntime) < $he) AS off
            FROM e
            LEFT JOIN {self._TEMP_PI} d ON d.fixmedins_code = e.fixmedins_code AND d.psn_no = e.psn_no
            """,
            {"hs": int(self.offhours_start), "he": int(self.offhours_end)},
        )

    def _episodes(self, context: Any) -> pd.DataFrame:
        """One row per burst episode: operator, span, visits, distinct cards and households (units)."""
        ep = context.sql(
            f"""
            SELECT episode, any_value(op) AS op, any_value(fixmedins_code) AS fixmedins_code,
                   any_value(opter_id) AS opter_id, min(begntime) AS start, max(begntime) AS "end",
                   count(*) AS visits, count(DISTINCT psn_no) AS cards, count(DISTINCT household) AS units,
                   sum(CASE WHEN far_stranger THEN 1 ELSE 0 END) AS far_strangers,
                   sum(CASE WHEN off THEN 1 ELSE 0 END) AS "off",
                   count(DISTINCT CASE WHEN far_stranger THEN household END) AS far_units,
                   count(DISTINCT CASE WHEN off THEN household END) AS off_units
            FROM {self._TEMP}
            GROUP BY episode
            ORDER BY episode
            """
        )
        ep = ep.set_index("episode")
        ep["start"] = pd.to_datetime(ep["start"])
        ep["end"] = pd.to_datetime(ep["end"])
        return ep

    def _episode_visits(self, context: Any, episodes: list[int]) -> pd.DataFrame:
        """The burst visits of the given episodes."""
        bv = context.sql(
            f"""
            SELECT mdtrt_id, psn_no, fixmedins_code, opter_id, op, episode, begntime, fund_pay_sumamt, household,
                   far_stranger, off
            FROM {self._TEMP} WHERE episode IN (SELECT unnest($eps))
            ORDER BY episode, begntime, mdtrt_id
            """,
            {"eps": [int(e) for e in episodes]},
        )
        bv["begntime"] = pd.to_datetime(bv["begntime"])
        return bv

    def _institution_baselines(self, context: Any, institutions: list[str]) -> pd.DataFrame:
        return context.sql(
            f"""
            WITH d AS (
                SELECT fixmedins_code, count(DISTINCT CAST(begntime AS DATE)) AS open_days FROM visit_fact
                WHERE NOT is_inpatient AND NOT coalesce(refunded, FALSE)
                  AND fixmedins_code IN (SELECT unnest($insts))
                GROUP BY ALL
            )
            SELECT pi.fixmedins_code, sum(pi.n_visits) AS n_visits, any_value(d.open_days) AS open_days,
                   sum(CASE WHEN pi.far AND pi.n_days = 1 THEN pi.n_visits ELSE 0 END) AS n_far_single,
                   sum(pi.n_off) AS n_off
            FROM {self._TEMP_PI} pi JOIN d USING (fixmedins_code)
            GROUP BY pi.fixmedins_code
            """,
            {"insts": institutions},
        )

    # ------------------------------------------------------------------ run
    def run(self, context: DetectionContext) -> list[Lead]:
        """Return one lead per skimming cluster (operators/pharmacies joined by co-swiped cards)."""
        self._validate()
        self.episodes_ = pd.DataFrame()
        self._basket_visits_: set[str] = set()
        t0 = time.perf_counter()
        self.timings_: dict[str, float] = {}
        try:
            self._make_person_table(context)
            self._make_burst_table(context)
            ep = self._episodes(context)
            self.timings_["bursts"] = time.perf_counter() - t0
            if ep.empty:
                return []
            insts = sorted(ep["fixmedins_code"].unique())
            base = self._institution_baselines(context, insts).set_index("fixmedins_code")
            self.timings_["baselines"] = time.perf_counter() - t0 - sum(self.timings_.values())
            ep = self._episode_evidence(context, ep, base)
            self.episodes_ = ep
            self.timings_["evidence"] = time.perf_counter() - t0 - sum(self.timings_.values())
            leads = self._clusters(context, ep)
            self.timings_["clusters"] = time.perf_counter() - t0 - sum(self.timings_.values())
            covered = {o for ld in leads for o in ld.features["operators"]}
            leads += self._stranger_run_leads(context, covered, int(ep.index.max()) + 1)
            self.timings_["stranger_runs"] = time.perf_counter() - t0 - sum(self.timings_.values())
            log.debug("card_skimming timings: %s", self.timings_)
        finally:
            context.drop_temp(self._TEMP)
            context.drop_temp(self._TEMP_PI)
            context.drop_temp(self._TEMP_RUNS)
            context.drop_temp(self._TEMP_SKIM)
            context.drop_temp(self._TEMP_LINKS)
        since = getattr(context, "since", None)
        if since is not None:
            leads = [ld for ld in leads if ld.period_end is None or ld.period_end >= since]
        leads.sort(key=lambda ld: -ld.score)
        return leads

    def _off_hours_evidence(self, ep: pd.DataFrame, b: pd.DataFrame, n_out: np.ndarray,
                            units: np.ndarray) -> np.ndarray:
        """`ev_off`: households served off hours against the institution's own off-hours share outside the
        episode (binomial tail, capped); returns that baseline share."""
        off_out = (b["n_off"].to_numpy(dtype=float) - ep["off"].to_numpy(dtype=float)).clip(min=0)
        p_off = np.clip((off_out + 0.5) / (n_out + 10.0), 0.01, 0.99)
        ep["ev_off"] = np.minimum(float(self.component_cap),
                                  _tail_log10(binom.sf(ep["off_units"].to_numpy() - 1, units, p_off)))
        return p_off

    @staticmethod
    def _no_basket_yet(ep: pd.DataFrame, b: pd.DataFrame) -> None:
        """Basket columns before `_basket_evidence` fills them for the episodes that need them."""
        ep["ev_basket"] = 0.0
        ep["top_item"] = None  # the modal basket signature (items joined by |)
        ep["top_item_visits"] = 0
        ep["top_item_rate"] = np.nan
        ep["inst_visits"] = b["n_visits"].to_numpy(dtype=float)
        ep["same_basket_share"] = np.nan

    def _episode_evidence(self, context: Any, ep: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
        cap = float(self.component_cap)
        ep = ep.copy()
        ep["minutes"] = (ep["end"] - ep["start"]).dt.total_seconds() / 60.0
        b = base.reindex(ep["fixmedins_code"])
        n_out = (b["n_visits"].to_numpy(dtype=float) - ep["visits"].to_numpy(dtype=float)).clip(min=0)
        # Burst: the operator's usual rate at these hours on other days.
        hours = self._operator_hour_counts(context, ep["op"].unique().tolist())
        totals: dict[str, int] = {}
        for (o, _h), n in hours.items():
            totals[o] = totals.get(o, 0) + n
        self._op_totals_ = totals
        start_h = ep["start"].dt.hour.to_numpy()
        end_h = ep["end"].dt.hour.to_numpy()
        ops = ep["op"].to_numpy()
        c_start = np.array([hours.get((o, h), 0) for o, h in zip(ops, start_h, strict=True)], dtype=float)
        c_end = np.array([hours.get((o, h), 0) for o, h in zip(ops, end_h, strict=True)], dtype=float)
        open_days = b["open_days"].to_numpy(dtype=float).clip(min=1)
        span_h = np.maximum(ep["minutes"].to_numpy(dtype=float) / 60.0, 0.5)
        own = ep["visits"].to_numpy(dtype=float)
        per_hour = np.maximum((c_start + c_end - own) / 2.0, 0.0) / open_days
        mu = np.maximum(per_hour * span_h, 1.0 / open_days)
        units = ep["units"].to_numpy(dtype=float)
        ep["expected_cards"] = mu
        ep["ev_burst"] = np.minimum(cap, _tail_log10(poisson.sf(units - 1, mu)))
        # Far-away strangers, against the institution's own share of such visits outside bursts.
        far_out = (b["n_far_single"].to_numpy(dtype=float) - ep["far_strangers"].to_numpy(dtype=float)).clip(min=0)
        p_far = np.clip((far_out + 1.0) / (n_out + 10.0), 0.02, 0.99)
        ep["baseline_far_share"] = p_far
        ep["ev_far"] = np.minimum(cap, _tail_log10(binom.sf(ep["far_units"].to_numpy() - 1, units, p_far)))
        ep["baseline_off_share"] = self._off_hours_evidence(ep, b, n_out, units)
        self._no_basket_yet(ep, b)
        # Look-elsewhere: an operator with many burst episodes (a hospital cashier bursts daily) gets chance
        # extremes; its episodes pay log10 of their number.
        ep["look_elsewhere"] = np.log10(ep.groupby("op")["visits"].transform("size").to_numpy(dtype=float))
        pre = ep["ev_burst"] + ep["ev_far"] + ep["ev_off"] - ep["look_elsewhere"]
        # Baskets can only matter where, with a full basket signal, the episode could make a lead.
        need = (pre + cap >= self._evidence_floor()) & (ep["visits"] >= 2)
        if need.any():
            self._basket_evidence(context, ep, need)
        ep["evidence_total"] = pre + ep["ev_basket"]
        return ep

    @staticmethod
    def _operator_hour_counts(context: Any, ops: list[str]) -> dict[tuple[str, int], int]:
        df = context.sql(
            """
            WITH c AS (
                SELECT fixmedins_code, opter_id, hour(begntime) AS h, count(*) AS n
                FROM visit_fact
                WHERE NOT is_inpatient AND NOT coalesce(refunded, FALSE) AND opter_id IS NOT NULL
                GROUP BY ALL
            )
            SELECT fixmedins_code || '|' || opter_id AS op, h, n FROM c
            WHERE fixmedins_code || '|' || opter_id IN (SELECT unnest($ops))
            """,
            {"ops": ops},
        )
        return {(o, int(h)): int(n) for o, h, n in zip(df["op"], df["h"], df["n"], strict=True)}

    def _basket_evidence(self, context: Any, ep: pd.DataFrame, need: pd.Series, min_share: float | None = None) -> None:
        """Identical baskets: the episode's most common basket (set of items) vs. its rate on the operator's and
        the institution's other visits. Baskets are compared by an order-free hash of their distinct items."""
        cap = float(self.component_cap)
        sig = context.sql(
            f"""
            SELECT b.mdtrt_id, any_value(b.episode) AS episode, any_value(b.household) AS household,
                   {_BASKET_HASH.replace("hilist_code", "f.hilist_code")} AS sig
            FROM {self._TEMP} b JOIN fee_list f ON f.mdtrt_id = b.mdtrt_id
            WHERE b.episode IN (SELECT unnest($eps)) AND f.hilist_code IS NOT NULL
            GROUP BY b.mdtrt_id
            """,
            {"eps": [int(e) for e in ep.index[need]]},
        )
        if sig.empty:
            return
        s = sig
        per_sig = s.groupby(["episode", "sig"])["household"].nunique().rename("x").reset_index()
        per_sig = per_sig.sort_values(["episode", "x", "sig"], ascending=[True, False, True])
        n_sigs = per_sig.groupby("episode").size()
        top = per_sig.drop_duplicates("episode").set_index("episode")
        top["visits"] = ep.loc[top.index, "units"].to_numpy(dtype=float)
        top["share"] = top["x"] / top["visits"]
        ep.loc[top.index, "same_basket_share"] = top["share"].to_numpy(dtype=float)
        ep.loc[top.index, "top_item_visits"] = top["x"].astype(int).to_numpy()
        # Only near-identical baskets count: the baseline is looked up for those episodes alone.
        share_floor = float(self.basket_min_share if min_share is None else min_share)
        top = top[(top["share"] >= share_floor) & (top["x"] >= int(self.basket_min_count))].copy()
        if top.empty:
            return
        top["fixmedins_code"] = ep.loc[top.index, "fixmedins_code"]
        top["op"] = ep.loc[top.index, "op"]
        counts = context.sql(
            f"""
            WITH t AS (SELECT DISTINCT unnest($insts) AS fixmedins_code, unnest($sigs) AS sig),
            vs AS (
                SELECT f.mdtrt_id, {_BASKET_HASH.replace("hilist_code", "f.hilist_code")} AS sig
                FROM fee_list f JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
                WHERE NOT v.is_inpatient AND NOT coalesce(v.refunded, FALSE) AND f.hilist_code IS NOT NULL
                  AND v.fixmedins_code IN (SELECT fixmedins_code FROM t)
                GROUP BY f.mdtrt_id
            )
            SELECT v.fixmedins_code, v.fixmedins_code || '|' || v.opter_id AS op, vs.sig, count(*) AS c
            FROM vs JOIN visit_fact v ON v.mdtrt_id = vs.mdtrt_id
            JOIN t ON t.fixmedins_code = v.fixmedins_code AND t.sig = vs.sig
            GROUP BY ALL
            """,
            {"insts": top["fixmedins_code"].tolist(), "sigs": [int(x) for x in top["sig"]]},
        )
        inst_sig = counts.groupby(["fixmedins_code", "sig"])["c"].sum()
        op_sig = counts.groupby(["op", "sig"])["c"].sum()
        op_n = self._op_totals_
        visits = top["visits"].to_numpy(dtype=float)
        x = top["x"].to_numpy(dtype=float)
        c_inst = inst_sig.reindex(pd.MultiIndex.from_arrays([top["fixmedins_code"], top["sig"]])).fillna(0)
        c_op = op_sig.reindex(pd.MultiIndex.from_arrays([top["op"], top["sig"]])).fillna(0)
        n_inst = ep.loc[top.index, "inst_visits"].to_numpy(dtype=float)
        n_op = np.array([op_n.get(o, 0) for o in top["op"]], dtype=float)
        # The basket's rate on the operator's other visits, shrunk towards the institution's (episode left out),
        # itself shrunk towards 5%, so that neither a tiny operator nor a tiny institution looks certain.
        prior = 10.0
        q_inst = (np.maximum(c_inst.to_numpy(dtype=float) - x, 0.0) + prior * 0.05) / (
            np.maximum(n_inst - visits, 0.0) + prior)
        c_other = np.maximum(c_op.to_numpy(dtype=float) - x, 0.0)
        q = np.clip((c_other + prior * q_inst) / (np.maximum(n_op - visits, 0.0) + prior), 1e-4, 0.999)
        ev = _tail_log10(binom.sf(x - 1, visits, q)) - np.log10(n_sigs.reindex(top.index).to_numpy(dtype=float))
        ep.loc[top.index, "ev_basket"] = np.clip(ev, 0.0, cap)
        ep.loc[top.index, "top_item_rate"] = q
        top_sig = top["sig"].reset_index()
        self._basket_visits_ = set(s.merge(top_sig, on=["episode", "sig"])["mdtrt_id"])
        items = context.sql(
            "SELECT mdtrt_id, list(DISTINCT hilist_code ORDER BY hilist_code) AS items FROM fee_list "
            "WHERE mdtrt_id IN (SELECT unnest($ids)) GROUP BY mdtrt_id",
            {"ids": s.merge(top_sig, on=["episode", "sig"]).drop_duplicates("episode")["mdtrt_id"].tolist()},
        )
        first = s.merge(top_sig, on=["episode", "sig"]).drop_duplicates("episode").merge(items, on="mdtrt_id")
        for e, its in zip(first["episode"], first["items"], strict=True):
            ep.at[e, "top_item"] = "|".join(str(i) for i in its)

    # ------------------------------------------------------------------ clusters and leads
    def _skimmed(self, bv: pd.DataFrame, ep: pd.DataFrame) -> pd.DataFrame:
        """The burst visits carrying a strong signal of their episode (the skimmed visits)."""
        strong = float(self.strong_signal)
        e = ep.reindex(bv["episode"])
        mask = np.zeros(len(bv), dtype=bool)
        any_strong = np.zeros(len(bv), dtype=bool)
        far_s = e["ev_far"].to_numpy() >= strong
        off_s = e["ev_off"].to_numpy() >= strong
        bas_s = e["ev_basket"].to_numpy() >= strong
        mask |= far_s & bv["far_stranger"].to_numpy(dtype=bool)
        mask |= off_s & bv["off"].to_numpy(dtype=bool)
        basket_visits = getattr(self, "_basket_visits_", set())
        if basket_visits and bas_s.any():
            mask |= bas_s & bv["mdtrt_id"].isin(basket_visits).to_numpy()
        any_strong |= far_s | off_s | bas_s
        mask |= ~any_strong  # no strong signal: the whole episode is the (weak) evidence
        return bv[mask]

    def _stranger_run_leads(self, context: Any, covered: set[str], first_episode: int) -> list[Lead]:
        """Skimming in many small runs: an operator's far-stranger visits that come in runs (another far stranger
        within `window_minutes`), pooled over the year into one operator-level episode. Evidence: more such
        visits than the operator's far-stranger rate gives by chance (Poisson), off hours and identical baskets
        (as for bursts), less log10 of the operators looked at."""
        ep = self._stranger_runs(context, covered, first_episode)
        if ep.empty:
            return []
        ep = self._stranger_run_evidence(context, ep)
        self.runs_ = ep
        leads = []
        for e in ep.index[self._strong(ep)]:
            visits = self._skimmed(self._episode_visits(context, [int(e)]), ep)
            lead = self._lead(visits, ep.loc[[e]], 0)
            if lead is not None and lead.score >= self.min_score:
                lead.features["pathway"] = "stranger_runs"
                leads.append(lead)
        return leads

    def _stranger_runs(self, context: Any, covered: set[str], first_episode: int) -> pd.DataFrame:
        """Each operator's far-stranger visits in runs, as one episode per operator (temp table `_TEMP_RUNS`
        holds the visits), for operators not already covered by a burst episode."""
        w = int(self.window_minutes)
        context.temp_table(
            self._TEMP_RUNS,
            f"""
            WITH fs AS (
                SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.opter_id,
                       v.fixmedins_code || '|' || v.opter_id AS op, v.begntime, v.fund_pay_sumamt, d.household,
                       (hour(v.begntime) >= $hs OR hour(v.begntime) < $he) AS off
                FROM visit_fact v
                JOIN {self._TEMP_PI} d ON d.fixmedins_code = v.fixmedins_code AND d.psn_no = v.psn_no
                WHERE NOT v.is_inpatient AND NOT coalesce(v.refunded, FALSE) AND d.far AND d.n_days <= 1
                  AND v.opter_id IS NOT NULL AND v.opter_id <> ''
            ),
            r AS (
                SELECT *, count(*) OVER (PARTITION BY op) AS n_fs,
                       coalesce(begntime - lag(begntime) OVER o <= INTERVAL {w} MINUTE, FALSE)
                       OR coalesce(lead(begntime) OVER o - begntime <= INTERVAL {w} MINUTE, FALSE) AS in_run
                FROM fs
                WINDOW o AS (PARTITION BY op ORDER BY begntime, mdtrt_id)
            ),
            k AS (
                SELECT op FROM r WHERE in_run GROUP BY op
                HAVING count(DISTINCT household) >= $u
            )
            SELECT r.*, $first + dense_rank() OVER (ORDER BY r.op) - 1 AS episode
            FROM r JOIN k USING (op)
            WHERE r.in_run AND r.op NOT IN (SELECT unnest($covered))
            """,
            {"hs": int(self.offhours_start), "he": int(self.offhours_end), "u": int(self.min_run_cards),
             "first": int(first_episode), "covered": sorted(covered) or [""]},
        )
        ep = context.sql(
            f"""
            SELECT episode, any_value(op) AS op, any_value(fixmedins_code) AS fixmedins_code,
                   any_value(opter_id) AS opter_id, min(begntime) AS start, max(begntime) AS "end",
                   count(*) AS visits, count(DISTINCT psn_no) AS cards, count(DISTINCT household) AS units,
                   count(*) AS far_strangers, sum(CASE WHEN off THEN 1 ELSE 0 END) AS "off",
                   count(DISTINCT household) AS far_units,
                   count(DISTINCT CASE WHEN off THEN household END) AS off_units, any_value(n_fs) AS n_fs
            FROM {self._TEMP_RUNS} GROUP BY episode ORDER BY episode
            """
        )
        if ep.empty:
            return ep
        ep = ep.set_index("episode")
        ep["start"] = pd.to_datetime(ep["start"])
        ep["end"] = pd.to_datetime(ep["end"])
        return ep

    def _stranger_run_evidence(self, context: Any, ep: pd.DataFrame) -> pd.DataFrame:
        """The runs' evidence: run visits beyond what the operator's far-stranger rate gives, off hours, and
        identical baskets where the rest could reach the floor."""
        w = int(self.window_minutes)
        cap = float(self.component_cap)
        base = self._institution_baselines(context, sorted(ep["fixmedins_code"].unique())).set_index("fixmedins_code")
        b = base.reindex(ep["fixmedins_code"])
        n_out = (b["n_visits"].to_numpy(dtype=float) - ep["visits"].to_numpy(dtype=float)).clip(min=0)
        open_days = b["open_days"].to_numpy(dtype=float).clip(min=1)
        n_fs = ep["n_fs"].to_numpy(dtype=float)
        # Far strangers spread over 12 opening hours a day: the chance one has another within ±w minutes.
        rate = n_fs / (open_days * 720.0)
        expected = n_fs * (1.0 - np.exp(-2.0 * w * rate))
        x = ep["visits"].to_numpy(dtype=float)
        units = ep["units"].to_numpy(dtype=float)
        ep["minutes"] = (ep["end"] - ep["start"]).dt.total_seconds() / 60.0
        ep["expected_cards"] = expected
        ep["ev_burst"] = np.minimum(cap, _tail_log10(poisson.sf(x - 1, np.maximum(expected, 1e-9))))
        ep["ev_far"] = 0.0
        self._off_hours_evidence(ep, b, n_out, units)
        self._no_basket_yet(ep, b)
        ep["look_elsewhere"] = math.log10(max(1, len(ep)))
        # Basket evidence reads the burst table: add the runs to it as their own episodes.
        context.append(
            self._TEMP,
            ("mdtrt_id", "psn_no", "fixmedins_code", "opter_id", "op", "episode", "begntime", "fund_pay_sumamt",
             "household", "far_stranger", "off"),
            f"""
            SELECT mdtrt_id, psn_no, fixmedins_code, opter_id, op, episode, begntime, fund_pay_sumamt, household,
                   TRUE, off
            FROM {self._TEMP_RUNS}
            """
        )
        pre = ep["ev_burst"] + ep["ev_off"] - ep["look_elsewhere"]
        need = pre + cap >= self._evidence_floor()
        if need.any():
            burst_basket = self._basket_visits_
            # Runs pool the operator's ordinary far strangers too: the modal basket need not be the majority.
            self._basket_evidence(context, ep, need, min_share=0.0)
            self._basket_visits_ = burst_basket | self._basket_visits_
        ep["evidence_total"] = pre + ep["ev_basket"]
        return ep

    def _strong(self, eps: pd.DataFrame) -> pd.Series:
        """Episodes that can anchor a cluster: enough evidence, and some of it besides the burst itself."""
        besides_burst = eps["evidence_total"] - eps["ev_burst"]
        return (eps["evidence_total"] >= self.link_min) & (besides_burst >= self.strong_signal)

    def _clusters(self, context: Any, ep: pd.DataFrame) -> list[Lead]:
        """Episodes joined into clusters: strong episodes of one operator, and episodes co-swiping the same cards."""
        floor = self._evidence_floor()
        cand = ep[ep["evidence_total"] >= min(self.link_min, floor - self.component_cap)]
        if cand.empty:
            return []
        found = self._cluster_members(context, cand)
        if not found:
            return []
        skim = self._skimmed_visits(context, sorted({e for eps_ids, _ in found for e in eps_ids}))
        clusters = [(eps_ids, shared, skim[skim["episode"].isin(eps_ids)]) for eps_ids, shared in found]
        other = self._card_visits(context, sorted({p for _, _, v in clusters for p in v["psn_no"]}))
        leads: list[Lead] = []
        for eps_ids, shared, visits in clusters:
            visits = pd.concat([visits, self._co_swipes(other, visits)], ignore_index=True)
            lead = self._lead(visits, cand.loc[eps_ids], shared)
            if lead is not None and lead.score >= self.min_score:
                leads.append(lead)
        return leads

    def _cluster_members(self, context: Any, cand: pd.DataFrame) -> list[tuple[list[int], int]]:
        """The co-swipe clusters holding a strong episode: (episode ids, card links) each.

        The candidates' skimmed visits (`_skimmed`'s selection) are made a temp table on the engine, and so are
        the links between episodes — two episodes sharing at least `min_shared_cards` skimmed cards, and any two
        strong episodes of one operator (which count as sharing `min_shared_cards` more) — and the clusters are
        the links' connected components (`context.components`: igraph on DuckDB, iterative joins on Spark). Only
        the component labels of the candidate episodes and one card-link total per cluster reach this process,
        never the visits or the links. A cluster's card links are the cards (plus the operator bonus) summed over
        its links. Clusters come in the order of their smallest episode id as text, episodes within a cluster
        too (the order the co-swipe graph of `fraudnet.graph.projection.card_coswipe_graph` gives)."""
        k = int(self.min_shared_cards)
        strong_signal = float(self.strong_signal)
        far_s = (cand["ev_far"] >= strong_signal).to_numpy()
        off_s = (cand["ev_off"] >= strong_signal).to_numpy()
        bas_s = (cand["ev_basket"] >= strong_signal).to_numpy()
        basket = sorted(getattr(self, "_basket_visits_", set()))  # none: a strong basket signal selects nothing
        strong = self._strong(cand).to_numpy(dtype=bool)
        flags = pd.DataFrame({
            "episode": cand.index.to_numpy(dtype="int64"), "op": cand["op"].astype(str).to_numpy(),
            "strong": strong, "far_s": far_s, "off_s": off_s, "bas_s": bas_s,
        })
        basket_clause = "FALSE"
        with context.frame_table("_fraudnet_skim_flags", flags) as f:
            if basket:
                basket_frame = pd.DataFrame({"mdtrt_id": pd.Series(basket, dtype=object)})
                tables = context.frame_table("_fraudnet_skim_basket", basket_frame)
                basket_clause = "(c.bas_s AND b.mdtrt_id IN (SELECT mdtrt_id FROM _fraudnet_skim_basket))"
            else:
                tables = nullcontext()
            with tables:
                context.temp_table(
                    self._TEMP_SKIM,
                    f"""
                    SELECT b.mdtrt_id, b.psn_no, b.fixmedins_code, b.opter_id, b.op, b.episode, b.begntime,
                           b.fund_pay_sumamt, b.household, b.far_stranger, b.off
                    FROM {self._TEMP} b JOIN {f} c ON c.episode = b.episode
                    WHERE (c.far_s AND b.far_stranger) OR (c.off_s AND b.off) OR {basket_clause}
                       OR NOT (c.far_s OR c.off_s OR c.bas_s)
                    """,
                )
            context.temp_table(
                self._TEMP_LINKS,
                f"""
                WITH s AS (SELECT DISTINCT episode, psn_no FROM {self._TEMP_SKIM}),
                p AS (
                    SELECT a.episode AS x, b.episode AS y, count(*) AS n
                    FROM s a JOIN s b ON a.psn_no = b.psn_no AND a.episode < b.episode
                    GROUP BY a.episode, b.episode
                ),
                o AS (
                    SELECT a.episode AS x, b.episode AS y
                    FROM {f} a JOIN {f} b ON a.op = b.op AND a.episode < b.episode
                    WHERE a.strong AND b.strong
                ),
                l AS (
                    SELECT coalesce(p.x, o.x) AS src, coalesce(p.y, o.y) AS dst,
                           coalesce(p.n, 0) + CASE WHEN o.x IS NULL THEN 0 ELSE $k END AS shared
                    FROM p FULL JOIN o ON p.x = o.x AND p.y = o.y
                ),
                v AS (SELECT episode FROM s UNION SELECT episode FROM {f} WHERE strong)
                SELECT src, dst, shared FROM l WHERE shared >= $k
                UNION ALL
                SELECT episode, episode, 0 FROM v
                """,
                {"k": k},
            )
        # every episode of the graph carries a self-link (card links 0), so a lone one is labelled too
        labels = context.components(f"SELECT src, dst FROM {self._TEMP_LINKS}")
        if labels.empty:
            return []
        strong_ids = set(flags.loc[flags["strong"], "episode"].tolist())
        members: dict[int, list[int]] = {}
        for vertex, component in zip(labels["vertex"].tolist(), labels["component"].tolist(), strict=True):
            members.setdefault(int(component), []).append(int(vertex))
        kept = {c: sorted(m, key=str) for c, m in members.items() if strong_ids.intersection(m)}
        if not kept:
            return []
        links: dict[int, int] = {}
        multi = pd.DataFrame({"vertex": [e for c, m in kept.items() if len(m) > 1 for e in m],
                              "component": [c for c, m in kept.items() if len(m) > 1 for _ in m]}, dtype="int64")
        if len(multi):
            with context.frame_table("_fraudnet_skim_labels", multi) as lab:
                totals = context.rows(
                    f"SELECT c.component, sum(l.shared) AS shared FROM {self._TEMP_LINKS} l "
                    f"JOIN {lab} c ON c.vertex = l.src GROUP BY c.component"
                )
            links = {int(c): int(n) for c, n in totals}
        return [(m, links.get(c, 0)) for c, m in sorted(kept.items(), key=lambda cm: str(cm[1][0]))]

    def _skimmed_visits(self, context: Any, episodes: list[int]) -> pd.DataFrame:
        """The skimmed visits (temp table `_TEMP_SKIM`) of the given episodes."""
        bv = context.sql(
            f"""
            SELECT mdtrt_id, psn_no, fixmedins_code, opter_id, op, episode, begntime, fund_pay_sumamt, household,
                   far_stranger, off
            FROM {self._TEMP_SKIM} WHERE episode IN (SELECT unnest($eps))
            ORDER BY episode, begntime, mdtrt_id
            """,
            {"eps": [int(e) for e in episodes]},
        )
        bv["begntime"] = pd.to_datetime(bv["begntime"])
        return bv

    def _card_visits(self, context: Any, cards: list[str]) -> pd.DataFrame:
        """Every outpatient/pharmacy visit of the given cards, with the operator key and the far flag."""
        other = context.sql(
            f"""
            SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.opter_id, v.begntime, v.fund_pay_sumamt,
                   (p.live_admdvs IS NOT NULL AND i.admdvs IS NOT NULL AND p.live_admdvs <> i.admdvs) AS far
            FROM visit_fact v
            LEFT JOIN psn_info p ON p.psn_no = v.psn_no
            LEFT JOIN medins_info i ON i.fixmedins_code = v.fixmedins_code
            WHERE NOT v.is_inpatient AND NOT coalesce(v.refunded, FALSE)
              AND v.opter_id IS NOT NULL AND v.opter_id <> '' AND {self._covered(context, "v")}
              AND v.psn_no IN (SELECT unnest($cards))
            ORDER BY v.fixmedins_code, v.opter_id, v.begntime
            """,
            {"cards": cards},
        )
        other["begntime"] = pd.to_datetime(other["begntime"])
        other["op"] = other["fixmedins_code"].astype(str) + "|" + other["opter_id"].astype(str)
        return other

    def _co_swipes(self, card_visits: pd.DataFrame, visits: pd.DataFrame) -> pd.DataFrame:
        """Smaller runs of the cluster's skimmed cards settled elsewhere (or by the same operator below the burst
        size): at least `min_shared_cards` of those cards by one operator, visits chained within `gap_minutes`."""
        k = int(self.min_shared_cards)
        cards = set(visits["psn_no"])
        if len(cards) < k or card_visits.empty:
            return visits.iloc[0:0]
        other = card_visits[card_visits["psn_no"].isin(cards) & ~card_visits["mdtrt_id"].isin(set(visits["mdtrt_id"]))]
        if other.empty:
            return visits.iloc[0:0]
        gap = other.groupby("op")["begntime"].diff() > pd.Timedelta(minutes=int(self.gap_minutes))
        run = (gap | (other["op"] != other["op"].shift())).cumsum()
        n_cards = other.groupby(run)["psn_no"].transform("nunique")
        other = other[(n_cards >= k).to_numpy()]
        if other.empty:
            return visits.iloc[0:0]
        other = other.assign(
            episode=-1, far_stranger=other["far"].astype(bool), off=self._is_off(other["begntime"].dt.hour),
        )
        return other[[c for c in visits.columns if c in other.columns]]

    def _lead(self, visits: pd.DataFrame, eps: pd.DataFrame, shared_links: int) -> Lead | None:
        if visits.empty:
            return None
        eps = eps[eps.index.isin(visits["episode"].unique())]
        ops = sorted(visits["op"].unique())
        best = eps["evidence_total"].max()
        strong_eps = int(self._strong(eps).sum())
        pharmacies = sorted({o.split("|", 1)[0] for o in ops})
        # Cards settled by more than one operator of the cluster (co-swiped).
        per_card = visits.groupby("psn_no")["op"].nunique()
        shared = int((per_card > 1).sum()) if len(ops) > 1 else 0
        bonus = min(2.0, 0.5 * max(0, strong_eps - 1)) + (2.0 if shared >= self.min_shared_cards else 0.0)
        total = float(best + bonus)
        score = 1.0 / (1.0 + math.exp(-(total - self.score_midpoint) / self.score_scale))
        cards = visits["psn_no"].nunique()
        n = len(visits)
        far_share = float(visits["far_stranger"].mean())
        off_share = float(visits["off"].mean())
        # ties (capped evidence) go to the earliest episode: not to episode numbers, which follow a hash
        top_eps = eps.sort_values(["evidence_total", "start"], ascending=[False, True], kind="stable")
        first = top_eps.iloc[0]
        burst_minutes = float(first["minutes"])
        burst_cards = int(first["cards"])
        same_basket = top_eps["same_basket_share"].dropna()
        basket_share = float(same_basket.iloc[0]) if len(same_basket) else float("nan")
        opters = sorted({o.split("|", 1)[1] for o in ops})
        start, end = visits["begntime"].min(), visits["begntime"].max()
        amount = float(visits["fund_pay_sumamt"].sum())
        place = ", ".join(pharmacies)
        basket_en = f"; {basket_share:.0%} identical baskets" if basket_share == basket_share else ""
        basket_zh = f"；{basket_share:.0%}为相同药品组合" if basket_share == basket_share else ""
        n_small = int((visits["episode"] < 0).sum())
        expected = float(first["expected_cards"])
        small_en = f" plus {n_small} visits in smaller runs" if n_small else ""
        small_zh = f"，另有{n_small}次小批量刷卡" if n_small else ""
        explanation_en = (
            f"Operator(s) {', '.join(opters)} at {place} settled {cards} distinct cards in {n} visits over "
            f"{len(eps)} burst(s){small_en} (largest: {burst_cards} cards in {burst_minutes:.0f} min, expected "
            f"{expected:.2g}); {far_share:.0%} by cardholders from other districts who come there on that day "
            f"only; {off_share:.0%} off hours{basket_en}"
            + (f"; {shared} cards co-swiped across {len(ops)} operators" if len(ops) > 1 else "")
            + "."
        )
        explanation_zh = (
            f"{place}的经办人{'、'.join(opters)}在{len(eps)}个时段内集中结算{cards}张不同社保卡共{n}次{small_zh}（最多"
            f"{burst_minutes:.0f}分钟内{burst_cards}张，常态期望{expected:.2g}张）；"
            f"{far_share:.0%}为外区且仅当天来此的参保人；{off_share:.0%}在非营业时段{basket_zh}"
            + (f"；{shared}张卡在{len(ops)}个经办点被交叉刷卡" if len(ops) > 1 else "")
            + "。"
        )
        features = {
            "cards": int(cards),
            "visits": int(n),
            "episodes": int(len(eps)),
            "co_swipe_visits": n_small,
            "operators": ops,
            "largest_burst_cards": burst_cards,
            "largest_burst_minutes": round(burst_minutes, 1),
            "expected_cards": round(float(first["expected_cards"]), 3),
            "far_stranger_share": round(far_share, 3),
            "offhours_share": round(off_share, 3),
            "same_basket_share": None if basket_share != basket_share else round(basket_share, 3),
            "top_basket": None if first["top_item"] is None else str(first["top_item"]).split("|"),
            "evidence_burst": round(float(first["ev_burst"]), 2),
            "evidence_far": round(float(first["ev_far"]), 2),
            "evidence_offhours": round(float(first["ev_off"]), 2),
            "evidence_basket": round(float(first["ev_basket"]), 2),
            "evidence_total": round(total, 2),
            "co_swiped_cards": int(shared),
            "card_links": int(shared_links),
        }
        return Lead(
            kind=self.kind,
            score=score,
            persons=visits["psn_no"].astype(str).tolist(),
            practitioners=[],
            institutions=pharmacies,
            evidence=visits["mdtrt_id"].astype(str).tolist(),
            amount_at_risk=amount,
            period_start=pd.Timestamp(start).to_pydatetime(),
            period_end=pd.Timestamp(end).to_pydatetime(),
            explanation_zh=explanation_zh,
            explanation_en=explanation_en,
            features=features,
        )
