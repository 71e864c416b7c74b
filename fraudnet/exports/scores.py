"""Entity risk score export (entity_type, entity_id, score, leads, amount_at_risk, top_kinds, and the model's
probability and expected recovery once a model has scored the store) as CSV or XLSX.

Text cells that would start a spreadsheet formula are neutralised (`fraudnet.exports.safe`); numbers stay numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fraudnet.claims.leads import MODEL_RISK_COLUMNS
from fraudnet.detectors.risk import RISK_COLUMNS
from fraudnet.errors import InvalidRequestError
from fraudnet.exports.leads import atomic_write_bytes
from fraudnet.exports.safe import safe_text, xlsx_bytes

__all__ = ["SCORE_FORMATS", "scores_to_bytes", "write_scores"]

SCORE_FORMATS = ("csv", "xlsx")


def scores_to_bytes(scores: pd.DataFrame, fmt: str = "csv") -> bytes:
    """Serialise an entity-risk frame (see `fraudnet.detectors.risk.entity_risk`) as CSV (UTF-8 BOM) or XLSX."""
    fmt = (fmt or "").lower()
    if fmt not in SCORE_FORMATS:
        raise InvalidRequestError(f"score export format {fmt!r} is not one of {', '.join(SCORE_FORMATS)}",
                                  field="format")
    columns = list(RISK_COLUMNS) + [c for c in MODEL_RISK_COLUMNS if c in scores.columns and scores[c].notna().any()]
    frame = scores.reindex(columns=columns)
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):  # text (entity_id, top_kinds); numbers stay numbers
            frame[col] = frame[col].map(safe_text)
    if fmt == "csv":
        return ("\ufeff" + frame.to_csv(index=False, lineterminator="\r\n")).encode("utf-8")
    rows = ([None if _missing(v) else v for v in rec] for rec in frame.itertuples(index=False, name=None))
    return xlsx_bytes("risk 风险评分", tuple(columns), rows)


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def write_scores(scores: pd.DataFrame, path: str | Path, fmt: str | None = None) -> int:
    """Write entity risk scores to `path` atomically; returns the number of rows."""
    fmt = (fmt or Path(path).suffix.lstrip(".") or "csv").lower()
    atomic_write_bytes(path, scores_to_bytes(scores, fmt))
    return len(scores)
