"""Lead writers: CSV (UTF-8 with BOM, lists joined with `;`), XLSX and JSON Lines with the contract's columns.

CSV and XLSX are spreadsheet formats: text cells that would start a formula are neutralised (`fraudnet.exports.safe`);
JSON Lines carries the values as they are."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fraudnet.errors import InvalidRequestError
from fraudnet.exports.safe import safe_list_cell, safe_text, xlsx_bytes
from fraudnet.screening.clock import response_clock

__all__ = ["LEAD_COLUMNS", "FORMATS", "write_leads", "leads_to_bytes", "atomic_write_bytes", "lead_row"]

LEAD_COLUMNS: tuple[str, ...] = (
    "lead_id", "kind", "severity", "score", "persons", "practitioners", "institutions", "evidence",
    "amount_at_risk", "period_start", "period_end", "explanation_zh", "explanation_en", "status",
    "response_due_at", "overdue",
)
LIST_COLUMNS = frozenset({"persons", "practitioners", "institutions", "evidence"})
FORMATS = ("csv", "xlsx", "jsonl")
XLSX_CELL_LIMIT = 32_767


def default_response_hours() -> float:
    """The on-site target of red leads from the screening settings (FRAUDNET_RESPONSE_HOURS, default 5)."""
    from fraudnet.screening.settings import response_hours

    return response_hours()


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def lead_row(lead: Any, response_hours: float | None = None) -> dict[str, Any]:
    """The contract columns of a lead (a `Lead`, or a dict from the lead store); status defaults to `new`.

    A red lead's response clock (`response_due_at`, `overdue`; see `fraudnet.screening.clock`) comes from its
    `first_seen` and `response_hours` (default FRAUDNET_RESPONSE_HOURS, else 5), unless the lead carries it."""
    get = lead.get if isinstance(lead, dict) else (lambda k, d=None: getattr(lead, k, d))
    row = {c: get(c, None) for c in LEAD_COLUMNS}
    row["status"] = row["status"] or "new"
    if row["response_due_at"] is None:
        row.update(response_clock({"severity": row["severity"], "status": row["status"],
                                   "first_seen": get("first_seen", None)},
                                  response_hours if response_hours is not None else default_response_hours()))
    row["overdue"] = bool(row["overdue"])
    for c in LIST_COLUMNS:
        row[c] = list(row[c] or [])
    row["score"] = round(float(row["score"] or 0.0), 4)
    row["amount_at_risk"] = round(float(row["amount_at_risk"] or 0.0), 2)
    return row


def _csv_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(LEAD_COLUMNS)
    for row in rows:
        writer.writerow([safe_list_cell(row[c]) if c in LIST_COLUMNS
                         else ("" if row[c] is None else safe_text(_iso(row[c]))) for c in LEAD_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel shows the Chinese text


def _jsonl_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    lines = [json.dumps({c: _iso(row[c]) for c in LEAD_COLUMNS}, ensure_ascii=False) for row in rows]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def _xlsx_rows(rows: Iterable[dict[str, Any]]) -> Iterable[list[Any]]:
    for row in rows:
        values = []
        for c in LEAD_COLUMNS:
            v = row[c]
            if c in LIST_COLUMNS:
                v = safe_list_cell(v)
                if len(v) > XLSX_CELL_LIMIT:  # Excel's cell limit; the full list is in CSV/JSONL
                    v = v[: XLSX_CELL_LIMIT - 20].rsplit(";", 1)[0] + ";…(truncated)"
            else:
                v = safe_text(v)
            values.append(v)
        yield values


def _xlsx_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    return xlsx_bytes("leads 线索", LEAD_COLUMNS, _xlsx_rows(rows))


def leads_to_bytes(leads: Iterable[Any], fmt: str) -> bytes:
    """Serialise leads (objects or lead-store dicts) as `csv`, `xlsx` or `jsonl`."""
    fmt = (fmt or "").lower()
    if fmt not in FORMATS:
        raise InvalidRequestError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}", field="format")
    rows = [lead_row(lead) for lead in leads]
    if fmt == "csv":
        return _csv_bytes(rows)
    if fmt == "jsonl":
        return _jsonl_bytes(rows)
    return _xlsx_bytes(rows)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to a temporary file next to `path`, then rename it over `path` (never a half file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_leads(leads: Iterable[Any], path: str | Path, fmt: str | None = None) -> int:
    """Write leads to `path` atomically in `fmt` (default from the file suffix); returns the number written."""
    items = list(leads)
    fmt = (fmt or Path(path).suffix.lstrip(".") or "csv").lower()
    atomic_write_bytes(path, leads_to_bytes(items, fmt))
    return len(items)
