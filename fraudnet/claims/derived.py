"""Derived tables and their watermark: `visit_fact` records the last source batch it was built from.

`visit_fact` is derived from mdtrt, setl and medins_info. `derived_state` stores, for it, the highest ingest
batch of those tables it reflects (the watermark) and the mdtrt row count at that moment. A store whose
watermark is behind its loaded batches (a crash between a load and the refresh, a store written by an older
version) or whose visit_fact has not one row per visit is stale: `ClaimsStore.open` brings it up to date
(read-write) or serves a fresh temporary copy (read-only), and `fraudnet doctor` reports and repairs it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb

from fraudnet.claims.schema import refresh_visit_fact_statements, visit_fact_select

__all__ = ["DERIVED_STATE_DDL", "DerivedStatus", "visit_fact_status", "bring_up_to_date", "check_on_open"]

log = logging.getLogger(__name__)

DERIVED_STATE_DDL = """CREATE TABLE IF NOT EXISTS derived_state (
    name VARCHAR PRIMARY KEY,
    source_batch BIGINT,
    source_rows BIGINT,
    refreshed_at TIMESTAMP
)"""
_SOURCES = ("mdtrt", "setl", "medins_info")


@dataclass(frozen=True)
class DerivedStatus:
    """Whether `visit_fact` reflects every loaded batch of its sources, and why not."""

    watermark: int | None  # last source batch visit_fact was built from (None: never recorded)
    latest_batch: int  # last loaded batch of mdtrt / setl / medins_info
    mdtrt_rows: int
    visit_fact_rows: int
    stale: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    try:
        rows = con.execute(sql, params or []).fetchall()
    except duckdb.CatalogException:
        return None
    return rows[0][0] if rows else None


def _latest_batch(con: duckdb.DuckDBPyConnection) -> int:
    names = ", ".join(f"'{t}'" for t in _SOURCES)
    value = _scalar(con, f"SELECT max(batch_id) FROM ingest_batches WHERE status = 'loaded' AND table_name IN "
                         f"({names})")
    return int(value or 0)


def visit_fact_status(con: duckdb.DuckDBPyConnection, main_only: bool = True) -> DerivedStatus:
    """The watermark of `visit_fact` against the loaded batches, and the one-row-per-visit invariant."""
    vf = "main.visit_fact" if main_only else "visit_fact"
    watermark = _scalar(con, "SELECT source_batch FROM derived_state WHERE name = 'visit_fact'")
    latest = _latest_batch(con)
    mdtrt_rows = int(_scalar(con, "SELECT count(*) FROM mdtrt") or 0)
    vf_rows = int(_scalar(con, f"SELECT count(*) FROM {vf}") or 0)
    reasons = []
    if watermark is None:
        if latest > 0 and vf_rows != mdtrt_rows:
            reasons.append("no watermark recorded")
    elif int(watermark) < latest:
        reasons.append(f"built from batch {watermark}, batch {latest} loaded since")
    if vf_rows != mdtrt_rows:
        reasons.append(f"visit_fact has {vf_rows:,} rows for {mdtrt_rows:,} visits")
    return DerivedStatus(None if watermark is None else int(watermark), latest, mdtrt_rows, vf_rows,
                         bool(reasons), "; ".join(reasons) or "up to date")


def _record(con: duckdb.DuckDBPyConnection, batch: int) -> None:
    con.execute(DERIVED_STATE_DDL)
    rows = int(con.execute("SELECT count(*) FROM mdtrt").fetchall()[0][0])
    con.execute("INSERT OR REPLACE INTO derived_state VALUES ('visit_fact', ?, ?, ?)", [batch, rows, datetime.now()])


def bring_up_to_date(con: duckdb.DuckDBPyConnection, full: bool = False, transaction: bool = True) -> str:
    """Refresh `visit_fact` for every source batch after its watermark and move the watermark; say what was done.

    Visits of newer mdtrt/setl batches are recomputed; a newer medins_info batch that changed rows, a missing
    watermark or a row count that still differs rebuilds the table. With `transaction` False the caller's
    open transaction holds the refresh (the ingest commits sources and derived tables together).
    """
    if transaction:
        con.execute("BEGIN TRANSACTION")
    try:
        status = visit_fact_status(con)
        latest = status.latest_batch
        done = "up to date"
        if full or status.watermark is None:
            refresh_visit_fact_statements(con)
            done = "rebuilt"
        elif status.watermark < latest:
            newer = [int(r[0]) for r in con.execute(
                "SELECT batch_id FROM ingest_batches WHERE status = 'loaded' AND batch_id > ? AND ("
                "table_name IN ('mdtrt', 'setl') OR (table_name = 'medins_info' AND "
                "coalesce(rows_loaded, 0) + coalesce(rows_updated, 0) > 0))", [status.watermark]).fetchall()]
            inst = _scalar(con, "SELECT count(*) FROM ingest_batches WHERE status = 'loaded' AND batch_id > ? "
                                "AND table_name = 'medins_info' AND coalesce(rows_loaded, 0) + "
                                "coalesce(rows_updated, 0) > 0", [status.watermark])
            if inst:
                refresh_visit_fact_statements(con)
                done = "rebuilt (institutions changed)"
            elif newer:
                refresh_visit_fact_statements(con, newer)
                done = f"refreshed for batches {newer[0]}–{newer[-1]}"
        if done == "up to date" or not done.startswith("rebuilt"):
            counts = con.execute("SELECT (SELECT count(*) FROM mdtrt), (SELECT count(*) FROM main.visit_fact)"
                                 ).fetchall()[0]
            if counts[0] != counts[1]:
                refresh_visit_fact_statements(con)
                done = "rebuilt (row counts differed)"
        _record(con, latest)
        if transaction:
            con.execute("COMMIT")
    except BaseException:
        if transaction:
            con.execute("ROLLBACK")
        raise
    return done


def check_on_open(con: duckdb.DuckDBPyConnection, read_only: bool, where: str = "") -> DerivedStatus:
    """At every open: a stale `visit_fact` is brought up to date (read-write) or, read-only, replaced for this
    connection by a fresh temporary copy; both are logged. Returns the status found."""
    status = visit_fact_status(con)
    if not status.stale:
        return status
    if not read_only:
        done = bring_up_to_date(con)
        log.warning("%s: visit_fact was stale (%s): %s / 派生表已过期，已重建", where, status.reason, done)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE visit_fact AS " + visit_fact_select())
        log.warning("%s: visit_fact is stale (%s) and the store is open read-only: using a fresh copy for this "
                    "session; open it read-write (`fraudnet doctor --repair`) to repair it for good "
                    "/ 派生表已过期（只读打开，本次使用临时重建）", where, status.reason)
    return status


# (name, SQL counting rows that point at nothing) — orphans are loaded and counted, never rejected.
_ORPHANS: tuple[tuple[str, str], ...] = (
    ("fee_list.mdtrt_id→mdtrt", "SELECT count(*) FROM fee_list x WHERE NOT EXISTS "
                                "(SELECT 1 FROM mdtrt m WHERE m.mdtrt_id = x.mdtrt_id)"),
    ("setl.mdtrt_id→mdtrt", "SELECT count(*) FROM setl x WHERE NOT EXISTS "
                            "(SELECT 1 FROM mdtrt m WHERE m.mdtrt_id = x.mdtrt_id)"),
    ("mdtrt.psn_no→psn_info", "SELECT count(*) FROM mdtrt x WHERE NOT EXISTS "
                              "(SELECT 1 FROM psn_info p WHERE p.psn_no = x.psn_no)"),
    ("mdtrt.fixmedins_code→medins_info", "SELECT count(*) FROM mdtrt x WHERE NOT EXISTS "
                                         "(SELECT 1 FROM medins_info i WHERE i.fixmedins_code = x.fixmedins_code)"),
)


def store_health(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What `fraudnet doctor` reports: row counts, the visit_fact watermark, orphans, quarantine, failed batches."""
    from fraudnet.contract import TABLE_ORDER

    tables = {name: int(_scalar(con, f'SELECT count(*) FROM "{name}"') or 0) for name in TABLE_ORDER}
    tables["visit_fact"] = int(_scalar(con, "SELECT count(*) FROM main.visit_fact") or 0)
    status = visit_fact_status(con)
    orphans = {name: int(_scalar(con, sql) or 0) for name, sql in _ORPHANS}
    try:
        quarantine = {str(t): int(n) for t, n in con.execute(
            "SELECT table_name, count(DISTINCT (batch_id, row_number)) FROM quarantine GROUP BY 1 ORDER BY 1"
        ).fetchall()}
    except duckdb.CatalogException:
        quarantine = {}
    failed = int(_scalar(con, "SELECT count(*) FROM ingest_batches WHERE status = 'failed'") or 0)
    return {"tables": tables, "visit_fact": status.to_dict(), "orphans": orphans, "quarantine": quarantine,
            "failed_batches": failed, "ok": not status.stale}
