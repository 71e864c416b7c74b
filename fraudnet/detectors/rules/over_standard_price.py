"""Over-standard charges (超标准收费): fee lines priced above the catalogue's price ceiling (pric_uplmt_amt),
counted per institution against the chance rate; a price at the ceiling is allowed."""

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

__all__ = ["OverStandardPriceDetector"]


class OverStandardPriceDetector(RuleDetector):
    """Fee lines with `pric` above `pric_uplmt_amt` × (1 + `tolerance`) + 0.005 yuan (rounding). Hit visits
    are counted per institution against the chance expectation; the overcharge is reported.

    Needs fee lines with unit prices and billed items with a catalogue ceiling (`requires`): institutions
    without them are not screened and reported as such (see `fraudnet.detectors.coverage`).

    Parameters
    ----------
    tolerance : float, default 0.0
        Share above the ceiling still accepted.
    baseline_floor : float, default 0.0005
        Lowest chance rate of over-priced visits per visit with ceiling-priced items.
    """

    kind = "rule:over_standard_price"
    entity_type = "institution"
    requires = ("fee_lines", "fee_prices", "catalogue_price_caps")

    def __init__(self, tolerance: float = 0.0, baseline_floor: float = 0.0005, min_volume: int = 30) -> None:
        self.tolerance = tolerance
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume

    def validate(self) -> None:
        check_positive("tolerance", self.tolerance, self.kind, allow_zero=True)
        check_positive("baseline_floor", self.baseline_floor, self.kind)
        check_positive("min_volume", self.min_volume, self.kind)

    # Incremental detection (`fraudnet.detectors.incremental`): the hit visits (one row per visit) and the priced
    # visits per institution and month, both before the coverage filter (applied on them after).
    incremental_parts = {"lines": None, "volume": ("entity", "month")}

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """Hit visits and visits with ceiling-priced items per institution and month, over every visit or
        (`scope`, a table of mdtrt_id) over those only; not yet limited to what the coverage supports."""
        cond, params = since_clause(context, "v.begntime")
        if scope:
            cond += f" AND f.mdtrt_id IN (SELECT mdtrt_id FROM {scope})"
        base = f"""
            FROM fee_list f JOIN hilist h USING (hilist_code) JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
            WHERE h.pric_uplmt_amt > 0 AND f.pric IS NOT NULL AND NOT coalesce(v.refunded, false) AND {cond}
        """
        lines = context.sql(
            f"""
            WITH l AS (
                SELECT v.fixmedins_code AS entity, f.mdtrt_id, v.psn_no, coalesce(v.fund_pay_sumamt, 0) AS fund,
                       date_trunc('month', v.begntime)::DATE AS month,
                       f.pric, h.pric_uplmt_amt AS ceiling, coalesce(f.cnt, 1) AS cnt, h.hilist_name,
                       f.pric > h.pric_uplmt_amt * (1 + ?) + 0.005 AS over
                {base}
            )
            SELECT entity, mdtrt_id, psn_no, any_value(fund) AS fund, any_value(month) AS month, true AS hit,
                   count(*) FILTER (over) AS over_lines,
                   sum((pric - ceiling) * abs(cnt)) FILTER (over) AS overcharge,
                   max(pric / ceiling) FILTER (over) AS max_ratio,
                   arg_max(hilist_name, pric / ceiling) AS item
            FROM l GROUP BY 1, 2, 3 HAVING bool_or(over)
            """, [float(self.tolerance), *params])
        volume = context.sql(
            f"SELECT v.fixmedins_code AS entity, date_trunc('month', v.begntime)::DATE AS month, "
            f"count(DISTINCT f.mdtrt_id) AS priced_visits {base} GROUP BY 1, 2", params)
        return {"lines": lines, "volume": volume}

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.hits_from_partials(context, self.partials(context))

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Any]:
        entities, evidence = self.hits_from_partials(context, parts)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)

    def hits_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
        # one order whatever path built the parts, so sums and ties agree (top item on a tie: lowest mdtrt_id)
        lines = covered_rows(context, parts["lines"].sort_values(["entity", "mdtrt_id"], kind="stable"),
                             self.requires)
        monthly = covered_rows(context, parts["volume"], self.requires)
        if lines.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        volume = monthly.groupby("entity", as_index=False)["priced_visits"].sum().sort_values("entity")
        hit = lines[lines["hit"].astype(bool)]
        agg = hit.groupby("entity").agg(
            over_visits=("mdtrt_id", "size"), over_lines=("over_lines", "sum"), patients=("psn_no", "nunique"),
            overcharge=("overcharge", "sum"), max_ratio=("max_ratio", "max"), hit_fund=("fund", "sum"),
            top_item=("item", lambda s: s.value_counts().index[0]),
        ).reset_index().merge(volume, on="entity")
        full = volume.merge(agg[["entity", "over_visits"]], on="entity", how="left").fillna({"over_visits": 0})
        rate = baseline_rate(full["over_visits"], full["priced_visits"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        agg["share"] = agg["over_visits"] / agg["priced_visits"].clip(lower=1)
        agg = score_entities(agg, hits="over_visits", volume="priced_visits", rate=rate, amount="hit_fund")
        return agg, hit[["entity", "mdtrt_id"]]

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        zh = (f"{f['entity']} 有{f['over_lines']}条收费明细（{f['over_visits']}次就诊）单价超过医保最高限价，"
              f"最高为限价的{f['max_ratio']:.2f}倍，多收{f['overcharge']:,.2f}元（主要为{f['top_item']}），占其限价项目"
              f"就诊{f['priced_visits']}次的{f['share']:.1%}，为基线预期{f['expected']:.2f}次的{f['ratio']:.0f}倍，"
              f"疑似超标准收费；涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: {f['over_lines']} fee lines on {f['over_visits']} visits priced above the catalogue "
              f"ceiling, up to {f['max_ratio']:.2f}× it, {f['overcharge']:,.2f} yuan overcharged (mostly "
              f"{f['top_item']}), {f['share']:.1%} of its {f['priced_visits']} visits with ceiling-priced items, "
              f"{f['ratio']:.0f}× the expected {f['expected']:.2f}; fund payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en
