"""`SparkEngine`: detector SQL on Apache Spark (local mode or a cluster), reading the claims tables as Parquet.

The SQL is the detectors' own (DuckDB dialect) transpiled by sqlglot (`fraudnet.engines.dialect`); results come
back as Arrow and are turned into pandas by DuckDB's own conversion, so detectors see the same dtypes on both
engines. Temporary tables are Spark temp views over locally checkpointed DataFrames (materialised once, like
DuckDB's temp tables). Needs the `spark` extra: `pip install fraudnet[spark]` (PySpark, sqlglot; Java 17).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from fraudnet.engines.base import Params
from fraudnet.engines.dialect import to_dialect
from fraudnet.errors import FraudnetError

__all__ = ["SparkEngine", "check_master", "spark_session", "export_store", "STORE_TABLES"]

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"
_MASTER = re.compile(r"local(\[(\*|[1-9]\d*)(,\s*[1-9]\d*)?\])?|spark://[\w.\-]+(:\d+)?(,[\w.\-]+(:\d+)?)*|yarn"
                     r"|k8s://https?://[\w.\-]+(:\d+)?")


def STORE_TABLES() -> tuple[str, ...]:  # noqa: N802 - a constant computed on demand (contract import is heavy)
    """The claims store tables detection reads: every contract table and the derived `visit_fact`."""
    from fraudnet.contract import TABLE_ORDER

    return (*TABLE_ORDER, "visit_fact")


def check_master(master: str) -> str:
    """`master` when it is a Spark master URL (local, local[N], local[*], spark://HOST:PORT[,HOST:PORT],
    yarn, k8s://https://HOST:PORT); otherwise `InvalidRequestError` naming it."""
    from fraudnet.errors import InvalidRequestError

    if not isinstance(master, str) or not _MASTER.fullmatch(master):
        raise InvalidRequestError(f"Spark master {master!r} is not a master URL: local, local[N], local[*], "
                                  "spark://HOST:PORT, yarn, k8s://https://HOST:PORT", field="master")
    return master


def spark_session(master: str | None = None, driver_memory: str = "2g", app_name: str = "fraudnet-detect",
                  conf: dict[str, str] | None = None) -> Any:
    """A SparkSession on `master` (local[2] by default; `spark://HOST:7077`, `yarn`, …) with UTC time, no UI,
    few shuffle partitions for local mode. The caller stops it (`SparkEngine.close`)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # the optional extra is not installed
        raise FraudnetError("the Spark engine needs PySpark: pip install 'fraudnet[spark]' (and Java 17)") from exc
    master = check_master(master or os.environ.get("FRAUDNET_SPARK_MASTER") or DEFAULT_MASTER)
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.driver.memory", driver_memory)
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "false")
               .config("spark.sql.constraintPropagation.enabled", "false")  # a union of checkpoints trips it
               .config("spark.sql.shuffle.partitions", "4" if master.startswith("local") else "200")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true"))
    if master.startswith("local"):  # Python workers (applyInPandas) run this interpreter, with its packages
        builder = builder.config("spark.pyspark.python", sys.executable)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # what SparkContext itself reads
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - Py4J/Java errors: no Java, a master that refuses the application
        raise FraudnetError(f"Spark did not start on master {master!r}: {str(exc).splitlines()[0][:300]}") from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


def export_store(con: Any, folder: Path, tables: Sequence[str] | None = None) -> dict[str, Path]:
    """Write the claims store's tables (those present of `tables`, by default `STORE_TABLES()`) to Parquet
    files under `folder`; returns table → file."""
    folder.mkdir(parents=True, exist_ok=True)
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    out: dict[str, Path] = {}
    for table in tables or STORE_TABLES():
        if table not in present:
            continue
        path = folder / f"{table}.parquet"
        con.execute(f"COPY (SELECT * FROM \"{table}\") TO '{path}' (FORMAT parquet)")
        out[table] = path
    return out


class SparkEngine:
    """Detector SQL on a SparkSession whose temp views hold the claims tables."""

    name = "spark"

    def __init__(self, session: Any, tables: dict[str, Any] | None = None, owns_session: bool = True,
                 scratch: Path | None = None) -> None:
        from pyspark.errors import AnalysisException

        self.session = session
        self.con = None
        self.errors: tuple[type[BaseException], ...] = (AnalysisException, duckdb.Error)
        self._owns = owns_session
        self._scratch = scratch
        self._frames: dict[str, Any] = {}
        self.collected_rows = 0  # rows brought to the driver (query results, per-group results, labels)
        self.steps: list[tuple[str, str, int]] = []  # graph steps run: (kind, Spark's plan, rows collected)
        self._local = duckdb.connect()  # Arrow → pandas the way DuckDB does it
        for table, source in (tables or {}).items():  # a Parquet path, or a DataFrame
            frame = session.read.parquet(str(source)) if isinstance(source, str | Path) else source
            frame.createOrReplaceTempView(table)
            self._mirror_schema(table, frame)

    def _mirror_schema(self, table: str, frame: Any) -> None:
        """An empty DuckDB table of the same columns, so `information_schema` questions get DuckDB's answers."""
        empty = frame.limit(0).toArrow()  # noqa: F841 - read by DuckDB's replacement scan
        self._local.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM empty')

    @classmethod
    def from_store(cls, con: Any, master: str | None = None, session: Any = None, workdir: Path | None = None,
                   lake: Path | None = None, **conf: Any) -> SparkEngine:
        """An engine over the claims store behind `con`, exported to Parquet in `workdir` (a temporary folder
        by default, removed on close) — or over the Parquet lake at `lake` (`fraudnet ingest --lake`)."""
        if master is not None:
            check_master(master)
        if lake is not None:  # before any cluster work: a lake that is none fails here
            from fraudnet.engines.lake import check_lake

            check_lake(Path(lake), con)
        if session is None:
            from pyspark.sql import SparkSession

            session = SparkSession.getActiveSession()  # one already running in this process is not ours to stop
        owns = session is None
        session = session or spark_session(master, **conf)
        if lake is not None:
            from fraudnet.engines.lake import lake_tables

            return cls(session, lake_tables(session, Path(lake), con), owns_session=owns)
        scratch = None
        if workdir is None:
            scratch = workdir = Path(tempfile.mkdtemp(prefix="fraudnet-spark-"))
        tables = export_store(con, Path(workdir))
        return cls(session, tables, owns_session=owns, scratch=scratch)

    # ------------------------------------------------------------------ queries
    def _frame(self, query: str, params: Params) -> Any:
        return self.session.sql(to_dialect(query, params, "spark"))

    def _arrow(self, query: str, params: Params) -> pa.Table:
        return self._collect(self._frame(query, params))

    def _collect(self, frame: Any) -> pa.Table:
        table = frame.toArrow()
        self.collected_rows += table.num_rows
        return table

    def _local_relation(self, query: str, params: Params) -> Any:
        """The Spark result in DuckDB, typed as DuckDB types the same query (its plan over the empty mirror
        tables): a sum of integers is HUGEINT there, BIGINT on Spark — the detectors see DuckDB's types."""
        args = params if params is not None else []
        if "information_schema" in query:  # catalog questions: DuckDB's catalog of the same schemas
            return self._local.execute(query, args)
        result = self._arrow(query, params)
        try:
            self._local.execute(f"CREATE OR REPLACE TEMP TABLE _fn_result AS SELECT * FROM ({query}) LIMIT 0", args)
        except duckdb.Error:  # a query DuckDB cannot plan here: Spark's types as they are
            return self._local.from_arrow(result)
        self._local.register("_fn_spark_result", result)
        names = [d[0] for d in self._local.execute("SELECT * FROM _fn_result").description]
        # by name when both engines name the same columns (Spark orders `x.*` of a USING join its own way)
        by_name = "BY NAME " if sorted(names) == sorted(result.column_names) and len(set(names)) == len(names) else ""
        try:
            self._local.execute(f"INSERT INTO _fn_result {by_name}SELECT * FROM _fn_spark_result")
        finally:
            self._local.unregister("_fn_spark_result")
        return self._local.execute("SELECT * FROM _fn_result")

    def sql(self, query: str, params: Params = None) -> pd.DataFrame:
        return self._local_relation(query, params).df()

    def rows(self, query: str, params: Params = None) -> list[tuple]:
        return self._local_relation(query, params).fetchall()

    # ------------------------------------------------------------------ graph steps
    def per_group(self, query: str, params: Params, keys: Sequence[str], fn: Callable[[pd.DataFrame], pd.DataFrame],
                  schema: str) -> pd.DataFrame:
        """`fn` on each group of the query's rows, on the executors (applyInPandas); only its results are
        collected."""
        from fraudnet.engines.spark_graph import per_group

        frame = per_group(self._frame(query, params), list(keys), fn, schema)
        table = self._collect(frame)
        self.steps.append(("per_group", frame._jdf.queryExecution().toString(), table.num_rows))
        return self._local.from_arrow(table).df()

    def components(self, query: str, params: Params = None) -> pd.DataFrame:
        """Component labels of the query's edges by iterative Spark joins; only (vertex, component) is
        collected, never the edges."""
        from fraudnet.engines.spark_graph import connected_components

        labels = connected_components(self._frame(query, params))
        table = self._collect(labels)
        self.steps.append(("components", labels._jdf.queryExecution().toString(), table.num_rows))
        out = self._local.from_arrow(table).df()
        return out.sort_values("vertex", ignore_index=True)

    # ------------------------------------------------------------------ temporary tables
    def _keep(self, name: str, frame: Any) -> None:
        frame = frame.localCheckpoint(eager=True)
        old = self._frames.pop(name, None)
        frame.createOrReplaceTempView(name)
        self._frames[name] = frame
        if old is not None:
            old.unpersist()

    def temp_table(self, name: str, query: str, params: Params = None) -> None:
        self._keep(name, self._frame(query, params))
        try:  # the mirror: the same table, empty, typed by DuckDB
            self._local.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM ({query}) LIMIT 0",
                                params if params is not None else [])
        except duckdb.Error:
            self._mirror_schema(name, self._frames[name])

    def append(self, name: str, columns: Sequence[str], query: str, params: Params = None) -> None:
        cols = list(columns)
        new = self._frame(query, params).toDF(*cols)
        self._keep(name, self.session.table(name).unionByName(new, allowMissingColumns=True))

    def drop(self, name: str) -> None:
        self.session.catalog.dropTempView(name)
        self._local.execute(f"DROP TABLE IF EXISTS {name}")
        frame = self._frames.pop(name, None)
        if frame is not None:
            frame.unpersist()

    def register(self, name: str, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        self.session.createDataFrame(table).createOrReplaceTempView(name)
        self._local.register(name, frame)

    def unregister(self, name: str) -> None:
        self.session.catalog.dropTempView(name)
        self._local.unregister(name)

    def close(self) -> None:
        """Drop the temp views, stop the session if this engine started it, remove the exported Parquet."""
        for name in list(self._frames):
            self.drop(name)
        self._local.close()
        if self._owns:
            self.session.stop()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
