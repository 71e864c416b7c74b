"""Entity risk score export (entity_type, entity_id, score, leads, amount_at_risk, top_kinds) as CSV or XLSX."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from fraudnet.detectors.risk import RISK_COLUMNS
from fraudnet.errors import InvalidRequestError
from fraudnet.exports.leads import atomic_write_bytes

__all__ = ["SCORE_FORMATS", "scores_to_bytes", "write_scores"]

SCORE_FORMATS = ("csv", "xlsx")


def scores_to_bytes(scores: pd.DataFrame, fmt: str = "csv") -> bytes:
    """Serialise an entity-risk frame (see `fraudnet.detectors.risk.entity_risk`) as CSV (UTF-8 BOM) or XLSX."""
    fmt = (fmt or "").lower()
    if fmt not in SCORE_FORMATS:
        raise InvalidRequestError(f"score export format {fmt!r} is not one of {', '.join(SCORE_FORMATS)}",
                                  field="format")
    frame = scores.reindex(columns=list(RISK_COLUMNS))
    if fmt == "csv":
        return ("\ufeff" + frame.to_csv(index=False, lineterminator="\r\n")).encode("utf-8")
    buf = io.BytesIO()
    frame.to_excel(buf, index=False, sheet_name="risk 风险评分", engine="openpyxl")
    return buf.getvalue()


def write_scores(scores: pd.DataFrame, path: str | Path, fmt: str | None = None) -> int:
    """Write entity risk scores to `path` atomically; returns the number of rows."""
    fmt = (fmt or Path(path).suffix.lstrip(".") or "csv").lower()
    atomic_write_bytes(path, scores_to_bytes(scores, fmt))
    return len(scores)
