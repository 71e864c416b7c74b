"""Columnar writing of generated tables: exact money decimals, timestamps and strings with pyarrow (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudnet.contract import TABLES

__all__ = ["money", "decimal_from_float", "timestamps", "dates", "strings", "id_strings", "take", "write_table",
           "TableWriter"]

# An arrow `string` array addresses its characters with 32-bit offsets: beyond this many bytes use `large_string`.
MAX_STRING_BYTES = 2**31 - 1


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
    """Concatenate a prefix (scalar or per-row strings) with zero-padded numbers, vectorised in arrow.

    The result is `string`, or `large_string` (64-bit offsets) when its characters could pass 2 GiB (a national
    day's fee lines: 50M ids of 20 characters).
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    longest = len(prefix) if isinstance(prefix, str) else max(
        (int(pc.max(pc.utf8_length(prefix)).as_py() or 0) if len(prefix) else 0), 0)
    digits_max = max(width, len(str(int(np.abs(numbers).max()))) + 1 if len(numbers) else width)
    text = pa.large_string() if len(numbers) * (longest + digits_max) > MAX_STRING_BYTES else pa.string()
    digits = pc.utf8_lpad(pa.array(numbers).cast(text), width=width, padding="0")
    if isinstance(prefix, str):
        prefix = pa.array(np.full(len(numbers), prefix), text)
    else:
        prefix = prefix.cast(text)
    return pc.binary_join_element_wise(prefix, digits, pa.scalar("", text))


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


class TableWriter:
    """One contract table written chunk by chunk (CSV or Parquet), so a table never has to sit in memory whole.

    `write(columns)` appends rows (every chunk has the same columns); `close()` finishes the file (and writes the
    header of a table that got no rows). The bytes of a CSV equal `write_table`'s for the same rows.
    """

    def __init__(self, out_dir: Path, name: str, fmt: str) -> None:
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"unknown format {fmt!r} (csv or parquet)")
        self.name = name
        self.fmt = fmt
        self.path = Path(out_dir) / f"{name}.{fmt}"
        self.rows = 0
        self._schema: pa.Schema | None = None
        self._writer: pacsv.CSVWriter | pq.ParquetWriter | None = None

    def write(self, columns: dict[str, pa.Array]) -> None:
        spec = TABLES[self.name]
        order = [f.name for f in spec.fields if f.name in columns]
        unknown = set(columns) - set(order)
        if unknown:
            raise ValueError(f"{self.name}: columns not in the data contract: {sorted(unknown)}")
        table = pa.table({k: columns[k] for k in order})
        if self._writer is None:
            # text columns as plain strings whichever a chunk came as (a chunk is far below 2 GiB of text)
            self._schema = pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
                                      for f in table.schema])
            if self.fmt == "csv":
                options = pacsv.WriteOptions(include_header=True, batch_size=65536)
                self._writer = pacsv.CSVWriter(str(self.path), self._schema, write_options=options)
            else:
                self._writer = pq.ParquetWriter(self.path, self._schema, compression="zstd")
        self._writer.write_table(table.cast(self._schema))
        self.rows += table.num_rows

    def close(self) -> Path:
        if self._writer is None:
            raise ValueError(f"{self.name}: no rows were written")
        self._writer.close()
        return self.path
