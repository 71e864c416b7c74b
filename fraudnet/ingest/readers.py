"""Input file discovery and raw readers (CSV, Parquet, XLSX) staging every value as text in DuckDB.

A file is read once, straight into the validation query (`scan_file`): its rows appear as a relation `_raw`
with text columns `c0, c1, …` (one per input column, in header order), `_rid` (0-based position) and a SQL
expression giving each row's 1-based number as a person counts it: for CSV and XLSX the header is row 1 (so
it is the line number of a CSV without embedded line breaks); for Parquet the first data row is row 1.
Ragged CSV lines (wrong number of fields, broken quoting) are returned separately.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from fraudnet.contract import TableSpec, table_for_filename
from fraudnet.errors import IngestError

__all__ = [
    "SUFFIXES",
    "InputFile",
    "Source",
    "RaggedRow",
    "match_table",
    "discover_files",
    "fingerprint",
    "read_header",
    "has_data_rows",
    "scan_file",
]

log = logging.getLogger(__name__)

SUFFIXES: dict[str, str] = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}
_DATED_STEM = re.compile(r"^(?P<table>.+?)[_\-.](?:\d{6}|\d{8}|\d{10}|\d{12}|\d{14})$")
_CHUNK = 1 << 24


@dataclass
class InputFile:
    """One input file matched to a contract table."""

    path: Path
    spec: TableSpec
    format: str
    file_hash: str = ""
    encoding: str = ""
    header: list[str] = field(default_factory=list)
    delimiter: str = ","
    xlsx_rows: list[tuple] | None = None  # rows after the header, read once for small XLSX files
    xlsx_header_row: int = 1
    undecodable_lines: int = 0

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class RaggedRow:
    """A CSV line that could not be split into the header's number of fields."""

    row_number: int
    text: str
    reason: str


@dataclass(frozen=True)
class Source:
    """A file's rows as SQL: a relation aliased `_raw` with text columns c0…cN and `_rid` (0-based position),
    and the expression of each row's number as a person counts it (`line_expr`)."""

    sql: str
    line_expr: str
    replaced: bool = False  # some lines could not be decoded: U+FFFD marks their bad bytes


