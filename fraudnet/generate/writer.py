"""Columnar writing of generated tables: exact money decimals, timestamps and strings with pyarrow (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudnet.contract import TABLES

__all__ = ["money", "decimal_from_float", "timestamps", "dates", "strings", "id_strings", "take", "write_table"]


def money(cents: np.ndarray, scale: int = 2, precision: int = 16) -> pa.Array:
    """Exact decimal(16,2) from integer cents (no float rounding): builds the 128-bit values directly."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(cents), [None, pa.py_buffer(words.tobytes())])


def decimal_from_float(values: np.ndarray, scale: int = 2) -> pa.Array:
    """Decimal with `scale` places from floats (rounded half away from zero); NaN becomes null."""
    values = np.asarray(values, dtype=float)
    nan = np.isnan(values)
    units = np.round(np.where(nan, 0, values) * 10**scale).astype(np.int64)
    arr = money(units, scale=scale)
    if nan.any():
        arr = pc.if_else(pa.array(nan), pa.scalar(None, arr.type), arr)
    return arr


def timestamps(seconds: np.ndarray, epoch_seconds: int) -> pa.Array:
    """Timestamps (second precision) from offsets to the period start."""
    return pa.array(np.asarray(seconds, dtype=np.int64) + epoch_seconds, pa.int64()).cast(pa.timestamp("s"))


def dates(days_since_1970: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days_since_1970, dtype=np.int32), pa.int32()).cast(pa.date32())


def strings(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values).astype(str), pa.string())


def take(values: pa.Array, indices: np.ndarray) -> pa.Array:
    """values[indices] in arrow (fast for repeated strings: ids, codes, names)."""
    return values.take(pa.array(np.asarray(indices, dtype=np.int64)))


def id_strings(prefix: pa.Array | str, numbers: np.ndarray, width: int) -> pa.Array:
    """Concatenate a prefix (scalar or per-row strings) with zero-padded numbers, vectorised in arrow."""
    digits = pc.utf8_lpad(pa.array(np.asarray(numbers, dtype=np.int64)).cast(pa.string()), width=width, padding="0")
    if isinstance(prefix, str):
        prefix = pa.array(np.full(len(numbers), prefix))
    return pc.binary_join_element_wise(prefix, digits, "")


def write_table(out_dir: Path, name: str, columns: dict[str, pa.Array], fmt: str) -> Path:
    """Write one contract table with its canonical columns in contract order; returns the file path."""
    spec = TABLES[name]
    order = [f.name for f in spec.fields if f.name in columns]
    unknown = set(columns) - set(order)
    if unknown:
        raise ValueError(f"{name}: columns not in the data contract: {sorted(unknown)}")
    table = pa.table({k: columns[k] for k in order})
    if fmt == "csv":
        path = out_dir / f"{name}.csv"
        pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=True, batch_size=65536))
    elif fmt == "parquet":
        path = out_dir / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
    else:
        raise ValueError(f"unknown format {fmt!r} (csv or parquet)")
    return path
