"""Impersonation / card misuse (冒名就医、盗刷): one person's card used at two places too far apart for the
time between them — faster than any travel allows, or in different cities within the hour."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudnet.detectors.rules.certain import (
    apply_certain_grades,
    independent_events,
    institution_time_resolution_sql,
    tier_sentence,
    time_slack_minutes,
    valid_coordinates_sql,
)
from fraudnet.detectors.rules.common import (
    RuleDetector,
    baseline_rate,
    check_positive,
    entity_leads,
    score_entities,
    since_clause,
)

__all__ = ["ImpersonationDetector"]


class ImpersonationDetector(RuleDetector):
    """Consecutive outpatient/pharmacy visits of one person at two institutions at least `min_distance_km`
    apart (institution lnt/lat, haversine) with less time between them than the fastest travel needs — by road
    at `max_speed_kmh`, by high-speed rail at `rail_speed_kmh` plus `rail_overhead_minutes` to and from the
    stations, by air at `air_speed_kmh` plus `air_overhead_minutes` — or, where an institution has no usable
    coordinates, in different cities (first 4 digits of admdvs) within `city_window_minutes`.

    Times are truncated to their resolution: a time at 00:00:00 is a date (a day of slack), an institution whose
    times all fall on the hour (minute) gives an hour (minute) of slack; the gap that decides is the recorded
    one plus both slacks, so date-only data never fires. Every such pair is a hit, scored per person against the
    chance rate per visit. A pair that stays impossible with `certain_tolerance_minutes` more between the visits
    (two institutions' clocks disagree; a registration may precede arrival) — or two cities without coordinates
    within the window — is an impossible event, certain evidence (`fraudnet.detectors.rules.certain`): at least
    orange for one, red for events on ≥2 days or fund ≥ the material amount. Short hops within a city (tens of
    km in minutes) stay statistical: one of them alone is yellow.

    Parameters
    ----------
    max_speed_kmh : float, default 100
        Road speed (straight-line, door to door) nobody exceeds between two visits.
    rail_speed_kmh, rail_overhead_minutes : float, default 350 and 60
        High-speed rail top speed and the least time to reach and leave the stations.
    air_speed_kmh, air_overhead_minutes : float, default 900 and 150
        Airliner cruise speed and the least time through two airports.
    min_distance_km : float, default 3
        Shorter distances are never hits (neighbouring clinic and pharmacy, coordinate noise).
    city_window_minutes : float, default 60
        Without coordinates: visits in two different cities closer in time than this are hits (and certain).
    certain_tolerance_minutes : float, default 15
        Time added to a pair's gap before it counts as certain: clocks of two institutions' systems and the
        moment of registration against arrival differ by minutes, which decide short hops, not long trips.
    baseline_floor : float, default 0.001
        Lowest chance rate of impossible pairs per visit.
    min_volume : int, default 3
        Visits a person needs to take part in estimating the chance rate.
    """

    kind = "rule:impersonation"
    entity_type = "person"
    requires = ("minute_times",)  # day-only times would read same-day visits as 0 minutes apart

    def __init__(self, max_speed_kmh: float = 100.0, min_distance_km: float = 3.0, city_window_minutes: float = 60.0,
                 baseline_floor: float = 0.001, min_volume: int = 3, rail_speed_kmh: float = 350.0,
                 rail_overhead_minutes: float = 60.0, air_speed_kmh: float = 900.0,
                 air_overhead_minutes: float = 150.0, certain_tolerance_minutes: float = 15.0) -> None:
        self.max_speed_kmh = max_speed_kmh
        self.min_distance_km = min_distance_km
        self.city_window_minutes = city_window_minutes
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume
        self.rail_speed_kmh = rail_speed_kmh
        self.rail_overhead_minutes = rail_overhead_minutes
        self.air_speed_kmh = air_speed_kmh
        self.air_overhead_minutes = air_overhead_minutes
        self.certain_tolerance_minutes = certain_tolerance_minutes

    def validate(self) -> None:
        for name in ("max_speed_kmh", "min_distance_km", "city_window_minutes", "baseline_floor", "min_volume",
                     "rail_speed_kmh", "air_speed_kmh"):
            check_positive(name, getattr(self, name), self.kind)
        for name in ("rail_overhead_minutes", "air_overhead_minutes", "certain_tolerance_minutes"):
            check_positive(name, getattr(self, name), self.kind, allow_zero=True)

    # Incremental detection (`fraudnet.detectors.incremental`): the candidate pairs — consecutive visits of one
    # person at two institutions that are impossible even with the least time slack any resolution could give —
    # by id, with a count `w`. A day's visits may fall between two earlier visits of the same person (the rest of
    # the last day screened), which replaces that pair: the day's part is the pairs of the affected persons with
    # the day's visits (+1) less their pairs without them (−1), so the stored sum is the full run's pair set
    # (w 1, replaced pairs w 0). The institutions' time resolution, which every new visit may change, and the
    # final test are applied on the pairs after, as the full run does.
    incremental_parts = {"pairs": ("entity", "prev_id", "mdtrt_id")}

    def _args(self) -> dict[str, Any]:
        return {
            "road": float(self.max_speed_kmh), "rail": float(self.rail_speed_kmh),
            "rail_over": float(self.rail_overhead_minutes), "air": float(self.air_speed_kmh),
            "air_over": float(self.air_overhead_minutes), "min_km": float(self.min_distance_km),
            "window": float(self.city_window_minutes), "tol": float(self.certain_tolerance_minutes),
        }

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """The candidate pairs (`entity`, `prev_id`, `mdtrt_id`, `w`) over every visit, or (`scope`, a table of
        mdtrt_id) the change the visits of `scope` make to them."""
        valid = valid_coordinates_sql("m.lnt", "m.lat")
        args = {k: v for k, v in self._args().items() if k != "tol"}
        persons = ""
        if scope:
            persons = (f" AND v.psn_no IN (SELECT psn_no FROM visit_fact WHERE mdtrt_id IN (SELECT mdtrt_id FROM "
                       f"{scope}) AND NOT is_inpatient AND NOT coalesce(refunded, false) AND begntime IS NOT NULL)")

        def candidates(visits: str) -> str:
            # slack at least 1,440 min for a date-only time and 0 otherwise, whatever the institution's resolution
            return f"""
                SELECT psn_no AS entity, prev_id, mdtrt_id FROM (
                    SELECT *, least(km / $road * 60, $rail_over + km / $rail * 60, $air_over + km / $air * 60)
                              AS min_travel_minutes
                    FROM (
                        SELECT psn_no, prev_id, mdtrt_id, prev_city, city,
                               date_diff('second', prev_time, begntime) / 60.0 + prev_slack + slack AS max_minutes,
                               CASE WHEN lnt IS NULL OR prev_lnt IS NULL THEN NULL ELSE
                                 2 * 6371.0 * asin(sqrt(pow(sin(radians(lat - prev_lat) / 2), 2)
                                   + cos(radians(prev_lat)) * cos(radians(lat))
                                   * pow(sin(radians(lnt - prev_lnt) / 2), 2))) END AS km
                        FROM (
                            SELECT *, lag(mdtrt_id) OVER w AS prev_id, lag(fixmedins_code) OVER w AS prev_inst,
                                   lag(begntime) OVER w AS prev_time, lag(lnt) OVER w AS prev_lnt,
                                   lag(lat) OVER w AS prev_lat, lag(city) OVER w AS prev_city,
                                   lag(slack) OVER w AS prev_slack
                            FROM {visits} WINDOW w AS (PARTITION BY psn_no ORDER BY begntime, mdtrt_id)
                        ) WHERE prev_id IS NOT NULL AND prev_inst <> fixmedins_code
                    )
                )
                WHERE (km >= $min_km AND max_minutes < min_travel_minutes)
                   OR (km IS NULL AND city <> prev_city AND max_minutes < $window)"""

        visits = f"""
            SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime,
                   CASE WHEN {valid} THEN m.lnt END AS lnt, CASE WHEN {valid} THEN m.lat END AS lat,
                   CASE WHEN length(m.admdvs) >= 4 THEN left(m.admdvs, 4) END AS city,
                   CASE WHEN v.begntime = date_trunc('day', v.begntime) THEN 1440.0 ELSE 0.0 END AS slack
            FROM visit_fact v LEFT JOIN medins_info m USING (fixmedins_code)
            WHERE NOT v.is_inpatient AND NOT coalesce(v.refunded, false) AND v.begntime IS NOT NULL{persons}"""
        if not scope:
            pairs = context.sql(f"WITH v AS ({visits}) SELECT *, 1 AS w FROM ({candidates('v')})", args)
            return {"pairs": pairs}
        pairs = context.sql(
            f"""
            WITH v AS ({visits}),
                 old AS (SELECT * FROM v WHERE mdtrt_id NOT IN (SELECT mdtrt_id FROM {scope})),
                 a AS ({candidates('v')}), b AS ({candidates('old')})
            SELECT coalesce(a.entity, b.entity) AS entity, coalesce(a.prev_id, b.prev_id) AS prev_id,
                   coalesce(a.mdtrt_id, b.mdtrt_id) AS mdtrt_id,
                   (a.mdtrt_id IS NOT NULL)::INT - (b.mdtrt_id IS NOT NULL)::INT AS w
            FROM a FULL OUTER JOIN b ON a.prev_id = b.prev_id AND a.mdtrt_id = b.mdtrt_id
            WHERE a.mdtrt_id IS NULL OR b.mdtrt_id IS NULL
            """, args)
        return {"pairs": pairs}

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.hits_from_partials(context, self.partials(context))

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Any]:
        entities, evidence = self.hits_from_partials(context, parts)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)

    def hits_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The impossible pairs among the candidates (with the institutions' time resolution now), scored."""
        cond, since = since_clause(context, "begntime")
        cond = cond.replace("?", "$since")
        valid = valid_coordinates_sql("m.lnt", "m.lat")
        args = {**self._args(), **({"since": since[0]} if since else {})}
        ids = parts["pairs"]
        ids = ids[ids["w"] > 0][["prev_id", "mdtrt_id"]].drop_duplicates().reset_index(drop=True)
        if ids.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        with context.frame_table("_fn_imp_pairs", ids) as table:
            pairs = context.sql(
                f"""
                WITH ids AS (SELECT prev_id AS mdtrt_id FROM {table} UNION SELECT mdtrt_id FROM {table}),
                res AS (SELECT * FROM ({institution_time_resolution_sql()}) WHERE fixmedins_code IN (
                    SELECT fixmedins_code FROM visit_fact WHERE mdtrt_id IN (SELECT mdtrt_id FROM ids))
                ), v AS (
                    SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime,
                           CASE WHEN {valid} THEN m.lnt END AS lnt, CASE WHEN {valid} THEN m.lat END AS lat,
                           CASE WHEN length(m.admdvs) >= 4 THEN left(m.admdvs, 4) END AS city,
                           coalesce(v.fund_pay_sumamt, 0) AS fund,
                           {time_slack_minutes("v.begntime", "res.resolution")} AS slack
                    FROM visit_fact v LEFT JOIN medins_info m USING (fixmedins_code)
                         LEFT JOIN res USING (fixmedins_code)
                    WHERE v.mdtrt_id IN (SELECT mdtrt_id FROM ids)
                ), o AS (
                    SELECT b.*, a.mdtrt_id AS prev_id, a.fixmedins_code AS prev_inst, a.begntime AS prev_time,
                           a.lnt AS prev_lnt, a.lat AS prev_lat, a.city AS prev_city, a.fund AS prev_fund,
                           a.slack AS prev_slack
                    FROM {table} p JOIN v b ON b.mdtrt_id = p.mdtrt_id JOIN v a ON a.mdtrt_id = p.prev_id
                ), d AS (
                    SELECT psn_no, prev_id, mdtrt_id, prev_inst, fixmedins_code, prev_time, begntime,
                           prev_fund + fund AS fund, least(prev_fund, fund) AS certain_fund, prev_city, city,
                           date_diff('second', prev_time, begntime) / 60.0 AS minutes,
                           date_diff('second', prev_time, begntime) / 60.0 + prev_slack + slack AS max_minutes,
                           CASE WHEN lnt IS NULL OR prev_lnt IS NULL THEN NULL ELSE
                             2 * 6371.0 * asin(sqrt(pow(sin(radians(lat - prev_lat) / 2), 2) + cos(radians(prev_lat))
                               * cos(radians(lat)) * pow(sin(radians(lnt - prev_lnt) / 2), 2))) END AS km
                    FROM o WHERE {cond}
                ), t AS (
                    SELECT *, least(km / $road * 60, $rail_over + km / $rail * 60, $air_over + km / $air * 60)
                              AS min_travel_minutes
                    FROM d
                )
                SELECT psn_no AS entity, prev_id, mdtrt_id, prev_inst, fixmedins_code, prev_time, begntime, minutes,
                       max_minutes, km, km / greatest(minutes, 1) * 60 AS kmh, min_travel_minutes,
                       km IS NULL AS by_city, prev_city, city, fund, certain_fund,
                       km IS NULL OR max_minutes + $tol < min_travel_minutes AS certain
                FROM t
                WHERE (km >= $min_km AND max_minutes < min_travel_minutes)
                   OR (km IS NULL AND city <> prev_city AND max_minutes < $window)
                ORDER BY entity, begntime, mdtrt_id
                """, args)
        volume = context.sql(
            "SELECT psn_no AS entity, count(*) AS visits FROM visit_fact "
            "WHERE NOT is_inpatient AND NOT coalesce(refunded, false) GROUP BY 1")
        if pairs.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        pairs["day"] = pd.to_datetime(pairs["begntime"]).dt.date
        pairs["certain"] = pairs["certain"].fillna(False).astype(bool)
        sure = pairs[pairs["certain"]]
        # The most telling pair of each person (certain first, then least time against the least travel time).
        pairs["tightness"] = pairs["max_minutes"] / pairs["min_travel_minutes"].fillna(self.city_window_minutes)
        pairs["tightness"] = pairs["tightness"] - pairs["certain"].astype(float) * 1e6
        top = pairs.sort_values(["entity", "tightness", "begntime"]).drop_duplicates("entity").set_index("entity")
        places = pd.concat([pairs[["entity", "prev_inst"]].rename(columns={"prev_inst": "fixmedins_code"}),
                            pairs[["entity", "fixmedins_code"]]])
        agg = pairs.groupby("entity").agg(
            impossible_pairs=("mdtrt_id", "size"),
            median_km=("km", "median"), median_minutes=("minutes", "median"), max_kmh=("kmh", "max"),
            hit_fund=("fund", "sum"),
        ).reset_index().merge(volume, on="entity", how="left")
        agg["certain_pairs"] = agg["entity"].map(sure.groupby("entity").size()).fillna(0).astype(int)
        agg["certain_fund"] = agg["entity"].map(sure.groupby("entity")["certain_fund"].sum()).fillna(0.0)
        agg["institutions"] = agg["entity"].map(places.groupby("entity")["fixmedins_code"].nunique())
        agg["certain_events"] = agg["entity"].map(independent_events(sure, ["entity"], ["day"])).fillna(0).astype(int)
        full = volume.merge(agg[["entity", "impossible_pairs"]], on="entity", how="left").fillna(
            {"impossible_pairs": 0})
        rate = baseline_rate(full["impossible_pairs"], full["visits"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        agg = score_entities(agg, hits="impossible_pairs", volume="visits", rate=rate, amount="hit_fund")
        agg = apply_certain_grades(agg)
        agg["certain_tolerance_minutes"] = float(self.certain_tolerance_minutes)
        for col, src in (("example_from", "prev_inst"), ("example_to", "fixmedins_code"),
                         ("example_from_time", "prev_time"), ("example_to_time", "begntime"),
                         ("example_km", "km"), ("example_minutes", "minutes"), ("example_slack", "max_minutes"),
                         ("example_min_travel_minutes", "min_travel_minutes"), ("example_by_city", "by_city"),
                         ("example_from_city", "prev_city"), ("example_to_city", "city")):
            agg[col] = agg["entity"].map(top[src])
        agg["example_slack"] = agg["example_slack"] - agg["example_minutes"]
        agg["example_from_time"] = agg["example_from_time"].astype(str)
        agg["example_to_time"] = agg["example_to_time"].astype(str)
        evidence = pd.concat([
            pairs[["entity", "prev_id"]].rename(columns={"prev_id": "mdtrt_id"}), pairs[["entity", "mdtrt_id"]],
        ])
        return agg, evidence

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        grade_zh, grade_en = tier_sentence(f)
        frm, to = f"{f['example_from']}（{f['example_from_time']}）", f"{f['example_to']}（{f['example_to_time']}）"
        frm_en = f"{f['example_from']} at {f['example_from_time']}"
        to_en = f"{f['example_to']} at {f['example_to_time']}"
        minutes = f["example_minutes"]
        slack = f" (+{f['example_slack']:.0f} min for time resolution)" if f["example_slack"] else ""
        slack_zh = f"（计入时间精度{f['example_slack']:.0f}分钟）" if f["example_slack"] else ""
        if f["example_by_city"]:
            why_zh = (f"如{frm}→{to}：分属不同城市（区划{f['example_from_city']}与{f['example_to_city']}，"
                      f"机构无坐标），间隔仅{minutes:.0f}分钟{slack_zh}")
            why_en = (f"e.g. {frm_en} → {to_en}: different cities ({f['example_from_city']} vs "
                      f"{f['example_to_city']}, no coordinates) only {minutes:.0f} minutes apart{slack}")
        else:
            why_zh = (f"如{frm}→{to}：相距{f['example_km']:.1f}公里，间隔{minutes:.0f}分钟{slack_zh}，"
                      f"而最快交通至少需{f['example_min_travel_minutes']:.0f}分钟")
            why_en = (f"e.g. {frm_en} → {to_en}: {f['example_km']:.1f} km apart, {minutes:.0f} minutes between"
                      f"{slack}, while the fastest travel needs {f['example_min_travel_minutes']:.0f} minutes")
        tol = f["certain_tolerance_minutes"]
        if f["certain_pairs"]:
            sure_zh = (f"其中{f['certain_pairs']}次即使再放宽{tol:.0f}分钟（机构时钟差、挂号先于到达）仍不可能"
                       f"（{f['certain_events']}天）。")
            sure_en = (f" {f['certain_pairs']} of them stay impossible with {tol:.0f} more minutes allowed (clocks of "
                       f"two institutions, registration before arrival), on {f['certain_events']} days.")
        else:
            sure_zh = f"放宽{tol:.0f}分钟（机构时钟差、挂号先于到达）后并非不可能，按统计评估。"
            sure_en = (f" With {tol:.0f} more minutes allowed (clocks of two institutions, registration before "
                       f"arrival) none is impossible for certain: graded statistically.")
        zh = (f"参保人{f['entity']}的医保凭证{f['impossible_pairs']}次在两地先后使用、时间不足以往返，"
              f"{why_zh}；涉及{f['institutions']}家机构，疑似冒名就医或盗刷。{sure_zh}{grade_zh}"
              f"涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"Person {f['entity']}: card used {f['impossible_pairs']} times at two places too far apart for the time "
              f"between them, {why_en}; {f['institutions']} institutions involved — impersonation or card misuse."
              f"{sure_en}{' ' + grade_en if grade_en else ''} Fund payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en
