"""CSV files for `neo4j-admin database import full`: a province's first graph load, offline, instead of Bolt.

The same parts as the online load (`fraudnet.graph.neo4j_load.PARTS`: labels, relationship types, key and
property columns, the same SQL), written as one header file and one data file per part in the import tool's
header format (Neo4j 5 operations manual, "Import" → "CSV header format"): a node file's key column is
`<key>:ID(<Label>)` — one ID space per label, so an institution and a pharmacy may share a code — its other
columns `<name>:<type>`; a relationship file starts `:START_ID(<Label>)`, `:END_ID(<Label>)`. Types: string,
long, double, boolean, date, localdatetime (ISO 8601 with `T`). `write_bulk_csv` returns the files and the
`neo4j-admin` command line to run on the Neo4j server with the database stopped (or not yet created).
"""

from __future__ import annotations

import csv
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudnet.graph.neo4j_load import PARTS, Part

__all__ = ["BulkExport", "neo4j_type", "write_bulk_csv"]

_TYPES = {
    "VARCHAR": "string", "BIGINT": "long", "INTEGER": "long", "SMALLINT": "long", "TINYINT": "long",
    "HUGEINT": "long", "UBIGINT": "long", "UINTEGER": "long", "DOUBLE": "double", "FLOAT": "double",
    "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "localdatetime",
}


def neo4j_type(duckdb_type: str) -> str:
    """The import tool's property type for a DuckDB column type (DECIMAL → double; unknown → string)."""
    t = duckdb_type.upper()
    if t.startswith("DECIMAL"):
        return "double"
    return _TYPES.get(t, "string")


@dataclass
class BulkExport:
    """What `write_bulk_csv` wrote: part name → (header file, data file, rows), and the command to import."""

    folder: Path
    nodes: dict[str, tuple[Path, Path, int]] = field(default_factory=dict)
    relationships: dict[str, tuple[Path, Path, int]] = field(default_factory=dict)
    database: str = "neo4j"

    def command(self) -> str:
        """`neo4j-admin database import full <db> --nodes=… --relationships=…` (paths as written)."""
        args = ["neo4j-admin", "database", "import", "full", self.database, "--overwrite-destination=false"]
        for name, (head, data, _) in self.nodes.items():
            args.append(f"--nodes={name}={head},{data}")
        for name, (head, data, _) in self.relationships.items():
            rel_type = name.split("→")[0]
            args.append(f"--relationships={rel_type}={head},{data}")
        return " ".join(shlex.quote(a) for a in args)


def _file_stem(part: Part) -> str:
    return part.name.replace("→", "_to_")


def _header(part: Part, columns: list[tuple[str, str]]) -> list[str]:
    out = []
    for i, (name, typ) in enumerate(columns):
        if part.kind == "node" and i == 0:
            out.append(f"{part.key_prop}:ID({part.label})")
        elif part.kind == "rel" and i < 2:
            assert part.ends is not None
            out.append(f":START_ID({part.ends[0][0]})" if i == 0 else f":END_ID({part.ends[1][0]})")
        else:
            out.append(f"{name}:{neo4j_type(typ)}")
    return out


def _select(sql: str, columns: list[tuple[str, str]]) -> str:
    """The part's SQL with timestamps in ISO 8601 (`T`), the import tool's localdatetime."""
    exprs = []
    for name, typ in columns:
        q = '"' + name.replace('"', '""') + '"'
        if typ.upper() == "TIMESTAMP":
            exprs.append(f"strftime({q}, '%Y-%m-%dT%H:%M:%S') AS {q}")
        else:
            exprs.append(q)
    return f"SELECT {', '.join(exprs)} FROM ({sql})"


def write_bulk_csv(con: Any, folder: Path, database: str = "neo4j") -> BulkExport:
    """Write every node and relationship part of the claims store behind `con` as import CSVs into `folder`."""
    from fraudnet.graph.neo4j_load import part_rows_sql

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = BulkExport(folder=folder, database=database)
    for part in PARTS:
        sql = part_rows_sql(part.name)
        columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {sql}").fetchall()]
        stem = _file_stem(part)
        head, data = folder / f"{stem}.header.csv", folder / f"{stem}.csv"
        with head.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(_header(part, columns))
        con.execute(f"COPY ({_select(sql, columns)}) TO '{data}' (FORMAT csv, HEADER false, QUOTE '\"', "
                    "ESCAPE '\"')")
        rows = int(con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])
        (out.nodes if part.kind == "node" else out.relationships)[part.name] = (head, data, rows)
    return out
