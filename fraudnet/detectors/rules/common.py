"""Shared machinery of the rule screens: chance baselines, calibrated scores and one lead per offending entity."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, poisson

from fraudnet.detectors.base import ORANGE_AT, RED_AT, SEVERITY_ZH, Lead, severity_for_score

__all__ = [
    "poisson_surprise",
    "baseline_rate",
    "calibrated_score",
    "entity_leads",
    "since_clause",
    "score_entities",
    "SCORE_COLUMNS",
    "amount_bonus",
    "rate_ratio_lower",
    "effect_score",
    "tier_clause",
    "RuleDetector",
    "check_positive",
    "SINGLE_HIT_CAP",
    "TWO_HIT_CAP",
    "ORANGE_RATIO",
    "RED_RATIO",
    "RED_MIN_AMOUNT",
    "CONFIDENCE",
]

# An isolated single hit stays yellow, two hits at most orange: a red rule lead needs a pattern.
SINGLE_HIT_CAP = 0.45
TWO_HIT_CAP = 0.75
# Logistic of the surprise (−log10 of the chance probability): 10⁻³·⁵ → 0.5, ≈10⁻⁴ → 0.6, ≈10⁻⁵·² → 0.8.
SURPRISE_CENTER = 3.5
SURPRISE_SCALE = 1.2

# Materiality (effect size), the second half of every tier: surprise says an excess is real, the effect says it
# matters. The effect is the one-sided 95 % lower confidence bound of the rate ratio (observed / expected), so
# a big entity does not pass on volume alone and a small one does not pass on a lucky few hits.
# A rate ratio RR means a share 1 − 1/RR of the entity's hits lies beyond chance (the attributable fraction).
# Orange needs RR ≥ 2 at 95 % confidence: more than half of the evidence visits are excess — an inspector who
# opens one is more likely than not looking at a violation (the epidemiologists' "more likely than not" RR > 2).
# Red needs RR ≥ 3: at least two in three evidence visits are violations, worth going on site today.
CONFIDENCE = 0.95
ORANGE_RATIO = 2.0
RED_RATIO = 3.0
# Red also needs money worth a trip: the fund paid on the excess hits (amount × (1 − expected/hits)) must reach
# the cost of one on-site inspection (two inspectors for a day, ≈ 1,000 yuan). A policy figure, not a fit;
# below it the lead stays orange at most.
RED_MIN_AMOUNT = 1_000.0
_CAP_BELOW_RED = round(RED_AT - 0.01, 4)


def poisson_surprise(hits: float, expected: float) -> float:
    """−log10 P(X ≥ hits) for X ~ Poisson(expected): how unlikely so many hits are by chance (capped at 50)."""
    if hits <= 0:
        return 0.0
    expected = max(float(expected), 1e-9)
    logsf = poisson.logsf(hits - 1, expected)
    if not np.isfinite(logsf):
        return 50.0
    return float(min(50.0, max(0.0, -logsf / math.log(10))))


def baseline_rate(hits: pd.Series, volume: pd.Series, floor: float, min_volume: int = 20,
                  start_quantile: float = 0.0, max_surprise: float = 2.0, iterations: int = 50) -> float:
    """Chance hit rate per unit of volume for a legitimate entity, robust to many offenders.

    Starts from the pooled rate of the entities (with at least `min_volume` units) whose own rate is at or
    below the `start_quantile` of entity rates (default: the cleanest ones), then climbs: entities whose hits
    are not surprising at the current rate (surprise < `max_surprise`, i.e. p > 1 %) form the pool of the next
    estimate, until it settles. Offenders — even a majority of the entities, as in a small city with many
    planted schemes — do not raise their own baseline; background noise shared by ordinary entities does
    (the estimate climbs to it). Never below `floor`.
    """
    frame = pd.DataFrame({"h": hits.astype(float).to_numpy(), "v": volume.astype(float).to_numpy()})
    frame = frame[frame["v"] >= min_volume]
    if frame.empty or frame["v"].sum() <= 0:
        return floor
    rate = frame["h"] / frame["v"]
    start = frame[rate <= rate.quantile(start_quantile)]
    p = max(floor, float(start["h"].sum() / start["v"].sum()) if start["v"].sum() > 0 else floor)
    for _ in range(iterations):
        ok = np.array([poisson_surprise(h, v * p) < max_surprise for h, v in zip(frame["h"], frame["v"], strict=True)])
        if not ok.any():
            break
        new = max(floor, float(frame["h"][ok].sum() / frame["v"][ok].sum()))
        if abs(new - p) <= 1e-4 * max(p, 1e-9):
            p = new
            break
        p = new
    return float(p)


def calibrated_score(surprise: float, hits: int, bonus: float = 0.0) -> float:
    """Calibrated 0–1 score from the chance surprise (plus a small `bonus` in surprise units for amount or
    severity); capped so that one hit stays yellow and two hits at most orange."""
    z = (surprise + bonus - SURPRISE_CENTER) / SURPRISE_SCALE
    score = 1.0 / (1.0 + math.exp(-z))
    if hits <= 1:
        score = min(score, SINGLE_HIT_CAP)
    elif hits == 2:
        score = min(score, TWO_HIT_CAP)
    return round(score, 4)


def amount_bonus(amount: float) -> float:
    """Surprise bonus for the money involved: +0.5 per decade above 10,000 yuan, at most +1."""
    if amount <= 10_000:
        return 0.0
    return min(1.0, 0.5 * math.log10(amount / 10_000))


def rate_ratio_lower(hits: float, expected: float, confidence: float = CONFIDENCE) -> float:
    """One-sided lower confidence bound of the rate ratio hits/expected (exact Poisson bound of the hit count,
    χ² form): 235 hits against 117.7 expected (2.0×) give 1.78×; 8 against 1 give 3.9×. 0 without hits."""
    hits = float(hits) if np.isfinite(hits) else 0.0
    expected = float(expected) if np.isfinite(expected) else 0.0
    if hits <= 0:
        return 0.0
    lower = float(chi2.ppf(1.0 - confidence, 2.0 * hits)) / 2.0
    return lower / max(expected, 1e-9)


def effect_score(ratio_lower: float, orange_ratio: float = ORANGE_RATIO, red_ratio: float = RED_RATIO) -> float:
    """0–1 score of the effect size: a logistic in the log of the lower-bound rate ratio passing the orange cut
    (0.6) at `orange_ratio` and the red cut (0.8) at `red_ratio` (1× → 0.22, 6× → 0.96, 20× → 0.998)."""
    if ratio_lower is None or np.isnan(ratio_lower) or ratio_lower <= 0:
        return 0.0
    if np.isinf(ratio_lower):
        return 1.0
    lo, hi = math.log(ORANGE_AT / (1 - ORANGE_AT)), math.log(RED_AT / (1 - RED_AT))
    width = (math.log(red_ratio) - math.log(orange_ratio)) / (hi - lo)
    center = math.log(orange_ratio) - lo * width
    z = (math.log(ratio_lower) - center) / width
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def since_clause(context: Any, column: str = "v.begntime") -> tuple[str, list[Any]]:
    """SQL condition limiting evidence to the context's `since` (incremental runs), with its parameters."""
    since = getattr(context, "since", None)
    if since is None:
        return "TRUE", []
    return f"{column} >= ?", [since]


