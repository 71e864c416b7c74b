"""Bed-hanging (挂床住院): inpatient stays with many days on which no treatment was billed — the patient is
registered as admitted but effectively absent — counted per institution against the chance rate."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudnet.detectors.incremental import covered_rows
from fraudnet.detectors.rules.common import (
    RuleDetector,
    baseline_rate,
    check_positive,
    entity_leads,
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

    # Incremental detection (`fraudnet.detectors.incremental`): one row per stay with a dated fee line (its nights,
    # treated nights, hit), before the coverage filter, which is applied on the rows after (`covered_rows`), so
    # stored rows stay valid when a month's coverage changes. A stay's row depends on the stay and its own fee
    # lines only (fee lines arriving for an earlier stay make the run full); items are classified by the fee
    # line's own name.
    incremental_parts = {"stays": None}

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """One row per inpatient stay with a dated fee line, over every stay or (`scope`, a table of mdtrt_id) over
        those only; not yet limited to what the coverage supports."""
        cond, params = since_clause(context, "s.begntime")
        only = f" AND v.mdtrt_id IN (SELECT mdtrt_id FROM {scope})" if scope else ""
        stays = context.sql(
            f"""
            WITH s AS (  -- stays with at least one dated fee line
                SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, coalesce(v.endtime, v.begntime) AS endtime,
                       date_diff('day', v.begntime::DATE, coalesce(v.endtime, v.begntime)::DATE) AS nights,
                       coalesce(v.fund_pay_sumamt, 0) AS fund
                FROM visit_fact v
                WHERE v.is_inpatient AND NOT coalesce(v.refunded, false){only}
                  AND EXISTS (SELECT 1 FROM fee_list f WHERE f.mdtrt_id = v.mdtrt_id AND f.fee_ocur_time IS NOT NULL)
            ), l AS (
                SELECT f.mdtrt_id, f.fee_ocur_time, coalesce(f.hilist_name, '') AS name
                FROM fee_list f JOIN s USING (mdtrt_id)
                WHERE f.fee_ocur_time::DATE >= s.begntime::DATE AND f.fee_ocur_time::DATE < s.endtime::DATE
                  AND coalesce(f.det_item_fee_sumamt, 0) > 0
            ), daily AS (  -- item names of daily hotel-type charges, classified once
                SELECT name FROM (SELECT DISTINCT name FROM l) WHERE regexp_matches(name, ?)
            ), t AS (
                SELECT l.mdtrt_id, count(DISTINCT l.fee_ocur_time::DATE) AS treated_days
                FROM l ANTI JOIN daily d USING (name)
                GROUP BY 1
            )
            SELECT s.fixmedins_code AS entity, date_trunc('month', s.begntime)::DATE AS month, s.mdtrt_id, s.psn_no,
                   s.nights, coalesce(t.treated_days, 0) AS treated,
                   s.nights - coalesce(t.treated_days, 0) AS idle, s.fund,
                   (s.nights >= ? AND s.nights - coalesce(t.treated_days, 0) >= ?
                    AND (s.nights - coalesce(t.treated_days, 0)) >= ? * s.nights AND {cond}) AS hit
            FROM s LEFT JOIN t USING (mdtrt_id)
            """, [self.non_treatment_pattern, int(self.min_los_days), int(self.min_idle_days),
                  float(self.min_idle_share), *params])
        return {"stays": stays}

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.hits_from_partials(context, self.partials(context))

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Any]:
        entities, evidence = self.hits_from_partials(context, parts)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)

    def hits_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
        # one order whatever path built the parts, so sums agree; then the coverage (institution and month)
        stays = covered_rows(context, parts["stays"].sort_values(["entity", "mdtrt_id"], kind="stable"),
                             self.requires)
        if stays.empty or not stays["hit"].astype(bool).any():
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
