"""Train, validate, calibrate and persist the learned ranking: one scikit-learn classifier per entity type.

Per type with enough labels (≥ `MIN_PER_CLASS` fraud and clean): gradient boosting and regularised logistic
regression are compared by grouped cross-validation (average precision, groups = the entity's main institution,
so one institution's staff and patients never sit on both sides); the better one is calibrated (Platt sigmoid,
cross-fitted) and fitted on every label. Held-out figures come from a time split (train on labels decided before
the cut-off, test on those after) when the labels carry dates, else from grouped k-fold; they are shown beside
the unsupervised risk and ranking by amount alone on the same test entities, with bootstrap 95% intervals.
A version is a folder `<workspace>/models/<version>/` with one joblib per type and `manifest.json`.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudnet.errors import InvalidRequestError, NotFoundError
from fraudnet.learning.features import ENTITY_TYPES, EntityData

__all__ = [
    "MIN_PER_CLASS",
    "TrainResult",
    "train",
    "evaluate_holdout",
    "bootstrap_ci",
    "list_versions",
    "load_manifest",
    "load_models",
    "current_version",
    "pin_version",
    "models_dir",
    "fit_type",
    "ranking_metrics",
    "trainable_types",
]

log = logging.getLogger(__name__)

MIN_PER_CLASS = 20
N_BOOT = 1000
TIME_SPLIT_QUANTILE = 0.7
CANDIDATES = ("gradient_boosting", "logistic")


def models_dir(workspace: str | Path) -> Path:
    return Path(workspace) / "models"


def _make(name: str, seed: int = 0) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "gradient_boosting":
        return HistGradientBoostingClassifier(max_iter=120, learning_rate=0.08, max_leaf_nodes=15,
                                              min_samples_leaf=10, l2_regularization=1.0, early_stopping=False,
                                              random_state=seed)
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=2000))
    raise InvalidRequestError(f"unknown model {name!r}", field="model")


def _splits(y: np.ndarray, groups: np.ndarray, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped stratified folds (fewer when a class is small); plain stratified when groups are too few."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    minority = int(min((y == 1).sum(), (y == 0).sum()))
    k = max(2, min(k, minority))
    if len(np.unique(groups)) >= k * 2:
        folds = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(y, y, groups))
        if all(len(np.unique(y[te])) == 2 and len(np.unique(y[tr])) == 2 for tr, te in folds):
            return folds
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(y, y))


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by the rank-sum (ties get average ranks), as sklearn's roc_auc_score."""
    from scipy.stats import rankdata

    pos = y == 1
    n1, n0 = int(pos.sum()), int(len(y) - pos.sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _ap(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision (step-wise, ties grouped), as sklearn's average_precision_score."""
    n1 = int(y.sum())
    if n1 == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    tps = np.cumsum(ys)
    last = np.r_[np.flatnonzero(np.diff(ss) != 0), len(ss) - 1]  # end of each tie group
    tp = tps[last]
    precision = tp / (last + 1)
    recall = tp / n1
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC and average precision of ranking by `score` (higher = more suspect)."""
    y = np.asarray(y).astype(int)
    score = np.nan_to_num(np.asarray(score, dtype=float), nan=-np.inf)
    return {"auc": _auc(y, score), "ap": _ap(y, score)}


class _Sorted:
    """One ranking's order (descending score, ties grouped) for weighted AUC / AP: a bootstrap resample is a
    vector of multiplicities over the fixed order, so no resample needs sorting again."""

    def __init__(self, y: np.ndarray, s: np.ndarray) -> None:
        self.order = np.argsort(-s, kind="mergesort")
        self.ys = y[self.order].astype(float)
        ss = s[self.order]
        self.starts = np.r_[0, np.flatnonzero(np.diff(ss) != 0) + 1]

    def metrics(self, w: np.ndarray) -> tuple[float, float]:
        w = w[self.order]
        pw, nw = w * self.ys, w * (1.0 - self.ys)
        pos_g = np.add.reduceat(pw, self.starts)
        neg_g = np.add.reduceat(nw, self.starts)
        p, n = pos_g.sum(), neg_g.sum()
        neg_below = n - np.cumsum(neg_g)
        auc = float(np.sum(pos_g * (neg_below + 0.5 * neg_g)) / (p * n))
        tp = np.cumsum(pos_g)
        seen = np.cumsum(pos_g + neg_g)
        precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
        ap = float(np.sum(pos_g / p * precision))
        return auc, ap


def bootstrap_ci(y: np.ndarray, scores: dict[str, np.ndarray], n_boot: int = N_BOOT,
                 seed: int = 0) -> dict[str, dict[str, Any]]:
    """ROC AUC and average precision per ranking with percentile bootstrap 95% intervals (the same resamples for
    every ranking, stratified by class so each resample has both)."""
    y = np.asarray(y).astype(int)
    scores = {n: np.nan_to_num(np.asarray(s, dtype=float), nan=-np.inf) for n, s in scores.items()}
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) == 0 or len(neg) == 0:
        return {n: {"auc": float("nan"), "ap": float("nan"), "auc_ci": [None, None], "ap_ci": [None, None]}
                for n in scores}
    ranked = {n: _Sorted(y, s) for n, s in scores.items()}
    boot = {n: {"auc": [], "ap": []} for n in scores}
    for _ in range(n_boot):
        w = np.bincount(np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]),
                        minlength=len(y)).astype(float)
        for name, r in ranked.items():
            auc, ap = r.metrics(w)
            boot[name]["auc"].append(auc)
            boot[name]["ap"].append(ap)
    out: dict[str, dict[str, Any]] = {}
    for name, s in scores.items():
        out[name] = ranking_metrics(y, s)
        for m in ("auc", "ap"):
            out[name][f"{m}_ci"] = [float(np.percentile(boot[name][m], 2.5)),
                                    float(np.percentile(boot[name][m], 97.5))]
    return out


MAX_CLEAN = 10_000


def _fit(name: str, x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int = 0) -> Any:
    """Fit one candidate with sample weights (single-threaded: OpenMP threads on a busy machine cost far more
    than they save)."""
    from threadpoolctl import threadpool_limits

    model = _make(name, seed)
    with threadpool_limits(1):
        if name == "logistic":
            return model.fit(x, y, logisticregression__sample_weight=w)
        return model.fit(x, y, sample_weight=w)


def _raw(model: Any, x: np.ndarray) -> np.ndarray:
    """The classifier's own log-odds (decision function), unclipped."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        if hasattr(model, "decision_function"):
            return np.asarray(model.decision_function(x), dtype=float)
        return _logit(model.predict_proba(x)[:, 1])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class _Fitted:
    """A classifier of one type with its Platt calibration (fitted on cross-validated predictions), its
    feature names and the medians used to explain it."""

    entity_type: str
    model_name: str
    features: list[str]
    estimator: Any
    medians: np.ndarray
    platt: tuple[float, float] = (1.0, 0.0)
    cv: dict[str, Any] = field(default_factory=dict)

    def _log_odds(self, x: np.ndarray) -> np.ndarray:
        a, b = self.platt
        return a * _raw(self.estimator, x) + b

    def _calibrated(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self._log_odds(x)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of fraud per row of `frame` (a feature table)."""
        return self._calibrated(frame[self.features].to_numpy(dtype=float))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per entity and feature: the log-odds of fraud minus the log-odds with that feature set to its median
        (positive: the feature raises the entity's probability; log-odds still tell features apart when the
        probability is near 0 or 1)."""
        x = frame[self.features].to_numpy(dtype=float)
        base = self._log_odds(x)
        out = np.zeros_like(x)
        for j in range(x.shape[1]):
            changed = x[:, j] != self.medians[j]
            if not changed.any():
                continue
            xj = x[changed].copy()
            xj[:, j] = self.medians[j]
            out[changed, j] = base[changed] - self._log_odds(xj)
        return out


def _labelled(frame: pd.DataFrame, labels: pd.DataFrame, entity_type: str) -> pd.DataFrame:
    lab = labels[labels["entity_type"] == entity_type]
    lab = lab[lab["entity_id"].isin(frame.index)]
    return lab.drop_duplicates("entity_id", keep="first")


def _training_set(feats: pd.DataFrame, lab: pd.DataFrame, data: EntityData, entity_type: str,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, y, weights, groups of the labelled entities; clean ones beyond MAX_CLEAN are sampled and weighted
    up so that the fraud base rate (and so the calibration) stays that of the labels."""
    y_all = (lab["label"].to_numpy() == "fraud").astype(int)
    keep = np.arange(len(lab))
    w = np.ones(len(lab))
    clean = np.flatnonzero(y_all == 0)
    if len(clean) > MAX_CLEAN:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(clean, MAX_CLEAN, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(y_all == 1), chosen]))
        w = np.where(y_all[keep] == 0, len(clean) / MAX_CLEAN, 1.0)
    ids = lab["entity_id"].to_numpy()[keep]
    x = feats.loc[ids].to_numpy(dtype=float)
    groups = data.main_institution[entity_type].reindex(ids).fillna("?").to_numpy()
    return x, y_all[keep], w, groups


def fit_type(data: EntityData, labels: pd.DataFrame, entity_type: str, seed: int = 0,
             model_name: str | None = None, calibrate: bool = True,
             feats: pd.DataFrame | None = None) -> _Fitted:
    """Choose (grouped CV, average precision) and fit a calibrated classifier for one entity type on `labels`.

    Features come from `data.features(labels)`: every entity's association features use the other entities'
    labels only. With `model_name` the choice is skipped; without `calibrate` no cross-validation runs at all
    (rankings need no calibration).
    """
    feats = data.features(labels)[entity_type] if feats is None else feats
    lab = _labelled(feats, labels, entity_type)
    x, y, w, groups = _training_set(feats, lab, data, entity_type, seed)
    names = [model_name] if model_name else list(CANDIDATES)
    cv: dict[str, Any] = {"grouped_by": "main institution"}
    oof: dict[str, np.ndarray] = {}
    if calibrate or len(names) > 1:
        folds = _splits(y, groups, k=5 if len(y) <= 5000 else 3, seed=seed)
        cv["folds"] = len(folds)
        for name in names:
            pred = np.zeros(len(y))
            for tr, te in folds:
                pred[te] = _raw(_fit(name, x[tr], y[tr], w[tr], seed), x[te])
            oof[name] = pred
            cv[name] = ranking_metrics(y, pred)
    chosen = max(names, key=lambda n: (cv[n]["ap"], n == "logistic")) if len(names) > 1 else names[0]
    cv["chosen"] = chosen
    if len(names) > 1:
        o = next(n for n in names if n != chosen)
        cv["why"] = (f"{chosen}: grouped cross-validated average precision {cv[chosen]['ap']:.3f} vs "
                     f"{cv[o]['ap']:.3f} for {o} (ROC AUC {cv[chosen]['auc']:.3f} vs {cv[o]['auc']:.3f})")
    platt = (1.0, 0.0)
    if calibrate:
        from sklearn.linear_model import LogisticRegression

        z = oof[chosen].reshape(-1, 1)  # cross-fitted log-odds
        cal = LogisticRegression(C=1e6, max_iter=1000).fit(z, y, sample_weight=w)
        platt = (float(cal.coef_[0][0]), float(cal.intercept_[0]))
    estimator = _fit(chosen, x, y, w, seed)
    return _Fitted(entity_type, chosen, list(feats.columns), estimator,
                   np.median(feats.to_numpy(dtype=float), axis=0), platt, cv)


def evaluate_holdout(data: EntityData, labels: pd.DataFrame, entity_type: str, seed: int = 0,
                     test_labels: pd.DataFrame | None = None, model_name: str | None = None) -> dict[str, Any]:
    """Held-out ROC AUC / average precision of the learned ranking, the unsupervised risk and amount alone.

    With `test_labels` given (a benchmark's hidden truth), train on `labels` and test on those. Otherwise a time
    split when ≥ 80% of the type's labels are dated (cut-off at the 70th percentile of decision dates), else
    grouped k-fold by main institution (out-of-fold predictions; each fold's features know only the other folds'
    labels).
    """
    lab_all = labels[labels["entity_type"] == entity_type]
    lab_all = lab_all[lab_all["entity_id"].isin(data.index[entity_type])].drop_duplicates("entity_id")
    ids: list[str] = []
    preds: list[np.ndarray] = []
    method: dict[str, Any]
    if test_labels is not None:
        test = test_labels[test_labels["entity_type"] == entity_type]
        test = test[test["entity_id"].isin(data.index[entity_type]) & ~test["entity_id"].isin(lab_all["entity_id"])]
        feats = data.features(labels)[entity_type]
        fitted = fit_type(data, labels, entity_type, seed, model_name=model_name, calibrate=False, feats=feats)
        ids, preds = list(test["entity_id"]), [fitted.predict(feats.loc[test["entity_id"]])]
        y_map = dict(zip(test["entity_id"], test["label"], strict=True))
        method = {"method": "given split", "train": len(lab_all), "test": len(test), "chosen": fitted.model_name}
    else:
        dates = pd.to_datetime(lab_all["decided_at"], errors="coerce")
        y_map = dict(zip(lab_all["entity_id"], lab_all["label"], strict=True))
        split = None
        if len(lab_all) and dates.notna().mean() >= 0.8:
            cut = dates.quantile(TIME_SPLIT_QUANTILE)
            train_mask, test_mask = (dates < cut).to_numpy(), (dates >= cut).to_numpy()
            yt = lab_all["label"].to_numpy()
            if all(((yt[m] == c).sum() >= 5) for m in (train_mask, test_mask) for c in ("fraud", "clean")):
                split = (cut, train_mask, test_mask)
        if split is not None:
            cut, train_mask, test_mask = split
            other = labels[labels["entity_type"] != entity_type]
            known = pd.concat([other[pd.to_datetime(other["decided_at"], errors="coerce") < cut],
                               lab_all[train_mask]], ignore_index=True)
            feats = data.features(known)[entity_type]
            fitted = fit_type(data, known, entity_type, seed, model_name=model_name, calibrate=False, feats=feats)
            test = lab_all[test_mask]
            ids, preds = list(test["entity_id"]), [fitted.predict(feats.loc[test["entity_id"]])]
            method = {"method": "time split", "cutoff": str(cut.date()), "train": int(train_mask.sum()),
                      "test": int(test_mask.sum()), "chosen": fitted.model_name}
        else:
            y = (lab_all["label"].to_numpy() == "fraud").astype(int)
            groups = data.main_institution[entity_type].reindex(lab_all["entity_id"]).fillna("?").to_numpy()
            folds = _splits(y, groups, seed=seed)
            if model_name is None:
                model_name = fit_type(data, labels, entity_type, seed, calibrate=False).model_name
            chosen = []
            for _tr, te in folds:
                held = set(lab_all["entity_id"].iloc[te])
                known = labels[~((labels["entity_type"] == entity_type) & labels["entity_id"].isin(held))]
                feats = data.features(known)[entity_type]
                fitted = fit_type(data, known, entity_type, seed, model_name=model_name, calibrate=False,
                                  feats=feats)
                test_ids = list(lab_all["entity_id"].iloc[te])
                ids.extend(test_ids)
                preds.append(fitted.predict(feats.loc[test_ids]))
                chosen.append(fitted.model_name)
            method = {"method": "grouped k-fold by main institution", "folds": len(folds), "test": len(ids),
                      "chosen": max(set(chosen), key=chosen.count)}
    y = np.asarray([1 if y_map[i] == "fraud" else 0 for i in ids])
    learned = np.concatenate(preds) if preds else np.zeros(0)
    scores = {"learned": learned, "unsupervised_risk": data.risk[entity_type].reindex(ids).to_numpy(dtype=float),
              "amount": data.amount[entity_type].reindex(ids).to_numpy(dtype=float)}
    figures = bootstrap_ci(y, scores, seed=seed)
    return {**method, "fraud": int(y.sum()), "clean": int(len(y) - y.sum()), "rankings": figures}


@dataclass
class TrainResult:
    """What `train` did: the version written (None when nothing changed) and per type its figures or why not."""

    version: str | None
    trained: dict[str, dict[str, Any]]
    skipped: dict[str, str]
    seconds: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "trained": self.trained, "skipped": self.skipped,
                "seconds": round(self.seconds, 1), "message": self.message}


def trainable_types(labels: pd.DataFrame) -> list[str]:
    """Entity types with at least MIN_PER_CLASS fraud and MIN_PER_CLASS clean labels."""
    return [t for t in ENTITY_TYPES
            if ((labels["entity_type"] == t) & (labels["label"] == "fraud")).sum() >= MIN_PER_CLASS
            and ((labels["entity_type"] == t) & (labels["label"] == "clean")).sum() >= MIN_PER_CLASS]


def _batch_range(con: Any) -> dict[str, Any]:
    try:
        b = con.execute("SELECT min(batch_id), max(batch_id) FROM ingest_batches").fetchone()
        p = con.execute("SELECT min(begntime), max(begntime) FROM visit_fact").fetchone()
    except Exception:
        return {}
    return {"batch_from": b[0], "batch_to": b[1], "data_from": str(p[0]) if p[0] else None,
            "data_to": str(p[1]) if p[1] else None}


def train(con: Any, workspace: str | Path, user: str = "cli", seed: int = 0, evaluate: bool = True,
          labels: pd.DataFrame | None = None, data: EntityData | None = None) -> TrainResult:
    """Fit a model per entity type with enough labels and write a new version; with too few labels for every
    type, say so and write nothing."""
    import joblib
    import sklearn

    from fraudnet.learning.labels import all_labels

    t0 = time.perf_counter()
    labels = all_labels(con) if labels is None else labels
    counts = {t: {"fraud": int(((labels["entity_type"] == t) & (labels["label"] == "fraud")).sum()),
                  "clean": int(((labels["entity_type"] == t) & (labels["label"] == "clean")).sum())}
              for t in ENTITY_TYPES}
    skipped = {t: (f"too few labels: {c['fraud']} fraud and {c['clean']} clean (need ≥ {MIN_PER_CLASS} of each) "
                   f"/ 标签不足：违规 {c['fraud']}、正常 {c['clean']}（各需 ≥ {MIN_PER_CLASS}）")
               for t, c in counts.items() if c["fraud"] < MIN_PER_CLASS or c["clean"] < MIN_PER_CLASS}
    todo = [t for t in ENTITY_TYPES if t not in skipped]
    if not todo:
        return TrainResult(None, {}, skipped, time.perf_counter() - t0,
                           "too few labels for every entity type; no model trained, nothing changed / "
                           "标签不足，未训练模型，未作任何更改")
    data = data or EntityData.load(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    version = now.strftime("M%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    folder = models_dir(workspace) / version
    trained: dict[str, dict[str, Any]] = {}
    fitted_all: dict[str, _Fitted] = {}
    for t in todo:
        fitted = fit_type(data, labels, t, seed)
        fitted_all[t] = fitted
        entry: dict[str, Any] = {"model": fitted.model_name, "cv": fitted.cv, **counts[t],
                                 "features": fitted.features}
        if evaluate:
            entry["evaluation"] = evaluate_holdout(data, labels, t, seed, model_name=fitted.model_name)
        trained[t] = entry
    dated = pd.to_datetime(labels["decided_at"], errors="coerce").dropna()
    manifest = {
        "version": version, "created_at": now.isoformat(timespec="microseconds"), "created_by": user,
        "sklearn": sklearn.__version__, "labels": counts,
        "labels_decided_from": str(dated.min().date()) if len(dated) else None,
        "labels_decided_to": str(dated.max().date()) if len(dated) else None,
        "data": _batch_range(con), "types": trained, "skipped": skipped,
        "calibration": "Platt sigmoid, cross-fitted (CalibratedClassifierCV)",
        "seconds": None,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for t, fitted in fitted_all.items():
        joblib.dump(fitted, folder / f"{t.lower()}.joblib")
    manifest["seconds"] = round(time.perf_counter() - t0, 1)
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str),
                                          encoding="utf-8")
    return TrainResult(version, trained, skipped, time.perf_counter() - t0, f"model {version} trained")


def list_versions(workspace: str | Path) -> list[dict[str, Any]]:
    """Manifests of every stored version, newest first, with `pinned` and `current` flags."""
    root = models_dir(workspace)
    if not root.is_dir():
        return []
    pinned = _pinned(workspace)
    out = []
    for d in root.iterdir():
        m = d / "manifest.json"
        if d.is_dir() and m.is_file():
            try:
                out.append(json.loads(m.read_text(encoding="utf-8")))
            except json.JSONDecodeError:
                log.warning("unreadable model manifest %s", m)
    # newest first: creation to the microsecond (two trainings can fall in one second; older manifests have
    # seconds only, which still order correctly as text)
    out.sort(key=lambda m: m.get("created_at") or "", reverse=True)
    current = pinned or (out[0]["version"] if out else None)
    for m in out:
        m["pinned"] = m["version"] == pinned
        m["current"] = m["version"] == current
    return out


def _pinned(workspace: str | Path) -> str | None:
    p = models_dir(workspace) / "PINNED"
    if p.is_file():
        v = p.read_text(encoding="utf-8").strip()
        return v if (models_dir(workspace) / v / "manifest.json").is_file() else None
    return None


def current_version(workspace: str | Path) -> str | None:
    """The pinned version, else the newest; None when no model was trained."""
    versions = list_versions(workspace)
    return next((m["version"] for m in versions if m["current"]), None)


def pin_version(workspace: str | Path, version: str | None) -> None:
    """Pin a version (scores use it even after newer trainings); None unpins (the newest is used)."""
    p = models_dir(workspace) / "PINNED"
    if version is None:
        p.unlink(missing_ok=True)
        return
    load_manifest(workspace, version)
    p.write_text(version, encoding="utf-8")


def load_manifest(workspace: str | Path, version: str) -> dict[str, Any]:
    if not version or "/" in version or "\\" in version or version.startswith("."):
        raise InvalidRequestError(f"model version {version!r} is not a version name", field="version")
    m = models_dir(workspace) / version / "manifest.json"
    if not m.is_file():
        raise NotFoundError(f"model version {version!r} not found in {models_dir(workspace)}")
    return json.loads(m.read_text(encoding="utf-8"))


def load_models(workspace: str | Path, version: str) -> dict[str, _Fitted]:
    """The fitted classifiers of a version, by entity type."""
    import joblib

    manifest = load_manifest(workspace, version)
    folder = models_dir(workspace) / version
    return {t: joblib.load(folder / f"{t.lower()}.joblib") for t in manifest.get("types", {})}
