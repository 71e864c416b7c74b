"""Detector SQL (DuckDB's dialect) for another engine: parameters inlined as literals, then transpiled by sqlglot.

Parameters are inlined because Spark SQL has no list parameters (`IN (SELECT unnest($ids))`); each value becomes
a typed literal (strings quoted and escaped, lists as list literals), never pasted text. Two DuckDB idioms sqlglot
does not carry over are rewritten first, to equivalent DuckDB: the `range(a, b) r(k)` table function with a
column alias; `isfinite`; a window function inside arithmetic (parenthesised for Spark's parser). `hash()` is
only used as a grouping or bucketing key, so Spark's `hash` stands in.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp

__all__ = ["inline_params", "literal", "to_dialect"]

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w+)|\?")
_RANGE_ALIAS = re.compile(r"\brange\(([^()]*)\)\s+(\w+)\((\w+)\)", re.IGNORECASE)


def literal(value: Any) -> str:
    """A DuckDB SQL literal for a Python value (None, bool, int, float, str, date/datetime, list/tuple)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float | Decimal):
        f = float(value)
        if not math.isfinite(f):
            return f"CAST('{f}' AS DOUBLE)"
        return f"CAST({f!r} AS DOUBLE)"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if hasattr(value, "item"):  # numpy scalars
        return literal(value.item())
    raise TypeError(f"cannot inline a parameter of type {type(value).__name__}: {value!r}")


def inline_params(query: str, params: list[Any] | tuple | dict[str, Any] | None) -> str:
    """`query` with its `$name` / `?` parameters replaced by literals (quoted text and identifiers left alone)."""
    if params is None:
        return query
    positional = iter(params) if isinstance(params, list | tuple) else None

    def sub(m: re.Match) -> str:
        text = m.group(0)
        if text.startswith(("'", '"')):
            return text
        if text == "?":
            if positional is None:
                raise ValueError("a `?` parameter in a query given named parameters")
            return literal(next(positional))
        if not isinstance(params, dict):
            raise ValueError(f"named parameter ${m.group(1)} in a query given positional parameters")
        return literal(params[m.group(1)])

    return _TOKEN.sub(sub, query)


@lru_cache(maxsize=2048)
def _transpile(query: str, dialect: str) -> str:
    query = _RANGE_ALIAS.sub(lambda m: f"(SELECT unnest(range({m.group(1)})) AS {m.group(3)}) {m.group(2)}", query)
    trees = sqlglot.parse(query, read="duckdb")
    if len(trees) != 1 or trees[0] is None:
        raise ValueError(f"expected one statement, got {len(trees)}")
    tree = trees[0]
    if dialect == "spark":
        tree = tree.transform(_spark_fixes)
    return tree.sql(dialect=dialect)


def _spark_fixes(node: exp.Expression) -> exp.Expression:
    """Spark's parser reads `f() OVER w - x` as a window named `w-x`: parenthesise windows inside arithmetic;
    DuckDB's `isfinite(x)` has no Spark function: written out (NULL stays NULL)."""
    if isinstance(node, exp.Window) and isinstance(node.parent, exp.Binary):
        return exp.Paren(this=node.copy())
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        # quantile_cont(x, p): Spark's exact percentile interpolates the same way
        return exp.Anonymous(this="percentile", expressions=[node.this.copy(), node.expression.copy()])
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        # list(x ORDER BY x): Spark's collect_list has no ORDER BY; sorting the list gives the same order
        order, inner = node.this, node.this.this
        values = inner.expressions if isinstance(inner, exp.Distinct) else [inner]
        keys = order.expressions
        if len(values) == 1 and len(keys) == 1 and keys[0].this == values[0]:
            desc = bool(keys[0].args.get("desc"))
            agg = f"collect_list({inner.sql('spark')})"
            return sqlglot.parse_one(f"sort_array({agg}, {'false' if desc else 'true'})", read="spark")
        raise ValueError(f"list(... ORDER BY ...) other than by the listed value: {node.sql('duckdb')}")
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "hash" and node.expressions:
        # DuckDB's hash is an unsigned 64-bit number: a non-negative 63-bit xxhash64 keeps that range
        args = ", ".join(e.sql("spark") for e in node.expressions)
        return sqlglot.parse_one(f"(xxhash64({args}) & 9223372036854775807)", read="spark")
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "isfinite" and len(node.expressions) == 1:
        x = node.expressions[0]
        return sqlglot.parse_one(
            f"CASE WHEN ({x.sql('spark')}) IS NULL THEN NULL ELSE NOT isnan({x.sql('spark')}) "
            f"AND abs({x.sql('spark')}) <> CAST('Infinity' AS DOUBLE) END", read="spark")
    return node


def to_dialect(query: str, params: list[Any] | dict[str, Any] | None, dialect: str = "spark") -> str:
    """Detector SQL with `params` for `dialect` (sqlglot's name)."""
    return _transpile(inline_params(query, params), dialect)
