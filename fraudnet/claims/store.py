"""`ClaimsStore`: the embedded DuckDB database `<workspace>/claims.duckdb`, the system of record for claims."""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd

from fraudnet.claims.derived import check_on_open, visit_fact_status
from fraudnet.claims.schema import create_schema
from fraudnet.claims.workspace_files import connect_waiting, secure_file, secure_workspace
from fraudnet.contract import TABLE_ORDER
from fraudnet.errors import StoreError
from fraudnet.privacy import load_or_create_key

__all__ = ["ClaimsStore", "DB_FILE_NAME", "default_memory_limit", "temp_directory"]

log = logging.getLogger(__name__)

DB_FILE_NAME = "claims.duckdb"
MEMORY_LIMIT_ENV = "FRAUDNET_DUCKDB_MEMORY_LIMIT"
TEMP_DIR_ENV = "FRAUDNET_DUCKDB_TEMP_DIR"
TEMP_DIR_NAME = "duckdb-spill"
# DuckDB's share of the machine's physical memory when nothing is configured, and its bounds (MiB).
MEMORY_SHARE = 0.25
MEMORY_FLOOR_MIB = 1024
MEMORY_CEILING_MIB = 10 * 1024


def default_memory_limit(physical_bytes: int | None = None) -> str:
    """DuckDB's memory limit when none is configured: 25 % of physical memory, between 1 GiB and 10 GiB.

    DuckDB spills joins, sorts and aggregations beyond it to its temp directory, so an ingest or a detection run
    stays within a bounded footprint however large the input (6 GiB on a 24 GiB machine, leaving room for the
    API server, Neo4j and Python's own memory beside it).
    """
    if physical_bytes is None:
        try:
            physical_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            physical_bytes = 8 * 1024**3
    mib = int(physical_bytes * MEMORY_SHARE / 1024**2)
    return f"{min(MEMORY_CEILING_MIB, max(MEMORY_FLOOR_MIB, mib))}MiB"


def _memory_limit() -> str:
    """DuckDB memory limit: FRAUDNET_DUCKDB_MEMORY_LIMIT (e.g. `4GB`) or `default_memory_limit()`."""
    value = os.environ.get(MEMORY_LIMIT_ENV, "").strip() or default_memory_limit()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, flags=re.IGNORECASE):
        raise StoreError(f"{MEMORY_LIMIT_ENV}={value!r} is not a size such as 4GB")
    return value


def temp_directory(workspace: Path) -> Path:
    """Where DuckDB spills what does not fit its memory limit: FRAUDNET_DUCKDB_TEMP_DIR or
    `<workspace>/duckdb-spill` (inside the 0700 workspace: spilled pages hold claims data)."""
    configured = os.environ.get(TEMP_DIR_ENV, "").strip()
    return Path(configured) if configured else Path(workspace) / TEMP_DIR_NAME


def _apply_settings(con: duckdb.DuckDBPyConnection, memory_limit: str, spill_dir: Path) -> None:
    """No progress bar from library code; the memory cap and the spill directory (DuckDB spills beyond the cap)."""
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = '{memory_limit}'")
    except duckdb.Error as exc:
        log.warning("could not apply DuckDB settings: %s", exc)
    try:
        spill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        con.execute("SET temp_directory = " + "'" + str(spill_dir).replace("'", "''") + "'")
    except (OSError, duckdb.Error) as exc:  # read-only media, or an instance of this process already spilling
        log.debug("DuckDB temp_directory left as it was: %s", exc)


def _repair_read_write(path: Path, memory_limit: str) -> bool:
    """Open the store read-write just long enough to bring visit_fact up to date; False when it cannot be."""
    try:
        rw = duckdb.connect(str(path), config={"memory_limit": memory_limit})
    except duckdb.Error as exc:  # held by another process, read-only media
        log.info("%s: cannot open read-write to repair visit_fact (%s)", path, exc)
        return False
    try:
        secure_file(path.with_name(path.name + ".wal"))
        check_on_open(rw, False, str(path))
    finally:
        rw.close()
    return True


