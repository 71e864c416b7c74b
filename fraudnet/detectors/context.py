"""`ClaimsContext`: the read access detectors get to the claims store through a query engine (DuckDB by default,
Spark for a cluster), its data period, and the temporary tables and named results a run declares."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["ClaimsContext"]


class ClaimsContext:
    """Detection context over an engine (`fraudnet.engines`) holding the claims store's tables.

    Detectors write their SQL once, in DuckDB's dialect, and reach the data only through this object:
    - `sql(query, params)` → DataFrame, `rows(query, params)` → tuples;
    - `temp_table(name, query, params, shared=False)` materialises a query under a name: a detector's own table
      is dropped with `drop_temp(name)`; a `shared` one (used by several detectors) lives until `close_run()`;
      `append(name, columns, query)` adds rows to one; `temp_tables` lists those alive;
    - `frame_table(name, frame)` exposes a pandas frame as a table for a `with` block;
    - `named(key, build)` is a result computed once per run and shared (graph projections), listed in `named_results`.

    `as_of` defaults to the latest visit time in `visit_fact`; `since` (optional) limits an incremental run to
    evidence from that time on. `con` is the DuckDB connection on the DuckDB engine (None on Spark).
    """

    def __init__(self, con: Any = None, as_of: datetime | None = None, since: datetime | None = None,
                 engine: Any = None) -> None:
        if engine is None:
            from fraudnet.engines.duck import DuckDBEngine

            engine = DuckDBEngine(con)
        self.engine = engine
        self.con = engine.con
        self.since = since
        self.cache: dict[str, Any] = {}
        self.named_results = self.cache  # key → result of `named`
        self.temp_tables: dict[str, bool] = {}  # name → shared
        self.coverage_cache: dict[str, Any] = {}  # requirement name → coverage.Coverage, measured once
        self.as_of = as_of if as_of is not None else self._latest_visit_time()

    @property
    def query_errors(self) -> tuple[type[BaseException], ...]:
        """Exception types a query on a missing table or column raises on this engine."""
        return self.engine.errors

    def coverage(self, requirement: str) -> Any:
        """Per-institution coverage of a data requirement (`coverage.Coverage`), measured once per context."""
        from fraudnet.detectors.coverage import coverage

        return coverage(self, requirement)

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a read query and return a DataFrame."""
        return self.engine.sql(query, params)

    def rows(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> list[tuple]:
        """Run a read query and return its rows as tuples."""
        return self.engine.rows(query, params)

    def temp_table(self, name: str, query: str, params: list[Any] | dict[str, Any] | None = None,
                   shared: bool = False) -> str:
        """Materialise `query` as the temporary table `name` (replacing it) and return the name."""
        self.engine.temp_table(name, query, params)
        self.temp_tables[name] = shared or self.temp_tables.get(name, False)
        return name

    def append(self, name: str, columns: Sequence[str], query: str,
               params: list[Any] | dict[str, Any] | None = None) -> None:
        """Insert the rows of `query` into the temporary table `name` (its `columns`, in order)."""
        if name not in self.temp_tables:
            raise KeyError(f"{name} is not a temporary table of this run")
        self.engine.append(name, columns, query, params)

    def drop_temp(self, name: str) -> None:
        """Drop the temporary table `name` (no error when absent)."""
        self.engine.drop(name)
        self.temp_tables.pop(name, None)

    @contextmanager
    def frame_table(self, name: str, frame: pd.DataFrame) -> Iterator[str]:
        """Expose `frame` as the table `name` within the block."""
        self.engine.register(name, frame)
        try:
            yield name
        finally:
            self.engine.unregister(name)

    def named(self, key: str, build: Callable[[], Any]) -> Any:
        """The run's result called `key`, built once with `build()` and shared between detectors."""
        if key not in self.named_results:
            self.named_results[key] = build()
        return self.named_results[key]

    def per_group(self, query: str, params: list[Any] | dict[str, Any] | None, keys: Sequence[str],
                  fn: Callable[[pd.DataFrame], pd.DataFrame], schema: str) -> pd.DataFrame:
        """`fn` (pandas → pandas with `schema`, a Spark DDL string such as `"inst string, n long"`) applied to
        each group of the query's rows by `keys`, its results stacked: the graph step of one institution, operator
        or component. The engine decides where it runs (DuckDB: here; Spark: on the executors, so only `fn`'s
        results reach this process). `fn` must be pure and must not rely on the order of its group's rows."""
        return self.engine.per_group(query, params, keys, fn, schema)

    def components(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """(`vertex`, `component`) for the undirected graph whose edges are the query's `src`, `dst` rows:
        `component` is the smallest vertex id of the vertex's component (DuckDB: igraph here; Spark: iterative
        joins on the cluster, the edges never collected)."""
        return self.engine.components(query, params)

    def close_run(self) -> list[str]:
        """Drop every temporary table still alive (shared ones included); returns those that failed."""
        failed = []
        for name in sorted(self.temp_tables):
            try:
                self.drop_temp(name)
            except Exception:  # noqa: BLE001 - a failed drop must not lose the run
                failed.append(name)
        return failed

    def _latest_visit_time(self) -> datetime | None:
        try:
            rows = self.engine.rows("SELECT max(begntime) FROM visit_fact")
        except self.engine.errors:  # an empty store has no visit_fact yet, hence no period
            return None
        return rows[0][0]