def match_table(path: Path) -> tuple[TableSpec, str] | None:
    """The contract table and format a file name stands for (`MDTRT_D.csv`, `mdtrt_20250102.parquet`), or None."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None or path.name.startswith((".", "~$")):
        return None
    spec = table_for_filename(path.stem)
    if spec is None:
        m = _DATED_STEM.match(path.stem)
        if m:
            spec = table_for_filename(m.group("table"))
    return (spec, fmt) if spec is not None else None


def discover_files(folder: Path) -> tuple[list[InputFile], list[Path]]:
    """Input files of a folder matched to tables (sorted by name), and the files that match no table."""
    if not folder.is_dir():
        raise IngestError(f"{folder}: not a folder / 不是文件夹")
    matched: list[InputFile] = []
    unmatched: list[Path] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        m = match_table(path)
        if m is None:
            unmatched.append(path)
        else:
            matched.append(InputFile(path=path, spec=m[0], format=m[1]))
    return matched, unmatched


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _header_encoding(path: Path) -> str:
    """Encoding guessed from the first line: `utf-8-sig` (BOM), `utf-8`, or `gb18030` when it is not UTF-8."""
    with path.open("rb") as fh:
        line = fh.readline(1 << 20)
    if line.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def fingerprint(path: Path, fmt: str) -> tuple[str, str]:
    """SHA-256 of a file and, for CSV, its encoding as far as the header line tells: `utf-8`, `utf-8-sig`, `gb18030`.

    A UTF-8 guess is confirmed while staging: DuckDB's reader flags every line that is not valid UTF-8, and
    such a file is then read again as GB18030 (a superset of GBK; reported as `gbk` when it decodes as GBK).
    """
    return _sha256(path), (_header_encoding(path) if fmt == "csv" else "")


def _first_line(path: Path, encoding: str) -> str:
    with path.open("rb") as fh:
        raw = fh.readline(1 << 20)
    codec = "utf-8-sig" if encoding.startswith("utf-8") else "gb18030"
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        return raw.decode(codec, errors="replace")


def _cell_text(value: object) -> str | None:
    """An XLSX cell as the text a CSV export would hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def read_header(f: InputFile) -> list[str]:
    """Read a file's column names (and, for CSV, its delimiter; for XLSX, its rows) into `f`."""
    if f.format == "csv":
        line = _first_line(f.path, f.encoding).lstrip("\ufeff").rstrip("\r\n")
        if not line.strip():
            raise IngestError(f"{f.name}: the file is empty or its first line (the header) is blank "
                              "/ 文件为空或缺少表头")
        counts = {d: line.count(d) for d in (",", "|", "\t", ";")}
        f.delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) else ","
        f.header = [h.strip() for h in next(csv.reader([line], delimiter=f.delimiter))]
    elif f.format == "parquet":
        import pyarrow.parquet as pq

        try:
            f.header = list(pq.read_schema(f.path).names)
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(f"{f.name}: not a readable Parquet file ({exc})") from exc
    elif f.format == "xlsx":
        import openpyxl

        try:
            wb = openpyxl.load_workbook(f.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds (zipfile, KeyError, InvalidFileException)
            raise IngestError(f"{f.name}: not a readable XLSX workbook ({exc})") from exc
        try:
            rows = list(wb.worksheets[0].iter_rows(values_only=True))
        finally:
            wb.close()
        header_idx = next((i for i, r in enumerate(rows) if any(_cell_text(v) for v in r)), None)
        if header_idx is None:
            raise IngestError(f"{f.name}: the first worksheet is empty / 工作表为空")
        header = [(_cell_text(v) or "").strip() for v in rows[header_idx]]
        while header and not header[-1]:
            header.pop()
        f.header = header
        f.xlsx_header_row = header_idx + 1
        f.xlsx_rows = rows[header_idx + 1:]
    else:  # pragma: no cover - SUFFIXES only yields the formats above
        raise IngestError(f"{f.name}: unsupported format {f.format}")
    return f.header


_SURROGATE = re.compile("[\udc80-\udcff]")
# A line that is valid UTF-8 (no surrogate-escaped byte) and not plain ASCII.
# Possessive quantifiers: a line fails at its first escaped byte, without backtracking.
_UTF8_TEXT_LINE = re.compile("^[\x00-\x09\x0b-\x7f]*+[^\x00-\x7f\udc80-\udcff][^\n\udc80-\udcff]*+$", re.M)


def _decode_gb(raw: bytes, counts: dict[str, int]) -> str:
    """Bytes that are not UTF-8 as GBK, else GB18030 (its superset), else with U+FFFD for the bad bytes."""
    try:
        text = raw.decode("gbk")
        counts["gb18030"] += 1
        return text
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        counts["undecodable"] += 1
        return raw.decode("gb18030", errors="replace")
    counts["gb18030"] += 1
    counts["gb18030 only"] += 1
    return text


def _decode_chunk(data: bytes, counts: dict[str, int]) -> str:
    """Whole lines of a file that is not all UTF-8, as text: each line UTF-8 when it is valid UTF-8, else GBK.

    Pure UTF-8 or pure GBK chunks are decoded in one call; only chunks mixing both (or holding lines that
    decode in neither) go line by line.
    """
    u8 = data.decode("utf-8", errors="surrogateescape")
    if _SURROGATE.search(u8) is None:
        counts["utf-8"] += 0 if u8.isascii() else 1
        return u8
    if _UTF8_TEXT_LINE.search(u8) is None:  # no UTF-8 text line: all GBK/GB18030 (and ASCII)
        before = counts["undecodable"]
        text = _decode_gb(data, counts)
        if counts["undecodable"] == before:
            return text
        counts["undecodable"] = before  # some line decodes in neither: go line by line
    out = []
    for line in u8.split("\n"):
        if _SURROGATE.search(line) is None:
            counts["utf-8"] += 0 if line.isascii() else 1
            out.append(line)
        else:
            out.append(_decode_gb(line.encode("utf-8", errors="surrogateescape"), counts))
    return "\n".join(out)


def has_data_rows(f: InputFile) -> bool:
    """Whether a file (its header already read) has at least one non-blank row below the header."""
    if f.format == "csv":
        with f.path.open("rb") as fh:
            fh.readline(1 << 20)
            for _ in range(1000):
                line = fh.readline(1 << 20)
                if not line:
                    return False
                if line.strip(b" \t\r\n,;|\x00"):
                    return True
        return True
    if f.format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(f.path).num_rows > 0
    return any(_cell_text(v) for row in (f.xlsx_rows or []) for v in row)


def _transcode_to_utf8(path: Path, out_dir: Path) -> tuple[Path, str, int]:
    """Write a file that is not all UTF-8 as UTF-8, deciding the encoding line by line.

    A line that is valid UTF-8 is read as UTF-8 (so UTF-8 rows inside a GBK file do not become mojibake),
    any other as GB18030 (a superset of GBK); see `_decode_chunk`. A line that decodes in neither (a file cut
    inside a double-byte character, stray bytes) keeps U+FFFD in place of its bad bytes and its row is
    quarantined by the validation. Returns the temporary file, the encoding found (`gbk`, `gb18030`,
    `utf-8+gbk` when mixed) and the number of undecodable lines. Lines never split a character: no GBK or
    GB18030 byte is 0x0A.
    """
    fd, tmp = tempfile.mkstemp(prefix="fraudnet-", suffix=".csv", dir=out_dir)
    counts = {"utf-8": 0, "gb18030": 0, "gb18030 only": 0, "undecodable": 0}
    rest = b""
    with path.open("rb") as src, os.fdopen(fd, "wb") as dst:
        while True:
            chunk = src.read(_CHUNK)
            data = rest + chunk
            if chunk:  # decode whole lines only; the rest waits for the next chunk
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
            if data:
                dst.write(_decode_chunk(data, counts).encode("utf-8"))
            if not chunk:
                break
    if counts["gb18030"] == 0:
        encoding = "utf-8"
    else:
        encoding = "gb18030" if counts["gb18030 only"] else "gbk"
        if counts["utf-8"]:
            encoding = f"utf-8+{encoding}"
    if counts["undecodable"]:
        log.warning("%s: %d line(s) decode neither as UTF-8 nor as GBK/GB18030; their rows are quarantined",
                    path.name, counts["undecodable"])
    return Path(tmp), encoding, counts["undecodable"]


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def scan_file(
    con: duckdb.DuckDBPyConnection, f: InputFile, build: Callable[[Source], None], tmp_dir: Path | None = None
) -> list[RaggedRow]:
    """Run `build` over the rows of a file, read once, and return its ragged (unsplittable) lines.

    `build(source)` must create the temporary table `_v` with the columns `_rid` (from `_raw._rid`) and
    `_line` (from `source.line_expr`). For CSV, when lines were rejected as ragged, `_line` is corrected
    afterwards for the rows below them; when a line is not valid UTF-8 the file is transcoded from GB18030
    and `build` runs again (`f.encoding` then says `gbk` or `gb18030`).
    """
    ncols = len(f.header)
    try:
        if f.format == "csv":
            return _scan_csv(con, f, ncols, build, tmp_dir)
        if f.format == "parquet":
            cols = ", ".join(f"CAST({_sql_ident(n)} AS VARCHAR) AS c{i}" for i, n in enumerate(f.header))
            build(Source(
                f"(SELECT file_row_number AS _rid, {cols} "
                f"FROM read_parquet({_sql_str(str(f.path))}, file_row_number = true)) AS _raw",
                "(_raw._rid + 1)",
            ))
            return []
        return _scan_xlsx(con, f, ncols, build)
    except duckdb.Error as exc:
        raise IngestError(f"{f.name}: cannot read the file ({exc})") from exc


def _scan_csv(
    con: duckdb.DuckDBPyConnection, f: InputFile, ncols: int, build: Callable[[Source], None], tmp_dir: Path | None
) -> list[RaggedRow]:
    rej: list[tuple] | None = None
    if not f.encoding.startswith("gb"):
        rej = _csv_pass(con, f, f.path, ncols, build)
        if rej is None:
            log.info("%s: not UTF-8, reading it as GB18030", f.name)
    if rej is None:
        tmp, f.encoding, f.undecodable_lines = _transcode_to_utf8(f.path, tmp_dir or Path(tempfile.gettempdir()))
        try:
            rej = _csv_pass(con, f, tmp, ncols, build, replaced=f.undecodable_lines > 0)
        finally:
            tmp.unlink(missing_ok=True)
        if rej is None:  # pragma: no cover - transcoded text is valid UTF-8
            raise IngestError(f"{f.name}: text is neither UTF-8 nor GB18030/GBK / 无法识别的文件编码")
    ragged = [RaggedRow(int(line), text or "", _ragged_reason(msg or "", ncols)) for line, text, msg, _ in rej]
    if ragged:
        # Accepted row k (0-based) sits on line k + 2 + (number of rejected lines before it).
        con.execute("DROP TABLE IF EXISTS _rejadj")
        con.execute("CREATE TEMP TABLE _rejadj (a BIGINT)")
        con.executemany("INSERT INTO _rejadj VALUES (?)", [[r.row_number - 2 - j] for j, r in enumerate(ragged)])
        con.execute("UPDATE _v SET _line = _rid + 2 + (SELECT count(*) FROM _rejadj WHERE _rejadj.a <= _v._rid)")
    return ragged


def _csv_pass(
    con: duckdb.DuckDBPyConnection, f: InputFile, source: Path, ncols: int, build: Callable[[Source], None],
    replaced: bool = False,
) -> list[tuple] | None:
    """One read of a UTF-8 CSV file through `build`; the rejected lines, or None when a line is not UTF-8."""
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols)) + "}"
    for t in ("_rej", "_rejscan"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    # row_number() OVER () numbers rows in file order (DuckDB's streaming window keeps the scan order).
    build(Source(
        f"""(SELECT row_number() OVER () - 1 AS _rid, * FROM read_csv({_sql_str(str(source))},
            header = true, auto_detect = false, columns = {columns}, delim = {_sql_str(f.delimiter)},
            quote = '"', escape = '"', ignore_errors = true, store_rejects = true,
            rejects_table = '_rej', rejects_scan = '_rejscan', max_line_size = 4194304)) AS _raw""",
        "(_raw._rid + 2)",
        replaced,
    ))
    rej = con.execute(
        "SELECT line, any_value(csv_line), string_agg(DISTINCT error_type || ': ' || error_message, '; '), "
        "bool_or(error_type = 'INVALID ENCODING') FROM _rej GROUP BY line ORDER BY line"
    ).fetchall()
    if any(r[3] for r in rej):
        return None
    return rej


def _ragged_reason(message: str, ncols: int) -> str:
    m = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
    if m:
        return f"truncated or malformed line: expected {m.group(1)} fields, found {m.group(2)} / 字段数不符"
    return f"malformed line ({message.strip()[:200]}) / 行格式错误"


def _scan_xlsx(
    con: duckdb.DuckDBPyConnection, f: InputFile, ncols: int, build: Callable[[Source], None]
) -> list[RaggedRow]:
    cols: list[list[str | None]] = [[] for _ in range(ncols)]
    lines: list[int] = []
    ragged: list[RaggedRow] = []
    for offset, row in enumerate(f.xlsx_rows or []):
        line = f.xlsx_header_row + 1 + offset
        cells = [_cell_text(v) for v in row]
        if not any(cells):
            continue
        if any(cells[ncols:]):
            ragged.append(RaggedRow(line, ",".join(c or "" for c in cells),
                                    f"row has values beyond the {ncols} header columns / 数据超出表头列"))
            continue
        cells = (cells + [None] * ncols)[:ncols]
        for i, c in enumerate(cells):
            cols[i].append(c)
        lines.append(line)
    table = pa.table({**{f"c{i}": pa.array(c, pa.string()) for i, c in enumerate(cols)},
                      "_rid": pa.array(range(len(lines)), pa.int64()), "_line": pa.array(lines, pa.int64())})
    con.register("_xlsx_arrow", table)
    try:
        build(Source("_xlsx_arrow AS _raw", "_raw._line"))
    finally:
        con.unregister("_xlsx_arrow")
    return ragged