class ClaimsStore:
    """An open claims store: a DuckDB connection on `<workspace>/claims.duckdb` with the schema in place.

    Open with `ClaimsStore.open(workspace)`; use as a context manager or call `close()`. Tables and the
    `visit_fact` table are described in `fraudnet.claims.schema`. One process may hold the store for
    writing at a time (DuckDB's file lock); read-only opens may be shared between processes. Within a process
    that already has the store open read-write, a read-only open shares that instance (DuckDB allows one
    configuration per file and process), so DuckDB does not block its writes then; `ingest_folder` still
    refuses a store opened read-only.
    """

    path: Path
    con: duckdb.DuckDBPyConnection

    def __init__(self, workspace: Path, path: Path, con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        self.workspace = workspace
        self.path = path
        self.con = con
        self.read_only = read_only
        self._key: bytes | None = None

    @classmethod
    def open(cls, workspace: str | Path, read_only: bool = False, check_derived: bool = True) -> ClaimsStore:
        """Open (and, unless read-only, create with its schema) the claims store of a workspace folder.

        With `check_derived` (the default) a stale `visit_fact` is repaired, or read-only replaced for this
        connection by a fresh copy (see `fraudnet.claims.derived`); `fraudnet doctor` opens without.
        """
        ws = Path(workspace)
        path = ws / DB_FILE_NAME
        memory_limit = _memory_limit()
        if read_only and not path.exists():
            raise StoreError(
                f"no claims store at {path}; run `fraudnet ingest DIR` first / 尚无理赔库，请先运行 fraudnet ingest"
            )
        if not read_only:
            secure_workspace(ws)  # folder 0700: the store holds names, addresses and birth dates in clear
        shared = False
        try:
            con = connect_waiting(path, read_only)  # a held lock: StoreError naming the holder (fraudnet serve?)
            if not read_only:
                secure_file(path)
                secure_file(path.with_name(path.name + ".wal"))
        except duckdb.ConnectionException as exc:
            if not (read_only and "different configuration" in str(exc)):
                raise StoreError(f"cannot open claims store {path}: {exc}") from exc
            # This process already holds the store read-write: share that database instance.
            shared = True
            try:
                con = duckdb.connect(str(path))
            except duckdb.Error as exc2:
                raise StoreError(f"cannot open claims store {path}: {exc2}") from exc2
        except duckdb.Error as exc:
            raise StoreError(f"cannot open claims store {path}: {exc}") from exc
        spill_dir = temp_directory(ws)
        _apply_settings(con, memory_limit, spill_dir)
        store = cls(ws, path, con, read_only)
        if not read_only:
            try:
                create_schema(con)
            except duckdb.Error as exc:
                con.close()
                raise StoreError(f"cannot create the schema in {path}: {exc}") from exc
        if check_derived:
            try:
                if read_only and not shared and visit_fact_status(con).stale:
                    # Repair for good through a short read-write open when no other process holds the store;
                    # otherwise check_on_open gives this connection a fresh temporary copy.
                    con.close()
                    _repair_read_write(path, memory_limit)
                    con = store.con = connect_waiting(path, True)
                    _apply_settings(con, memory_limit, spill_dir)
                check_on_open(con, read_only and not shared, str(path))
            except duckdb.Error as exc:
                con.close()
                raise StoreError(f"cannot bring visit_fact up to date in {path}: {exc}") from exc
        return store

    @property
    def secret_key(self) -> bytes:
        """The workspace's hashing key (`<workspace>/secret.key`, created on first use)."""
        if self._key is None:
            self._key = load_or_create_key(self.workspace)
        return self._key

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a query (parameters `?` or `$name`) and return its result as a DataFrame."""
        try:
            if params is None:
                return self.con.execute(query).df()
            return self.con.execute(query, params).df()
        except duckdb.Error as exc:
            raise StoreError(f"claims store query failed: {exc}") from exc

    def execute(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> None:
        """Run a statement that returns nothing of interest (its result is consumed, so the connection is free)."""
        try:
            if params is None:
                self.con.execute(query).fetchall()
            else:
                self.con.execute(query, params).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"claims store statement failed: {exc}") from exc

    def table_counts(self) -> dict[str, int]:
        """Row count of every contract table, in contract order."""
        counts: dict[str, int] = {}
        for name in TABLE_ORDER:
            try:
                counts[name] = int(self.con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0])
            except duckdb.CatalogException:
                counts[name] = 0
        return counts

    def data_period(self) -> tuple[datetime | None, datetime | None]:
        """Earliest and latest visit begntime in the store (None, None when there are no visits)."""
        rows = self.con.execute("SELECT min(begntime), max(begntime) FROM mdtrt").fetchall()
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        try:
            self.con.close()
        except duckdb.Error:  # already closed
            log.debug("claims store %s already closed", self.path)

    def __enter__(self) -> ClaimsStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"ClaimsStore({str(self.path)!r}, {mode})"
