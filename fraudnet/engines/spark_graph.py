"""Graph steps on Spark: connected components by iterative joins, and per-group igraph work via applyInPandas.

`connected_components(edges)` labels every vertex of an edge DataFrame (`src`, `dst`) with the smallest vertex
id of its component, without collecting the graph on the driver: each round every vertex takes the smallest
label among itself and its neighbours (one join and one aggregation), until no label changes — the "hash-min"
label propagation; rounds ≤ the largest component's diameter + 1. This is the step for components that cross the
natural partitions (chains of persons through shared phones and addresses, patient pools spread over several
hospitals). `per_group(frame, keys, fn, schema)` runs `fn(pandas frame) -> pandas frame` once per group
(an institution's co-admissions, an operator's bursts, a component's persons) on the executors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["connected_components", "per_group"]


def connected_components(edges: Any, src: str = "src", dst: str = "dst", max_rounds: int = 100) -> Any:
    """DataFrame (`vertex`, `component`) for the undirected graph of `edges`; `component` is the smallest vertex
    id in the vertex's component (ids must be comparable: strings or numbers). Raises RuntimeError when the
    labels have not settled after `max_rounds` rounds."""
    from pyspark.sql import functions as F  # noqa: N812 - the PySpark convention

    pairs = edges.select(F.col(src).alias("a"), F.col(dst).alias("b")).where(F.col("a").isNotNull()
                                                                            & F.col("b").isNotNull())
    both = pairs.union(pairs.select(F.col("b").alias("a"), F.col("a").alias("b"))).distinct().localCheckpoint()
    labels = (both.groupBy("a").agg(F.least(F.min("b"), F.first("a")).alias("label"))
              .withColumnRenamed("a", "vertex").localCheckpoint())
    for _ in range(max_rounds):
        # every vertex looks at its neighbours' labels and keeps the smallest
        spread = (both.join(labels, both.b == labels.vertex).select(F.col("a").alias("vertex"), "label")
                  .union(labels).groupBy("vertex").agg(F.min("label").alias("label")).localCheckpoint())
        changed = (spread.alias("n").join(labels.alias("o"), "vertex")
                   .where(F.col("n.label") != F.col("o.label")).limit(1).count())
        labels.unpersist()
        labels = spread
        if not changed:
            return labels.withColumnRenamed("label", "component")
    raise RuntimeError(f"connected components did not settle in {max_rounds} rounds")


def per_group(frame: Any, keys: list[str], fn: Callable[[Any], Any], schema: str) -> Any:
    """`fn` (pandas DataFrame → pandas DataFrame with `schema`) applied to each group of `frame` by `keys`, on
    the executors (`groupBy(keys).applyInPandas`): the igraph step of one institution, operator or component."""
    def apply(group: Any) -> Any:  # a plain function: Spark inspects type hints, which a functools.partial lacks
        return fn(group)

    return frame.groupBy(*keys).applyInPandas(apply, schema=schema)
