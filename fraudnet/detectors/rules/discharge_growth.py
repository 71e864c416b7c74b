"""Abnormal discharge growth (出院人次异常增长): institutions whose monthly discharges in the latest months jump
far above their own seasonally adjusted level, in yellow/orange/red tiers of growth."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import nbinom, poisson

from fraudnet.detectors.base import severity_for_score
from fraudnet.detectors.rules.common import (
    SINGLE_HIT_CAP,
    RuleDetector,
    check_positive,
    entity_leads,
    rate_ratio_lower,
)

__all__ = ["DischargeGrowthDetector", "excess_surprise", "growth_tier_score"]


def growth_tier_score(ratio: float, yellow: float = 1.3, orange: float = 1.5, red: float = 2.0) -> float:
    """Bureau-style tiers of growth over the expected level (30 % yellow, 50 % orange, 100 % red by default) as a
    0–1 score: 0.4 at `yellow`, 0.6 at `orange`, 0.8 at `red`, interpolated on the log of the ratio."""
    if ratio <= 1.0:
        return 0.0
    pts = [(1.0, 0.0), (yellow, 0.4), (orange, 0.6), (red, 0.8), (red * 2, 0.95)]
    x = math.log(ratio)
    for (r0, s0), (r1, s1) in zip(pts, pts[1:], strict=False):
        if ratio <= r1:
            return s0 + (s1 - s0) * (x - math.log(r0)) / (math.log(r1) - math.log(r0))
    return 0.95


def excess_surprise(observed: float, expected: float, variance: float) -> float:
    """−log10 P(count ≥ observed): the exact Poisson tail, or a negative binomial with that variance when it exceeds
    the mean. Exact, not a normal approximation: at a small clinic (6 discharges where 1 was expected) the normal
    tail said 10^-6 where the count's own tail is 10^-3."""
    if observed <= expected:
        return 0.0
    k = math.ceil(observed) - 1
    if variance <= expected * (1 + 1e-9):
        tail = float(poisson.logsf(k, expected))
    else:
        n = expected**2 / (variance - expected)
        tail = float(nbinom.logsf(k, n, expected / variance))
    return float(min(50.0, -tail / math.log(10)))