def entity_leads(
    context: Any,
    kind: str,
    entities: pd.DataFrame,
    evidence: pd.DataFrame,
    *,
    entity_type: str,
    explain: Callable[[dict[str, Any]], tuple[str, str]],
    min_score: float = 0.0,
) -> list[Lead]:
    """One lead per row of `entities` (columns `entity`, `score`, features…) with the evidence visits listed
    in `evidence` (columns `entity`, `mdtrt_id`). Persons, practitioners, institutions, amount at risk (fund
    payments on non-refunded evidence visits) and period come from `visit_fact`."""
    if entities.empty:
        return []
    entities = entities[entities["score"] >= min_score]
    if entities.empty:
        return []
    ev = evidence[evidence["entity"].isin(entities["entity"])][["entity", "mdtrt_id"]].drop_duplicates()
    with context.frame_table("_fn_rule_ev", ev):
        members = context.rows(
            """
            SELECT e.entity,
                   list(DISTINCT e.mdtrt_id) AS evidence,
                   list(DISTINCT v.psn_no) FILTER (v.psn_no IS NOT NULL) AS persons,
                   list(DISTINCT v.atddr_no) FILTER (v.atddr_no IS NOT NULL AND v.atddr_no <> '') AS practitioners,
                   list(DISTINCT v.fixmedins_code) FILTER (v.fixmedins_code IS NOT NULL) AS institutions,
                   coalesce(sum(v.fund_pay_sumamt) FILTER (NOT coalesce(v.refunded, false)), 0) AS amount,
                   min(v.begntime) AS period_start,
                   max(coalesce(v.endtime, v.begntime)) AS period_end
            FROM _fn_rule_ev e JOIN visit_fact v ON v.mdtrt_id = e.mdtrt_id
            GROUP BY e.entity
            """
        )
    by_entity = {m[0]: m for m in members}
    leads: list[Lead] = []
    for row in entities.to_dict("records"):
        m = by_entity.get(row["entity"])
        if m is None:
            continue
        _, ev_ids, persons, pracs, insts, amount, start, end = m
        features = {k: _plain(v) for k, v in row.items() if k != "score"}
        features["amount_at_risk"] = round(float(amount or 0.0), 2)
        features["evidence_visits"] = len(ev_ids)
        zh, en = explain(features)
        tier_zh, tier_en = tier_clause(features, float(row["score"]))
        zh, en = zh + tier_zh, en + tier_en
        persons = list(persons or [])
        insts = list(insts or [])
        if entity_type == "person":
            persons = [row["entity"]]
        elif entity_type == "institution" and row["entity"] not in insts:
            insts.append(row["entity"])
        leads.append(Lead(
            kind=kind, score=float(row["score"]), persons=persons, practitioners=list(pracs or []),
            institutions=insts, evidence=list(ev_ids), amount_at_risk=float(amount or 0.0),
            period_start=start, period_end=end, explanation_zh=zh, explanation_en=en, features=features,
        ))
    return leads


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


