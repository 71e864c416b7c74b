"""DDL of the claims store: contract tables, bookkeeping tables and the materialised `visit_fact` table.

Contract tables keep their canonical names and columns (types from `fraudnet.contract`: str→VARCHAR,
date→DATE, datetime→TIMESTAMP, money→DECIMAL(18,2), decimal/float→DOUBLE, int→BIGINT) plus the bookkeeping
columns `_batch_id`, `_source_file`, `_source_row` and `_extra` (JSON of unknown extra input columns).
`psn_info` never holds a raw `certno` or `mob`: it has `certno_hash`, `certno_masked`, `mob_hash`,
`mob_masked` and, next to `live_addr`, `addr_key` (keyed hash of the normalised address).

`visit_fact` is a table (faster than a view for repeated detector queries) brought up to date at the end of
every ingest: the visits that new mdtrt/setl rows touch are recomputed, and a change to medins_info rebuilds
it. One row per loaded visit (mdtrt; rows with vali_flag 0 are never loaded) with:
mdtrt_id, psn_no, fixmedins_code, fixmedins_type, medins_admdvs, med_type, begntime, endtime,
mdtrt_cert_type, atddr_no, dept_code, dise_codg, dise_name, insuplc_admdvs, opter_id,
medfee_sumamt, fund_pay_sumamt, hifp_pay, acct_pay, psn_cash_pay (DOUBLE, net over the visit's settlements
including refunds), setl_count, refunded (fully cancelled: net medfee ≤ 0 and a refund exists),
first_setl_time, last_setl_time, is_inpatient (med_type in INPATIENT_MED_TYPES),
los_days (calendar days endtime − begntime), is_pharmacy (med_type 41 or a type-2 institution).
"""

from __future__ import annotations

import duckdb

from fraudnet.contract import INPATIENT_MED_TYPES, PHARMACY_MED_TYPES, TABLE_ORDER, TABLES, TableSpec

__all__ = [
    "SCHEMA_VERSION",
    "SQL_TYPES",
    "BOOKKEEPING_COLUMNS",
    "PSN_PRIVATE_COLUMNS",
    "stored_columns",
    "content_columns",
    "table_ddl",
    "create_schema",
    "refresh_visit_fact",
    "refresh_visit_fact_statements",
    "visit_fact_select",
    "has_primary_key",
    "NO_PRIMARY_KEY",
    "LABEL_DDL",
]

SCHEMA_VERSION = 1

# Tables whose key is enforced by the ingest only (see `has_primary_key`).
NO_PRIMARY_KEY = frozenset({"fee_list", "phar_inv"})

SQL_TYPES: dict[str, str] = {
    "str": "VARCHAR",
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "money": "DECIMAL(18,2)",
    "decimal": "DOUBLE",
    "int": "BIGINT",
    "float": "DOUBLE",
}

BOOKKEEPING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_batch_id", "BIGINT"),
    ("_source_file", "VARCHAR"),
    ("_source_row", "BIGINT"),
    ("_extra", "JSON"),
)

# psn_info columns that replace the raw identifiers (which are never stored).
PSN_PRIVATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "certno": ("certno_hash", "certno_masked"),
    "mob": ("mob_hash", "mob_masked"),
    "live_addr": ("live_addr", "addr_key"),
}


def stored_columns(spec: TableSpec) -> list[tuple[str, str]]:
    """(name, SQL type) of a contract table's stored data columns, in order, without bookkeeping columns."""
    cols: list[tuple[str, str]] = []
    for f in spec.fields:
        if spec.name == "psn_info" and f.name in PSN_PRIVATE_COLUMNS:
            cols.extend((c, "VARCHAR") for c in PSN_PRIVATE_COLUMNS[f.name])
        else:
            cols.append((f.name, SQL_TYPES[f.type]))
    return cols


def content_columns(spec: TableSpec) -> list[str]:
    """Stored data columns compared to decide whether a re-sent row is identical."""
    return [name for name, _ in stored_columns(spec)]


def has_primary_key(spec: TableSpec) -> bool:
    """Whether the table's key is declared as a DuckDB PRIMARY KEY.

    Reference tables, mdtrt and setl have one (point look-ups by id use its index). fee_list (the largest
    table: an index on it would double its load time) and phar_inv (whose key includes the optional
    `spler_name`) have none: the ingest enforces their key (in-file duplicates and keys already loaded).
    """
    if spec.name not in NO_PRIMARY_KEY and all(spec.field(k).required for k in spec.key):
        return True
    return False


