"""Peer anomalies (同类机构/医师/药店异常): institutions, practitioners or pharmacies far out of line with their peers
(same type, level, region) on robust z-scores, confirmed by a seeded isolation forest."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from fraudnet.detectors.base import ORANGE_AT, RED_AT, SEVERITY_ZH, Lead, severity_for_score
from fraudnet.detectors.rules.common import RED_MIN_AMOUNT
from fraudnet.errors import DetectorError

__all__ = ["PeerAnomalyDetector", "FEATURES", "ENTITY_TYPES", "peer_ratio", "anomaly_tier_cap"]

ENTITY_TYPES = ("institution", "practitioner", "pharmacy")

# feature → (Chinese label, English label, format, evidence predicate on the visit rows of the entity)
FEATURES: dict[str, tuple[str, str, str, str]] = {
    "fund_per_visit": ("次均基金支付", "fund paid per visit", "{:,.0f}元", "fund >= fund_p75"),
    "inpatient_share": ("住院占比", "inpatient share", "{:.1%}", "is_inpatient"),
    "mean_los": ("平均住院日", "mean length of stay", "{:.1f}天", "is_inpatient & (los_days >= 1)"),
    "key_drug_share": ("重点药品就诊占比", "share of visits with key drugs", "{:.1%}", "key_drug"),
    "off_hours_share": ("非工作时间占比", "off-hours share", "{:.1%}", "off_hours"),
    "refund_share": ("退费占比", "refund share", "{:.1%}", "refunded"),
    "far_patient_share": ("外区患者占比", "share of patients from other districts", "{:.1%}", "far"),
    "visits_per_patient": ("人均就诊次数", "visits per patient", "{:.2f}", "revisit"),
}
# Volumes are shown but not scored: being big is not suspicious (busy hospitals, busy pharmacies).
SHOWN = ("visits", "patients")
FEATURES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "institution": ("fund_per_visit", "inpatient_share", "mean_los", "key_drug_share", "off_hours_share",
                    "refund_share", "far_patient_share", "visits_per_patient"),
    "practitioner": ("fund_per_visit", "inpatient_share", "mean_los", "key_drug_share", "off_hours_share",
                     "refund_share", "far_patient_share", "visits_per_patient"),
    "pharmacy": ("fund_per_visit", "key_drug_share", "off_hours_share", "refund_share", "far_patient_share",
                 "visits_per_patient"),
}
LOG_FEATURES = frozenset({"fund_per_visit", "mean_los", "visits_per_patient"})
# Materiality of a deviation: the entity's value over its peer median. Shares get 5 points of slack on both sides
# (0.2 % → 0.6 % is no tripling; 0 % → 10 % is 3×), so that a ratio means the same for rare and common events.
SHARE_SLACK = 0.05
# A driving feature (robust z ≥ 3) is material at twice the peer median (the same "more likely than not"
# attributable fraction as a rule's orange); an extreme one at z ≥ z_cap and three times the median (a rule's
# red). An anomaly is a deviation from peers, not a violation: orange needs two material driving features and
# money on the evidence (RED_MIN_AMOUNT); red needs three extreme ones and that money, else it stays orange.
MATERIAL_RATIO = 2.0
EXTREME_RATIO = 3.0
ROWS_TABLE = "_fn_anomaly_visit_rows"
# Peer-group columns of an entity, the most frequent value over its visits (ties: the smallest value).
PROFILE = ("ftype", "lv", "region", "dept")


def _peer_zh(key: str, value: str) -> str:
    if key == "ftype":
        return {"1": "定点医疗机构", "2": "定点零售药店"}.get(value, f"机构类型{value}")
    if key == "care":
        return "有住院" if value == "inpatient" else "仅门诊"
    if key == "dept":
        return f"科室{value}" if value else "科室未填"
    if key == "lv":
        return f"医院等级{value}"
    if key == "region":
        return f"区划{value}"
    return f"{key}={value}"


def peer_ratio(feature: str, value: float, median: float) -> float:
    """Size of a deviation: value / peer median, with `SHARE_SLACK` added to both for share features."""
    slack = SHARE_SLACK if feature.endswith("share") else 0.0
    value = max(0.0, float(value)) if np.isfinite(value) else 0.0
    median = max(0.0, float(median)) if np.isfinite(median) else 0.0
    if median + slack <= 0:
        return math.inf if value > 0 else 1.0
    return (value + slack) / (median + slack)


def anomaly_tier_cap(details: list[dict], amount: float, z_cap: float, red_min_amount: float = RED_MIN_AMOUNT
                     ) -> tuple[float, str]:
    """(highest score allowed, tier driver) of an anomaly from its driving features (`feature`, `robust_z`,
    `peer_ratio`) and the fund on its evidence: yellow unless two features are material, orange unless three are
    extreme, and never above orange on less than `red_min_amount` yuan."""
    material = [d for d in details if d["robust_z"] >= 3.0 and d["peer_ratio"] >= MATERIAL_RATIO]
    extreme = [d for d in material if d["robust_z"] >= z_cap and d["peer_ratio"] >= EXTREME_RATIO]
    amount = float(amount) if np.isfinite(amount) else 0.0
    if len(material) < 2:
        return round(ORANGE_AT - 0.01, 4), "capped: effect too small"
    if amount < red_min_amount:
        return round(ORANGE_AT - 0.01, 4), "capped: amount too small"
    if len(extreme) < 3:
        return round(RED_AT - 0.01, 4), "capped: not extreme"
    return 1.0, "extreme"


class PeerAnomalyDetector:
    """Per-entity features (fund per visit, inpatient share, length of stay, key-drug share, off-hours share,
    refund share, patients from other districts, visits per patient; volumes shown) compared within peer
    groups with robust z-scores (median/MAD, one-sided: only "higher than peers" counts) and a seeded
    IsolationForest over the z-scores. Score: logistic of the mean of the two largest z-scores (one odd
    feature alone is not enough; each z capped at `z_cap`), damped when the forest does not find the entity
    isolated; conservative. The tier also needs a material deviation (`anomaly_tier_cap`): two driving features
    at ≥ 2× the peer median for orange, three extreme ones (z ≥ `z_cap`, ≥ 3×) and ≥ 1,000 yuan for red; the
    explanation says which limit set the tier.

    Parameters
    ----------
    entity_type : {"institution", "practitioner", "pharmacy"}
    peer_keys : tuple of str, optional
        Peer-group columns, most specific first (default: institution type, care profile — inpatient or
        outpatient-only —, for practitioners their main department, then level, region); groups smaller than
        `min_peers` fall back to fewer keys, but never mix care profiles.
    min_peers : int, default 8
    min_visits : int, default 30
        Entities with fewer visits are not scored.
    z_center, z_scale : float, default 5.0, 1.2
        Logistic of the top-2 mean robust z: 5 → 0.5, ≈6.7 → 0.8.
    min_score : float, default 0.4
        Leads below this score are not emitted.
    max_evidence : int, default 200
        Evidence visits per lead (those behind the top features, largest fund payments first).
    n_estimators : int, default 200
    seed : int, default 0
    off_hours : tuple of int, default (7, 22)
        Visits before the first or from the second hour are off hours.
    z_cap : float, default 8.0
        Each robust z counts at most this much in the score, so one extreme feature alone stays below red.
    min_inpatient_share : float, default 0.02
        Entities with at least this inpatient share have the inpatient care profile.
    """

    requires: tuple[str, ...] = ()  # visit-level figures; a missing detail lowers a feature, never raises it

    def __init__(self, entity_type: str = "institution", peer_keys: tuple[str, ...] | None = None,
                 min_peers: int = 8, min_visits: int = 30, z_center: float = 5.0, z_scale: float = 1.2,
                 min_score: float = 0.4, max_evidence: int = 200, n_estimators: int = 200, seed: int = 0,
                 off_hours: tuple[int, int] = (7, 22), min_inpatient_share: float = 0.02,
                 z_cap: float = 8.0) -> None:
        self.entity_type = entity_type
        self.peer_keys = peer_keys
        self.min_peers = min_peers
        self.min_visits = min_visits
        self.z_center = z_center
        self.z_scale = z_scale
        self.min_score = min_score
        self.max_evidence = max_evidence
        self.n_estimators = n_estimators
        self.seed = seed
        self.off_hours = off_hours
        self.min_inpatient_share = min_inpatient_share
        self.z_cap = z_cap

    @property
    def kind(self) -> str:
        return f"anomaly:{self.entity_type}"

    # ------------------------------------------------------------------ run
    def run(self, context: Any) -> list[Lead]:
        self._validate()
        if not self._has_visits(context):
            return []
        return self.leads_from_partials(context, self.partials(context, None))

    # Incremental detection (`fraudnet.detectors.incremental`): every feature is a ratio of sums over the entity's
    # visits, so the parts are counts — per entity (visits, known flags, flagged visits, fund in cents, inpatient
    # days), per entity and patient (visits: distinct patients, visits per patient) and per entity and peer profile
    # (visits: the most frequent type, level, region and department). All integers, so stored parts + the day's
    # parts give bit-identical features, peer statistics, forest and leads.
    incremental_parts = {"counts": ("entity",), "patients": ("entity", "psn_no"),
                         "profile": ("entity", *PROFILE)}

    def validate(self) -> None:
        self._validate()

    def partials(self, context: Any, scope: str | None = None) -> dict[str, pd.DataFrame]:
        """The parts of every visit, or (`scope`, a table of mdtrt_id) of those visits only."""
        self._validate()
        cte = self._base_cte(context, scope)
        counts = context.sql(cte + """
            SELECT entity, count(*)::BIGINT AS visits,
                   count(*) FILTER (NOT refunded)::BIGINT AS paid_visits,
                   coalesce(sum(round(fund * 100)::BIGINT) FILTER (NOT refunded), 0)::BIGINT AS fund_cents,
                   count(is_inpatient)::BIGINT AS care_known,
                   count(*) FILTER (is_inpatient)::BIGINT AS inpatient_visits,
                   coalesce(sum(los_days) FILTER (is_inpatient), 0)::BIGINT AS inpatient_days,
                   count(*) FILTER (key_drug)::BIGINT AS key_drug_visits,
                   count(off_hours)::BIGINT AS hours_known,
                   count(*) FILTER (off_hours)::BIGINT AS off_hours_visits,
                   count(*) FILTER (refunded)::BIGINT AS refund_visits,
                   count(*) FILTER (far)::BIGINT AS far_visits
            FROM r GROUP BY entity ORDER BY entity
        """)
        patients = context.sql(cte + """
            SELECT entity, psn_no, count(*)::BIGINT AS visits FROM r GROUP BY entity, psn_no ORDER BY entity, psn_no
        """)
        cols = ", ".join(PROFILE)
        profile = context.sql(cte + f"""
            SELECT entity, {cols}, count(*)::BIGINT AS visits FROM r GROUP BY entity, {cols} ORDER BY entity, {cols}
        """)
        return {"counts": counts, "patients": patients, "profile": profile}

    def leads_from_partials(self, context: Any, parts: dict[str, pd.DataFrame]) -> list[Lead]:
        features = self._features_from_parts(parts)
        features = features[features["visits"] >= self.min_visits].reset_index(drop=True)
        self.features_ = features
        if len(features) < self.min_peers:
            return []
        cols = list(FEATURES_BY_TYPE[self.entity_type])
        z, medians, groups = self._robust_z(features, cols)
        self.z_ = z
        self.isolation_ = None
        # The forest only damps (score = base × damp, damp ≤ 1): an entity whose undamped score rounds below
        # min_score is never flagged, so when no entity reaches it the forest is not fitted at all (the same leads).
        pos_all = np.clip(z.to_numpy(dtype=float), 0.0, None)
        top2 = -np.sort(-pos_all, axis=1)[:, :2]  # largest first, NaN last (as sort_values)
        with np.errstate(over="ignore", invalid="ignore"):
            base_all = 1.0 / (1.0 + np.exp(-(np.minimum(top2, self.z_cap).mean(axis=1) - self.z_center)
                                           / self.z_scale))
        candidates = np.flatnonzero(base_all >= self.min_score - 1e-4)
        if not len(candidates):
            return []
        forest = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed, contamination="auto")
        matrix = z.clip(lower=-10, upper=10).to_numpy()
        forest.fit(matrix)
        isolation = -forest.score_samples(matrix)  # ≈0.5 ordinary, → 1 isolated
        self.isolation_ = isolation
        leads: list[Lead] = []
        flagged: list[tuple[int, list[str], float]] = []
        for i in candidates:
            i = int(i)
            pos = z.iloc[i].clip(lower=0).sort_values(ascending=False)
            top = pos.iloc[:2].clip(upper=self.z_cap).to_numpy()  # capped: one extreme feature is not enough
            strength = float(top.mean()) if len(top) else 0.0
            base = 1.0 / (1.0 + math.exp(-(strength - self.z_center) / self.z_scale))
            damp = min(1.0, max(0.3, (float(isolation[i]) - 0.45) / 0.2))
            score = round(base * damp, 4)
            if score >= self.min_score:
                top_features = [f for f in pos.index[:3] if pos[f] >= 3.0] or [pos.index[0]]
                flagged.append((i, top_features, score))
        if not flagged:
            return []
        evidence = self._evidence(context, features, flagged)
        for i, top_features, score in flagged:
            row = features.iloc[i]
            entity = str(row["entity"])
            ev = evidence.get(entity)
            if ev is None or ev.empty:
                continue
            parts_zh, parts_en, details = [], [], []
            for f in top_features:
                zh, en, fmt, _ = FEATURES[f]
                value, median, zf = float(row[f]), float(medians.iloc[i][f]), float(z.iloc[i][f])
                parts_zh.append(f"{zh}{fmt.format(value)}（同类中位数{fmt.format(median)}，稳健z={zf:.1f}）")
                parts_en.append(f"{en} {fmt.format(value)} (peer median {fmt.format(median)}, robust z {zf:.1f})")
                details.append({"feature": f, "value": round(value, 4), "peer_median": round(median, 4),
                                "robust_z": round(zf, 2)})
            peers = groups[i]
            amount = float(ev.loc[~ev["refunded"].astype(bool), "fund"].sum())
            for d in details:
                d["peer_ratio"] = round(min(peer_ratio(d["feature"], d["value"], d["peer_median"]), 1e6), 3)
            cap, driver = anomaly_tier_cap(details, amount, self.z_cap)
            if self.entity_type == "practitioner" and "dept=" not in peers["label"] and cap >= ORANGE_AT:
                # compared without their department's peers, a specialist's case mix (dialysis, oncology…) is
                # indistinguishable from a deviation: a screening signal, not a warning
                cap, driver = round(ORANGE_AT - 0.01, 4), "capped: no department peers"
            raw = score
            score = round(min(score, cap), 4)
            if severity_for_score(score) == severity_for_score(raw):
                driver = "deviation"  # the strength of the deviation itself set the tier
            tier_zh, tier_en = self._tier_clause(score, driver, details, amount)
            label_zh = {"institution": "医疗机构", "practitioner": "医师", "pharmacy": "药店"}[self.entity_type]
            zh = (f"{label_zh}{entity}（{int(row['visits'])}次就诊，{int(row['patients'])}名患者）"
                  f"与{peers['size']}个同类"
                  f"（{peers['label_zh']}）相比异常：" + "；".join(parts_zh)
                  + f"；孤立森林异常分{isolation[i]:.2f}。" + tier_zh)
            en = (f"{self.entity_type.capitalize()} {entity} ({int(row['visits'])} visits, {int(row['patients'])} "
                  f"patients) stands out among {peers['size']} peers ({peers['label']}): " + "; ".join(parts_en)
                  + f"; isolation-forest score {isolation[i]:.2f}." + tier_en)
            feats = {"top_features": details, "peer_group": peers["label"], "peers": peers["size"],
                     "anomaly_score": raw, "tier_driver": driver,
                     "isolation_score": round(float(isolation[i]), 4),
                     "values": {c: round(float(row[c]), 4) for c in (*SHOWN, *cols)},
                     "peer_medians": {c: round(float(medians.iloc[i][c]), 4) for c in cols},
                     "robust_z": {c: round(float(z.iloc[i][c]), 2) for c in cols}}
            persons = ev["psn_no"].dropna().unique().tolist()
            pracs = ev["atddr_no"].dropna().unique().tolist()
            insts = ev["fixmedins_code"].dropna().unique().tolist()
            if self.entity_type == "practitioner":
                pracs = [entity]
            leads.append(Lead(
                kind=self.kind, score=score, persons=persons, practitioners=pracs, institutions=insts,
                evidence=ev["mdtrt_id"].tolist(), amount_at_risk=amount, period_start=ev["begntime"].min(),
                period_end=ev["endtime"].max(), explanation_zh=zh, explanation_en=en, features=feats,
            ))
        return leads

    # ------------------------------------------------------------------ parts
    @staticmethod
    def _tier_clause(score: float, driver: str, details: list[dict], amount: float) -> tuple[str, str]:
        """(zh, en) sentence on what set the anomaly's tier."""
        sev = severity_for_score(score)
        ratios = "、".join(f"{d['peer_ratio']:.1f}" for d in details)
        ratios_en = ", ".join(f"{d['peer_ratio']:.1f}×" for d in details)
        head_zh = f"分级{SEVERITY_ZH[sev]}：主要特征为同类中位数的{ratios}倍"
        head_en = f" Tier {sev}: driving features at {ratios_en} the peer median"
        if driver == "capped: effect too small":
            return (head_zh + f"，不足两项达到{MATERIAL_RATIO:g}倍，效应不足，限为{SEVERITY_ZH[sev]}。",
                    head_en + f"; fewer than two at {MATERIAL_RATIO:g}×: effect too small, capped at {sev}.")
        if driver == "capped: amount too small":
            return (head_zh + f"，涉及基金{amount:,.2f}元不足{RED_MIN_AMOUNT:,.0f}元，限为{SEVERITY_ZH[sev]}。",
                    head_en + f"; fund {amount:,.2f} yuan below {RED_MIN_AMOUNT:,.0f}: capped at {sev}.")
        if driver == "capped: no department peers":
            return (head_zh + f"；同科室同类医师不足，与跨科室同类比较的偏离可能只是专科差异，限为{SEVERITY_ZH[sev]}。",
                    head_en + f"; too few peers in the practitioner's department: against peers of other departments "
                    f"a deviation may be the specialty's case mix, capped at {sev}.")
        if driver == "capped: not extreme":
            return (head_zh + f"；同类异常本身不是违规，红色需三项极端偏离（z≥上限且≥{EXTREME_RATIO:g}倍），限为橙色。",
                    head_en + f"; a peer deviation is not a violation: red needs three extreme ones (z at the cap, "
                    f"≥ {EXTREME_RATIO:g}×), capped at orange.")
        if sev == "red":
            return head_zh + "，三项极端偏离且金额重大。", head_en + ": three extreme deviations and material money."
        nxt, nxt_zh = ("orange", "橙色") if sev == "yellow" else ("red", "红色")
        return (head_zh + f"；偏离强度不足以达到{nxt_zh}。",
                head_en + f"; the deviation is not strong enough for {nxt}.")

    def _validate(self) -> None:
        if self.entity_type not in ENTITY_TYPES:
            raise DetectorError(f"anomaly: entity_type {self.entity_type!r} is not one of {', '.join(ENTITY_TYPES)}")
        for name in ("min_peers", "min_visits", "z_scale", "max_evidence", "n_estimators"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise DetectorError(f"{self.kind}: parameter {name}={value!r} must be a positive number")
        if not 0 <= self.min_score <= 1:
            raise DetectorError(f"{self.kind}: parameter min_score={self.min_score!r} must be within 0–1")

    def _entity_sql(self) -> tuple[str, str]:
        """(entity expression, row filter) of the visit rows of one entity type."""
        if self.entity_type == "practitioner":
            return "atddr_no", "atddr_no IS NOT NULL AND atddr_no <> '' AND NOT is_pharmacy"
        if self.entity_type == "pharmacy":
            return "fixmedins_code", "(is_pharmacy OR ftype = '2')"
        return "fixmedins_code", "NOT is_pharmacy AND ftype <> '2'"

    def _has_visits(self, context: Any) -> bool:
        try:
            n = context.sql("SELECT count(*) AS n FROM visit_fact")["n"].iloc[0]
        except Exception as exc:  # noqa: BLE001 - the store may be empty
            raise DetectorError(f"{self.kind}: visit_fact is not readable ({exc})") from exc
        return bool(n)

    def _rows_select(self, context: Any, visits: str = "") -> str:
        """The SELECT of the visit rows with the per-visit flags, of every visit or of the visits `v` (visit_fact)
        meeting the condition `visits`."""
        lo, hi = int(self.off_hours[0]), int(self.off_hours[1])
        columns = {c.lower() for c in context.sql("SELECT * FROM visit_fact LIMIT 0").columns}
        dept = "coalesce(v.dept_code, '')" if "dept_code" in columns else "''"  # dept_code is optional
        where = f"WHERE {visits}" if visits else ""
        kd_scope = f"AND f.mdtrt_id IN (SELECT v.mdtrt_id FROM visit_fact v {where})" if visits else ""
        return f"""
            WITH kd AS (
                SELECT DISTINCT f.mdtrt_id FROM fee_list f JOIN hilist h USING (hilist_code)
                WHERE h.key_drug_flag = '1' {kd_scope}
            )
            SELECT v.mdtrt_id, v.psn_no, v.atddr_no, v.fixmedins_code, v.begntime,
                   coalesce(v.endtime, v.begntime) AS endtime, v.is_inpatient,
                   coalesce(v.is_pharmacy, false) AS is_pharmacy,
                   coalesce(v.los_days, 0) AS los_days, coalesce(v.fund_pay_sumamt, 0) AS fund,
                   coalesce(v.refunded, false) AS refunded,
                   (hour(v.begntime) < {lo} OR hour(v.begntime) >= {hi}) AS off_hours,
                   (p.live_admdvs IS NOT NULL AND m.admdvs IS NOT NULL AND p.live_admdvs <> m.admdvs) AS far,
                   kd.mdtrt_id IS NOT NULL AS key_drug,
                   coalesce(m.fixmedins_type, '') AS ftype, coalesce(m.hosp_lv, '') AS lv,
                   {dept} AS dept,
                   coalesce(left(m.admdvs, 6), '') AS region
            FROM visit_fact v LEFT JOIN medins_info m USING (fixmedins_code)
            LEFT JOIN psn_info p USING (psn_no) LEFT JOIN kd ON kd.mdtrt_id = v.mdtrt_id
            {where}
        """

    def _rows_table(self, context: Any, scope: str | None = None) -> str:
        """A temporary table of visit rows with the per-visit flags (of the visits in the table `scope` only, if
        given), built once per context and shared by the three anomaly detectors (dropped by `run_detectors` at
        the end of a run)."""
        key = f"{ROWS_TABLE}:{int(self.off_hours[0])}:{int(self.off_hours[1])}:{scope or ''}"
        if context.cache.get(ROWS_TABLE) == key:
            return ROWS_TABLE
        visits = f"v.mdtrt_id IN (SELECT mdtrt_id FROM {scope})" if scope else ""
        context.temp_table(ROWS_TABLE, self._rows_select(context, visits), shared=True)
        context.cache[ROWS_TABLE] = key
        return ROWS_TABLE

    def _base_cte(self, context: Any, scope: str | None = None) -> str:
        entity, where = self._entity_sql()
        table = self._rows_table(context, scope)
        return f"WITH r AS (SELECT {entity} AS entity, * FROM {table} WHERE {where})"

    def _features_from_parts(self, parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Per-entity features from the parts, one row per entity in entity order (whatever the parts' order)."""
        counts = parts["counts"].groupby("entity", sort=True).sum(numeric_only=True)
        pats = parts["patients"]
        patients = pats[pats["psn_no"].notna()].groupby("entity").size().reindex(counts.index, fill_value=0)

        def ratio(num: pd.Series, den: pd.Series) -> np.ndarray:
            num, den = num.to_numpy(dtype=float), den.to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

        frame = pd.DataFrame({"entity": counts.index.astype(str), "visits": counts["visits"].to_numpy(),
                              "patients": patients.to_numpy().astype("int64")})
        fund = ratio(counts["fund_cents"] / 100.0, counts["paid_visits"])
        frame["fund_per_visit"] = np.where(np.isnan(fund), 0.0, fund)
        frame["inpatient_share"] = ratio(counts["inpatient_visits"], counts["care_known"])
        los = ratio(counts["inpatient_days"], counts["inpatient_visits"])
        frame["mean_los"] = np.where(np.isnan(los), 0.0, los)
        frame["key_drug_share"] = ratio(counts["key_drug_visits"], counts["visits"])
        frame["off_hours_share"] = ratio(counts["off_hours_visits"], counts["hours_known"])
        frame["refund_share"] = ratio(counts["refund_visits"], counts["visits"])
        frame["far_patient_share"] = ratio(counts["far_visits"], counts["visits"])
        frame["visits_per_patient"] = ratio(counts["visits"], patients)
        prof = parts["profile"]
        for col in PROFILE:
            by = prof.groupby(["entity", col], as_index=False)["visits"].sum()
            top = by.sort_values(["entity", "visits", col], ascending=[True, False, True], kind="stable")
            mode = top.drop_duplicates("entity").set_index("entity")[col]
            frame[col] = mode.reindex(counts.index).fillna("").astype(str).to_numpy()
        # care profile: entities that admit inpatients are only compared with others that do
        frame["care"] = np.where(frame["inpatient_share"] >= self.min_inpatient_share, "inpatient", "outpatient")
        return frame

    def _robust_z(self, features: pd.DataFrame, cols: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
        default = ("ftype", "care", "dept", "lv", "region") if self.entity_type == "practitioner" else (
            "ftype", "care", "lv", "region")  # a practitioner is compared within their department first
        keys = list(self.peer_keys or default)
        values = features[cols].astype(float).copy()
        for c in cols:
            if c in LOG_FEATURES:
                values[c] = np.log1p(values[c].clip(lower=0))
        z = pd.DataFrame(0.0, index=features.index, columns=cols)
        medians = pd.DataFrame(0.0, index=features.index, columns=cols)
        groups: list[dict] = [{} for _ in range(len(features))]
        assigned = np.zeros(len(features), dtype=bool)
        min_depth = min(2, len(keys)) if self.peer_keys is None else 0  # never mix inpatient and outpatient care
        for depth in range(len(keys), min_depth - 1, -1):
            use = keys[:depth]
            grouped = features.groupby(use, dropna=False).groups if use else {(): features.index}
            for key, idx in grouped.items():
                idx = [i for i in idx if not assigned[i]]
                if not idx:
                    continue
                members = features.index if not use else grouped[key]
                if len(members) < self.min_peers and depth > min_depth:
                    continue
                block = values.loc[members]
                med = block.median()
                mad = (block - med).abs().median() * 1.4826
                # a MAD of zero (most peers identical) must not make every difference infinite
                floor = pd.Series({c: max(0.05 * abs(med[c]), 0.02 if c.endswith("share") else 0.05) for c in cols})
                scale = np.maximum(mad, floor)
                z.loc[idx] = ((values.loc[idx] - med) / scale).to_numpy()
                raw_med = features.loc[members, cols].astype(float).median()
                medians.loc[idx] = np.tile(raw_med.to_numpy(), (len(idx), 1))
                values_ = key if isinstance(key, tuple) else (key,)
                label = "/".join(f"{k}={v}" for k, v in zip(use, values_, strict=False)) or "all"
                label_zh = "，".join(_peer_zh(k, v) for k, v in zip(use, values_, strict=False)) or "全部"
                for i in idx:
                    groups[i] = {"size": int(len(members)), "label": label, "label_zh": label_zh}
                assigned[idx] = True
        if "mean_los" in z.columns and "care" in features.columns:  # no length of stay without inpatient care
            z.loc[features["care"] != "inpatient", "mean_los"] = 0.0
        return z, medians, groups

    def _evidence(self, context: Any, features: pd.DataFrame, flagged: list[tuple[int, list[str], float]]
                  ) -> dict[str, pd.DataFrame]:
        entities = pd.DataFrame({"entity": [str(features.iloc[i]["entity"]) for i, _, _ in flagged]})
        column, where = self._entity_sql()
        # the flagged entities' visits only (the rows table may hold the day's visits only)
        rows_sql = self._rows_select(context, f"v.{column} IN (SELECT entity FROM _fn_anom_entities)")
        with context.frame_table("_fn_anom_entities", entities):
            rows = context.sql(f"WITH r AS (SELECT {column} AS entity, * FROM ({rows_sql}) WHERE {where})" + """
                , fr AS (SELECT r.*, count(*) OVER (PARTITION BY r.entity, r.psn_no) AS pv,
                                quantile_cont(fund, 0.75) OVER (PARTITION BY r.entity) AS fund_p75
                         FROM r JOIN _fn_anom_entities e USING (entity))
                SELECT *, pv >= 3 AS revisit FROM fr
            """)
        out: dict[str, pd.DataFrame] = {}
        for i, top_features, _ in flagged:
            entity = str(features.iloc[i]["entity"])
            ent_rows = rows[rows["entity"] == entity]
            mask = np.zeros(len(ent_rows), dtype=bool)
            for f in top_features:
                mask |= ent_rows.eval(FEATURES[f][3]).to_numpy(dtype=bool)
            chosen = ent_rows[mask] if mask.any() else ent_rows
            # largest fund first, ties by visit id: the same evidence whatever order the rows came in
            chosen = chosen.sort_values(["fund", "mdtrt_id"], ascending=[False, True], kind="stable")
            out[entity] = chosen.head(int(self.max_evidence))
        return out
