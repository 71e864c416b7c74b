"""What a screening run must look at: the ingest batches loaded since detection last ran (its watermark).

Every detector compares an entity against its peers and against chance over the whole period (rates, baselines,
co-admission counts), so new files change the scores of leads whose own data did not change: a run with new batches
re-screens the store in full, and the lead store reconciles by lead id (unchanged leads untouched, new evidence
updating or superseding a lead with its decisions kept) — the same leads as one full run over the same data. A run
with nothing new since the watermark is skipped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fraudnet.claims.derived import DERIVED_STATE_DDL

__all__ = ["WATERMARK", "detection_watermark", "pending_batches", "record_detection", "latest_loaded_batch"]

WATERMARK = "detection"


def latest_loaded_batch(con: Any) -> int:
    rows = con.execute("SELECT coalesce(max(batch_id), 0) FROM ingest_batches WHERE status = 'loaded'").fetchall()
    return int(rows[0][0])


def detection_watermark(con: Any) -> int | None:
    """The last ingest batch the latest full detection run saw, or None when none was recorded."""
    con.execute(DERIVED_STATE_DDL)
    rows = con.execute("SELECT source_batch FROM derived_state WHERE name = ?", [WATERMARK]).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def pending_batches(con: Any) -> list[dict[str, Any]]:
    """Loaded batches after the watermark (all of them before the first run): id, table, file, rows loaded."""
    mark = detection_watermark(con)
    rows = con.execute(
        "SELECT batch_id, table_name, file_name, coalesce(rows_loaded, 0) + coalesce(rows_updated, 0) "
        "FROM ingest_batches WHERE status = 'loaded' AND batch_id > ? ORDER BY batch_id", [mark or 0]).fetchall()
    return [{"batch_id": int(r[0]), "table": r[1], "file": r[2], "rows": int(r[3])} for r in rows]


def record_detection(con: Any, batch: int | None = None) -> int:
    """Move the watermark to `batch` (default: the latest loaded batch); returns it."""
    batch = latest_loaded_batch(con) if batch is None else int(batch)
    con.execute(DERIVED_STATE_DDL)
    rows = int(con.execute("SELECT count(*) FROM mdtrt").fetchall()[0][0])
    con.execute("INSERT OR REPLACE INTO derived_state VALUES (?, ?, ?, ?)", [WATERMARK, batch, rows, datetime.now()])
    return batch
