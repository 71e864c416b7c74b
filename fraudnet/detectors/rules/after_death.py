"""Care after death (死亡后就医): visits of a person that begin after the death date civil-affairs data record."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from fraudnet.detectors.rules.certain import apply_certain_grades, independent_events, tier_sentence
from fraudnet.detectors.rules.common import RuleDetector, entity_leads, since_clause

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

    # Incremental detection (`fraudnet.detectors.incremental`): the visits after death (one row per visit: a
    # visit's verdict depends on itself and its person's row only; a row changed in place makes the run full) and
    # the visits whose person had no psn_info row when their part was computed, re-judged from their ids at every
    # run — so a person's row (with a death date) arriving after the visits counts them.
    incremental_parts = {"visits": None, "unmatched": None}

    def _has_death_date(self, context: Any) -> bool:
        return bool(context.sql(
            "SELECT count(*) AS n FROM information_schema.columns "
            "WHERE table_name = 'psn_info' AND column_name = 'death_date'")["n"].iloc[0])

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """The visits after death and the visits without a person row, over every visit or (`scope`, a table of
        mdtrt_id) over those visits only."""
        only = f"v.mdtrt_id IN (SELECT mdtrt_id FROM {scope})" if scope else "TRUE"
        unmatched = context.sql(f"SELECT v.mdtrt_id FROM visit_fact v ANTI JOIN psn_info p USING (psn_no) "
                                f"WHERE NOT coalesce(v.refunded, false) AND {only}")
        if not self._has_death_date(context):
            return {"visits": self._empty_visits(), "unmatched": unmatched}
        return {"visits": self._after_death(context, only), "unmatched": unmatched}

    @staticmethod
    def _empty_visits() -> pd.DataFrame:
        return pd.DataFrame({"entity": pd.Series(dtype=object), "mdtrt_id": pd.Series(dtype=object),
                             "fixmedins_code": pd.Series(dtype=object),
                             "begntime": pd.Series(dtype="datetime64[us]"), "day": pd.Series(dtype="datetime64[us]"),
                             "death_date": pd.Series(dtype="datetime64[us]"), "days_after": pd.Series(dtype="int64"),
                             "fund": pd.Series(dtype="float64")})

    def _after_death(self, context: Any, only: str) -> pd.DataFrame:
        cond, params = since_clause(context, "v.begntime")
        placeholders = ", ".join("?" for _ in self.placeholder_dates) or "NULL"
        return context.sql(
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
            WHERE v.begntime::DATE > ok.death_date AND NOT coalesce(v.refunded, false) AND {cond} AND {only}
            ORDER BY entity, v.begntime
            """, [*[pd.Timestamp(d).date() for d in self.placeholder_dates], *params])

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.hits_from_partials(context, self.partials(context))

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Any]:
        entities, evidence = self.hits_from_partials(context, parts)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)

    def hits_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
        self.abstained_ = None
        empty = pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        if not self._has_death_date(context):
            self.abstained_ = "psn_info has no death_date column"
            log.info("%s abstains: %s", self.kind, self.abstained_)
            return empty
        visits = parts["visits"]
        unmatched = parts["unmatched"]
        if not unmatched.empty:  # visits whose person's row has arrived since their part was computed
            with context.frame_table("_fn_death_unmatched", unmatched[["mdtrt_id"]].drop_duplicates()) as table:
                late = self._after_death(context, f"v.mdtrt_id IN (SELECT mdtrt_id FROM {table})")
            if not late.empty:
                visits = late if visits.empty else pd.concat([visits, late[list(visits.columns)]], ignore_index=True)
        visits = visits.sort_values(["entity", "begntime", "mdtrt_id"], kind="stable").reset_index(drop=True)
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
