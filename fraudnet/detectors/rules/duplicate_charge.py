"""Duplicate charges (重复收费): the same item billed twice or more on one visit at the same time with the same
quantity and price, counted per institution against the chance rate."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudnet.detectors.rules.common import (
    RuleDetector,
    baseline_rate,
    check_positive,
    entity_leads,
    score_entities,
    since_clause,
)

__all__ = ["DuplicateChargeDetector"]


class DuplicateChargeDetector(RuleDetector):
    """Groups of fee lines of one visit with the same item (hilist_code; drugs bought at a retail pharmacy, sold
    as several packs on separate lines, are left out by default) and the same fee_ocur_time
    (within `window_seconds`) on different feedetl_sn; every copy after the first is a duplicate, whatever its
    price. Visits with duplicates are counted per institution against the chance expectation of its own mix of
    care: each kind of care (pharmacy or not, inpatient or not) has its own robust city baseline (an inpatient stay
    bills far more lines than a clinic visit), and the institution's expectation is the sum over its own visits.
    The tier needs both chance and effect (`score_entities`): a big hospital twice its expectation is surprising
    on volume alone but stays yellow.

    Parameters
    ----------
    window_seconds : int, default 0
        Fee times are bucketed to this many seconds (0 = identical times only).
    exclude_list_types : tuple of str, default ()
        Catalogue list types never screened.
    retail_drug_list_types : tuple of str, default ("101", "102")
        Drug list types not screened on pharmacy purchases (med_type 41 / retail pharmacies), where several packs
        of one drug are billed on separate lines.
    baseline_floor : float, default 0.0005
        Lowest chance rate of visits with duplicates per visit with fee lines (per stratum).
    min_volume : int, default 30
        Institutions with fewer visits in a stratum do not set its baseline (they are still screened).
    """

    kind = "rule:duplicate_charge"
    entity_type = "institution"
    requires = ("fee_line_times", "daily_inpatient_fee_lines")  # day-only or one-bill-per-stay times: "same time"

    def __init__(self, window_seconds: int = 0, exclude_list_types: tuple[str, ...] = (),
                 retail_drug_list_types: tuple[str, ...] = ("101", "102"),
                 baseline_floor: float = 0.0005, min_volume: int = 30) -> None:
        self.window_seconds = window_seconds
        self.exclude_list_types = exclude_list_types
        self.retail_drug_list_types = retail_drug_list_types
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume

    def validate(self) -> None:
        check_positive("window_seconds", self.window_seconds, self.kind, allow_zero=True)
        check_positive("baseline_floor", self.baseline_floor, self.kind)
        check_positive("min_volume", self.min_volume, self.kind)

    # Incremental detection (`fraudnet.detectors.incremental`): the duplicate visits (one row per visit) and the
    # screened visits per institution and kind of care (counts, summed by key) are additive over visits.
    incremental_parts = {"dups": None, "strata": ("entity", "pharmacy", "inpatient")}

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """The visits with duplicates and the screened visits per stratum, over every visit or (`scope`, a table of
        mdtrt_id) over those visits only."""
        cond, params = since_clause(context, "v.begntime")
        only = f" AND f.mdtrt_id IN (SELECT mdtrt_id FROM {scope})" if scope else ""
        bucket = ("f.fee_ocur_time" if not self.window_seconds else
                  f"time_bucket(INTERVAL '{int(self.window_seconds)} seconds', f.fee_ocur_time)")
        dups = context.sql(
            f"""
            WITH g AS (
                SELECT f.mdtrt_id, f.hilist_code, any_value(f.hilist_name) AS item, count(*) - 1 AS extra,
                       sum(coalesce(f.det_item_fee_sumamt, f.cnt * f.pric))
                           - max(coalesce(f.det_item_fee_sumamt, f.cnt * f.pric)) AS extra_amount
                FROM fee_list f LEFT JOIN hilist h USING (hilist_code)
                     -- a join, not `mdtrt_id IN (subquery)` under NOT: Spark plans that as a null-aware nested loop
                     LEFT JOIN (SELECT DISTINCT mdtrt_id, true AS retail FROM visit_fact WHERE is_pharmacy) r
                         ON r.mdtrt_id = f.mdtrt_id
                WHERE coalesce(f.det_item_fee_sumamt, 0) > 0{only}
                  AND NOT list_contains(?, coalesce(f.list_type, h.list_type, ''))
                  -- at a retail pharmacy several packs of one drug on separate lines are one ordinary sale
                  AND NOT (list_contains(?, coalesce(f.list_type, h.list_type, '')) AND coalesce(r.retail, false))
                GROUP BY f.mdtrt_id, f.hilist_code, {bucket}
                HAVING count(*) > 1
            )
            SELECT v.fixmedins_code AS entity, g.mdtrt_id, v.psn_no, any_value(coalesce(v.fund_pay_sumamt, 0)) AS fund,
                   sum(g.extra) AS extra_lines, sum(g.extra_amount) AS extra_amount, arg_max(g.item, g.extra) AS item,
                   any_value(coalesce(v.is_pharmacy, false)) AS pharmacy,
                   any_value(coalesce(v.is_inpatient, false)) AS inpatient
            FROM g JOIN visit_fact v ON v.mdtrt_id = g.mdtrt_id
            WHERE NOT coalesce(v.refunded, false) AND {cond}
            GROUP BY 1, 2, 3
            """, [list(self.exclude_list_types), list(self.retail_drug_list_types), *params])
        # Chance duplicates depend on the kind of care: an inpatient stay bills dozens of lines a day, a clinic
        # visit a few, a pharmacy sale packs of drugs. Each kind of care (pharmacy or not, inpatient or not) has its
        # own robust city baseline; an institution is held to the sum over its own visits of each kind. (Strata per
        # catalogue list type would count a visit once per list type and so multiply the per-visit floor.)
        strata = context.sql(
            f"""
            SELECT v.fixmedins_code AS entity, coalesce(v.is_pharmacy, false) AS pharmacy,
                   coalesce(v.is_inpatient, false) AS inpatient, count(DISTINCT f.mdtrt_id) AS visits
            FROM fee_list f LEFT JOIN hilist h USING (hilist_code) JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
            WHERE coalesce(f.det_item_fee_sumamt, 0) > 0 AND NOT coalesce(v.refunded, false){only}
              AND NOT list_contains(?, coalesce(f.list_type, h.list_type, ''))
              AND NOT (list_contains(?, coalesce(f.list_type, h.list_type, '')) AND coalesce(v.is_pharmacy, false))
              AND {cond}
            GROUP BY ALL
            """, [list(self.exclude_list_types), list(self.retail_drug_list_types), *params])
        return {"dups": dups, "strata": strata}

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.hits_from_partials(context, self.partials(context))

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Any]:
        entities, evidence = self.hits_from_partials(context, parts)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)

    def hits_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
        # one order whatever path built the parts (full scan or stored parts + the day's), so sums and ties agree:
        # the top item is the most frequent one, on a tie the one of the lowest mdtrt_id
        dups = parts["dups"].sort_values(["entity", "mdtrt_id"], kind="stable").reset_index(drop=True)
        strata = parts["strata"].sort_values(["entity", "pharmacy", "inpatient"], kind="stable").reset_index(drop=True)
        if dups.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        volume = context.sql(
            "SELECT v.fixmedins_code AS entity, count(*) AS billed_visits, "
            "coalesce(any_value(m.fixmedins_type), '') = '2' AS pharmacy "
            "FROM visit_fact v LEFT JOIN medins_info m USING (fixmedins_code) "
            "WHERE NOT coalesce(v.refunded, false) GROUP BY 1")
        agg = dups.groupby("entity").agg(
            duplicate_visits=("mdtrt_id", "size"), duplicate_lines=("extra_lines", "sum"),
            patients=("psn_no", "nunique"), duplicate_amount=("extra_amount", "sum"), hit_fund=("fund", "sum"),
            top_item=("item", lambda s: s.value_counts().index[0]),
        ).reset_index().merge(volume, on="entity", how="left")
        agg["share"] = agg["duplicate_visits"] / agg["billed_visits"].clip(lower=1)
        keys = ["entity", "pharmacy", "inpatient"]
        hits = dups.groupby(keys).size().rename("hits").reset_index()
        strata = strata.merge(hits, on=keys, how="left").fillna({"hits": 0})
        strata["rate"] = 0.0
        for _, idx in strata.groupby(["pharmacy", "inpatient"]).groups.items():
            peers = strata.loc[idx]
            strata.loc[idx, "rate"] = baseline_rate(peers["hits"], peers["visits"], floor=self.baseline_floor,
                                                    min_volume=self.min_volume)
        strata["expected"] = strata["visits"] * strata["rate"]
        per_entity = strata.groupby("entity").agg(duplicate_hits=("hits", "sum"), expected_hits=("expected", "sum"),
                                                  screened_visits=("visits", "sum")).reset_index()
        agg = agg.merge(per_entity, on="entity", how="left").fillna(
            {"duplicate_hits": 0, "expected_hits": 0.0, "screened_visits": 0})
        # a duplicate visit outside the screened strata (e.g. since-limited volume) still counts as one hit
        agg["duplicate_hits"] = agg[["duplicate_hits", "duplicate_visits"]].max(axis=1).astype(int)
        rate = float(strata["expected"].sum() / max(1.0, float(strata["visits"].sum())))
        agg = score_entities(agg, hits="duplicate_hits", volume="screened_visits", rate=rate, amount="hit_fund",
                             expected="expected_hits")
        return agg, dups[["entity", "mdtrt_id"]]

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        zh = (f"{f['entity']} 在{f['duplicate_visits']}次就诊（{f['patients']}名患者）中同一时间重复收取同一项目"
              f"{int(f['duplicate_lines'])}条，重复金额{f['duplicate_amount']:,.2f}元（主要为{f['top_item']}），占其就诊"
              f"{f['billed_visits']}次的{f['share']:.1%}，为按其诊疗类别的基线预期{f['expected']:.2f}次的"
              f"{f['ratio']:.1f}倍，"
              f"疑似重复收费；涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: the same item billed twice at the same time on {f['duplicate_visits']} visits "
              f"({f['patients']} patients), {int(f['duplicate_lines'])} duplicate lines worth "
              f"{f['duplicate_amount']:,.2f} yuan (mostly {f['top_item']}), {f['share']:.1%} of its "
              f"{f['billed_visits']} visits, {f['ratio']:.1f}× the {f['expected']:.2f} expected for its kinds of care; "
              f"fund payments "
              f"{f['amount_at_risk']:,.2f} yuan.")
        return zh, en