def table_ddl(spec: TableSpec) -> str:
    """CREATE TABLE IF NOT EXISTS statement of one contract table."""
    cols = [f'"{name}" {typ}' for name, typ in stored_columns(spec)]
    cols += [f'"{name}" {typ}' for name, typ in BOOKKEEPING_COLUMNS]
    if has_primary_key(spec):
        cols.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in spec.key) + ")")
    return f'CREATE TABLE IF NOT EXISTS "{spec.name}" (\n    ' + ",\n    ".join(cols) + "\n)"


_BOOKKEEPING_DDL = (
    """CREATE TABLE IF NOT EXISTS schema_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ingest_batches (
        batch_id BIGINT PRIMARY KEY,
        file_name VARCHAR,
        file_path VARCHAR,
        file_hash VARCHAR,
        table_name VARCHAR,
        format VARCHAR,
        encoding VARCHAR,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        rows_read BIGINT,
        rows_loaded BIGINT,
        rows_rejected BIGINT,
        rows_invalid BIGINT,
        rows_already_present BIGINT,
        rows_updated BIGINT,
        status VARCHAR,
        message VARCHAR
    )""",
    # Watermark of derived tables (see fraudnet.claims.derived).
    """CREATE TABLE IF NOT EXISTS derived_state (
        name VARCHAR PRIMARY KEY,
        source_batch BIGINT,
        source_rows BIGINT,
        refreshed_at TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        batch_id BIGINT,
        file_name VARCHAR,
        table_name VARCHAR,
        row_number BIGINT,
        field VARCHAR,
        value VARCHAR,
        reason VARCHAR
    )""",
)

# Case outcomes used as labels (`fraudnet labels import`, `fraudnet.learning.labels`): one current label per
# entity, the imports that brought them and the rows they quarantined.
LABEL_DDL = (
    """CREATE TABLE IF NOT EXISTS labels (
        entity_type VARCHAR NOT NULL, entity_id VARCHAR NOT NULL, label VARCHAR NOT NULL, decided_at DATE,
        source VARCHAR, note VARCHAR, import_id BIGINT, file_name VARCHAR, row_number BIGINT,
        imported_by VARCHAR, imported_at TIMESTAMP, PRIMARY KEY (entity_type, entity_id))""",
    """CREATE TABLE IF NOT EXISTS label_imports (
        import_id BIGINT PRIMARY KEY, file_name VARCHAR, file_hash VARCHAR, imported_by VARCHAR,
        imported_at TIMESTAMP, rows_read BIGINT, rows_loaded BIGINT, rows_updated BIGINT, rows_unchanged BIGINT,
        rows_quarantined BIGINT, status VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS label_quarantine (
        import_id BIGINT, file_name VARCHAR, row_number BIGINT, field VARCHAR, value VARCHAR, reason VARCHAR)""",
)


