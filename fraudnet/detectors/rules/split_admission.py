"""Split admissions (分解住院): patients discharged and readmitted to the same institution within days for the
same diagnosis, beyond what peers see for the same kind of care, scheduled treatment cycles set aside."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fraudnet.detectors.coverage import covered_clause
from fraudnet.detectors.rules.common import (
    RuleDetector,
    baseline_rate,
    check_positive,
    poisson_surprise,
    score_entities,
    since_clause,
)
from fraudnet.errors import DetectorError

__all__ = ["SplitAdmissionDetector"]

# ICD-10 categories that name a scheduled treatment rather than an illness: Z49 dialysis care, Z51 other
# medical care (Z51.0 radiotherapy session, Z51.1 chemotherapy session). Their readmissions are the plan.
SCHEDULED_FAMILIES = ("Z49", "Z51")


class SplitAdmissionDetector(RuleDetector):
    """Readmission within `max_gap_days` of a discharge at the same institution with the same 3-character ICD-10
    diagnosis, counted per institution against the expectation of its own case mix.

    Scheduled care is not a split and is set aside before counting: stays coded as a scheduled treatment
    (`scheduled_families`: chemotherapy / radiotherapy sessions Z51, dialysis Z49), pairs of day-case stays (both
    ≤ `day_case_nights` nights), and runs of ≥ `regular_min_links` back-to-back readmissions whose days at home
    between discharge and readmission are regular (coefficient of variation ≤ `regular_cv`: a chemotherapy cycle of
    14 days with two-night stays leaves 12 ± 1 days, CV < 0.1, while unplanned readmissions fall anywhere in the
    window — four random gaps are that regular by chance in 1–2 % of runs, three in 4–6 %). A readmission on the
    day of or the day after discharge is never taken for a cycle: the patient never went home.

    The expectation is stratified by diagnosis (case mix): an institution expects Σ over its stays of its
    family's rate of readmissions per stay, each family's rate estimated from the institutions that are not
    surprising against their own case-mix expectation (`case_mix_expected`, `family_rates`: robust as
    `baseline_rate` is for the whole city) — a cardiology centre is compared with the readmissions heart patients
    have at other hospitals, not with a city average dominated by pneumonia and short surgical stays.

    Features report the split signatures (share of readmissions within a day of discharge, share with the same
    attending doctor, share whose first stay was shorter than the diagnosis' city median) for the inspector;
    they do not weight the count: no weight is known without labelled cases (on the generated cities the same
    doctor is as common among legitimate readmissions), and an unweighted count keeps the Poisson chance exact.

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
        Lowest chance readmission rate per stay used for the expectation (city and per diagnosis).
    min_volume : int, default 20
        Stays an institution needs to take part in estimating the city baseline.
    group_min : int, default 3
        Readmissions of this many patients at one institution, discharged within a day of each other and
        readmitted within a day of each other, are a group admission (同进同出, left to the collusion-ring
        detector) and not counted here; busy wards readmitting patients on the same day are not a group.
    scheduled_families : tuple of str, default ("Z49", "Z51")
        Diagnosis categories of scheduled treatment sessions (dialysis, chemotherapy, radiotherapy): never hits,
        and their stays are not part of the volume.
    day_case_nights : int, default 1
        A readmission where both stays last at most this many nights is day-case care (infusion, dialysis).
    regular_min_links : int, default 4
        Back-to-back readmissions (≥ this many links, i.e. ≥ 5 stays) needed before regularity is judged; with
        fewer gaps a low coefficient of variation happens too often by chance.
    regular_cv : float, default 0.1
        Highest coefficient of variation of a run's discharge-to-readmission gaps that counts as a schedule.
    """

    kind = "rule:split_admission"
    entity_type = "institution"
    requires = ("admission_discharge_times", "diagnoses")

    def __init__(self, max_gap_days: int = 15, icd_chars: int = 3, baseline_floor: float = 0.003,
                 min_volume: int = 20, group_min: int = 3,
                 scheduled_families: tuple[str, ...] = SCHEDULED_FAMILIES, day_case_nights: int = 1,
                 regular_min_links: int = 4, regular_cv: float = 0.1) -> None:
        self.max_gap_days = max_gap_days
        self.icd_chars = icd_chars
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume
        self.group_min = group_min
        self.scheduled_families = scheduled_families
        self.day_case_nights = day_case_nights
        self.regular_min_links = regular_min_links
        self.regular_cv = regular_cv

    def validate(self) -> None:
        for name in ("max_gap_days", "icd_chars", "baseline_floor", "min_volume", "group_min", "regular_min_links",
                     "regular_cv"):
            check_positive(name, getattr(self, name), self.kind)
        check_positive("day_case_nights", self.day_case_nights, self.kind, allow_zero=True)
        fams = self.scheduled_families
        if isinstance(fams, str) or not all(isinstance(f, str) and f.strip() for f in fams):
            raise DetectorError(f"{self.kind}: parameter scheduled_families={fams!r} must be a tuple of ICD-10 "
                                "category codes such as ('Z49', 'Z51')")

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        cond, params = since_clause(context, "begntime")
        covered = " AND ".join(covered_clause(context, r, "v.fixmedins_code", "v.begntime") for r in self.requires)
        n = int(self.icd_chars)
        scheduled = sorted({f.strip().upper()[:n] for f in self.scheduled_families})
        not_scheduled = f"icd NOT IN ({', '.join('?' for _ in scheduled)})" if scheduled else "TRUE"
        stays = f"""
            SELECT mdtrt_id, psn_no, fixmedins_code, begntime, coalesce(endtime, begntime) AS endtime,
                   upper(nullif(left(trim(dise_codg), {n}), '')) AS icd, nullif(trim(atddr_no), '') AS doctor,
                   date_diff('day', begntime::DATE, coalesce(endtime, begntime)::DATE) AS nights,
                   coalesce(fund_pay_sumamt, 0) AS fund
            FROM visit_fact v WHERE is_inpatient AND NOT coalesce(refunded, false) AND {covered}
        """
        part = "PARTITION BY psn_no, fixmedins_code"
        pairs = context.sql(
            f"""
            WITH s AS ({stays}), o AS (
                SELECT *, lag(mdtrt_id) OVER w AS prev_id, lag(endtime) OVER w AS prev_end,
                       lag(icd) OVER w AS prev_icd, lag(fund) OVER w AS prev_fund,
                       lag(nights) OVER w AS prev_nights, lag(doctor) OVER w AS prev_doctor
                FROM s WINDOW w AS ({part} ORDER BY begntime, mdtrt_id)
            ), l AS (
                SELECT *, coalesce(prev_id IS NOT NULL AND icd IS NOT NULL AND icd = prev_icd AND begntime >= prev_end
                                   AND date_diff('day', prev_end::DATE, begntime::DATE) <= ?, false) AS linked,
                       date_diff('day', prev_end::DATE, begntime::DATE) AS gap_days
                FROM o
            ), r AS (  -- a run: stays chained by readmissions, each within the window of the previous discharge
                SELECT *, sum(CASE WHEN linked THEN 0 ELSE 1 END) OVER ({part} ORDER BY begntime, mdtrt_id
                                                                     ROWS UNBOUNDED PRECEDING) AS run
                FROM l
            ), q AS (
                SELECT *, count(CASE WHEN linked THEN 1 END) OVER ({part}, run) AS run_links,
                       stddev_pop(CASE WHEN linked THEN gap_days END) OVER ({part}, run)
                       / nullif(avg(CASE WHEN linked THEN gap_days END) OVER ({part}, run), 0) AS run_cv
                FROM r
            ), h AS (
                SELECT fixmedins_code AS entity, psn_no, prev_id, mdtrt_id, icd, begntime::DATE AS day,
                       prev_end::DATE AS prev_day, gap_days,
                       prev_nights, coalesce(doctor = prev_doctor, false) AS same_doctor, prev_fund + fund AS fund
                FROM q
                WHERE linked AND {cond}
                  AND {not_scheduled}  -- scheduled treatment sessions
                  AND NOT (prev_nights <= ? AND nights <= ?)  -- day-case care
                  -- a regular cycle of readmissions is a treatment schedule, unless the patient never went home
                  AND NOT (run_links >= ? AND coalesce(run_cv, 1) <= ? AND gap_days > 1)
            ), g AS (  -- pairs readmitted within a day of each other after discharges within a day of each other
                SELECT a.mdtrt_id, count(*) AS together
                FROM h a JOIN h b ON a.entity = b.entity AND b.day BETWEEN a.day - 1 AND a.day + 1
                                 AND b.prev_day BETWEEN a.prev_day - 1 AND a.prev_day + 1
                GROUP BY a.mdtrt_id
            )
            -- several patients discharged together and readmitted together are a group admission (同进同出), the
            -- collusion-ring detector's finding, not one patient's stay split in two
            SELECT h.* EXCLUDE (day, prev_day) FROM h JOIN g USING (mdtrt_id) WHERE g.together < ?
            """, [int(self.max_gap_days), *params, *scheduled, int(self.day_case_nights), int(self.day_case_nights),
                  int(self.regular_min_links), float(self.regular_cv), int(self.group_min)])
        if pairs.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        mix = context.sql(  # the case mix: stays per institution and diagnosis family, scheduled sessions aside
            f"SELECT fixmedins_code AS entity, icd, count(*) AS stays FROM ({stays}) "
            f"WHERE icd IS NOT NULL AND {not_scheduled} GROUP BY ALL", [*scheduled])
        volume = context.sql(
            f"SELECT fixmedins_code AS entity, count(DISTINCT psn_no) AS inpatients, count(*) AS stays "
            f"FROM ({stays}) WHERE icd IS NULL OR {not_scheduled} GROUP BY 1", [*scheduled])
        # The first stay cut short: shorter than the city's median stay for the diagnosis.
        typical = context.sql(f"SELECT icd, median(nights) AS typical FROM ({stays}) GROUP BY 1")
        pairs = pairs.merge(typical, on="icd", how="left")
        pairs["short_first"] = pairs["prev_nights"] < pairs["typical"]
        agg = pairs.groupby("entity").agg(
            patients=("psn_no", "nunique"), readmissions=("mdtrt_id", "nunique"),
            median_gap_days=("gap_days", "median"),
            within_a_day=("gap_days", lambda s: float((s <= 1).mean())),
            same_doctor=("same_doctor", "mean"),
            short_first_stay=("short_first", "mean"),
            hit_fund=("fund", "sum"),
            top_diagnosis=("icd", _most_frequent),
        ).reset_index()
        agg = agg.merge(volume, on="entity", how="left")
        full = volume.merge(agg[["entity", "readmissions"]], on="entity", how="left").fillna({"readmissions": 0})
        rate = baseline_rate(full["readmissions"], full["stays"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        cell_hits = pairs.groupby(["entity", "icd"])["mdtrt_id"].nunique().rename("hits").reset_index()
        mix = mix.merge(cell_hits, on=["entity", "icd"], how="left").fillna({"hits": 0})
        expected = case_mix_expected(mix, rate, self.baseline_floor, self.min_volume).rename("case_mix_expected")
        agg = agg.merge(expected, on="entity", how="left")
        agg["share"] = agg["patients"] / agg["inpatients"].clip(lower=1)
        # A patient readmitted again and again counts each time: repeated splitting is the pattern, while
        # ordinary readmissions are one per patient.
        agg = score_entities(agg, hits="readmissions", volume="stays", rate=rate, amount="hit_fund",
                             expected="case_mix_expected")
        agg = agg.drop(columns=["case_mix_expected"])
        agg["max_gap_days"] = int(self.max_gap_days)
        evidence = pd.concat([
            pairs[["entity", "prev_id"]].rename(columns={"prev_id": "mdtrt_id"}), pairs[["entity", "mdtrt_id"]],
        ])
        return agg, evidence

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        zh = (f"{f['entity']} 有{f['patients']}名患者出院后{f['max_gap_days']}天内以相同诊断再次入院"
              f"（共{f['readmissions']}次，主要诊断{f['top_diagnosis']}，中位间隔{f['median_gap_days']:.0f}天，"
              f"{f['within_a_day']:.0%}在出院当天或次日再入院，{f['same_doctor']:.0%}为同一主治医师，"
              f"{f['short_first_stay']:.0%}的前次住院短于该诊断全市中位天数；化疗、透析等计划性周期治疗已剔除），"
              f"占该机构住院患者{f['inpatients']}人的{f['share']:.1%}；再入院次数为按其病种构成和全市同病种基线预期"
              f"{f['expected']:.1f}次的{f['ratio']:.1f}倍；涉及基金{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: {f['patients']} patients readmitted within {f['max_gap_days']} days of discharge "
              f"with the same diagnosis ({f['readmissions']} readmissions, mostly {f['top_diagnosis']}, median gap "
              f"{f['median_gap_days']:.0f} days; {f['within_a_day']:.0%} on the day of or after discharge, "
              f"{f['same_doctor']:.0%} with the same attending doctor, {f['short_first_stay']:.0%} after a first "
              f"stay shorter than the diagnosis' city median; scheduled cycles such as chemotherapy and dialysis set "
              f"aside), {f['share']:.1%} of its {f['inpatients']} inpatients; readmissions {f['ratio']:.1f}× the "
              f"{f['expected']:.1f} expected from its case mix at the city's per-diagnosis baseline rates; fund "
              f"payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en


def case_mix_expected(mix: pd.DataFrame, city_rate: float, floor: float, min_volume: int,
                      max_surprise: float = 2.0, iterations: int = 20) -> pd.Series:
    """Expected readmissions per institution from its case mix (columns entity, icd, stays, hits): Σ over its
    stays of the family's rate (`family_rates`), the rates estimated only from institutions whose total is not
    surprising (p > 1 %) against their own expectation, re-estimated until that set settles — a splitter's cells
    never set a norm, even where most of a small city's institutions split; an institution whose high count the
    case mix explains (a cardiology centre) rejoins the peers once its families' rates are known."""
    totals = mix.groupby("entity")["hits"].sum()
    rates: dict[str, float] = {}

    def expectation(r: dict[str, float]) -> pd.Series:
        return (mix["stays"] * mix["icd"].map(r).fillna(city_rate)).groupby(mix["entity"]).sum()

    clean: set[str] | None = None
    for _ in range(iterations):
        exp = expectation(rates)
        now = {e for e, h in totals.items() if poisson_surprise(h, exp[e]) < max_surprise}
        if now == clean:
            break
        clean = now
        rates = family_rates(mix[mix["entity"].isin(clean)], city_rate, floor, min_volume)
    return expectation(rates)


def family_rates(mix: pd.DataFrame, city_rate: float, floor: float, min_volume: int, min_peers: int = 3,
                 max_surprise: float = 2.0, iterations: int = 50) -> dict[str, float]:
    """Robust readmission rate per stay for each diagnosis family (columns entity, icd, stays, hits): starting
    from the city's robust rate, pool the institutions whose count in the family is not surprising (p > 1 %) at
    the current estimate and repeat until it settles — the rate climbs only as far as unremarkable peers carry
    it, so splitters (even most institutions of a small city) do not raise the baseline of the diagnosis they
    split. The pooled rate is then shrunk towards the city rate by a prior worth one readmission
    (1 / city_rate stays), so a family seen in few stays stays near the city rate; a family with fewer than
    `min_peers` institutions of ≥ `min_volume` stays has no peer norm of its own and keeps the city rate."""
    prior = 1.0 / max(city_rate, 1e-9)
    rates: dict[str, float] = {}
    for icd, cell in mix.groupby("icd"):
        h = cell["hits"].to_numpy(dtype=float)
        v = cell["stays"].to_numpy(dtype=float)
        big = v >= min_volume
        if big.sum() < min_peers:
            rates[str(icd)] = city_rate
            continue
        p, ok = city_rate, np.zeros(len(h), dtype=bool)
        for _ in range(iterations):
            ok = np.array([poisson_surprise(a, b * p) < max_surprise for a, b in zip(h, v, strict=True)])
            if not ok.any():  # every institution surprising: no peer norm, the city rate
                break
            new = max(floor, float(h[ok].sum() / v[ok].sum()))
            settled = abs(new - p) <= 1e-4 * max(p, 1e-9)
            p = new
            if settled:
                break
        rates[str(icd)] = max(floor, float((h[ok].sum() + 1.0) / (v[ok].sum() + prior)))
    return rates


def _most_frequent(values: pd.Series) -> str:
    """The most frequent value; ties to the smallest (not to the row order, which differs between engines)."""
    counts = values.dropna().astype(str).value_counts()
    if counts.empty:
        return ""
    return str(min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0])
