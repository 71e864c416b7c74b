"""The `Engine` protocol: what a detection context needs from a query engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pandas as pd

__all__ = ["Engine", "Params"]

Params = list[Any] | dict[str, Any] | None


class Engine(Protocol):
    """Runs detector SQL, written once in DuckDB's dialect, and holds the run's temporary tables.

    `sql` returns a pandas DataFrame and `rows` a list of tuples, converted exactly as DuckDB converts them (so a
    detector cannot tell the engines apart); `temp_table` materialises a query under a name, `append` adds a
    query's rows to one, `drop` forgets one; `register`/`unregister` expose a pandas frame as a table. `errors`
    are the exception types a query on a missing table or column raises.

    The graph steps: `per_group(query, params, keys, fn, schema)` applies `fn` (pandas → pandas of `schema`, a
    Spark DDL string) to each group of the query's rows by `keys` — locally on DuckDB, on the executors on Spark
    (only `fn`'s results reach the driver); `components(query, params)` labels the vertices of the query's edges
    (`src`, `dst`) with their component's smallest vertex id — igraph on DuckDB, iterative joins on Spark.
    """

    name: str
    con: Any  # the DuckDB connection (None on Spark)
    errors: tuple[type[BaseException], ...]

    def sql(self, query: str, params: Params = None) -> pd.DataFrame: ...

    def rows(self, query: str, params: Params = None) -> list[tuple]: ...

    def temp_table(self, name: str, query: str, params: Params = None) -> None: ...

    def append(self, name: str, columns: Sequence[str], query: str, params: Params = None) -> None: ...

    def drop(self, name: str) -> None: ...

    def register(self, name: str, frame: pd.DataFrame) -> None: ...

    def unregister(self, name: str) -> None: ...

    def per_group(self, query: str, params: Params, keys: Sequence[str], fn: Callable[[pd.DataFrame], pd.DataFrame],
                  schema: str) -> pd.DataFrame: ...

    def components(self, query: str, params: Params = None) -> pd.DataFrame: ...

    def close(self) -> None: ...