class DischargeGrowthDetector(RuleDetector):
    """Monthly inpatient discharges per institution compared with its robust level: the median of its earlier
    months' seasonally adjusted counts (city-wide monthly factor), with over-dispersion from their MAD. The
    contiguous run of the latest `recent_months` months above expectation with the strongest growth is flagged; the
    score is the lower of the growth tier (the size of the surge: however significant, +35 % stays yellow) and the
    statistical significance of the excess (so a small clinic going from 2 to 4 discharges stays low), and one
    flagged month alone stays yellow; `tier_driver` says which of them set the tier.

    Parameters
    ----------
    recent_months : int, default 4
        Latest complete months screened; every contiguous run of them is a candidate surge.
    min_history_months : int, default 4
        Earlier months needed to establish the institution's level.
    yellow, orange, red : float, default 1.3, 1.5, 2.0
        Growth ratios (observed / expected) of the three warning tiers.
    dispersion_weight : float, default 0.0
        Weight of the institution's own month-to-month spread (MAD) in the variance of the excess; 0 tests the
        excess against Poisson noise only (the growth tiers already demand +30/50/100 %), 1 treats a volatile
        history as fully explaining a jump.
    max_season_factor : float, default 1.2
        Bound of the city-wide seasonal factor (1/1.2 … 1.2): seasons move inpatient volume by about ±20 %.
    min_month_coverage : float, default 0.6
        A month with data on a smaller share of its days is left out (partial first/last month).
    """

    kind = "rule:discharge_growth"
    entity_type = "institution"
    requires: tuple[str, ...] = ()  # monthly counts of inpatient stays only (required mdtrt fields)

    def __init__(self, recent_months: int = 4, min_history_months: int = 4, yellow: float = 1.3,
                 orange: float = 1.5, red: float = 2.0, min_month_coverage: float = 0.6,
                 max_season_factor: float = 1.2, dispersion_weight: float = 0.0) -> None:
        self.recent_months = recent_months
        self.min_history_months = min_history_months
        self.yellow = yellow
        self.orange = orange
        self.red = red
        self.min_month_coverage = min_month_coverage
        self.max_season_factor = max_season_factor
        self.dispersion_weight = dispersion_weight

    def validate(self) -> None:
        for name in ("recent_months", "min_history_months", "yellow", "orange", "red", "min_month_coverage",
                     "max_season_factor"):
            check_positive(name, getattr(self, name), self.kind)
        check_positive("dispersion_weight", self.dispersion_weight, self.kind, allow_zero=True)
        if not 1.0 < self.yellow < self.orange < self.red:
            from fraudnet.errors import DetectorError

            raise DetectorError(f"{self.kind}: tiers must satisfy 1 < yellow < orange < red, got "
                                f"{self.yellow}, {self.orange}, {self.red}")

    # Incremental detection (`fraudnet.detectors.incremental`): the discharges per institution and month (counts,
    # summed by key). The period's span and the evidence visits of the flagged months are read after.
    incremental_parts = {"counts": ("entity", "month")}

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """Inpatient discharges per institution and month, over every visit or (`scope`, a table of mdtrt_id) over
        those visits only."""
        only = f" AND mdtrt_id IN (SELECT mdtrt_id FROM {scope})" if scope else ""
        counts = context.sql(
            f"""
            SELECT fixmedins_code AS entity, date_trunc('month', coalesce(endtime, begntime))::DATE AS month,
                   count(*) AS n
            FROM visit_fact WHERE is_inpatient AND NOT coalesce(refunded, false){only} GROUP BY 1, 2
            """)
        return {"counts": counts}

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.hits_from_partials(context, self.partials(context))

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Any]:
        entities, evidence = self.hits_from_partials(context, parts)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)

    def hits_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
        empty = pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        counts = parts["counts"].sort_values(["entity", "month"], kind="stable").reset_index(drop=True)
        counts = counts[counts["n"] > 0]
        span = context.sql("SELECT min(begntime)::DATE AS lo, max(coalesce(endtime, begntime))::DATE AS hi "
                           "FROM visit_fact")
        if counts.empty or span.empty or pd.isna(span["lo"].iloc[0]):
            return empty
        lo, hi = pd.Timestamp(span["lo"].iloc[0]), pd.Timestamp(span["hi"].iloc[0])
        months = pd.period_range(lo, hi, freq="M")
        coverage = {}
        for m in months:
            start, end = max(m.start_time.normalize(), lo), min(m.end_time.normalize(), hi)
            coverage[m.start_time.date()] = max(0, (end - start).days + 1) / m.days_in_month
        keep = [m for m, c in coverage.items() if c >= self.min_month_coverage]
        if len(keep) < self.min_history_months + 1:
            return empty
        counts["month"] = pd.to_datetime(counts["month"]).dt.date
        table = counts.pivot_table(index="entity", columns="month", values="n", aggfunc="sum", fill_value=0)
        table = table.reindex(columns=keep, fill_value=0).astype(float)
        table = table.div(pd.Series({m: coverage[m] for m in keep}), axis=1)  # partial months scaled up
        recent = keep[-self.recent_months:]
        history = keep[:-self.recent_months]
        if len(history) < self.min_history_months:
            return empty
        # City-wide seasonality, robust to a few surging institutions: the median over institutions of each
        # month's count relative to the institution's own median level.
        level0 = table[history].median(axis=1)
        steady = table[level0 >= 3]
        if len(steady) >= 3:
            factor = steady.div(level0[level0 >= 3], axis=0).median(axis=0)
            factor = factor / factor[history].median()
        else:
            factor = pd.Series(1.0, index=table.columns)
        # Seasonal swings of inpatient volume stay within about ±20 %; a larger city-wide move (many institutions
        # surging together) must not excuse each of them, so the factor is bounded.
        factor = factor.clip(lower=self.max_season_factor ** -1, upper=self.max_season_factor)
        adjusted = table[history].div(factor[history], axis=1)
        level = adjusted.median(axis=1)
        mad = (adjusted.sub(level, axis=0)).abs().median(axis=1) * 1.4826
        rows, evidence_months = [], {}
        for entity in table.index:
            base = float(level[entity])
            if base <= 0:
                continue
            candidates = []
            windows = [recent[i:j] for i in range(len(recent)) for j in range(i + 1, len(recent) + 1)]
            for window in windows:  # contiguous runs of the latest months
                k = len(window)
                exps = [base * float(factor[m]) for m in window]
                obss = [float(table.at[entity, m]) for m in window]
                if any(o < e for o, e in zip(obss, exps, strict=True)):
                    continue  # every month of the run must be above the expectation
                obs, exp = sum(obss), sum(exps)
                ratio = obs / exp
                if ratio < self.yellow:
                    continue
                # optional over-dispersion: the institution's own month-to-month spread (robust, MAD), weighted,
                # when it exceeds the Poisson variance of the expectation (the MAD already contains Poisson noise)
                spread = float(mad[entity]) * float(np.mean([factor[m] for m in window]))
                surprise = excess_surprise(obs, exp, max(exp, k * spread**2 * self.dispersion_weight))
                sig = 1.0 / (1.0 + math.exp(-(surprise - 3.5) / 1.2))
                # the bureau's growth tiers are the effect gate (a big hospital's significant +35 % stays yellow);
                # the 95 % lower bound of the growth is shown with them
                lower = rate_ratio_lower(obs, exp)
                tier = growth_tier_score(ratio, self.yellow, self.orange, self.red)
                score = min(tier, sig)
                driver = "surprise" if sig <= tier else "effect"
                if severity_for_score(score) != severity_for_score(sig) and tier < sig:
                    driver = "capped: effect too small"
                if k == 1 and score > SINGLE_HIT_CAP:  # one month's jump alone (an outbreak, a backlog) stays yellow
                    score, driver = SINGLE_HIT_CAP, "capped: one month"
                candidates.append((score, window, obs, exp, ratio, surprise, lower, driver))
            if not candidates:
                continue
            # the longest run scoring nearly as well as the best one: the whole surge is evidence
            top = max(c[0] for c in candidates)
            score, window, obs, exp, ratio, surprise, lower, driver = max(
                (c for c in candidates if c[0] >= top - 0.05), key=lambda c: (len(c[1]), c[0]))
            flagged = [(m, None, None) for m in window]
            rows.append({
                "entity": entity, "score": round(score, 4), "flagged_months": len(flagged),
                "months": ",".join(m.strftime("%Y-%m") for m, _, _ in flagged), "observed": round(obs, 1),
                "expected": round(exp, 1), "ratio": round(ratio, 3), "growth": round(ratio - 1, 3),
                "baseline_monthly": round(base, 2), "surprise": round(surprise, 2),
                "ratio_lower": round(lower, 3), "tier_driver": driver, "tier_basis": "ratio",
                "orange_ratio": self.orange, "red_ratio": self.red,
                "history_months": len(history),
            })
            evidence_months[entity] = [m for m, _, _ in flagged]
        if not rows:
            return empty
        agg = pd.DataFrame(rows)
        ev = counts.iloc[0:0]
        pairs = [(e, m) for e, ms in evidence_months.items() for m in ms]
        frame = pd.DataFrame(pairs, columns=["entity", "month"])
        with context.frame_table("_fn_growth_months", frame):
            ev = context.sql(
                """
                SELECT v.fixmedins_code AS entity, v.mdtrt_id FROM visit_fact v
                JOIN _fn_growth_months g ON g.entity = v.fixmedins_code
                  AND g.month = date_trunc('month', coalesce(v.endtime, v.begntime))::DATE
                WHERE v.is_inpatient AND NOT coalesce(v.refunded, false)
                """)
        agg["expected"] = agg["expected"].astype(float)
        agg["observed"] = agg["observed"].astype(float)
        agg["ratio"] = agg["ratio"].astype(float)
        agg = agg.replace({np.inf: 0.0})
        return agg, ev

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        zh = (f"{f['entity']} 在{f['months']}共出院{f['observed']:.0f}人次，按其此前{f['history_months']}个月的稳健水平"
              f"（月均{f['baseline_monthly']:.1f}人次，经全市季节调整）预期{f['expected']:.0f}人次，增长{f['growth']:.0%}"
              f"（{f['ratio']:.1f}倍），出院人次异常增长；涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: {f['observed']:.0f} discharges in {f['months']} against {f['expected']:.0f} expected "
              "from "
              f"its robust level over the previous {f['history_months']} months ({f['baseline_monthly']:.1f} a month, "
              f"seasonally adjusted city-wide), growth {f['growth']:.0%} ({f['ratio']:.1f}×); fund payments "
              f"{f['amount_at_risk']:,.2f} yuan.")
        return zh, en
