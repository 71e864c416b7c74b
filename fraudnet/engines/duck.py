"""`DuckDBEngine`: the embedded engine — detector SQL runs as written, on the claims store's connection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import pandas as pd

from fraudnet.engines.base import Params
from fraudnet.engines.grouped import local_components, local_per_group

__all__ = ["DuckDBEngine"]


class DuckDBEngine:
    """Detector SQL on a DuckDB connection (the claims store's), unchanged: the reference engine."""

    name = "duckdb"
    errors: tuple[type[BaseException], ...] = (duckdb.Error,)

    def __init__(self, con: Any) -> None:
        self.con = con

    def sql(self, query: str, params: Params = None) -> pd.DataFrame:
        if params is None:
            return self.con.execute(query).df()
        return self.con.execute(query, params).df()

    def rows(self, query: str, params: Params = None) -> list[tuple]:
        return self.con.execute(query, params if params is not None else []).fetchall()

    def temp_table(self, name: str, query: str, params: Params = None) -> None:
        statement = f"CREATE OR REPLACE TEMP TABLE {name} AS {query}"
        if params is None:
            self.con.execute(statement)
        else:
            self.con.execute(statement, params)

    def append(self, name: str, columns: Sequence[str], query: str, params: Params = None) -> None:
        statement = f"INSERT INTO {name} ({', '.join(columns)}) {query}"
        if params is None:
            self.con.execute(statement)
        else:
            self.con.execute(statement, params)

    def drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(name, frame)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def per_group(self, query: str, params: Params, keys: Sequence[str], fn: Callable[[pd.DataFrame], pd.DataFrame],
                  schema: str) -> pd.DataFrame:
        return local_per_group(self.sql(query, params), keys, fn, schema)

    def components(self, query: str, params: Params = None) -> pd.DataFrame:
        return local_components(self.sql(query, params))

    def close(self) -> None:
        """Nothing to stop: the connection belongs to the claims store."""
