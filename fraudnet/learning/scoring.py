"""Apply the current model: fraud probability per entity, expected recovery (probability × amount at risk) for
entities and leads, and the top contributing features in Chinese and English.

A lead's own decision never enters its own score: decided leads (confirmed, dismissed, referred) are scored on
features built without any label that came from lead decisions, and every entity's association features leave
its own label out (`fraudnet.learning.features`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudnet.learning.features import ENTITY_TYPES, EntityData, feature_label

__all__ = ["score_entities", "apply_to_leads", "rescore", "model_entity_scores", "workspace_of", "SCORE_COLUMNS",
           "TOP_FEATURES"]

log = logging.getLogger(__name__)

TOP_FEATURES = 3
# Entities explained per type beyond those named in leads (the highest expected recoveries).
EXPLAIN_TOP = 500
SCORE_COLUMNS = ("entity_type", "entity_id", "probability", "amount_at_risk", "expected_recovery",
                 "unsupervised_risk", "top_features", "explanation_zh", "explanation_en", "model_version")
DECIDED = ("confirmed", "dismissed", "referred")


def workspace_of(con: Any) -> Path | None:
    """The workspace folder of a claims-store connection (None for an in-memory database)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return Path(row[0]).parent if row and row[0] else None


def _aligned(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    return frame.reindex(columns=features, fill_value=0.0)


def _explain(contrib: np.ndarray, x: np.ndarray, features: list[str], p: float, amount: float,
             top: int = TOP_FEATURES) -> tuple[list[dict[str, Any]], str, str]:
    order = [j for j in np.argsort(-np.abs(contrib)) if contrib[j] != 0][:top]
    items = [{"feature": features[j], "zh": feature_label(features[j], "zh"), "en": feature_label(features[j], "en"),
              "value": round(float(x[j]), 4), "contribution": round(float(contrib[j]), 4)} for j in order]
    zh_f = "、".join(f"{i['zh']}={i['value']:g}（对数几率 {i['contribution']:+.2f}）" for i in items) or "无突出因素"
    en_f = "; ".join(f"{i['en']} = {i['value']:g} (log-odds {i['contribution']:+.2f})" for i in items) \
        or "no single factor"
    zh = (f"模型违规概率 {p:.2f} × 涉嫌金额 {amount:,.2f} 元 = 预期追回 {p * amount:,.2f} 元；主要因素：{zh_f}")
    en = (f"model fraud probability {p:.2f} × amount at risk {amount:,.2f} = expected recovery {p * amount:,.2f}; "
          f"top factors: {en_f}")
    return items, zh, en


def score_entities(data: EntityData, models: dict[str, Any], labels: pd.DataFrame | None, version: str,
                   explain_ids: dict[str, set[str]] | None = None) -> pd.DataFrame:
    """Probability, amount at risk (the entity's active leads), expected recovery and explanation per entity of
    every trained type. Entities in `explain_ids` and the top `EXPLAIN_TOP` by expected recovery get their top
    contributing features."""
    feats = data.features(labels)
    frames = []
    for t in ENTITY_TYPES:
        fitted = models.get(t)
        if fitted is None:
            continue
        f = _aligned(feats[t], fitted.features)
        p = fitted.predict(f)
        amount = data.lead_amount[t].reindex(f.index).fillna(0.0).to_numpy(dtype=float)
        out = pd.DataFrame({"entity_type": t, "entity_id": f.index, "probability": np.round(p, 6),
                            "amount_at_risk": np.round(amount, 2), "expected_recovery": np.round(p * amount, 2),
                            "unsupervised_risk": data.risk[t].reindex(f.index).to_numpy(dtype=float)})
        want = set((explain_ids or {}).get(t, set()))
        want |= set(out.nlargest(EXPLAIN_TOP, ["expected_recovery", "probability"])["entity_id"])
        mask = out["entity_id"].isin(want).to_numpy()
        tops: list[Any] = [None] * len(out)
        zhs: list[Any] = [None] * len(out)
        ens: list[Any] = [None] * len(out)
        if mask.any():
            sub = f.loc[mask]
            contrib = fitted.contributions(sub)
            xs = sub.to_numpy(dtype=float)
            for k, i in enumerate(np.flatnonzero(mask)):
                items, zh, en = _explain(contrib[k], xs[k], fitted.features, float(p[i]), float(amount[i]))
                tops[i], zhs[i], ens[i] = json.dumps(items, ensure_ascii=False), zh, en
        out["top_features"], out["explanation_zh"], out["explanation_en"] = tops, zhs, ens
        out["model_version"] = version
        frames.append(out)
    if not frames:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(SCORE_COLUMNS)]


def _lead_rows(con: Any) -> pd.DataFrame:
    return con.execute("SELECT lead_id, kind, status, amount_at_risk, persons, practitioners, institutions "
                       "FROM leads WHERE active").df()


