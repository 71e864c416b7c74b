"""`ingest_folder`: load a folder of contract tables into the claims store, validated, idempotent, one batch per file.

Per file: sha256 + encoding; skipped when a batch with the same hash and table was loaded before. Values are
staged as text in DuckDB, converted and checked in SQL (see `fraudnet.ingest.validate`: types, lengths, codes,
formula characters in ids, plausibility bounds, settlement sums, mojibake); faulty rows go to `quarantine`
with file, row, field, value and reason. The good rows are merged: fact tables (mdtrt, setl, fee_list,
phar_inv) only gain new keys (an identical re-sent row counts as already present, a different one is
quarantined as a conflict); reference tables (psn_info, medins_info, prac_info, hilist) are upserted, latest
wins. Orphans (a visit for an unknown person…) are counted, not rejected. The whole run, `visit_fact` and its
watermark included (see `fraudnet.claims.derived`), is one transaction: a file failing while it loads, or a
crash, leaves nothing of the run; a required table's file that is unreadable, empty or header-only stops the
run before anything loads.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from fraudnet.claims.derived import bring_up_to_date
from fraudnet.claims.schema import BOOKKEEPING_COLUMNS, content_columns, stored_columns
from fraudnet.claims.store import ClaimsStore
from fraudnet.contract import TABLE_ORDER, TABLES, TableSpec
from fraudnet.errors import IngestError
from fraudnet.ingest.readers import (
    InputFile,
    RaggedRow,
    Source,
    discover_files,
    fingerprint,
    has_data_rows,
    read_header,
    scan_file,
)
from fraudnet.ingest.report import FileResult, IngestReport
from fraudnet.ingest.validate import (
    Checked,
    ColumnMap,
    build_checked,
    map_columns,
    mark_duplicates,
    mark_mojibake,
    qident,
    qstr,
)
from fraudnet.privacy import (
    mask_identifiers_in_text,
    sql_address_key,
    sql_hash_identifier,
    sql_is_certno,
    sql_is_mobile,
    sql_mask_certno,
    sql_mask_phone,
    sql_normalize_phone,
)

__all__ = ["ingest_folder", "ProgressCallback", "ORPHAN_CHECKS", "table_file_patterns"]

log = logging.getLogger(__name__)

# progress(file_name, step, done, total): step is "check", "read", "validate", "load", "commit", "done" or
# "skipped". An exception raised by the callback aborts the ingest; the whole run is rolled back.
ProgressCallback = Callable[[str, str, int, int], None]

# (column, referenced table, referenced column): loaded rows whose value is not in the referenced table.
ORPHAN_CHECKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "prac_info": (("fixmedins_code", "medins_info", "fixmedins_code"),),
    "mdtrt": (("psn_no", "psn_info", "psn_no"), ("fixmedins_code", "medins_info", "fixmedins_code")),
    "setl": (("mdtrt_id", "mdtrt", "mdtrt_id"),),
    "fee_list": (("mdtrt_id", "mdtrt", "mdtrt_id"),),
    "phar_inv": (("fixmedins_code", "medins_info", "fixmedins_code"),),
}
_STEPS = 4
_LONG_HEX = re.compile(r"[0-9a-fA-F]{64,}")


def table_file_patterns(spec: TableSpec) -> str:
    """How a table's file may be named, for messages: `setl.csv / setl_d.* / settlements.*`."""
    return " / ".join([f"{spec.name}.csv"] + [f"{a}.*" for a in spec.aliases])


def _stored_select(spec: TableSpec, key: bytes) -> list[str]:
    """Expressions over `_v` giving the stored columns of a table, in DDL order (psn_info: hashed and masked)."""
    private = {
        "certno_hash": sql_hash_identifier('"certno"', key),
        "certno_masked": sql_mask_certno('"certno"'),
        "mob_hash": sql_hash_identifier(sql_normalize_phone('"mob"'), key),
        "mob_masked": sql_mask_phone('"mob"'),
        "addr_key": sql_address_key('"live_addr"', key),
    }
    out: list[str] = []
    for name, _typ in stored_columns(spec):
        if spec.name == "psn_info" and name in private:
            out.append(f"{private[name]} AS {qident(name)}")
        elif name in _PERSON_TEXT.get(spec.name, ()):
            out.append(f"{_mask_if_identifier(qident(name))} AS {qident(name)}")
        else:
            out.append(qident(name))
    return out


