"""Sex- or age-incompatible claims (性别/年龄不符): pregnancy or female-organ diagnoses and items billed for
men, prostate for women, perinatal diagnoses for adults, obstetrics for children — counted per institution."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudnet.detectors.rules.certain import apply_certain_grades, independent_events, tier_sentence
from fraudnet.detectors.rules.common import (
    RuleDetector,
    baseline_rate,
    check_positive,
    entity_leads,
    poisson_surprise,
    score_entities,
    since_clause,
)

__all__ = ["GenderAgeMismatchDetector", "MALE_ONLY_DIAGNOSES", "FEMALE_ONLY_DIAGNOSES",
           "OBSTETRIC_DIAGNOSES", "MALE_CERTAIN_DIAGNOSES"]

# ICD-10 regular expressions (on the upper-cased dise_codg).
FEMALE_ONLY_DIAGNOSES = r"^(O|C5[1-8]|N7[0-9]|N8[0-9]|N9[0-8]|Z3[2-7]|D06)"  # pregnancy, female genital organs
MALE_ONLY_DIAGNOSES = r"^(C6[0-3]|N4[0-9]|N5[01]|D07\.?[4-6])"  # prostate, male genital organs
PERINATAL_DIAGNOSES = r"^P"  # certain conditions originating in the perinatal period: newborns only
OBSTETRIC_DIAGNOSES = r"^(O|Z3[2-7])"
# Impossible rather than unlikely (certain evidence): pregnancy, childbirth and the puerperium (O00–O9A) and
# supervision of pregnancy / outcome of delivery (Z33–Z37) for a man; prostate and male genital organs for a
# woman — except male infertility (N46), which a couple's fertility care may bill on the wife's card, as female
# infertility (N97) and other female-organ codes may on the husband's: those stay statistical.
OBSTETRIC_CERTAIN = r"^(O[0-9]|Z3[3-7])"
MALE_CERTAIN_DIAGNOSES = r"^(C6[0-3]|N4[0-5]|N4[7-9]|N5[01]|D07\.?[4-6])"
# Catalogue item names (hilist_name) that belong to one sex; the obstetric ones and the male-organ ones other
# than semen analysis (a couple's fertility work-up) are certain evidence.
OBSTETRIC_ITEMS = "妊娠|产前|分娩|剖宫|产科|早孕|胎心|胎儿"
FEMALE_ONLY_ITEMS = OBSTETRIC_ITEMS + "|宫腔|宫颈|阴道|乳腺钼靶|卵巢|子宫"
MALE_CERTAIN_ITEMS = "前列腺|睾丸|阴茎|精索"
MALE_ONLY_ITEMS = MALE_CERTAIN_ITEMS + "|精液"

_REASON_ZH = {
    "obstetric_diagnosis_for_male": "男性患者使用妊娠/分娩诊断",
    "female_diagnosis_for_male": "男性患者使用女性专属诊断",
    "male_diagnosis_for_female": "女性患者使用男性专属诊断",
    "perinatal_diagnosis_for_older": "非新生儿使用围产期诊断",
    "obstetric_diagnosis_for_age": "年龄不符的产科诊断",
    "obstetric_item_for_male": "男性患者收取产科/分娩项目",
    "female_item_for_male": "男性患者收取女性专属项目",
    "male_item_for_female": "女性患者收取男性专属项目",
}
_SEX_EN = {"1": "male", "2": "female"}


class GenderAgeMismatchDetector(RuleDetector):
    """Visits whose main diagnosis or billed items cannot apply to the patient's sex (gend 1 male / 2 female)
    or age: female-only diagnoses/items for men, male-only for women, perinatal (P) diagnoses from age
    `max_perinatal_age`, obstetric diagnoses below `min_obstetric_age` or above `max_obstetric_age`. Hit visits
    are counted per institution against the chance (data-entry error) rate.

    A man billed pregnancy or delivery (O00–O9A, Z33–Z37, obstetric items) and a woman billed prostate or male
    genital care are impossible, not unlikely: certain evidence (`fraudnet.detectors.rules.certain`). One such
    event makes the institution's lead orange at least; events of ≥2 patients or days, or fund ≥ the material
    amount, make it red — provided the institution has more of them than its volume gives by data-entry slips
    (Poisson surprise ≥ `min_certain_surprise` against the city's robust slip rate), so that a big institution
    is never red for being big. Age rules and the other sex rules stay statistical.

    Parameters
    ----------
    min_obstetric_age, max_obstetric_age : int, default 12 and 60
    max_perinatal_age : int, default 2
    baseline_floor : float, default 0.00005
        Lowest chance rate of mismatched visits per visit (coding slips).
    min_volume : int, default 50
        Visits an institution needs to take part in estimating the chance rate.
    min_certain_surprise : float, default 2
        −log10 chance probability its certain events need before repeated/material ones make a lead red (p ≤ 1 %).
    """

    kind = "rule:gender_age_mismatch"
    entity_type = "institution"
    requires: tuple[str, ...] = ()  # a missing diagnosis, item or sex makes no hit

    def __init__(self, min_obstetric_age: int = 12, max_obstetric_age: int = 60, max_perinatal_age: int = 2,
                 baseline_floor: float = 0.00005, min_volume: int = 50, min_certain_surprise: float = 2.0) -> None:
        self.min_obstetric_age = min_obstetric_age
        self.max_obstetric_age = max_obstetric_age
        self.max_perinatal_age = max_perinatal_age
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume
        self.min_certain_surprise = min_certain_surprise

    def validate(self) -> None:
        for name in ("min_obstetric_age", "max_obstetric_age", "max_perinatal_age", "baseline_floor", "min_volume",
                     "min_certain_surprise"):
            check_positive(name, getattr(self, name), self.kind)

    # Incremental detection (`fraudnet.detectors.incremental`): every part is per visit or counts by institution —
    # the mismatched visits (a visit's verdict depends on the visit, its fee lines and its person only), the
    # non-refunded visits per institution, and the visits whose person had no psn_info row when their part was
    # computed (re-judged from their ids at every run, so a person's row arriving after the visits counts them).
    incremental_parts = {"visits": None, "volume": ("entity",), "unmatched": None}

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """The mismatched visits, the visits per institution and the visits without a person row, over every visit
        or (`scope`, a table of mdtrt_id) over those visits only."""
        only = f"v.mdtrt_id IN (SELECT mdtrt_id FROM {scope})" if scope else "TRUE"
        visits = self._mismatched(context, only)
        volume = context.sql(f"SELECT fixmedins_code AS entity, count(*) AS visits FROM visit_fact v "
                             f"WHERE NOT coalesce(refunded, false) AND {only} GROUP BY 1")
        unmatched = context.sql(f"SELECT v.mdtrt_id FROM visit_fact v ANTI JOIN psn_info p USING (psn_no) "
                                f"WHERE NOT coalesce(v.refunded, false) AND {only}")
        return {"visits": visits, "volume": volume, "unmatched": unmatched}

    def _mismatched(self, context: Any, only: str) -> pd.DataFrame:
        """One row per non-refunded visit (of those `only` keeps) whose diagnosis or items do not fit its
        patient's sex or age. Items are classified by their own name on the fee line."""
        cond, params = since_clause(context, "v.begntime")
        return context.sql(
            f"""
            WITH v AS (
                SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, upper(coalesce(v.dise_codg, '')) AS icd,
                       p.gend, date_diff('year', p.brdy, v.begntime::DATE) AS age,
                       coalesce(v.fund_pay_sumamt, 0) AS fund
                FROM visit_fact v JOIN psn_info p USING (psn_no)
                WHERE NOT coalesce(v.refunded, false) AND {cond} AND {only}
            ), dx AS (
                SELECT mdtrt_id, psn_no, fixmedins_code, begntime, gend, fund, icd,
                    CASE
                      WHEN gend = '1' AND regexp_matches(icd, ?) THEN 'obstetric_diagnosis_for_male'
                      WHEN gend = '2' AND regexp_matches(icd, ?) THEN 'male_diagnosis_for_female'
                      WHEN gend = '1' AND regexp_matches(icd, ?) THEN 'female_diagnosis_for_male'
                      WHEN gend = '2' AND regexp_matches(icd, ?) THEN 'male_diagnosis_for_female'
                      WHEN age >= ? AND regexp_matches(icd, ?) THEN 'perinatal_diagnosis_for_older'
                      WHEN (age < ? OR age > ?) AND regexp_matches(icd, ?) THEN 'obstetric_diagnosis_for_age'
                    END AS reason,
                    (gend = '1' AND regexp_matches(icd, ?)) OR (gend = '2' AND regexp_matches(icd, ?)) AS certain
                FROM v
            ), lines AS (
                SELECT f.mdtrt_id, f.hilist_code, coalesce(f.hilist_name, '') AS name, v.gend
                FROM fee_list f JOIN v USING (mdtrt_id)
            ), items AS (  -- classify each item name once, not every fee line
                SELECT name,
                       CASE WHEN regexp_matches(name, ?) THEN '1'
                            WHEN regexp_matches(name, ?) THEN '2' END AS wrong_gend,
                       regexp_matches(name, ?) OR regexp_matches(name, ?) AS certain
                FROM (SELECT DISTINCT name FROM lines)
            ), sexed AS (SELECT * FROM items WHERE wrong_gend IS NOT NULL
            ), it AS (
                SELECT l.mdtrt_id,
                       CASE WHEN any_value(l.gend) = '2' THEN 'male_item_for_female'
                            WHEN bool_or(s.certain) THEN 'obstetric_item_for_male'
                            ELSE 'female_item_for_male' END AS reason,
                       bool_or(s.certain) AS certain,
                       coalesce(max(s.name) FILTER (s.certain), max(s.name)) AS item
                FROM lines l JOIN sexed s USING (name)
                WHERE l.gend = s.wrong_gend
                GROUP BY 1
            )
            SELECT dx.fixmedins_code AS entity, dx.mdtrt_id, dx.psn_no, dx.begntime::DATE AS day, dx.gend,
                   dx.fund, dx.icd, it.item,
                   CASE WHEN coalesce(dx.certain, false) OR it.reason IS NULL THEN dx.reason
                        WHEN it.certain OR dx.reason IS NULL THEN it.reason ELSE dx.reason END AS reason,
                   coalesce(dx.certain, false) OR coalesce(it.certain, false) AS certain,
                   CASE WHEN coalesce(dx.certain, false) THEN dx.icd WHEN coalesce(it.certain, false) THEN it.item
                   END AS certain_code
            FROM dx LEFT JOIN it USING (mdtrt_id)
            WHERE dx.reason IS NOT NULL OR it.reason IS NOT NULL
            """, [*params, OBSTETRIC_CERTAIN, MALE_CERTAIN_DIAGNOSES, FEMALE_ONLY_DIAGNOSES, MALE_ONLY_DIAGNOSES,
                  int(self.max_perinatal_age), PERINATAL_DIAGNOSES, int(self.min_obstetric_age),
                  int(self.max_obstetric_age), OBSTETRIC_DIAGNOSES, OBSTETRIC_CERTAIN, MALE_CERTAIN_DIAGNOSES,
                  FEMALE_ONLY_ITEMS, MALE_ONLY_ITEMS, OBSTETRIC_ITEMS, MALE_CERTAIN_ITEMS])

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.hits_from_partials(context, self.partials(context))

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Any]:
        entities, evidence = self.hits_from_partials(context, parts)
        self.n_entities_ = int(len(entities))
        return entity_leads(context, self.kind, entities, evidence, entity_type=self.entity_type,
                            explain=self.explain, min_score=self.min_score)

    def hits_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
        visits = parts["visits"]
        unmatched = parts["unmatched"]
        if not unmatched.empty:  # visits whose person's row has arrived since their part was computed
            with context.frame_table("_fn_gam_unmatched", unmatched[["mdtrt_id"]].drop_duplicates()) as table:
                late = self._mismatched(context, f"v.mdtrt_id IN (SELECT mdtrt_id FROM {table})")
            if not late.empty:
                visits = late if visits.empty else pd.concat([visits, late[list(visits.columns)]], ignore_index=True)
        # one order whatever path built the parts, so ties (top reason, examples) agree
        visits = visits.sort_values(["entity", "mdtrt_id"], kind="stable").reset_index(drop=True)
        volume = parts["volume"].sort_values("entity", kind="stable").reset_index(drop=True)
        if visits.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        visits["certain"] = visits["certain"].fillna(False).astype(bool)
        agg = visits.groupby("entity").agg(
            mismatched_visits=("mdtrt_id", "nunique"), patients=("psn_no", "nunique"), hit_fund=("fund", "sum"),
            top_reason=("reason", _most_frequent),
            examples=("icd", lambda s: ",".join(sorted({x for x in s if x})[:5])),
        ).reset_index().merge(volume, on="entity", how="left")
        full = volume.merge(agg[["entity", "mismatched_visits"]], on="entity", how="left").fillna(
            {"mismatched_visits": 0})
        rate = baseline_rate(full["mismatched_visits"], full["visits"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        agg["share"] = agg["mismatched_visits"] / agg["visits"].clip(lower=1)
        agg = score_entities(agg, hits="mismatched_visits", volume="visits", rate=rate, amount="hit_fund")
        agg = self._grade_certain(agg, visits, volume)
        return agg, visits[["entity", "mdtrt_id"]]

    def _grade_certain(self, agg: pd.DataFrame, visits: pd.DataFrame, volume: pd.DataFrame) -> pd.DataFrame:
        """Certain events per institution (distinct patient-days of impossible visits), their fund, whether they
        exceed the chance slip rate at the institution's volume, and the resulting floor of the score."""
        sure = visits[visits["certain"]].drop_duplicates("mdtrt_id")
        counts = sure.groupby("entity").agg(certain_visits=("mdtrt_id", "size"), certain_fund=("fund", "sum"),
                                            certain_patients=("psn_no", "nunique"))
        counts["certain_events"] = independent_events(sure, ["entity"], ["psn_no", "day"])
        counts["certain_examples"] = sure.sort_values(["entity", "day", "psn_no", "mdtrt_id"]).groupby("entity").apply(
            lambda g: "; ".join(f"{p}({_SEX_EN.get(s, s)}) {c}" for p, s, c in
                                g[["psn_no", "gend", "certain_code"]].head(3).itertuples(index=False)),
            include_groups=False)
        agg = agg.merge(counts.reset_index(), on="entity", how="left").fillna(
            {"certain_visits": 0, "certain_fund": 0.0, "certain_patients": 0, "certain_events": 0,
             "certain_examples": ""})
        for col in ("certain_visits", "certain_patients", "certain_events"):
            agg[col] = agg[col].astype(int)
        full = volume.merge(counts["certain_visits"].reset_index(), on="entity", how="left").fillna(
            {"certain_visits": 0})
        slip = baseline_rate(full["certain_visits"], full["visits"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        agg["certain_slip_rate"] = slip
        agg["certain_expected"] = agg["visits"].astype(float) * slip
        agg["certain_surprise"] = [poisson_surprise(h, e) for h, e in
                                   zip(agg["certain_visits"], agg["certain_expected"], strict=True)]
        agg["certain_significant"] = agg["certain_surprise"] >= float(self.min_certain_surprise)
        return apply_certain_grades(agg, significant="certain_significant", red_needs_certain=False)

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        reason_zh = _REASON_ZH.get(f["top_reason"], f["top_reason"])
        reason_en = str(f["top_reason"]).replace("_", " ")
        ex = f" ({f['examples']})" if f.get("examples") else ""
        zh = (f"{f['entity']} 有{f['mismatched_visits']}次就诊（{f['patients']}名患者）的诊断或收费项目与患者性别/年龄"
              f"不符，主要为{reason_zh}{ex}，为基线预期{f['expected']:.2f}次的{f['ratio']:.0f}倍；涉及基金"
              f"{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: {f['mismatched_visits']} visits ({f['patients']} patients) with a diagnosis or item "
              f"incompatible with the patient's sex or age, mostly {reason_en}{ex}, {f['ratio']:.0f}× the expected "
              f"{f['expected']:.2f}; fund payments {f['amount_at_risk']:,.2f} yuan.")
        if f.get("certain_visits"):
            exz = f["certain_examples"].replace("(male)", "(男)").replace("(female)", "(女)")
            zh += (f"其中{f['certain_visits']}次不可能发生（男性的妊娠/分娩诊断或项目、女性的前列腺/男性生殖器诊疗，"
                   f"如{exz}），独立事件{f['certain_events']}起（{f['certain_patients']}名患者），"
                   f"涉及基金{f['certain_fund']:,.2f}元。")
            en += (f" {f['certain_visits']} of them are impossible (pregnancy/delivery billed for a man, prostate or "
                   f"male genital care for a woman; e.g. {f['certain_examples']}): {f['certain_events']} independent "
                   f"events ({f['certain_patients']} patients), fund {f['certain_fund']:,.2f} yuan.")
        tz, te = tier_sentence(f)
        return zh + tz, (en + " " + te) if te else en


def _most_frequent(values: pd.Series) -> Any:
    """The most frequent value; on a tie the first in the series' order (callers sort it by mdtrt_id)."""
    counts = values.value_counts(sort=False)
    return counts.idxmax()
