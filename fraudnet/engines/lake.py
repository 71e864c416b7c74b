"""The Parquet lake for a cluster: the claims store's validated tables partitioned by region and month.

`write_lake(con, lake, batches)` runs after the normal ingest (`fraudnet ingest DIR --lake PATH`): the rows are
the ones the ingest validated and kept (quarantined rows never reach the store, hence never the lake), and only
the partitions the new batches touch are rewritten, from the store's current rows — so re-ingesting a file
(no new batch) writes nothing, and an update replaces its partition instead of adding a duplicate. Layout:
`<lake>/<table>/region=<6-digit admdvs>/month=<yyyy-mm>/data_0.parquet` (Hive style; `_` where a table has no
region or no time). Visit tables (mdtrt, setl, fee_list, visit_fact) take the institution's region and the
visit's month, so one (region, month) partition of each joins locally; `lake_tables` reads it back on Spark.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

__all__ = ["LAKE_TABLES", "check_lake", "lake_tables", "partition_sql", "write_lake"]

_INST_REGION = ("coalesce(left((SELECT i.admdvs FROM medins_info i WHERE i.fixmedins_code = {t}.fixmedins_code), 6),"
                " '_')")
_MONTH = "coalesce(strftime({col}, '%Y-%m'), '_')"
_OF_VISIT = "coalesce((SELECT {} FROM mdtrt m WHERE m.mdtrt_id = t.mdtrt_id), '_')"  # a visit's line: its visit's

# table → (region expression, month expression) over the table aliased as `t`
_PARTITIONS: dict[str, tuple[str, str]] = {
    "mdtrt": (_INST_REGION.format(t="t"), _MONTH.format(col="t.begntime")),
    "visit_fact": (_INST_REGION.format(t="t"), _MONTH.format(col="t.begntime")),
    "setl": (_OF_VISIT.format(_INST_REGION.format(t="m")), _OF_VISIT.format(_MONTH.format(col="m.begntime"))),
    "fee_list": (_OF_VISIT.format(_INST_REGION.format(t="m")), _OF_VISIT.format(_MONTH.format(col="m.begntime"))),
    "psn_info": ("coalesce(left(coalesce(t.insuplc_admdvs, t.live_admdvs), 6), '_')", "'_'"),
    "medins_info": ("coalesce(left(t.admdvs, 6), '_')", "'_'"),
}
LAKE_TABLES: tuple[str, ...] = ("psn_info", "medins_info", "prac_info", "hilist", "phar_inv", "mdtrt", "setl",
                                "fee_list", "visit_fact")


def partition_sql(table: str) -> tuple[str, str]:
    """SQL expressions (over the table aliased `t`) of a row's region and month partition."""
    return _PARTITIONS.get(table, ("'_'", "'_'"))


def _present(con: Any) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _columns(con: Any, table: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                      "ORDER BY ordinal_position", [table]).fetchall()]