# Free-text columns of the person tables: a value that is an ID-card or mobile number is stored masked.
_PERSON_TEXT: dict[str, tuple[str, ...]] = {
    "psn_info": ("psn_name", "live_addr", "emp_name"),
    "prac_info": ("prac_psn_name",),
}


def _mask_if_identifier(col: str) -> str:
    return (f"CASE WHEN {sql_is_certno(col)} THEN {sql_mask_certno(col)} "
            f"WHEN {sql_is_mobile(col)} THEN {sql_mask_phone(col)} ELSE {col} END")


def _already_ingested(store: ClaimsStore, f: InputFile) -> int | None:
    row = store.con.execute(
        "SELECT batch_id FROM ingest_batches WHERE file_hash = ? AND table_name = ? AND status = 'loaded' "
        "ORDER BY batch_id LIMIT 1", [f.file_hash, f.spec.name]
    ).fetchall()
    return int(row[0][0]) if row else None


def _next_batch_id(store: ClaimsStore) -> int:
    return int(store.con.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM ingest_batches").fetchall()[0][0])


def ingest_folder(
    folder: Path, store: ClaimsStore, progress: ProgressCallback | None = None, keep_extra_columns: bool = False
) -> IngestReport:
    """Ingest every contract table file of `folder` into `store`; see the module docstring.

    Nothing is loaded when a required table (absent from the folder and empty in the store) or a required
    column is missing, or when a required table's file is unreadable, empty or header-only: the report then
    has `missing_tables` / `missing_columns` / `errors` and `ok` is False. The files are loaded in one
    transaction together with the refresh of `visit_fact`: a file that fails while loading, or a crash,
    leaves nothing of the run behind. Unknown columns are kept (in `_extra`, with identity and mobile
    numbers masked and hashed) only with `keep_extra_columns`.
    """
    started = time.perf_counter()
    folder = Path(folder)
    report = IngestReport(folder=folder)
    if store.read_only:
        raise IngestError(f"{store.path}: the claims store is open read-only; cannot ingest")
    files, unmatched = discover_files(folder)
    report.unrecognised_files = [p.name for p in unmatched]
    order = {name: i for i, name in enumerate(TABLE_ORDER)}
    files.sort(key=lambda f: (order[f.spec.name], f.path.name))

    # Pre-flight: hash, encoding, header, data rows and required columns of every file before anything loads.
    usable: list[tuple[InputFile, ColumnMap]] = []
    failed_required: list[str] = []
    for n, f in enumerate(files):
        _emit(progress, f.name, "check", n, len(files))
        try:
            f.file_hash, f.encoding = fingerprint(f.path, f.format)
            header = read_header(f)
            if f.spec.required and not has_data_rows(f):
                raise IngestError(f"{f.name}: no data rows (header only) in a required table "
                                  "/ 必需表只有表头没有数据")
        except (IngestError, OSError) as exc:
            report.errors.append(str(exc))
            report.files.append(FileResult(f.name, f.spec.name, f.format, status="failed", message=str(exc)))
            if f.spec.required:
                failed_required.append(f.name)
            continue
        cmap = map_columns(header, f.spec)
        for col in cmap.missing_required:
            report.missing_columns.append((f.name, col))
            report.errors.append(f"{f.name}: required column '{col}' is missing / 缺少必需列 '{col}'")
        usable.append((f, cmap))
    present = {f.spec.name for f in files}
    counts = store.table_counts()
    for name in TABLE_ORDER:
        spec = TABLES[name]
        if spec.required and name not in present and counts.get(name, 0) == 0:
            report.missing_tables.append(name)
            report.errors.append(
                f"required table '{name}' ({table_file_patterns(spec)}) not found in {folder} / 缺少必需表 {name}"
            )
    if report.contract_error or failed_required:
        if failed_required:
            report.errors.append("nothing loaded: a required table's file failed ("
                                 + ", ".join(failed_required) + ") / 必需表文件有误，未导入任何数据")
        report.seconds = time.perf_counter() - started
        return report

    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        for f, cmap in usable:
            if _already_ingested(store, f) is not None:
                report.files.append(FileResult(f.name, f.spec.name, f.format, f.encoding, f.file_hash,
                                               status="already_ingested",
                                               message="already ingested (same sha256) / 已导入过"))
                _emit(progress, f.name, "skipped", _STEPS, _STEPS)
                continue
            result = _ingest_file(store, f, cmap, progress, keep_extra_columns)
            report.files.append(result)
            if result.status == "failed":
                raise _RunFailed(result, f)
        t0 = time.perf_counter()
        done = bring_up_to_date(con, transaction=False)
        log.info("visit_fact %s in %.2fs", done, time.perf_counter() - t0)
        report.visit_fact_rows = int(con.execute("SELECT count(*) FROM main.visit_fact").fetchall()[0][0])
        con.execute("COMMIT")
    except _RunFailed as failed:
        _rollback(con)
        _record_failure(store, failed.result, failed.file, report)
    except BaseException:
        _rollback(con)
        _drop_temps(con)
        raise
    _drop_temps(con)
    report.seconds = time.perf_counter() - started
    return report


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll the run back; a transaction DuckDB already ended (a failed COMMIT) is not an error of its own."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        log.debug("rollback: %s", exc)


class _RunFailed(Exception):
    """A file failed while loading: the run's transaction is rolled back."""

    def __init__(self, result: FileResult, f: InputFile) -> None:
        super().__init__(result.message)
        self.result = result
        self.file = f


def _record_failure(store: ClaimsStore, res: FileResult, f: InputFile, report: IngestReport) -> None:
    """After the rollback: the failed file's batch row, and every other file of the run marked rolled back."""
    report.errors.append(res.message)
    report.errors.append(f"nothing loaded: {res.file_name} failed and the run was rolled back "
                         "/ 文件导入失败，本次导入已全部回滚")
    for other in report.files:
        if other is not res and other.status == "loaded":
            other.status = "rolled_back"
            other.message = f"rolled back: {res.file_name} failed / 已回滚"
            other.batch_id = None
            other.rows_loaded = other.rows_updated = other.rows_already_present = 0
    res.batch_id = None
    try:
        store.con.execute(
            """INSERT INTO ingest_batches (batch_id, file_name, file_path, file_hash, table_name, format,
               encoding, started_at, finished_at, rows_read, status, message)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'failed', ?)""",
            [_next_batch_id(store), res.file_name, str(f.path.resolve()), res.file_hash, res.table, res.format,
             res.encoding, datetime.now(), datetime.now(), res.rows_read, res.message],
        )
    except duckdb.Error:
        log.exception("could not record the failed batch of %s", res.file_name)
    report.visit_fact_rows = int(store.con.execute("SELECT count(*) FROM main.visit_fact").fetchall()[0][0])


def _emit(progress: ProgressCallback | None, name: str, step: str, done: int, total: int) -> None:
    if progress is not None:
        progress(name, step, done, total)


def _drop_temps(con: duckdb.DuckDBPyConnection) -> None:
    for t in ("_v", "_dup", "_cmp", "_rej", "_rejscan", "_rejadj", "_moj"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    con.execute("DROP VIEW IF EXISTS _good")


def _ingest_file(
    store: ClaimsStore, f: InputFile, cmap: ColumnMap, progress: ProgressCallback | None, keep_extra: bool
) -> FileResult:
    """Stage, check and merge one file inside the run's transaction; a failure is returned as status `failed`."""
    con = store.con
    spec = f.spec
    t0 = time.perf_counter()
    started_at = datetime.now()
    res = FileResult(f.name, spec.name, f.format, f.encoding, f.file_hash)
    batch_id = _next_batch_id(store)
    try:
        _emit(progress, f.name, "read", 1, _STEPS)
        built: list[Checked] = []

        def build(source: Source) -> None:
            built.clear()
            built.append(build_checked(con, spec, cmap, source, keep_extra=keep_extra,
                                       secret_key=store.secret_key, export_time=started_at))

        ragged = scan_file(con, f, build, tmp_dir=store.workspace)
        checked = built[0]
        _emit(progress, f.name, "validate", 2, _STEPS)
        checked.checks.append(mark_duplicates(con, spec))
        checked.checks.extend(mark_mojibake(con, spec))
        res.encoding = f.encoding
        res.rows_invalid = checked.invalid
        res.rows_read = int(con.execute("SELECT count(*) FROM _v").fetchall()[0][0]) + checked.invalid + len(ragged)
        _emit(progress, f.name, "load", 3, _STEPS)
        _load(store, f, res, batch_id, checked, ragged)
        _emit(progress, f.name, "commit", 3, _STEPS)  # rows written, committed with the run
        con.execute(
            """INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', NULL)""",
            [batch_id, f.name, str(f.path.resolve()), f.file_hash, spec.name, f.format, res.encoding,
             started_at, datetime.now(), res.rows_read, res.rows_loaded, res.rows_rejected, res.rows_invalid,
             res.rows_already_present, res.rows_updated],
        )
        res.batch_id = batch_id
        res.orphans = _orphans(con, spec.name, batch_id)
        if f.undecodable_lines:
            res.message = (f"{f.undecodable_lines} line(s) decode neither as UTF-8 nor as GBK; quarantined "
                           "/ 无法解码的行已隔离")
    except (IngestError, duckdb.Error) as exc:
        log.error("ingest of %s failed: %s", f.name, _LONG_HEX.sub("<…>", str(exc)))
        res.status = "failed"
        text = _LONG_HEX.sub("<…>", str(exc))  # never echo key material from generated SQL into logs
        res.message = text if text.startswith(f.name) else f"{f.name}: {text}"
        res.rows_loaded = res.rows_updated = res.rows_already_present = 0
        return res
    _drop_temps(con)  # free the staged copies before the next file
    res.seconds = time.perf_counter() - t0
    _emit(progress, f.name, "done", _STEPS, _STEPS)
    log.info("%s: %s in %.2fs", f.name, res.status, res.seconds)
    return res


def _load(
    store: ClaimsStore, f: InputFile, res: FileResult, batch_id: int, checked: Checked, ragged: list[RaggedRow]
) -> None:
    """Inside the file's transaction: write quarantine rows and merge the good rows into the table."""
    con = store.con
    spec = f.spec
    table = qident(spec.name)
    head = f"{batch_id}, {qstr(f.name)}, {qstr(spec.name)}"

    # Quarantine: ragged lines, then one row per failed check of each bad row.
    if ragged:
        private = spec.name == "psn_info"
        con.executemany(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, NULL, ?, ?)",
            [[batch_id, f.name, spec.name, r.row_number, None if private else mask_identifiers_in_text(r.text)[:500],
              r.reason]
             for r in ragged],
        )
    bad_rows = con.execute("SELECT count(*) FROM _v WHERE _bad").fetchall()[0][0]
    if bad_rows:
        parts = [
            f"SELECT _line, {qstr(c.field)} AS field, CAST({c.value} AS VARCHAR) AS value, {c.reason} AS reason, "
            f"{i} AS o FROM _v WHERE _bad AND coalesce({c.condition}, false)"
            for i, c in enumerate(checked.checks)
        ]
        con.execute(
            f"INSERT INTO quarantine SELECT {head}, _line, field, value, reason FROM ("
            + " UNION ALL ".join(parts) + ") ORDER BY _line, o"
        )
    res.rows_rejected = bad_rows + len(ragged)

    # Good rows in stored form.
    cols = [name for name, _ in stored_columns(spec)]
    book = f"{batch_id} AS _batch_id, {qstr(f.name)} AS _source_file, _line AS _source_row, _extra"
    con.execute("DROP VIEW IF EXISTS _good")
    stored = ", ".join(_stored_select(spec, store.secret_key))
    con.execute(f"CREATE TEMP VIEW _good AS SELECT {stored}, {book} FROM _v WHERE NOT _bad")
    all_cols = ", ".join(qident(c) for c in cols + [b for b, _ in BOOKKEEPING_COLUMNS])
    existing = con.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchall()[0][0]
    if not existing:
        inserted = con.execute(f"INSERT INTO {table} ({all_cols}) SELECT {all_cols} FROM _good").fetchall()
        res.rows_loaded = int(inserted[0][0]) if inserted else 0
        res.quarantine_rows = _quarantine_count(con, batch_id)
        return

    on = " AND ".join(f"g.{qident(k)} IS NOT DISTINCT FROM t.{qident(k)}" for k in spec.key)
    same = " AND ".join(f"g.{qident(c)} IS NOT DISTINCT FROM t.{qident(c)}" for c in content_columns(spec))
    con.execute("DROP TABLE IF EXISTS _cmp")
    con.execute(
        f"""CREATE TEMP TABLE _cmp AS
            SELECT g.*, t._batch_id IS NOT NULL AS _present, coalesce({same}, false) AS _same,
                   t._batch_id AS _old_batch, t._source_row AS _old_row
            FROM _good g LEFT JOIN {table} t ON {on}"""
    )
    stats = con.execute(
        "SELECT count(*) FILTER (WHERE NOT _present), count(*) FILTER (WHERE _present AND _same), "
        "count(*) FILTER (WHERE _present AND NOT _same) FROM _cmp"
    ).fetchall()[0]
    new, same_n, changed = (int(x) for x in stats)
    res.rows_already_present = same_n
    key_eq = " AND ".join(f"{table}.{qident(k)} IS NOT DISTINCT FROM c.{qident(k)}" for k in spec.key)
    if spec.reference:
        if changed:
            con.execute(
                f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM _cmp c WHERE c._present AND NOT c._same AND {key_eq})"
            )
        con.execute(f"INSERT INTO {table} ({all_cols}) SELECT {all_cols} FROM _cmp WHERE NOT _present OR NOT _same")
        res.rows_loaded, res.rows_updated = new, changed
    else:
        con.execute(f"INSERT INTO {table} ({all_cols}) SELECT {all_cols} FROM _cmp WHERE NOT _present")
        res.rows_loaded = new
        if changed:
            key_text = " || '|' || ".join(f"coalesce(CAST({qident(k)} AS VARCHAR), '')" for k in spec.key)
            con.execute(
                f"""INSERT INTO quarantine
                    SELECT {head}, _source_row, {qstr('+'.join(spec.key))}, left({key_text}, 500),
                    'conflict: key already loaded with different content (batch ' || _old_batch || ', row '
                    || _old_row || ') / 主键已存在但内容不同'
                    FROM _cmp WHERE _present AND NOT _same ORDER BY _source_row"""
            )
            res.rows_rejected += changed
    res.quarantine_rows = _quarantine_count(con, batch_id)


def _quarantine_count(con: duckdb.DuckDBPyConnection, batch_id: int) -> int:
    return int(con.execute("SELECT count(*) FROM quarantine WHERE batch_id = ?", [batch_id]).fetchall()[0][0])


def _orphans(con: duckdb.DuckDBPyConnection, table: str, batch_id: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for col, ref, ref_col in ORPHAN_CHECKS.get(table, ()):
        n = con.execute(
            f"""SELECT count(*) FROM {qident(table)} x WHERE x._batch_id = ? AND x.{qident(col)} IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM {qident(ref)} r WHERE r.{qident(ref_col)} = x.{qident(col)})""",
            [batch_id],
        ).fetchall()[0][0]
        if n:
            out[f"{col}→{ref}"] = int(n)
    return out