SCORE_COLUMNS = ("baseline_rate", "expected", "ratio", "ratio_lower", "surprise", "chance_score", "effect_score",
                 "excess_amount", "score", "tier_driver")


def score_entities(entities: pd.DataFrame, *, hits: str, volume: str, rate: float,
                   amount: str | None = None, expected: str | None = None, orange_ratio: float = ORANGE_RATIO,
                   red_ratio: float = RED_RATIO, red_min_amount: float = RED_MIN_AMOUNT) -> pd.DataFrame:
    """Score per-entity hit counts on chance AND effect; adds the columns of `SCORE_COLUMNS`.

    The chance expectation is the entity's volume × the baseline `rate` (see `baseline_rate`), or the column
    `expected` when the caller stratifies it (e.g. per kind of care). `chance_score` is the calibrated surprise
    (with the one-/two-hit caps); `effect_score` maps the 95 % lower bound of the rate ratio (`ratio_lower`) so
    that orange needs ≥ `orange_ratio` and red ≥ `red_ratio`; red also needs the fund paid on the excess hits
    (`excess_amount` = amount × (1 − expected/hits), only when `amount` is given) to reach `red_min_amount`.
    `score` is the lowest of the three, so a tier means the same on a 20k and a 2M city: volume raises the
    surprise, never the effect.
    `tier_driver` names what set the tier: `surprise`, `hits` (too few hits), `effect`, or
    `capped: effect too small` / `capped: amount too small` when materiality lowered the tier chance gave.
    Zero or missing volume counts as the hits themselves; negative, missing or infinite hits and amounts
    count as 0.
    """
    out = entities.copy().reset_index(drop=True)
    if out.empty:
        for col in SCORE_COLUMNS:
            out[col] = pd.Series(dtype=object if col == "tier_driver" else float)
        return out
    n_hits = pd.to_numeric(out[hits], errors="coerce").replace([np.inf, -np.inf], np.nan).fillna(0).clip(lower=0)
    out[hits] = n_hits.astype(int) if (n_hits == n_hits.round()).all() else n_hits
    vol = pd.to_numeric(out[volume], errors="coerce").fillna(0)
    vol = vol.where(vol > 0, n_hits)  # no volume recorded: at least the hits themselves
    out["baseline_rate"] = rate
    if expected is not None:
        exp = pd.to_numeric(out[expected], errors="coerce").fillna(0).clip(lower=0)
        out["expected"] = exp.where(exp > 0, vol * rate)
    else:
        out["expected"] = vol.astype(float) * rate
    exp = out["expected"].astype(float).clip(lower=1e-9)
    out["ratio"] = n_hits.astype(float) / exp
    out["ratio_lower"] = [rate_ratio_lower(h, e) for h, e in zip(n_hits, exp, strict=True)]
    out["surprise"] = [poisson_surprise(h, e) for h, e in zip(n_hits, exp, strict=True)]
    if amount:
        money = pd.to_numeric(out[amount], errors="coerce").replace([np.inf, -np.inf], np.nan).fillna(0).clip(lower=0)
        out[amount] = money
        bonus = [amount_bonus(float(a)) for a in money]
        excess = money * (1.0 - exp / n_hits.clip(lower=1e-9)).clip(lower=0)
        out["excess_amount"] = excess.where(n_hits > 0, 0.0).round(2)
    else:  # no money known: no amount gate and no excess_amount column (features stay JSON without NaN)
        bonus = [0.0] * len(out)
    out["chance_score"] = [calibrated_score(s, int(h), b) for s, h, b in zip(out["surprise"], n_hits, bonus,
                                                                           strict=True)]
    out["effect_score"] = [round(effect_score(r, orange_ratio, red_ratio), 4) for r in out["ratio_lower"]]
    scores, drivers = [], []
    rank = {"yellow": 0, "orange": 1, "red": 2}
    excess_amounts = out["excess_amount"] if amount else [math.inf] * len(out)
    for chance, effect, h, s, b, x in zip(out["chance_score"], out["effect_score"], n_hits, out["surprise"], bonus,
                                          excess_amounts, strict=True):
        money_cap = _CAP_BELOW_RED if amount and x < red_min_amount else 1.0
        score = round(min(chance, effect, money_cap), 4)
        if rank[severity_for_score(score)] < rank[severity_for_score(chance)]:
            driver = "capped: effect too small" if effect <= money_cap else "capped: amount too small"
        elif effect < chance:
            driver = "effect"
        else:
            uncapped = calibrated_score(s, 3, b)
            driver = "hits" if h <= 2 and chance < uncapped else "surprise"
        scores.append(score)
        drivers.append(driver)
    out["score"] = scores
    out["tier_driver"] = drivers
    return out


