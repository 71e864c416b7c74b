"""`ClaimsContext`: the read access detectors get to the claims store (SQL over DuckDB) and its data period."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

__all__ = ["ClaimsContext"]


class ClaimsContext:
    """Detection context over a DuckDB connection holding the claims store's tables and views.

    `as_of` defaults to the latest visit time in `visit_fact`; `since` (optional) limits an incremental
    run to evidence from that time on. Graph projections are cached here so detectors can share them, and
    so is the coverage of each data requirement (`coverage(name)`, see `fraudnet.detectors.coverage`).
    """

    def __init__(self, con: Any, as_of: datetime | None = None, since: datetime | None = None) -> None:
        self.con = con
        self.since = since
        self.as_of = as_of if as_of is not None else self._latest_visit_time()
        self.cache: dict[str, Any] = {}
        self.coverage_cache: dict[str, Any] = {}  # requirement name → coverage.Coverage, measured once

    def coverage(self, requirement: str) -> Any:
        """Per-institution coverage of a data requirement (`coverage.Coverage`), measured once per context."""
        from fraudnet.detectors.coverage import coverage

        return coverage(self, requirement)

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a read query and return a DataFrame."""
        if params is None:
            return self.con.execute(query).df()
        return self.con.execute(query, params).df()

    def _latest_visit_time(self) -> datetime | None:
        try:
            value = self.con.execute("SELECT max(begntime) FROM visit_fact").fetchall()[0][0]
        except duckdb.Error:  # an empty store has no visit_fact yet, hence no period
            return None
        return value
