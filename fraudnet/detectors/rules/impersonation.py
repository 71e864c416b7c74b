"""Impersonation / card misuse (冒名就医、盗刷): one person's card used at two places too far apart for the
time between them — faster than travel allows, or in different cities within the hour."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudnet.detectors.rules.common import (
    RuleDetector,
    baseline_rate,
    check_positive,
    score_entities,
    since_clause,
)

__all__ = ["ImpersonationDetector"]


class ImpersonationDetector(RuleDetector):
    """Consecutive outpatient/pharmacy visits of one person at two institutions whose straight-line distance
    (institution lnt/lat, haversine) divided by the time between them exceeds `max_speed_kmh`, or at
    institutions in different cities (first 4 digits of admdvs) within `city_window_minutes`. One lead per
    person with every impossible pair as evidence, scored against the chance rate per visit.

    Parameters
    ----------
    max_speed_kmh : float, default 100
        Travel speed above which two visits cannot be the same person.
    min_distance_km : float, default 3
        Shorter distances are never hits (neighbouring clinic and pharmacy, coordinate noise).
    city_window_minutes : float, default 60
        Visits in two different cities closer in time than this are hits.
    baseline_floor : float, default 0.001
        Lowest chance rate of impossible pairs per visit.
    """

    kind = "rule:impersonation"
    entity_type = "person"

    def __init__(self, max_speed_kmh: float = 100.0, min_distance_km: float = 3.0, city_window_minutes: float = 60.0,
                 baseline_floor: float = 0.001, min_volume: int = 3) -> None:
        self.max_speed_kmh = max_speed_kmh
        self.min_distance_km = min_distance_km
        self.city_window_minutes = city_window_minutes
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume

    def validate(self) -> None:
        for name in ("max_speed_kmh", "min_distance_km", "city_window_minutes", "baseline_floor", "min_volume"):
            check_positive(name, getattr(self, name), self.kind)

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        cond, params = since_clause(context, "begntime")
        pairs = context.sql(
            f"""
            WITH v AS (
                SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, m.lnt, m.lat, left(m.admdvs, 4) AS city,
                       coalesce(v.fund_pay_sumamt, 0) AS fund
                FROM visit_fact v LEFT JOIN medins_info m USING (fixmedins_code)
                WHERE NOT v.is_inpatient AND NOT coalesce(v.refunded, false)
            ), o AS (
                SELECT *, lag(mdtrt_id) OVER w AS prev_id, lag(fixmedins_code) OVER w AS prev_inst,
                       lag(begntime) OVER w AS prev_time, lag(lnt) OVER w AS prev_lnt, lag(lat) OVER w AS prev_lat,
                       lag(city) OVER w AS prev_city, lag(fund) OVER w AS prev_fund
                FROM v WINDOW w AS (PARTITION BY psn_no ORDER BY begntime, mdtrt_id)
            ), d AS (
                SELECT psn_no, prev_id, mdtrt_id, prev_inst, fixmedins_code, prev_time, begntime,
                       prev_fund + fund AS fund,
                       date_diff('second', prev_time, begntime) / 60.0 AS minutes,
                       CASE WHEN lnt IS NULL OR prev_lnt IS NULL THEN NULL ELSE
                         2 * 6371.0 * asin(sqrt(pow(sin(radians(lat - prev_lat) / 2), 2) + cos(radians(prev_lat))
                           * cos(radians(lat)) * pow(sin(radians(lnt - prev_lnt) / 2), 2))) END AS km,
                       city <> prev_city AS other_city
                FROM o WHERE prev_id IS NOT NULL AND prev_inst <> fixmedins_code AND {cond}
            )
            SELECT psn_no AS entity, prev_id, mdtrt_id, prev_inst, fixmedins_code, minutes, km,
                   km / greatest(minutes, 1) * 60 AS kmh, coalesce(other_city, false) AS other_city, fund
            FROM d
            WHERE (km >= ? AND km / greatest(minutes, 1) * 60 > ?)
               OR (coalesce(other_city, false) AND minutes < ?)
            """, [*params, float(self.min_distance_km), float(self.max_speed_kmh), float(self.city_window_minutes)])
        volume = context.sql(
            "SELECT psn_no AS entity, count(*) AS visits FROM visit_fact "
            "WHERE NOT is_inpatient AND NOT coalesce(refunded, false) GROUP BY 1")
        if pairs.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        agg = pairs.groupby("entity").agg(
            impossible_pairs=("mdtrt_id", "size"), institutions=("fixmedins_code", "nunique"),
            median_km=("km", "median"), median_minutes=("minutes", "median"), max_kmh=("kmh", "max"),
            hit_fund=("fund", "sum"),
        ).reset_index().merge(volume, on="entity", how="left")
        full = volume.merge(agg[["entity", "impossible_pairs"]], on="entity", how="left").fillna(
            {"impossible_pairs": 0})
        rate = baseline_rate(full["impossible_pairs"], full["visits"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        agg = score_entities(agg, hits="impossible_pairs", volume="visits", rate=rate, amount="hit_fund")
        agg["max_speed_kmh"] = float(self.max_speed_kmh)
        evidence = pd.concat([
            pairs[["entity", "prev_id"]].rename(columns={"prev_id": "mdtrt_id"}), pairs[["entity", "mdtrt_id"]],
        ])
        return agg, evidence

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        km = f["median_km"] if f["median_km"] == f["median_km"] else 0.0  # NaN when only city mismatches
        zh = (f"参保人{f['entity']}的医保凭证{f['impossible_pairs']}次在相距约{km:.1f}公里的两家机构先后使用，"
              f"间隔中位{f['median_minutes']:.0f}分钟（所需速度超过{f['max_speed_kmh']:.0f}公里/小时），"
              f"涉及{f['institutions']}家机构，为基线预期{f['expected']:.2f}次的{f['ratio']:.0f}倍，疑似冒名就医或盗刷；"
              f"涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"Person {f['entity']}: card used {f['impossible_pairs']} times at two institutions about {km:.1f} km "
              f"apart within a median {f['median_minutes']:.0f} minutes (faster than {f['max_speed_kmh']:.0f} km/h), "
              f"{f['institutions']} institutions involved, {f['ratio']:.0f}× the expected {f['expected']:.2f} — "
              f"possible impersonation or card misuse; fund payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en
