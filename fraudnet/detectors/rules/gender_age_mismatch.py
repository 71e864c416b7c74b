"""Sex- or age-incompatible claims (性别/年龄不符): pregnancy or female-organ diagnoses and items billed for
men, prostate for women, perinatal diagnoses for adults, obstetrics for children — counted per institution."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudnet.detectors.rules.common import (
    RuleDetector,
    baseline_rate,
    check_positive,
    score_entities,
    since_clause,
)

__all__ = ["GenderAgeMismatchDetector", "MALE_ONLY_DIAGNOSES", "FEMALE_ONLY_DIAGNOSES"]

# ICD-10 regular expressions (on the upper-cased dise_codg).
FEMALE_ONLY_DIAGNOSES = r"^(O|C5[1-8]|N7[0-9]|N8[0-9]|N9[0-8]|Z3[2-7]|D06)"  # pregnancy, female genital organs
MALE_ONLY_DIAGNOSES = r"^(C6[0-3]|N4[0-9]|N5[01]|D07\.[4-6])"  # prostate, male genital organs
PERINATAL_DIAGNOSES = r"^P"  # certain conditions originating in the perinatal period: newborns only
OBSTETRIC_DIAGNOSES = r"^(O|Z3[2-7])"
# Catalogue item names (hilist_name) that belong to one sex.
FEMALE_ONLY_ITEMS = "妊娠|产前|分娩|剖宫|宫腔|宫颈|阴道|产科|早孕|胎心|胎儿|乳腺钼靶|卵巢|子宫"
MALE_ONLY_ITEMS = "前列腺|睾丸|精液|阴茎|精索"


class GenderAgeMismatchDetector(RuleDetector):
    """Visits whose main diagnosis or billed items cannot apply to the patient's sex (gend 1 male / 2 female)
    or age: female-only diagnoses/items for men, male-only for women, perinatal (P) diagnoses from age
    `max_perinatal_age`, obstetric diagnoses below `min_obstetric_age` or above `max_obstetric_age`. Hit visits
    are counted per institution against the chance (data-entry error) rate.

    Parameters
    ----------
    min_obstetric_age, max_obstetric_age : int, default 12 and 60
    max_perinatal_age : int, default 2
    baseline_floor : float, default 0.00005
        Lowest chance rate of mismatched visits per visit (coding slips).
    """

    kind = "rule:gender_age_mismatch"
    entity_type = "institution"

    def __init__(self, min_obstetric_age: int = 12, max_obstetric_age: int = 60, max_perinatal_age: int = 2,
                 baseline_floor: float = 0.00005, min_volume: int = 50) -> None:
        self.min_obstetric_age = min_obstetric_age
        self.max_obstetric_age = max_obstetric_age
        self.max_perinatal_age = max_perinatal_age
        self.baseline_floor = baseline_floor
        self.min_volume = min_volume

    def validate(self) -> None:
        for name in ("min_obstetric_age", "max_obstetric_age", "max_perinatal_age", "baseline_floor", "min_volume"):
            check_positive(name, getattr(self, name), self.kind)

    def hits(self, context: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        cond, params = since_clause(context, "v.begntime")
        visits = context.sql(
            f"""
            WITH v AS (
                SELECT v.mdtrt_id, v.psn_no, v.fixmedins_code, v.begntime, upper(coalesce(v.dise_codg, '')) AS icd,
                       p.gend, date_diff('year', p.brdy, v.begntime::DATE) AS age,
                       coalesce(v.fund_pay_sumamt, 0) AS fund
                FROM visit_fact v JOIN psn_info p USING (psn_no)
                WHERE NOT coalesce(v.refunded, false) AND {cond}
            ), dx AS (
                SELECT mdtrt_id, psn_no, fixmedins_code, fund, icd,
                    CASE
                      WHEN gend = '1' AND regexp_matches(icd, ?) THEN 'female_diagnosis_for_male'
                      WHEN gend = '2' AND regexp_matches(icd, ?) THEN 'male_diagnosis_for_female'
                      WHEN age >= ? AND regexp_matches(icd, ?) THEN 'perinatal_diagnosis_for_older'
                      WHEN (age < ? OR age > ?) AND regexp_matches(icd, ?) THEN 'obstetric_diagnosis_for_age'
                    END AS reason
                FROM v
            ), items AS (  -- classify each catalogue item once, not every fee line
                SELECT hilist_code, name,
                       CASE WHEN regexp_matches(name, ?) THEN '1'
                            WHEN regexp_matches(name, ?) THEN '2' END AS wrong_gend
                FROM (SELECT hilist_code, any_value(coalesce(hilist_name, '')) AS name FROM fee_list GROUP BY 1)
            ), sexed AS (SELECT * FROM items WHERE wrong_gend IS NOT NULL
            ), it AS (
                SELECT f.mdtrt_id,
                       any_value(CASE v.gend WHEN '1' THEN 'female_item_for_male' ELSE 'male_item_for_female' END)
                           AS reason,
                       any_value(s.name) AS item
                FROM fee_list f JOIN sexed s USING (hilist_code) JOIN v USING (mdtrt_id)
                WHERE v.gend = s.wrong_gend
                GROUP BY 1
            )
            SELECT dx.fixmedins_code AS entity, dx.mdtrt_id, dx.psn_no, dx.fund, dx.icd,
                   coalesce(dx.reason, it.reason) AS reason, it.item
            FROM dx LEFT JOIN it USING (mdtrt_id)
            WHERE dx.reason IS NOT NULL OR it.reason IS NOT NULL
            """, [*params, FEMALE_ONLY_DIAGNOSES, MALE_ONLY_DIAGNOSES, int(self.max_perinatal_age),
                  PERINATAL_DIAGNOSES, int(self.min_obstetric_age), int(self.max_obstetric_age),
                  OBSTETRIC_DIAGNOSES, FEMALE_ONLY_ITEMS, MALE_ONLY_ITEMS])
        volume = context.sql("SELECT fixmedins_code AS entity, count(*) AS visits FROM visit_fact "
                             "WHERE NOT coalesce(refunded, false) GROUP BY 1")
        if visits.empty:
            return pd.DataFrame(columns=["entity", "score"]), pd.DataFrame(columns=["entity", "mdtrt_id"])
        agg = visits.groupby("entity").agg(
            mismatched_visits=("mdtrt_id", "nunique"), patients=("psn_no", "nunique"), hit_fund=("fund", "sum"),
            top_reason=("reason", lambda s: s.value_counts().index[0]),
            examples=("icd", lambda s: ",".join(sorted({x for x in s if x})[:5])),
        ).reset_index().merge(volume, on="entity", how="left")
        full = volume.merge(agg[["entity", "mismatched_visits"]], on="entity", how="left").fillna(
            {"mismatched_visits": 0})
        rate = baseline_rate(full["mismatched_visits"], full["visits"], floor=self.baseline_floor,
                             min_volume=self.min_volume)
        agg["share"] = agg["mismatched_visits"] / agg["visits"].clip(lower=1)
        agg = score_entities(agg, hits="mismatched_visits", volume="visits", rate=rate, amount="hit_fund")
        return agg, visits[["entity", "mdtrt_id"]]

    def explain(self, f: dict[str, Any]) -> tuple[str, str]:
        reason_zh = {"female_diagnosis_for_male": "男性患者使用女性专属诊断", "male_diagnosis_for_female":
                     "女性患者使用男性专属诊断", "perinatal_diagnosis_for_older": "非新生儿使用围产期诊断",
                     "obstetric_diagnosis_for_age": "年龄不符的产科诊断",
                     "female_item_for_male": "男性患者收取女性专属项目",
                     "male_item_for_female": "女性患者收取男性专属项目"}.get(f["top_reason"], f["top_reason"])
        reason_en = str(f["top_reason"]).replace("_", " ")
        ex = f" ({f['examples']})" if f.get("examples") else ""
        zh = (f"{f['entity']} 有{f['mismatched_visits']}次就诊（{f['patients']}名患者）的诊断或收费项目与患者性别/年龄"
              f"不符，主要为{reason_zh}{ex}，为基线预期{f['expected']:.2f}次的{f['ratio']:.0f}倍；涉及基金"
              f"{f['amount_at_risk']:,.2f}元。")
        en = (f"{f['entity']}: {f['mismatched_visits']} visits ({f['patients']} patients) with a diagnosis or item "
              f"incompatible with the patient's sex or age, mostly {reason_en}{ex}, {f['ratio']:.0f}× the expected "
              f"{f['expected']:.2f}; fund payments {f['amount_at_risk']:,.2f} yuan.")
        return zh, en
