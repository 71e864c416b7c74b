"""Per-group and connected-component steps run locally (the DuckDB engine's way; Spark distributes the same)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

__all__ = ["schema_columns", "local_per_group", "local_components"]


def schema_columns(schema: str) -> list[str]:
    """Column names of a Spark DDL schema string (`"inst string, n long"` → `["inst", "n"]`)."""
    names = [part.strip().split()[0] for part in schema.split(",") if part.strip()]
    if not names:
        raise ValueError(f"empty schema {schema!r}")
    return names


def local_per_group(frame: pd.DataFrame, keys: Sequence[str], fn: Callable[[pd.DataFrame], pd.DataFrame],
                    schema: str) -> pd.DataFrame:
    """`fn` applied to each group of `frame` by `keys` (groups in key order), the results stacked; an empty frame
    gives an empty result with the schema's columns."""
    columns = schema_columns(schema)
    parts = [fn(group.reset_index(drop=True)) for _, group in frame.groupby(list(keys), sort=True, dropna=False)]
    parts = [p[columns] for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(parts, ignore_index=True)


def local_components(edges: pd.DataFrame, src: str = "src", dst: str = "dst") -> pd.DataFrame:
    """(`vertex`, `component`) for the undirected graph of `edges`: `component` is the smallest vertex id of the
    vertex's component (the labels `fraudnet.engines.spark_graph.connected_components` gives on Spark)."""
    import igraph as ig

    pairs = edges[[src, dst]].dropna()
    if pairs.empty:
        return pd.DataFrame({"vertex": pd.Series(dtype=object), "component": pd.Series(dtype=object)})
    g = ig.Graph.TupleList(pairs.itertuples(index=False), directed=False)
    names = g.vs["name"]
    vertex, component = [], []
    for members in g.connected_components():
        ids = [names[i] for i in members]
        label = min(ids)
        vertex += ids
        component += [label] * len(ids)
    return pd.DataFrame({"vertex": vertex, "component": component}).sort_values("vertex", ignore_index=True)