def tier_clause(f: dict[str, Any], score: float, red_min_amount: float = RED_MIN_AMOUNT,
                orange_ratio: float = ORANGE_RATIO, red_ratio: float = RED_RATIO) -> tuple[str, str]:
    """(zh, en) sentence saying what set a lead's tier: the ratio with its lower bound, the chance and the
    driver (`tier_driver` of `score_entities`); empty when the features do not carry them. A rule tiered on the
    point ratio with its own cuts says so in its features (`tier_basis` "ratio", `orange_ratio`, `red_ratio`)."""
    driver = f.get("tier_driver")
    if not driver or f.get("ratio_lower") is None or f.get("ratio") is None:
        return "", ""
    sev = severity_for_score(score)
    ratio, lower = float(f["ratio"]), float(f["ratio_lower"])
    surprise = float(f.get("surprise") or 0.0)

    def fmt(r: float) -> str:
        return f"{r:,.0f}" if r >= 10 else f"{r:.1f}"

    chance_en = f"chance ≈ 10^-{surprise:.0f}" if surprise >= 1 else f"chance {10 ** -surprise:.2f}"
    chance_zh = f"偶然概率约10^-{surprise:.0f}" if surprise >= 1 else f"偶然概率{10 ** -surprise:.2f}"
    head_en = (f" Tier {sev}: observed {fmt(ratio)}× the expected (95% lower bound {fmt(lower)}×), {chance_en}")
    head_zh = f"分级{SEVERITY_ZH[sev]}：观察值为预期的{fmt(ratio)}倍（95%置信下限{fmt(lower)}倍），{chance_zh}"
    missed = "orange" if sev == "yellow" else "red"
    missed_zh = "橙色" if sev == "yellow" else "红色"
    if driver == "capped: effect too small":
        orange_ratio = float(f.get("orange_ratio") or orange_ratio)
        red_ratio = float(f.get("red_ratio") or red_ratio)
        basis_en, basis_zh = ("the ratio", "比值") if f.get("tier_basis") == "ratio" else ("a lower bound", "下限")
        en = (f"; effect too small for {missed} (orange needs {basis_en} ≥ {orange_ratio:g}×, red ≥ "
              f"{red_ratio:g}×), capped at {sev}.")
        zh = (f"；效应不足，未达{missed_zh}（橙色需{basis_zh}≥{orange_ratio:g}倍，红色需≥{red_ratio:g}倍），"
              f"限为{SEVERITY_ZH[sev]}。")
    elif driver == "capped: amount too small":
        excess = float(f.get("excess_amount") or 0.0)
        en = f"; excess fund {excess:,.2f} yuan is below the {red_min_amount:,.0f} yuan red needs, capped at {sev}."
        zh = f"；超出部分基金{excess:,.2f}元，不足红色所需{red_min_amount:,.0f}元，限为{SEVERITY_ZH[sev]}。"
    elif driver == "capped: one month":
        en = "; one month's jump alone stays yellow."
        zh = "；仅一个月的增长，限为黄色。"
    elif driver == "hits":
        en = "; too few hits for a higher tier (one hit stays yellow, two at most orange)."
        zh = "；命中次数少（单次仅黄色，两次至多橙色）。"
    elif sev == "red":
        en = "; chance and effect both pass red's bar."
        zh = "；偶然概率与效应均达到红色标准。"
    elif driver == "effect":
        en = f"; effect too small for {missed}."
        zh = f"；效应不足，未达{missed_zh}。"
    else:
        en = f"; chance evidence too weak for {missed}."
        zh = f"；偶然概率不够低，未达{missed_zh}。"
    return head_zh + zh, head_en + en


class RuleDetector:
    """Base of the rule screens: subclasses find hits (`hits(context)` → per-entity frame with a `score`, and
    the evidence frame) and word the explanation; `run` turns them into one lead per offending entity."""

    kind: str = ""
    entity_type: str = "institution"

    min_score: float = 0.0

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def validate(self) -> None:
        """Check the parameters (raise `DetectorError` naming the bad one)."""

    def run(self, context: Any) -> list[Lead]:
        self.validate()
        entities, evidence = self.hits(context)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)


def check_positive(name: str, value: Any, kind: str, allow_zero: bool = False) -> None:
    """Raise `DetectorError` unless `value` is a positive number."""
    from fraudnet.errors import DetectorError

    ok = isinstance(value, int | float) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        sign = "non-negative" if allow_zero else "positive"
        raise DetectorError(f"{kind}: parameter {name}={value!r} must be a {sign} number")
