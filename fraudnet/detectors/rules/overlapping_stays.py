"""Simultaneous inpatient stays (同时住院): one person admitted to two institutions at once for a day or more."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudnet.detectors.rules.certain import (
    apply_certain_grades,
    independent_events,
    institution_time_resolution_sql,
    tier_sentence,
    time_slack_minutes,
)
from fraudnet.detectors.rules.common import RuleDetector, check_positive, entity_leads, since_clause

__all__ = ["OverlappingStaysDetector"]


class OverlappingStaysDetector(RuleDetector):
    """Pairs of non-refunded inpatient stays (`visit_fact.is_inpatient`) of one person at two DIFFERENT
    institutions where the later admission lies inside the earlier stay and the two overlap by at least
    `min_overlap_hours` for certain: the overlap is measured from the later admission plus its time slack
    (a date-only admission may have been late that day) to the earlier of the two discharges. A same-day
    transfer never overlaps a full day; overlaps within one institution are data errors, not fraud, and stays
    without a discharge time are left out. Each pair is impossible (certain evidence,
    `fraudnet.detectors.rules.certain`): one lead per person, orange for one, red for overlaps starting on ≥2
    days or fund ≥ the material amount (the smaller stay of each pair counts: one of the two is false).

    Parameters
    ----------
    min_overlap_hours : float, default 24
        Overlap the two stays must have for certain.
    """

    kind = "rule:overlapping_stays"
    entity_type = "person"
    requires = ("admission_discharge_times",)  # an overlap needs both stays' admission and discharge times

    def __init__(self, min_overlap_hours: float = 24.0) -> None:
        self.min_overlap_hours = min_overlap_hours

    def validate(self) -> None:
        check_positive("min_overlap_hours", self.min_overlap_hours, self.kind)

    # Incremental detection (`fraudnet.detectors.incremental`): the candidate pairs by id — two stays overlapping
    # by `min_overlap_hours` with the least slack the later admission could get (a day for a date-only time, else
    # none). A pair depends on its two stays only, so the day's part is the pairs with a stay of the day on either
    # side (a new stay may begin before an earlier one of the same day and end after). The institutions' time
    # resolution, which new visits may change, and the final overlap are applied on the pairs after.
    incremental_parts = {"pairs": None}

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """The candidate pairs (`entity`, `first_id`, `second_id`) over every stay or (`scope`, a table of mdtrt_id)
        those with a stay of `scope`."""
        touches = (f" AND (a.mdtrt_id IN (SELECT mdtrt_id FROM {scope}) OR b.mdtrt_id IN (SELECT mdtrt_id FROM "
                   f"{scope}))") if scope else ""
        persons = (f" AND v.psn_no IN (SELECT psn_no FROM visit_fact WHERE mdtrt_id IN (SELECT mdtrt_id FROM "
                   f"{scope}))") if scope else ""
        pairs = context.sql(
            f"""
            WITH s AS (
                SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, v.endtime,
                       CASE WHEN v.begntime = date_trunc('day', v.begntime) THEN 1440.0 ELSE 0.0 END AS slack
                FROM visit_fact v
                WHERE v.is_inpatient AND NOT coalesce(v.refunded, false)
                  AND v.begntime IS NOT NULL AND v.endtime IS NOT NULL AND v.endtime > v.begntime{persons}
            )
            SELECT a.psn_no AS entity, a.mdtrt_id AS first_id, b.mdtrt_id AS second_id
            FROM s a JOIN s b ON a.psn_no = b.psn_no AND a.fixmedins_code <> b.fixmedins_code
             AND (a.begntime < b.begntime OR (a.begntime = b.begntime AND a.mdtrt_id < b.mdtrt_id))
             AND b.begntime < a.endtime
            WHERE (date_diff('second', b.begntime, least(a.endtime, b.endtime)) / 60.0 - b.slack) / 60.0 >= ?{touches}
            """, [float(self.min_overlap_hours)])
        return {"pairs": pairs}

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.hits_from_partials(context, self.partials(context))

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Any]:
        entities, evidence = self.hits_from_partials(context, parts)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)

    def hits_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The candidate pairs that overlap for certain with the institutions' time resolution now, graded."""
        ids = parts["pairs"][["first_id", "second_id"]].drop_duplicates().reset_index(drop=True)
        if ids.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        cond, params = since_clause(context, "b.begntime")
        with context.frame_table("_fn_overlap_pairs", ids) as table:
            pairs = context.sql(
                f"""
                WITH ids AS (SELECT first_id AS mdtrt_id FROM {table} UNION SELECT second_id FROM {table}),
                res AS (SELECT * FROM ({institution_time_resolution_sql()}) WHERE fixmedins_code IN (
                    SELECT fixmedins_code FROM visit_fact WHERE mdtrt_id IN (SELECT mdtrt_id FROM ids))
                ), s AS (
                    SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, v.endtime,
                           coalesce(v.fund_pay_sumamt, 0) AS fund,
                           {time_slack_minutes("v.begntime", "res.resolution")} AS slack
                    FROM visit_fact v LEFT JOIN res USING (fixmedins_code)
                    WHERE v.mdtrt_id IN (SELECT mdtrt_id FROM ids)
                ), p AS (
                    SELECT a.psn_no AS entity, a.mdtrt_id AS first_id, b.mdtrt_id AS second_id,
                           a.fixmedins_code AS first_inst, b.fixmedins_code AS second_inst,
                           a.begntime AS first_begin, a.endtime AS first_end, b.begntime AS second_begin,
                           b.endtime AS second_end, b.begntime::DATE AS day,
                           (date_diff('second', b.begntime, least(a.endtime, b.endtime)) / 60.0 - b.slack) / 60.0
                               AS overlap_hours,
                           a.fund + b.fund AS fund, least(a.fund, b.fund) AS certain_fund
                    FROM {table} x JOIN s a ON a.mdtrt_id = x.first_id JOIN s b ON b.mdtrt_id = x.second_id
                    WHERE {cond}
                )
                SELECT * FROM p WHERE overlap_hours >= ? ORDER BY entity, second_begin, first_id
                """, [*params, float(self.min_overlap_hours)])
        if pairs.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        top = pairs.sort_values(["entity", "overlap_hours"], ascending=[True, False]).drop_duplicates("entity")
        top = top.set_index("entity")
        stays = pd.concat([pairs[["entity", "first_id", "first_inst"]].set_axis(["entity", "mdtrt_id", "inst"], axis=1),
                           pairs[["entity", "second_id", "second_inst"]].set_axis(["entity", "mdtrt_id", "inst"],
                                                                                   axis=1)])
        agg = pairs.groupby("entity").agg(
            overlapping_pairs=("second_id", "size"), max_overlap_days=("overlap_hours", "max"),
            certain_fund=("certain_fund", "sum"), hit_fund=("fund", "sum"),
        ).reset_index()
        agg["max_overlap_days"] = agg["max_overlap_days"] / 24.0
        agg["stays"] = agg["entity"].map(stays.groupby("entity")["mdtrt_id"].nunique())
        agg["institutions"] = agg["entity"].map(stays.groupby("entity")["inst"].nunique())
        agg["certain_events"] = agg["entity"].map(independent_events(pairs, ["entity"], ["day"])).astype(int)
        for col in ("first_inst", "first_begin", "first_end", "second_inst", "second_begin", "second_end"):
            agg[f"example_{col}"] = agg["entity"].map(top[col]).astype(str)
        agg["score"] = 0.0
        agg = apply_certain_grades(agg)
        evidence = stays[["entity", "mdtrt_id"]]
        return agg, evidence

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        tz, te = tier_sentence(f)
        zh = (f"参保人{f['entity']}在{f['example_first_inst']}住院（{f['example_first_begin']}至"
              f"{f['example_first_end']}）期间，又于{f['example_second_begin']}在{f['example_second_inst']}入院"
              f"（至{f['example_second_end']}），两段住院确定重叠至少{f['max_overlap_days']:.1f}天；同一人不可能同时"
              f"在两家机构住院，疑似冒名住院或虚构住院。共{f['overlapping_pairs']}对重叠住院、涉及{f['institutions']}家"
              f"机构、{f['certain_events']}个不同入院日。{tz}涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"Person {f['entity']} was an inpatient at {f['example_first_inst']} ({f['example_first_begin']} to "
              f"{f['example_first_end']}) and admitted to {f['example_second_inst']} on {f['example_second_begin']} "
              f"(to {f['example_second_end']}): the stays overlap by at least {f['max_overlap_days']:.1f} days for "
              f"certain — nobody is in two hospitals at once (impersonation or a fictitious stay). "
              f"{f['overlapping_pairs']} overlapping pairs, {f['institutions']} institutions, admissions on "
              f"{f['certain_events']} different days. {te} Fund payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en
