"""Screening run reports kept in the claims store (`screening_runs`): what came in, what was quarantined, which
red and orange leads are new, by kind and institution, and what was notified."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["RunStore", "RUNS_DDL", "json_default"]

RUNS_DDL = """CREATE TABLE IF NOT EXISTS screening_runs (
    run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL,
    trigger VARCHAR,
    folder VARCHAR,
    new_red INTEGER,
    new_orange INTEGER,
    report VARCHAR
)"""


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class RunStore:
    """The run reports of a claims store (one DuckDB connection or cursor)."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def ensure(self) -> None:
        self.con.execute(RUNS_DDL)

    def save(self, report: dict[str, Any]) -> None:
        """Insert or replace one run's report (its `run_id`, `started_at`, `finished_at`, `status`…)."""
        self.ensure()
        new = report.get("new_leads") or {}
        self.con.execute(
            "INSERT OR REPLACE INTO screening_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [report["run_id"], report["started_at"], report.get("finished_at"), report["status"],
             report.get("trigger"), report.get("folder"), int(new.get("red", 0)), int(new.get("orange", 0)),
             json.dumps(report, ensure_ascii=False, default=json_default)])

    def _exists(self) -> bool:
        rows = self.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'screening_runs'"
                                ).fetchall()
        return bool(rows and rows[0][0])

    def latest(self) -> dict[str, Any] | None:
        """The most recent run's report, or None before the first run."""
        if not self._exists():
            return None
        rows = self.con.execute("SELECT report FROM screening_runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
                                ).fetchall()
        return json.loads(rows[0][0]) if rows else None

    def get(self, run_id: str) -> dict[str, Any] | None:
        if not self._exists():
            return None
        rows = self.con.execute("SELECT report FROM screening_runs WHERE run_id = ?", [run_id]).fetchall()
        return json.loads(rows[0][0]) if rows else None

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Summaries of the latest runs, newest first."""
        if not self._exists():
            return []
        rows = self.con.execute(
            "SELECT run_id, started_at, finished_at, status, trigger, folder, new_red, new_orange "
            "FROM screening_runs ORDER BY started_at DESC, run_id DESC LIMIT ?", [int(limit)]).fetchall()
        keys = ("run_id", "started_at", "finished_at", "status", "trigger", "folder", "new_red", "new_orange")
        return [dict(zip(keys, r, strict=True)) for r in rows]
