"""Bed-hanging (挂床住院): inpatient stays with many days on which no treatment was billed — the patient is
registered as admitted but effectively absent — counted per institution against the chance rate."""

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

__all__ = ["BedHangingDetector", "NON_TREATMENT_PATTERN"]

# Daily hotel-type charges billed whether or not the patient is there: they are not treatment.
NON_TREATMENT_PATTERN = "床位|护理费|膳食|伙食|取暖|空调|陪护|诊查费"


class BedHangingDetector(RuleDetector):
    """Inpatient stays whose nights without any treatment fee line (drugs, examinations, procedures,
    consumables — bed, nursing and meal charges do not count) reach `min_idle_days` and `min_idle_share` of
    the stay. Hit stays are counted per institution against the chance expectation.

    Needs per-day fee lines of inpatient stays and admission/discharge times (`requires`): a day without a fee
    line means "no treatment" only where the institution bills day by day. Institutions (or months of an
    institution) whose stays mostly lack per-day lines are not screened (abstained, see
    `fraudnet.detectors.coverage`), and a stay without any dated fee line is "no detail", never "no treatment":
    it is neither judged nor counted in the volume.

    Parameters
    ----------
    min_los_days : int, default 3
        Shortest stay (nights) screened.
    min_idle_days : int, default 3
        Nights without treatment that make a stay a hit.
    min_idle_share : float, default 0.5
        Share of the stay's nights without treatment that makes a stay a hit.
    baseline_floor : float, default 0.001
        Lowest chance rate of idle stays per inpatient stay.
    non_treatment_pattern : str
        Regular expression on hilist_name of daily charges that are not treatment.
    """

    kind = "rule:bed_hanging"
    entity_type = "institution"
    requires = ("admission_discharge_times", "daily_inpatient_fee_lines")

    def __init__(self, min_los_days: int = 3, min_idle_days: int = 3, min_idle_share: float = 0.5,
                 baseline_floor: float = 0.001, min_volume: int = 20,
                 non_treatment_pattern: str = NON_TREATMENT_PATTERN) -> None:
        self.min_los_days = min_los_days
        self.min_idle_days = min_idle_days
        self.min_idle_share = min_idle_share
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume
        self.non_treatment_pattern = non_treatment_pattern

    def validate(self) -> None:
        for name in ("min_los_days", "min_idle_days", "min_idle_share", "baseline_floor", "min_volume"):
            check_positive(name, getattr(self, name), self.kind)

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        cond, params = since_clause(context, "s.begntime")
        covered = " AND ".join(covered_clause(context, r, "v.fixmedins_code", "v.begntime") for r in self.requires)
        stays = context.sql(
            f"""
            WITH s AS (  -- stays at institutions billing day by day, with at least one dated fee line
                SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, coalesce(v.endtime, v.begntime) AS endtime,
                       date_diff('day', v.begntime::DATE, coalesce(v.endtime, v.begntime)::DATE) AS nights,
                       coalesce(v.fund_pay_sumamt, 0) AS fund
                FROM visit_fact v
                WHERE v.is_inpatient AND NOT coalesce(v.refunded, false) AND {covered}
                  AND EXISTS (SELECT 1 FROM fee_list f WHERE f.mdtrt_id = v.mdtrt_id AND f.fee_ocur_time IS NOT NULL)
            ), daily AS (  -- catalogue items that are daily hotel-type charges, classified once
                SELECT hilist_code FROM fee_list GROUP BY 1
                HAVING regexp_matches(coalesce(any_value(hilist_name), ''), ?)
            ), t AS (
                SELECT f.mdtrt_id, count(DISTINCT f.fee_ocur_time::DATE) AS treated_days
                FROM fee_list f JOIN s USING (mdtrt_id) ANTI JOIN daily d ON d.hilist_code = f.hilist_code
                WHERE f.fee_ocur_time::DATE >= s.begntime::DATE AND f.fee_ocur_time::DATE < s.endtime::DATE
                  AND coalesce(f.det_item_fee_sumamt, 0) > 0
                GROUP BY 1
            )
            SELECT s.fixmedins_code AS entity, s.mdtrt_id, s.psn_no, s.nights, coalesce(t.treated_days, 0) AS treated,
                   s.nights - coalesce(t.treated_days, 0) AS idle, s.fund,
                   (s.nights >= ? AND s.nights - coalesce(t.treated_days, 0) >= ?
                    AND (s.nights - coalesce(t.treated_days, 0)) >= ? * s.nights AND {cond}) AS hit
            FROM s LEFT JOIN t USING (mdtrt_id)
            """, [self.non_treatment_pattern, int(self.min_los_days), int(self.min_idle_days),
                  float(self.min_idle_share), *params])
        if stays.empty or not stays["hit"].any():
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        volume = stays.groupby("entity").agg(stays=("mdtrt_id", "size")).reset_index()
        hit = stays[stays["hit"].astype(bool)]
        agg = hit.groupby("entity").agg(
            idle_stays=("mdtrt_id", "size"), patients=("psn_no", "nunique"), idle_days=("idle", "sum"),
            hit_nights=("nights", "sum"), hit_fund=("fund", "sum"),
        ).reset_index().merge(volume, on="entity")
        full = volume.merge(agg[["entity", "idle_stays"]], on="entity", how="left").fillna({"idle_stays": 0})
        rate = baseline_rate(full["idle_stays"], full["stays"], floor=self.baseline_floor, min_volume=self.min_volume)
        agg["share"] = agg["idle_stays"] / agg["stays"].clip(lower=1)
        agg["idle_share"] = agg["idle_days"] / agg["hit_nights"].clip(lower=1)
        agg = score_entities(agg, hits="idle_stays", volume="stays", rate=rate, amount="hit_fund")
        return agg, hit[["entity", "mdtrt_id"]]

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        zh = (f"{f['entity']} 有{f['idle_stays']}次住院（{f['patients']}名患者）共{f['idle_days']}个住院日无任何诊疗"
              f"收费（占这些住院日的{f['idle_share']:.0%}），占该机构住院{f['stays']}次的{f['share']:.1%}，"
              f"为同类基线预期{f['expected']:.1f}次的{f['ratio']:.1f}倍，疑似挂床住院；涉及基金"
              f"{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: {f['idle_stays']} inpatient stays ({f['patients']} patients) with {f['idle_days']} "
              f"days without any treatment charge ({f['idle_share']:.0%} of those stays' days), {f['share']:.1%} of "
              f"its {f['stays']} stays, {f['ratio']:.1f}× the expected {f['expected']:.1f} — possible bed-hanging; "
              f"fund payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en
