"""Query engines behind the detection context: DuckDB (embedded, the default) and Apache Spark (a cluster)."""

from __future__ import annotations

from typing import Any

__all__ = ["ENGINES", "Engine", "make_engine"]

ENGINES: tuple[str, ...] = ("duckdb", "spark")


def make_engine(name: str, con: Any = None, **options: Any) -> Any:
    """The engine called `name` (`duckdb` over the claims store connection `con`, or `spark`, see
    `fraudnet.engines.spark.SparkEngine.from_store`)."""
    from fraudnet.errors import InvalidRequestError

    if name == "duckdb":
        from fraudnet.engines.duck import DuckDBEngine

        return DuckDBEngine(con)
    if name == "spark":
        from fraudnet.engines.spark import SparkEngine

        return SparkEngine.from_store(con, **options)
    raise InvalidRequestError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}", field="engine")


from fraudnet.engines.base import Engine  # noqa: E402  (the protocol; light, no engine imported)
