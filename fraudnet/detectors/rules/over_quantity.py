"""Over-quantity dispensing (超量开药/超量取药): drug lines whose days of supply exceed the catalogue's
maximum per fill, counted per dispensing institution or pharmacy against the chance rate."""

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

__all__ = ["OverQuantityDetector"]


class OverQuantityDetector(RuleDetector):
    """Fee lines of catalogue items with `max_days_per_fill` whose `prd_days` (days of supply; `cnt` when
    prd_days is missing) exceeds that maximum by more than `tolerance` (a share). Chronic patients' monthly
    30-day refills of a 30-day item are within the limit. Hit visits are counted per institution.

    Needs fee lines with days of supply (`requires`): only institutions where at least half of such drug lines
    carry prd_days are screened (see `fraudnet.detectors.coverage`); there a line missing it falls back to cnt,
    the rule base's reading of a fill. Where prd_days is mostly absent, cnt counts packs or tablets, not days,
    and would read ordinary fills as over-quantity: those institutions are left out.

    Parameters
    ----------
    tolerance : float, default 0.0
        Share over the maximum that is still accepted (0.1 = 10 % over).
    baseline_floor : float, default 0.0005
        Lowest chance rate of over-quantity visits per dispensing visit.
    """

    kind = "rule:over_quantity"
    entity_type = "institution"
    requires = ("fee_lines", "days_of_supply")

    def __init__(self, tolerance: float = 0.0, baseline_floor: float = 0.0005, min_volume: int = 30) -> None:
        self.tolerance = tolerance
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume

    def validate(self) -> None:
        check_positive("tolerance", self.tolerance, self.kind, allow_zero=True)
        check_positive("baseline_floor", self.baseline_floor, self.kind)
        check_positive("min_volume", self.min_volume, self.kind)

    # Incremental detection (`fraudnet.detectors.incremental`): the hit visits (one row per visit) and the
    # dispensing visits per institution and month, both before the coverage filter (applied on them after).
    incremental_parts = {"lines": None, "volume": ("entity", "month")}

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """Hit visits and dispensing visits per institution and month, over every visit or (`scope`, a table of
        mdtrt_id) over those only; not yet limited to what the coverage supports."""
        cond, params = since_clause(context, "v.begntime")
        if scope:
            cond += f" AND f.mdtrt_id IN (SELECT mdtrt_id FROM {scope})"
        lines = context.sql(
            f"""
            WITH l AS (
                SELECT v.fixmedins_code AS entity, f.mdtrt_id, v.psn_no, coalesce(v.fund_pay_sumamt, 0) AS fund,
                       date_trunc('month', v.begntime)::DATE AS month,
                       coalesce(f.prd_days, f.cnt) AS days, h.max_days_per_fill AS max_days, h.hilist_name
                FROM fee_list f JOIN hilist h USING (hilist_code) JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
                WHERE h.max_days_per_fill > 0 AND coalesce(f.prd_days, f.cnt) IS NOT NULL
                  AND NOT coalesce(v.refunded, false) AND {cond}
            )
            SELECT entity, mdtrt_id, any_value(psn_no) AS psn_no, any_value(fund) AS fund, any_value(month) AS month,
                   true AS hit, max(days / max_days) AS max_ratio,
                   sum(days - max_days) FILTER (days > max_days * (1 + ?)) AS excess_days,
                   arg_max(hilist_name, days / max_days) AS item
            FROM l GROUP BY entity, mdtrt_id
            HAVING bool_or(days > max_days * (1 + ?))
            """, params + [float(self.tolerance)] * 2)
        volume = context.sql(
            f"""
            SELECT v.fixmedins_code AS entity, date_trunc('month', v.begntime)::DATE AS month,
                   count(DISTINCT f.mdtrt_id) AS dispensing_visits
            FROM fee_list f JOIN hilist h USING (hilist_code) JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
            WHERE h.max_days_per_fill > 0 AND coalesce(f.prd_days, f.cnt) IS NOT NULL
              AND NOT coalesce(v.refunded, false) AND {cond}
            GROUP BY 1, 2
            """, params)
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
        if lines.empty or not lines["hit"].any():
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        volume = monthly.groupby("entity", as_index=False)["dispensing_visits"].sum().sort_values("entity")
        hit = lines[lines["hit"].astype(bool)]
        agg = hit.groupby("entity").agg(
            over_visits=("mdtrt_id", "size"), patients=("psn_no", "nunique"), max_ratio=("max_ratio", "max"),
            excess_days=("excess_days", "sum"), hit_fund=("fund", "sum"),
            top_item=("item", lambda s: s.value_counts().index[0]),
        ).reset_index().merge(volume, on="entity")
        full = volume.merge(agg[["entity", "over_visits"]], on="entity", how="left").fillna({"over_visits": 0})
        rate = baseline_rate(full["over_visits"], full["dispensing_visits"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        agg["share"] = agg["over_visits"] / agg["dispensing_visits"].clip(lower=1)
        agg = score_entities(agg, hits="over_visits", volume="dispensing_visits", rate=rate, amount="hit_fund")
        return agg, hit[["entity", "mdtrt_id"]]

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        zh = (f"{f['entity']} 有{f['over_visits']}次配药（{f['patients']}名患者）超过目录单次最大取药天数，"
              f"最高达限量的{f['max_ratio']:.1f}倍，累计超量{f['excess_days']:.0f}天（主要为{f['top_item']}），"
              f"占其配药就诊{f['dispensing_visits']}次的{f['share']:.1%}，为基线预期{f['expected']:.2f}次的"
              f"{f['ratio']:.0f}倍，疑似超量开药；涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: {f['over_visits']} dispensing visits ({f['patients']} patients) beyond the catalogue's "
              f"maximum days per fill, up to {f['max_ratio']:.1f}× the limit, {f['excess_days']:.0f} excess days in "
              f"all (mostly {f['top_item']}), {f['share']:.1%} of its {f['dispensing_visits']} dispensing visits, "
              f"{f['ratio']:.0f}× the expected {f['expected']:.2f}; fund payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en
