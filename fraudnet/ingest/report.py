"""What an ingest did: per-file and per-table counts, orphans, missing tables and errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FileResult", "TableCounts", "IngestReport"]


@dataclass
class FileResult:
    """One input file's outcome.

    status: `loaded`, `already_ingested` (same sha256 seen before: nothing changed) or `failed`.
    Counts: rows_read = rows_loaded + rows_updated + rows_rejected + rows_invalid + rows_already_present.
    """

    file_name: str
    table: str
    format: str
    encoding: str = ""
    file_hash: str = ""
    status: str = "loaded"
    batch_id: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_updated: int = 0
    rows_rejected: int = 0
    rows_invalid: int = 0
    rows_already_present: int = 0
    quarantine_rows: int = 0
    orphans: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""


@dataclass
class TableCounts:
    """Counts summed over the files of one table."""

    table: str
    files: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_updated: int = 0
    rows_rejected: int = 0
    rows_invalid: int = 0
    rows_already_present: int = 0
    quarantine_rows: int = 0
    orphans: dict[str, int] = field(default_factory=dict)

    @property
    def orphan_total(self) -> int:
        return sum(self.orphans.values())


@dataclass
class IngestReport:
    """The outcome of `ingest_folder`.

    `ok` is false when a required table or column is missing (nothing was loaded then) or a file failed.
    `missing_columns` lists `(file name, column)`; `errors` holds readable messages (English / 中文).
    """

    folder: Path
    files: list[FileResult] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)
    missing_columns: list[tuple[str, str]] = field(default_factory=list)
    unrecognised_files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    visit_fact_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing_tables and not self.missing_columns and not self.errors

    @property
    def contract_error(self) -> bool:
        """True when the input breaks the contract (a required table or column is missing)."""
        return bool(self.missing_tables or self.missing_columns)

    @property
    def tables(self) -> dict[str, TableCounts]:
        """Per-table totals over the files of this ingest (in the order files were loaded)."""
        out: dict[str, TableCounts] = {}
        for f in self.files:
            t = out.setdefault(f.table, TableCounts(f.table))
            t.files += 1
            t.rows_read += f.rows_read
            t.rows_loaded += f.rows_loaded
            t.rows_updated += f.rows_updated
            t.rows_rejected += f.rows_rejected
            t.rows_invalid += f.rows_invalid
            t.rows_already_present += f.rows_already_present
            t.quarantine_rows += f.quarantine_rows
            for k, v in f.orphans.items():
                t.orphans[k] = t.orphans.get(k, 0) + v
        return out

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded + f.rows_updated for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def already_ingested(self) -> list[str]:
        return [f.file_name for f in self.files if f.status == "already_ingested"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for the API's ingest jobs and for logs)."""
        return {
            "folder": str(self.folder),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "visit_fact_rows": self.visit_fact_rows,
            "tables": {name: {**asdict(t), "orphan_total": t.orphan_total} for name, t in self.tables.items()},
            "files": [asdict(f) for f in self.files],
            "missing_tables": list(self.missing_tables),
            "missing_columns": [list(mc) for mc in self.missing_columns],
            "unrecognised_files": list(self.unrecognised_files),
            "errors": list(self.errors),
        }
