"""The `Engine` protocol: what a detection context needs from a query engine."""

from __future__ import annotations

from collections.abc import Sequence
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

    def close(self) -> None: ...