def _key_members(kind: str, row: Any) -> list[tuple[str, str]]:
    from fraudnet.detectors.evaluate import PERSON_KINDS

    if kind in PERSON_KINDS:
        return [("Person", p) for p in (row.persons if row.persons is not None else [])]
    return [("Institution", i) for i in (row.institutions if row.institutions is not None else [])]


def _all_members(row: Any) -> list[tuple[str, str]]:
    out = []
    for col, t in (("persons", "Person"), ("practitioners", "Practitioner"), ("institutions", "Institution")):
        out.extend((t, m) for m in (getattr(row, col) if getattr(row, col) is not None else []))
    return out


def apply_to_leads(con: Any, scores: pd.DataFrame, decided_scores: pd.DataFrame | None, version: str) -> int:
    """Write each active lead's model probability (the highest of its key entities — persons for person rules,
    institutions otherwise — else of any member of a trained type), expected recovery (probability × amount at
    risk) and explanation. Decided leads use `decided_scores` (features without decision labels)."""
    leads = _lead_rows(con)
    if leads.empty:
        return 0

    def index(frame: pd.DataFrame | None) -> dict[tuple[str, str], tuple[float, str | None, str | None]]:
        if frame is None or frame.empty:
            return {}
        return {(t, i): (p, zh, en) for t, i, p, zh, en in frame[["entity_type", "entity_id", "probability",
                                                                    "explanation_zh", "explanation_en"]]
                .itertuples(index=False)}

    live, blind = index(scores), index(decided_scores)
    rows = []
    for row in leads.itertuples(index=False):
        table = blind if (row.status in DECIDED and blind) else live
        cands = [table[m] for m in _key_members(row.kind, row) if m in table] or \
                [table[m] for m in _all_members(row) if m in table]
        if not cands:
            continue
        p, zh, en = max(cands, key=lambda c: c[0])
        amount = float(row.amount_at_risk or 0.0)
        zh_l = (f"模型违规概率 {p:.2f} × 本线索涉嫌金额 {amount:,.2f} 元 = 预期追回 {p * amount:,.2f} 元"
                + (f"（{zh.split('；', 1)[1]}）" if zh and "；" in zh else ""))
        en_l = (f"model fraud probability {p:.2f} × this lead's amount at risk {amount:,.2f} = expected recovery "
                f"{p * amount:,.2f}" + (f" ({en.split('; ', 1)[1]})" if en and "; " in en else ""))
        rows.append((row.lead_id, float(p), round(float(p) * amount, 2), version, zh_l, en_l))
    if not rows:
        return 0
    frame = pd.DataFrame(rows, columns=["lead_id", "p", "er", "v", "zh", "en"])
    con.register("_fn_model_scores", frame)
    try:
        con.execute("""UPDATE leads SET model_probability = s.p, expected_recovery = s.er, model_version = s.v,
                              model_explanation_zh = s.zh, model_explanation_en = s.en,
                              raised_model_probability = coalesce(leads.raised_model_probability, s.p),
                              raised_model_version = coalesce(leads.raised_model_version, s.v)
                       FROM _fn_model_scores s WHERE leads.lead_id = s.lead_id""")
    finally:
        con.unregister("_fn_model_scores")
    return len(rows)


def _store_scores(con: Any, scores: pd.DataFrame) -> None:
    con.register("_fn_entity_scores", scores)
    try:
        con.execute("CREATE OR REPLACE TABLE model_scores AS SELECT * FROM _fn_entity_scores")
    finally:
        con.unregister("_fn_entity_scores")


def model_entity_scores(con: Any) -> pd.DataFrame:
    """The stored model scores per entity (empty when no model has scored this store)."""
    try:
        return con.execute("SELECT * FROM model_scores ORDER BY expected_recovery DESC, probability DESC").df()
    except Exception:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))


def rescore(con: Any, workspace: str | Path | None = None, version: str | None = None,
            data: EntityData | None = None) -> dict[str, Any] | None:
    """Score entities and leads with `version` (default: the pinned or newest); None when no model exists."""
    from fraudnet.learning.labels import all_labels, list_labels
    from fraudnet.learning.model import current_version, load_models

    workspace = workspace or workspace_of(con)
    if workspace is None:
        return None
    version = version or current_version(workspace)
    if version is None:
        return None
    from fraudnet.claims.leads import LeadStore

    LeadStore(con)  # the lead tables and their model columns exist
    models = load_models(workspace, version)
    data = data or EntityData.load(con)
    leads = _lead_rows(con)
    explain: dict[str, set[str]] = {t: set() for t in ENTITY_TYPES}
    for row in leads.itertuples(index=False):
        for t, m in _all_members(row):
            explain[t].add(m)
    scores = score_entities(data, models, all_labels(con), version, explain)
    decided_scores = None
    if leads["status"].isin(DECIDED).any():
        # Without any decision label: a decided lead's own decision cannot reach its score.
        decided_scores = score_entities(data, models, list_labels(con), version, explain)
    con.execute("BEGIN TRANSACTION")
    try:
        _store_scores(con, scores)
        n = apply_to_leads(con, scores, decided_scores, version)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return {"version": version, "entities": len(scores), "leads": n}
