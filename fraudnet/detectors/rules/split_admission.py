"""Split admissions (分解住院): patients discharged and readmitted to the same institution within days for the
same diagnosis, counted per institution against the chance readmission rate."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudnet.detectors.coverage import covered_clause
from fraudnet.detectors.rules.common import (
    RuleDetector,
    baseline_rate,
    check_positive,
    score_entities,
    since_clause,
)

__all__ = ["SplitAdmissionDetector"]


class SplitAdmissionDetector(RuleDetector):
    """Readmission within `max_gap_days` of a discharge at the same institution with the same 3-character ICD-10
    diagnosis. Hits are the readmissions per institution, scored against the chance expectation (the
    institution's inpatient stays × the city's robust baseline readmission rate per stay).

    Needs admission and discharge times and diagnosis codes of inpatient stays (`requires`): institutions (or
    months of an institution) whose stays mostly lack them are not screened (see `fraudnet.detectors.coverage`),
    and a stay without a diagnosis code never matches another one (two blank codes are not "the same diagnosis").

    Parameters
    ----------
    max_gap_days : int, default 15
        Days between discharge and readmission (national rule base: 15 days, 同一疾病 15 日内再次入院).
    icd_chars : int, default 3
        Leading characters of dise_codg that define "the same diagnosis" (ICD-10 category).
    baseline_floor : float, default 0.003
        Lowest chance readmission rate per inpatient used for the expectation.
    min_volume : int, default 20
        Inpatients an institution needs to take part in estimating the city baseline.
    group_min : int, default 3
        Readmissions of this many patients at one institution within a day of each other are a group admission
        (left to the collusion-ring detector) and not counted here.
    """

    kind = "rule:split_admission"
    entity_type = "institution"
    requires = ("admission_discharge_times", "diagnoses")

    def __init__(self, max_gap_days: int = 15, icd_chars: int = 3, baseline_floor: float = 0.003,
                 min_volume: int = 20, group_min: int = 3) -> None:
        self.max_gap_days = max_gap_days
        self.icd_chars = icd_chars
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume
        self.group_min = group_min

    def validate(self) -> None:
        for name in ("max_gap_days", "icd_chars", "baseline_floor", "min_volume", "group_min"):
            check_positive(name, getattr(self, name), self.kind)

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        cond, params = since_clause(context, "begntime")
        covered = " AND ".join(covered_clause(context, r, "v.fixmedins_code", "v.begntime") for r in self.requires)
        pairs = context.sql(
            f"""
            WITH s AS (
                SELECT mdtrt_id, psn_no, fixmedins_code, begntime, coalesce(endtime, begntime) AS endtime,
                       upper(nullif(left(trim(dise_codg), {int(self.icd_chars)}), '')) AS icd,
                       coalesce(fund_pay_sumamt, 0) AS fund
                FROM visit_fact v WHERE is_inpatient AND NOT coalesce(refunded, false) AND {covered}
            ), o AS (
                SELECT *, lag(mdtrt_id) OVER w AS prev_id, lag(endtime) OVER w AS prev_end, lag(icd) OVER w AS prev_icd,
                       lag(fund) OVER w AS prev_fund
                FROM s WINDOW w AS (PARTITION BY psn_no, fixmedins_code ORDER BY begntime, mdtrt_id)
            ), h AS (
                SELECT fixmedins_code AS entity, psn_no, prev_id, mdtrt_id, icd, begntime::DATE AS day,
                       date_diff('day', prev_end::DATE, begntime::DATE) AS gap_days, prev_fund + fund AS fund
                FROM o
                WHERE prev_id IS NOT NULL AND icd IS NOT NULL AND icd = prev_icd AND begntime >= prev_end
                  AND date_diff('day', prev_end::DATE, begntime::DATE) <= ? AND {cond}
            )
            SELECT * EXCLUDE (day) FROM h
            -- several patients readmitted together on one day are a group admission (同进同出), the collusion-ring
            -- detector's finding, not one patient's stay split in two
            QUALIFY count(*) OVER (PARTITION BY entity ORDER BY day
                                   RANGE BETWEEN INTERVAL 1 DAY PRECEDING AND INTERVAL 1 DAY FOLLOWING) < ?
            """, [int(self.max_gap_days), *params, int(self.group_min)])
        volume = context.sql(
            "SELECT fixmedins_code AS entity, count(DISTINCT psn_no) AS inpatients, count(*) AS stays "
            f"FROM visit_fact v WHERE is_inpatient AND NOT coalesce(refunded, false) AND {covered} GROUP BY 1")
        if pairs.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        agg = pairs.groupby("entity").agg(
            patients=("psn_no", "nunique"), readmissions=("mdtrt_id", "nunique"),
            median_gap_days=("gap_days", "median"),
            hit_fund=("fund", "sum"),
            top_diagnosis=("icd", lambda s: s.value_counts().index[0]),
        ).reset_index()
        agg = agg.merge(volume, on="entity", how="left")
        full = volume.merge(agg[["entity", "readmissions"]], on="entity", how="left").fillna({"readmissions": 0})
        rate = baseline_rate(full["readmissions"], full["stays"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        agg["share"] = agg["patients"] / agg["inpatients"].clip(lower=1)
        # A patient readmitted again and again counts each time: repeated splitting is the pattern, while
        # ordinary readmissions are one per patient.
        agg = score_entities(agg, hits="readmissions", volume="stays", rate=rate, amount="hit_fund")
        agg["max_gap_days"] = int(self.max_gap_days)
        evidence = pd.concat([
            pairs[["entity", "prev_id"]].rename(columns={"prev_id": "mdtrt_id"}), pairs[["entity", "mdtrt_id"]],
        ])
        return agg, evidence

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        zh = (f"{f['entity']} 有{f['patients']}名患者出院后{f['max_gap_days']}天内以相同诊断再次入院"
              f"（共{f['readmissions']}次，主要诊断{f['top_diagnosis']}，中位间隔{f['median_gap_days']:.0f}天），"
              f"占该机构住院患者{f['inpatients']}人的{f['share']:.1%}；再入院次数为按全市基线预期{f['expected']:.1f}次的"
              f"{f['ratio']:.1f}倍；涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: {f['patients']} patients readmitted within {f['max_gap_days']} days of discharge "
              f"with the same diagnosis ({f['readmissions']} readmissions, mostly {f['top_diagnosis']}, median gap "
              f"{f['median_gap_days']:.0f} days), {f['share']:.1%} of its {f['inpatients']} inpatients; readmissions "
              f"{f['ratio']:.1f}× the {f['expected']:.1f} expected at the city's baseline rate; fund payments "
              f"{f['amount_at_risk']:,.2f} yuan.")
        return zh, en
