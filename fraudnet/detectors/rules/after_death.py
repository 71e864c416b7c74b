"""Care after death (死亡后就医): visits of a person that begin after the death date civil-affairs data record."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from fraudnet.detectors.rules.certain import apply_certain_grades, independent_events, tier_sentence
from fraudnet.detectors.rules.common import RuleDetector, since_clause

__all__ = ["AfterDeathDetector", "PLACEHOLDER_DATES"]

log = logging.getLogger(__name__)

# Dates that registries write for "unknown" rather than a death: never taken as one.
PLACEHOLDER_DATES: tuple[str, ...] = ("1900-01-01", "1970-01-01")


class AfterDeathDetector(RuleDetector):
    """Visits (non-refunded; vali_flag 0 rows are never loaded) whose begntime falls on a day after the person's
    `psn_info.death_date` — from the day after death, so a patient who dies in hospital or whose stay is
    settled later is never a hit. A death date before the birth date, or one of `placeholder_dates`, is not
    trusted. Each such visit is impossible (certain evidence, `fraudnet.detectors.rules.certain`): one lead per
    person listing the institutions, orange for one day, red for visits on ≥2 days or fund ≥ the material amount.
    Abstains (no leads, `abstained_` says why) when the claims store has no death_date column.

    Parameters
    ----------
    placeholder_dates : tuple of str, default ("1900-01-01", "1970-01-01")
        Death dates that mean "unknown" in registries and are ignored.
    """

    kind = "rule:after_death"
    entity_type = "person"
    requires: tuple[str, ...] = ()  # begntime is a required field; the death date's absence abstains in `hits`

    def __init__(self, placeholder_dates: tuple[str, ...] = PLACEHOLDER_DATES) -> None:
        self.placeholder_dates = placeholder_dates

    def validate(self) -> None:
        from fraudnet.errors import DetectorError

        bad = [d for d in self.placeholder_dates
               if not isinstance(d, str) or pd.isna(pd.to_datetime(d, errors="coerce"))]
        if bad:
            raise DetectorError(f"{self.kind}: parameter placeholder_dates has non-dates {bad!r}")

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        self.abstained_ = None
        empty = pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        has_column = context.sql(
            "SELECT count(*) AS n FROM information_schema.columns "
            "WHERE table_name = 'psn_info' AND column_name = 'death_date'")["n"].iloc[0]
        if not has_column:
            self.abstained_ = "psn_info has no death_date column"
            log.info("%s abstains: %s", self.kind, self.abstained_)
            return empty
        cond, params = since_clause(context, "v.begntime")
        placeholders = ", ".join("?" for _ in self.placeholder_dates) or "NULL"
        visits = context.sql(
            f"""
            WITH p AS (
                SELECT psn_no, max(TRY_CAST(death_date AS DATE)) AS death_date, min(TRY_CAST(brdy AS DATE)) AS brdy
                FROM psn_info GROUP BY psn_no
            ), ok AS (
                SELECT psn_no, death_date FROM p
                WHERE death_date IS NOT NULL AND (brdy IS NULL OR death_date >= brdy)
                  AND death_date NOT IN ({placeholders})
            )
            SELECT v.psn_no AS entity, v.mdtrt_id, v.fixmedins_code, v.begntime, v.begntime::DATE AS day,
                   ok.death_date, date_diff('day', ok.death_date, v.begntime::DATE) AS days_after,
                   coalesce(v.fund_pay_sumamt, 0) AS fund
            FROM visit_fact v JOIN ok USING (psn_no)
            WHERE v.begntime::DATE > ok.death_date AND NOT coalesce(v.refunded, false) AND {cond}
            ORDER BY entity, v.begntime
            """, [*[pd.Timestamp(d).date() for d in self.placeholder_dates], *params])
        if visits.empty:
            return empty
        agg = visits.groupby("entity").agg(
            death_date=("death_date", "first"), visits_after_death=("mdtrt_id", "nunique"),
            first_days_after=("days_after", "min"), last_days_after=("days_after", "max"),
            certain_fund=("fund", "sum"), institutions=("fixmedins_code", "nunique"),
            institution_list=("fixmedins_code", lambda s: ",".join(sorted(set(s))[:5])),
        ).reset_index()
        agg["certain_events"] = agg["entity"].map(independent_events(visits, ["entity"], ["day"])).astype(int)
        agg["death_date"] = agg["death_date"].astype(str)
        agg["score"] = 0.0
        agg = apply_certain_grades(agg)
        return agg, visits[["entity", "mdtrt_id"]]

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        tz, te = tier_sentence(f)
        more = "等" if f["institutions"] > 5 else ""
        zh = (f"参保人{f['entity']}的死亡日期为{f['death_date']}，其后仍有{f['visits_after_death']}次就医结算"
              f"（{f['certain_events']}天，死亡后第{f['first_days_after']}至{f['last_days_after']}天），发生在"
              f"{f['institutions']}家机构（{f['institution_list']}{more}）；人已死亡不可能就医，疑似冒用死亡人员医保凭证。"
              f"{tz}涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"Person {f['entity']} died on {f['death_date']}, yet {f['visits_after_death']} visits were settled "
              f"after that (on {f['certain_events']} days, {f['first_days_after']} to {f['last_days_after']} days "
              f"after death) at {f['institutions']} institutions ({f['institution_list']}{', …' if more else ''}): "
              f"a dead person cannot be treated — a deceased person's card used by someone else. {te} "
              f"Fund payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en