def _sql_list(values: frozenset[str] | set[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + ")"


_VISIT_FACT_SELECT = """
WITH s AS (
    SELECT mdtrt_id,
           sum(medfee_sumamt)::DOUBLE AS medfee_sumamt,
           sum(fund_pay_sumamt)::DOUBLE AS fund_pay_sumamt,
           sum(hifp_pay)::DOUBLE AS hifp_pay,
           sum(acct_pay)::DOUBLE AS acct_pay,
           sum(psn_cash_pay)::DOUBLE AS psn_cash_pay,
           count(*) AS setl_count,
           bool_or(refd_setl_flag = '1') AS has_refund,
           min(setl_time) AS first_setl_time,
           max(setl_time) AS last_setl_time
    FROM setl
    {setl_filter}
    GROUP BY mdtrt_id
)
SELECT m.mdtrt_id, m.psn_no, m.fixmedins_code, i.fixmedins_type, i.admdvs AS medins_admdvs,
       m.med_type, m.begntime, m.endtime, m.mdtrt_cert_type, m.atddr_no, m.dept_code, m.dise_codg,
       m.dise_name, m.insuplc_admdvs, m.opter_id,
       coalesce(s.medfee_sumamt, 0)::DOUBLE AS medfee_sumamt,
       coalesce(s.fund_pay_sumamt, 0)::DOUBLE AS fund_pay_sumamt,
       coalesce(s.hifp_pay, 0)::DOUBLE AS hifp_pay,
       coalesce(s.acct_pay, 0)::DOUBLE AS acct_pay,
       coalesce(s.psn_cash_pay, 0)::DOUBLE AS psn_cash_pay,
       coalesce(s.setl_count, 0)::BIGINT AS setl_count,
       coalesce(s.has_refund AND s.medfee_sumamt <= 0, false) AS refunded,
       s.first_setl_time, s.last_setl_time,
       m.med_type IN {inpatient} AS is_inpatient,
       date_diff('day', m.begntime::DATE, coalesce(m.endtime, m.begntime)::DATE)::BIGINT AS los_days,
       (m.med_type IN {pharmacy} OR coalesce(i.fixmedins_type = '2', false)) AS is_pharmacy
FROM mdtrt m
LEFT JOIN s ON s.mdtrt_id = m.mdtrt_id
LEFT JOIN medins_info i ON i.fixmedins_code = m.fixmedins_code
{mdtrt_filter}
"""


def _visit_fact_select(only_ids_table: str | None = None) -> str:
    """The SELECT behind visit_fact, for every visit or only those whose mdtrt_id is in `only_ids_table`."""
    ids = f"(SELECT mdtrt_id FROM {only_ids_table})" if only_ids_table else ""
    return _VISIT_FACT_SELECT.format(
        setl_filter=f"WHERE mdtrt_id IN {ids}" if ids else "",
        mdtrt_filter=f"WHERE m.mdtrt_id IN {ids}" if ids else "",
        inpatient=_sql_list(INPATIENT_MED_TYPES),
        pharmacy=_sql_list(PHARMACY_MED_TYPES),
    )


def visit_fact_select() -> str:
    """The SELECT giving every row of visit_fact."""
    return _visit_fact_select()


def refresh_visit_fact_statements(con: duckdb.DuckDBPyConnection, batch_ids: list[int] | None = None) -> None:
    """The statements of `refresh_visit_fact` without a transaction of their own (the caller holds one)."""
    if batch_ids is None:
        con.execute("CREATE OR REPLACE TABLE main.visit_fact AS " + _visit_fact_select())
        return
    if not batch_ids:
        return
    ids = ", ".join(str(int(b)) for b in batch_ids)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _vf_ids AS
            SELECT mdtrt_id FROM mdtrt WHERE _batch_id IN ({ids})
            UNION SELECT mdtrt_id FROM setl WHERE _batch_id IN ({ids})"""
    )
    con.execute("DELETE FROM main.visit_fact WHERE mdtrt_id IN (SELECT mdtrt_id FROM _vf_ids)")
    con.execute("INSERT INTO main.visit_fact " + _visit_fact_select("_vf_ids"))
    con.execute("DROP TABLE _vf_ids")


def refresh_visit_fact(con: duckdb.DuckDBPyConnection, batch_ids: list[int] | None = None) -> None:
    """Bring the materialised `visit_fact` table up to date with mdtrt, setl and medins_info.

    With `batch_ids` (the ingest batches of mdtrt/setl rows just loaded) only the visits those rows touch are
    recomputed, in one transaction; without, the table is rebuilt (needed when institutions changed).
    The ingest and `ClaimsStore.open` use `fraudnet.claims.derived.bring_up_to_date`, which also moves the
    watermark.
    """
    if batch_ids is None:
        refresh_visit_fact_statements(con)
        return
    if not batch_ids:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        refresh_visit_fact_statements(con, batch_ids)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table of the claims store that does not exist yet (idempotent)."""
    for name in TABLE_ORDER:
        con.execute(table_ddl(TABLES[name]))
    # A store created before an optional field joined the contract (e.g. psn_info.death_date) gains it.
    present = set(con.execute("SELECT table_name, column_name FROM information_schema.columns WHERE "
                              "table_catalog = current_database() AND table_schema = 'main'").fetchall())
    for name in TABLE_ORDER:
        for col, typ in stored_columns(TABLES[name]):
            if (name, col) not in present:
                con.execute(f'ALTER TABLE "{name}" ADD COLUMN IF NOT EXISTS "{col}" {typ}')
    for ddl in _BOOKKEEPING_DDL + LABEL_DDL:
        con.execute(ddl)
    con.execute(
        "INSERT INTO schema_meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING", [str(SCHEMA_VERSION)]
    )
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'visit_fact'"
    ).fetchall()[0][0]
    if not exists:
        refresh_visit_fact(con)
