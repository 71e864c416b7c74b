"""Grading of certain evidence (确定性证据): an impossible event is orange at least, repeated or material ones red."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fraudnet.detectors.base import ORANGE_AT, RED_AT

__all__ = [
    "MATERIAL_FUND_YUAN",
    "CertainGrade",
    "certain_grade",
    "combined_score",
    "apply_certain_grades",
    "tier_sentence",
    "independent_events",
    "institution_time_resolution_sql",
    "time_slack_minutes",
    "valid_coordinates_sql",
]

# Fund payments on impossible visits at which one event alone is red. The courts' threshold for fraud of a
# "relatively large amount" (诈骗罪 数额较大, 两高 2011 interpretation: 3,000–10,000 yuan, set per province; the
# NPC 2014 interpretation of art. 266 applies it to medical-insurance fraud) — from there a case is referred to
# the police (移送), i.e. someone goes on site today. 5,000 yuan is a round figure inside that range.
MATERIAL_FUND_YUAN = 5_000.0

# Scores of the tiers: one event sits inside orange (rising with its amount towards the red line, never
# crossing it), repeated or material events inside red (rising with the count and the amount).
_ORANGE_BASE = ORANGE_AT + 0.02
_ORANGE_SPAN = RED_AT - ORANGE_AT - 0.05
_RED_BASE = RED_AT + 0.02
_RED_CAP = 0.97


@dataclass(frozen=True)
class CertainGrade:
    """The floor a lead's certain events give its score, and what drove the tier.

    `driver` is `single` (one independent event: orange), `repeated` (≥2 independent events: red), `material`
    (one event with fund ≥ `MATERIAL_FUND_YUAN`: red), `repeated_material` (both) or `not_significant`
    (repeated or material, but no more events than the entity's volume gives by chance: held at orange).
    """

    score: float
    driver: str
    events: int
    fund: float
    material_fund: float = MATERIAL_FUND_YUAN

    def sentence(self) -> tuple[str, str]:
        """One sentence (zh, en) saying why the lead has its tier, with the figures."""
        n, fund, m = self.events, self.fund, self.material_fund
        if self.driver == "single":
            return (f"一次不可能事件即为确定性证据，定为橙色（不足2起独立事件，基金{fund:,.2f}元未达{m:,.0f}元）。",
                    f"One impossible event is certain evidence: orange (fewer than 2 independent events, fund "
                    f"{fund:,.2f} yuan below {m:,.0f}).")
        if self.driver == "not_significant":
            return (f"{n}起独立的不可能事件不超过该机构业务量下录入差错的偶然预期，维持橙色。",
                    f"{n} independent impossible events are no more than the institution's volume gives by data-entry "
                    f"slips: held at orange.")
        parts_zh, parts_en = [], []
        if self.driver in ("repeated", "repeated_material"):
            parts_zh.append(f"{n}起独立的不可能事件（不同人员或不同日期）")
            parts_en.append(f"{n} independent impossible events (different persons or days)")
        if self.driver in ("material", "repeated_material"):
            parts_zh.append(f"涉及基金{fund:,.2f}元达到重大金额{m:,.0f}元")
            parts_en.append(f"fund {fund:,.2f} yuan at or above the material {m:,.0f} yuan")
        return "，".join(parts_zh) + "，定为红色。", "; ".join(parts_en) + ": red."


def certain_grade(events: int, fund: float, *, significant: bool = True,
                  material_fund: float = MATERIAL_FUND_YUAN) -> CertainGrade:
    """Score floor for `events` independent impossible events with `fund` yuan of fund payments on them.

    One event → orange; ≥2 events or `fund` ≥ `material_fund` → red, unless `significant` is False (an
    institution's count no larger than its volume gives by chance: a big institution is never red for being big).
    """
    events = max(0, int(events))
    fund = max(0.0, float(fund or 0.0))
    if events == 0:
        return CertainGrade(0.0, "none", 0, fund, material_fund)
    repeated = events >= 2
    material = fund >= material_fund
    if (repeated or material) and significant:
        driver = "repeated_material" if repeated and material else ("repeated" if repeated else "material")
        score = _RED_BASE + 0.03 * math.log2(events) + 0.03 * math.log10(max(1.0, fund / material_fund))
        return CertainGrade(round(min(_RED_CAP, score), 4), driver, events, fund, material_fund)
    driver = "not_significant" if (repeated or material) else "single"
    score = _ORANGE_BASE + _ORANGE_SPAN * min(1.0, fund / material_fund)
    return CertainGrade(round(min(RED_AT - 0.01, score), 4), driver, events, fund, material_fund)


def combined_score(statistical: float, grade: CertainGrade, *, red_needs_certain: bool = True) -> tuple[float, str]:
    """Final score of a lead with a statistical score and a certain-event floor, and what set its tier.

    The higher of the two counts; with `red_needs_certain` a statistical score alone stops below red when the
    certain events are neither repeated nor material (several hits on one day by one person are one event).
    The driver is the grade's (`single`, `repeated`, …) or `statistical` when the statistical score decided.
    """
    stat = float(statistical)
    if red_needs_certain and grade.events > 0 and grade.score < RED_AT:
        stat = min(stat, RED_AT - 0.01)
    if grade.events > 0 and grade.score >= stat:
        return grade.score, grade.driver
    return round(stat, 4), "statistical"


def apply_certain_grades(agg: pd.DataFrame, *, events: str = "certain_events", fund: str = "certain_fund",
                         significant: str | None = None, red_needs_certain: bool = True,
                         material_fund: float = MATERIAL_FUND_YUAN) -> pd.DataFrame:
    """Raise the statistical `score` of per-entity rows to the floor their certain events give (see
    `certain_grade`, `combined_score`). Keeps the statistical score as `statistical_score` (and a statistical
    `tier_driver` as `statistical_tier`) and names what set the tier in `certain_tier` (None without certain
    events), which `tier_sentence` words; rows with certain events lose `tier_driver`, so that the explanation
    carries one tier statement, not two."""
    out = agg.copy()
    sig = out[significant] if significant else [True] * len(out)
    grades = [certain_grade(n, f, significant=bool(g), material_fund=material_fund)
              for n, f, g in zip(out[events], out[fund], sig, strict=True)]
    final = [combined_score(s, g, red_needs_certain=red_needs_certain)
             for s, g in zip(out["score"], grades, strict=True)]
    has_events = [int(n) > 0 for n in out[events]]
    out["statistical_score"] = out["score"]
    out["score"] = [s for s, _ in final]
    out["certain_tier"] = pd.Series([d if e else None for (_, d), e in zip(final, has_events, strict=True)],
                                    index=out.index, dtype=object)
    if "tier_driver" in out.columns:  # the statistical wording stays only where no certain event set the tier
        out["statistical_tier"] = out["tier_driver"]
        out["tier_driver"] = pd.Series(["" if e and c != "statistical" else d for d, e, c in
                                        zip(out["tier_driver"], has_events, out["certain_tier"], strict=True)],
                                       index=out.index, dtype=object)
    out["material_fund"] = float(material_fund)
    return out


def tier_sentence(f: dict[str, Any]) -> tuple[str, str]:
    """The sentence (zh, en) naming what set a lead's tier, from its features `certain_tier`, `certain_events`,
    `certain_fund`, `material_fund` and, when the statistical score decided, `expected` and `ratio`."""
    tier = f.get("certain_tier")
    if not isinstance(tier, str) or not tier:
        return "", ""
    if tier == "statistical":
        if f.get("tier_driver"):  # the statistical tier clause of the rule screens words it
            return "", ""
        exp, ratio = float(f.get("expected", 0.0)), float(f.get("ratio", 0.0))
        return (f"命中次数为按偶然基线预期{exp:.2f}次的{ratio:.0f}倍，据此定级。",
                f"Graded on the hit count, {ratio:.0f}× the {exp:.2f} expected by chance.")
    grade = CertainGrade(0.0, tier, int(f.get("certain_events", 0)),
                         float(f.get("certain_fund", 0.0)), float(f.get("material_fund", MATERIAL_FUND_YUAN)))
    return grade.sentence()


def independent_events(events: pd.DataFrame, by: list[str], keys: list[str]) -> pd.Series:
    """Independent events per group `by`: distinct combinations of `keys` (e.g. person and day), so that a burst
    of hits by one person on one day counts once."""
    if events.empty:
        return pd.Series(dtype="int64")
    return events.drop_duplicates(subset=[*by, *keys]).groupby(by).size()


def institution_time_resolution_sql(min_timed: int = 20, aligned_share: float = 0.9) -> str:
    """SQL query: `fixmedins_code, resolution` (minutes) of each institution's visit times — 60 when at least
    `aligned_share` of its timed visits (not at 00:00:00) fall on the hour, 1 on the minute, 0 otherwise — or
    NULL with fewer than `min_timed` timed visits. Times kept to the second fall on the hour once in 3,600 and
    on the minute once in 60, so 90 % of 20 is never chance."""
    timed = "begntime <> date_trunc('day', begntime)"
    share = float(aligned_share)
    return f"""
        SELECT fixmedins_code,
               CASE WHEN count(*) FILTER ({timed}) < {int(min_timed)} THEN NULL
                    WHEN avg((begntime = date_trunc('hour', begntime))::INT) FILTER ({timed}) >= {share} THEN 60.0
                    WHEN avg((begntime = date_trunc('minute', begntime))::INT) FILTER ({timed}) >= {share} THEN 1.0
                    ELSE 0.0 END AS resolution
        FROM visit_fact GROUP BY fixmedins_code"""


def time_slack_minutes(column: str, resolution: str) -> str:
    """SQL expression: minutes the true time may lie after the recorded one (times are truncated).

    A time at exactly 00:00:00 is a date without a time (a day's slack); otherwise the institution's
    `resolution` (see `institution_time_resolution_sql`) applies, and where that is unknown the time's own
    alignment (on the hour → 60, on the minute → 1).
    """
    return (f"(CASE WHEN {column} = date_trunc('day', {column}) THEN 1440.0 "
            f"WHEN {resolution} IS NOT NULL THEN {resolution} "
            f"WHEN {column} = date_trunc('hour', {column}) THEN 60.0 "
            f"WHEN {column} = date_trunc('minute', {column}) THEN 1.0 ELSE 0.0 END)")


def valid_coordinates_sql(lnt: str, lat: str) -> str:
    """SQL condition: the longitude/latitude pair is usable (present, on the globe, not the 0/0 placeholder)."""
    return (f"({lnt} IS NOT NULL AND {lat} IS NOT NULL AND isfinite({lnt}) AND isfinite({lat}) "
            f"AND {lnt} BETWEEN -180 AND 180 AND {lat} BETWEEN -90 AND 90 AND NOT ({lnt} = 0 AND {lat} = 0))")
