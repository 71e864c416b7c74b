"""Shared machinery of the rule screens: chance baselines, calibrated scores and one lead per offending entity."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import poisson

from fraudnet.detectors.base import Lead

__all__ = [
    "poisson_surprise",
    "baseline_rate",
    "calibrated_score",
    "entity_leads",
    "since_clause",
    "score_entities",
    "amount_bonus",
    "RuleDetector",
    "check_positive",
    "SINGLE_HIT_CAP",
    "TWO_HIT_CAP",
]

# An isolated single hit stays yellow, two hits at most orange: a red rule lead needs a pattern.
SINGLE_HIT_CAP = 0.45
TWO_HIT_CAP = 0.75
# Logistic of the surprise (−log10 of the chance probability): 10⁻³·⁵ → 0.5, ≈10⁻⁴ → 0.6, ≈10⁻⁵·² → 0.8.
SURPRISE_CENTER = 3.5
SURPRISE_SCALE = 1.2


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
    con = context.con
    con.register("_fn_rule_ev", ev)
    try:
        members = con.execute(
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
        ).fetchall()
    finally:
        con.unregister("_fn_rule_ev")
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


def score_entities(entities: pd.DataFrame, *, hits: str, volume: str, rate: float,
                   amount: str | None = None) -> pd.DataFrame:
    """Add `baseline_rate`, `expected`, `ratio`, `surprise` and calibrated `score` columns to per-entity hit
    counts: the chance expectation is the entity's volume times the baseline `rate` (see `baseline_rate`)."""
    out = entities.copy().reset_index(drop=True)
    if out.empty:
        for col in ("baseline_rate", "expected", "ratio", "surprise", "score"):
            out[col] = pd.Series(dtype=float)
        return out
    out["baseline_rate"] = rate
    out["expected"] = out[volume].astype(float) * rate
    out["ratio"] = out[hits].astype(float) / out["expected"].clip(lower=1e-9)
    out["surprise"] = [poisson_surprise(h, e) for h, e in zip(out[hits], out["expected"], strict=True)]
    bonus = [amount_bonus(float(a)) for a in out[amount]] if amount else [0.0] * len(out)
    out["score"] = [calibrated_score(s, int(h), b) for s, h, b in zip(out["surprise"], out[hits], bonus, strict=True)]
    return out


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