def write_lake(con: Any, lake: Path, batches: list[int] | None = None) -> dict[str, int]:
    """Write the partitions of the store's tables touched by ingest `batches` (all, when None or when the lake
    is new) into `lake`; returns table → partitions written. The bookkeeping columns (`_batch_id`, `_source_*`,
    `_extra`) stay in the store."""
    lake = Path(lake)
    if not any((lake / t).is_dir() for t in LAKE_TABLES):  # a new lake starts with everything the store holds
        batches = None
    lake.mkdir(parents=True, exist_ok=True)
    present = _present(con)
    staging = lake / f".staging-{uuid.uuid4().hex}"
    written: dict[str, int] = {}
    visit_batches = "TRUE" if batches is None else (
        "t.mdtrt_id IN (SELECT mdtrt_id FROM mdtrt WHERE _batch_id IN ({ids}) UNION "
        "SELECT mdtrt_id FROM setl WHERE _batch_id IN ({ids}))")
    try:
        for table in LAKE_TABLES:
            if table not in present:
                continue
            region, month = partition_sql(table)
            cols = [c for c in _columns(con, table) if not c.startswith("_")]
            if batches is None:
                touched = "TRUE"
            elif not batches:
                continue
            else:
                ids = ", ".join(str(int(b)) for b in batches)
                if table == "visit_fact":
                    touched = visit_batches.format(ids=ids)
                elif "_batch_id" in _columns(con, table):
                    touched = f"t._batch_id IN ({ids})"
                else:
                    continue
            parts = con.execute(f"SELECT DISTINCT {region} AS region, {month} AS month FROM \"{table}\" t "
                                f"WHERE {touched}").fetchall()
            if not parts:
                continue
            con.execute("CREATE OR REPLACE TEMP TABLE _fn_lake_parts (region VARCHAR, month VARCHAR)")
            con.executemany("INSERT INTO _fn_lake_parts VALUES (?, ?)", parts)
            select = ", ".join(f't."{c}"' for c in cols)
            out = staging / table
            out.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"""COPY (SELECT * FROM (SELECT {select}, {region} AS region, {month} AS month FROM "{table}" t)
                          x WHERE EXISTS (SELECT 1 FROM _fn_lake_parts p WHERE p.region = x.region
                                          AND p.month = x.month))
                    TO '{out}' (FORMAT parquet, PARTITION_BY (region, month), OVERWRITE_OR_IGNORE true)""")
            con.execute("DROP TABLE _fn_lake_parts")
            for region_value, month_value in parts:  # swap each touched partition in whole
                rel = Path(table) / f"region={region_value}" / f"month={month_value}"
                target = lake / rel
                if target.exists():
                    shutil.rmtree(target)
                if (staging / rel).exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    (staging / rel).rename(target)
            written[table] = len(parts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def check_lake(lake: Path, con: Any = None) -> list[str]:
    """The lake's tables, checked before any cluster work: `lake` is a folder holding at least the visit tables,
    each table's files are Parquet, and each has the columns the claims store behind `con` has for it (foreign
    Parquet has not). Raises `InvalidRequestError` naming the lake, the table and what is wrong."""
    import duckdb

    from fraudnet.errors import InvalidRequestError

    lake = Path(lake)
    if not lake.is_dir():
        raise InvalidRequestError(f"lake {lake}: no such folder (write one with fraudnet ingest DIR --lake {lake})",
                                  field="lake")
    missing = [t for t in ("mdtrt", "visit_fact") if not (lake / t).is_dir()]
    if missing:
        raise InvalidRequestError(f"lake {lake}: no {', '.join(missing)} folder — not a fraudnet lake "
                                  f"(fraudnet ingest DIR --lake {lake} writes one)", field="lake")
    store = _present(con) if con is not None else set()
    tables = []
    probe = duckdb.connect()
    try:
        for table in LAKE_TABLES:
            path = lake / table
            if not path.is_dir():
                continue
            try:
                names = [d[0] for d in probe.execute(
                    "SELECT * FROM read_parquet(?, hive_partitioning = true, union_by_name = true) LIMIT 0",
                    [str(path / "**" / "*.parquet")]).description]
            except duckdb.Error as exc:
                raise InvalidRequestError(f"lake {lake}: {table}/ is not readable as Parquet "
                                          f"({str(exc).splitlines()[0][:200]})", field="lake") from exc
            if table in store:
                lacking = [c for c in _columns(con, table) if not c.startswith("_") and c not in set(names)]
                if lacking:
                    raise InvalidRequestError(f"lake {lake}: {table}/ lacks the columns {', '.join(lacking[:8])}"
                                              f"{' …' if len(lacking) > 8 else ''} — not a fraudnet lake table",
                                              field="lake")
            tables.append(table)
    finally:
        probe.close()
    return tables


def lake_tables(session: Any, lake: Path, con: Any = None) -> dict[str, Any]:
    """Spark DataFrames of the lake's tables (partition columns dropped: the detectors read the contract's),
    after `check_lake`."""
    return {table: session.read.option("basePath", str(Path(lake) / table)).parquet(str(Path(lake) / table))
            .drop("region", "month") for table in check_lake(lake, con)}
