"""Column mapping (names, aliases) and vectorised validation: SQL that converts staged text and names every fault.

`build_checked` turns a file's rows (`_raw`, see `fraudnet.ingest.readers`) into the temporary table `_v`
(typed values, `_line`, `_bad`, raw text of bad rows) and returns the checks from which quarantine rows are
written; `mark_duplicates` adds copies of a key after its first row (`_dup`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from fraudnet.contract import MED_TYPES, TABLES, FieldSpec, TableSpec
from fraudnet.ingest.readers import Source
from fraudnet.privacy import sql_mask_certno, sql_mask_phone

__all__ = ["ColumnMap", "Check", "Checked", "map_columns", "build_checked", "mark_duplicates", "qident", "qstr"]

TYPE_TEXT = {
    "date": "not a date (yyyy-MM-dd or yyyyMMdd) / 日期格式错误",
    "datetime": "not a date-time (yyyy-MM-dd HH:mm:ss, yyyy-MM-ddTHH:mm:ss or yyyyMMddHHmmss) / 时间格式错误",
    "money": "not an amount (decimal yuan) / 金额格式错误",
    "decimal": "not a number / 数值格式错误",
    "float": "not a number / 数值格式错误",
    "int": "not an integer / 整数格式错误",
}
# Identifiers whose raw value must never be written anywhere (quarantine shows them masked).
PRIVATE_FIELDS = {("psn_info", "certno"): sql_mask_certno, ("psn_info", "mob"): sql_mask_phone}


def qident(name: str) -> str:
    """Quote a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def qstr(text: str) -> str:
    """Quote a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class ColumnMap:
    """How a file's header maps to a table's fields."""

    fields: dict[str, list[int]] = field(default_factory=dict)  # canonical field -> header indexes, by priority
    extras: list[tuple[int, str]] = field(default_factory=list)  # unknown columns kept in _extra
    missing_required: list[str] = field(default_factory=list)


def _global_aliases() -> dict[str, str]:
    """Aliases of a field name in any table (`medins_code` → `fixmedins_code`), usable wherever that field is."""
    out: dict[str, str] = {}
    for spec in TABLES.values():
        for f in spec.fields:
            for alias in f.aliases:
                out.setdefault(alias.lower(), f.name)
    return out


def map_columns(header: list[str], spec: TableSpec) -> ColumnMap:
    """Match header names (case-insensitive, aliases accepted) to the table's fields.

    A field's own aliases come first; an alias the contract gives the same field name in another table
    (`medins_code` for `fixmedins_code` in mdtrt, `med_list_codg` for `hilist_code`) is accepted too.
    """
    lookup: dict[str, tuple[str, int]] = {}
    for f in spec.fields:
        for prio, name in enumerate((f.name, *f.aliases)):
            lookup.setdefault(name.lower(), (f.name, prio))
    names = {f.name for f in spec.fields}
    for alias, canonical in _global_aliases().items():
        if canonical in names:
            lookup.setdefault(alias, (canonical, 100))
    cmap = ColumnMap()
    ranked: dict[str, list[tuple[int, int]]] = {}
    for idx, name in enumerate(header):
        hit = lookup.get(name.strip().lower())
        if hit is None:
            cmap.extras.append((idx, name.strip() or f"column_{idx + 1}"))
        else:
            ranked.setdefault(hit[0], []).append((hit[1], idx))
    for fname, hits in ranked.items():
        cmap.fields[fname] = [idx for _, idx in sorted(hits)]
    cmap.missing_required = [f.name for f in spec.fields if f.required and f.name not in cmap.fields]
    return cmap


@dataclass(frozen=True)
class Check:
    """One validation rule as SQL over `_v`: rows where `condition` holds are quarantined."""

    field: str
    condition: str
    value: str
    reason: str


def _raw_expr(cmap: ColumnMap, f: FieldSpec) -> str:
    """A field's text: text fields trimmed of spaces, empty text as NULL.

    Typed fields are not trimmed (TRY_CAST ignores surrounding spaces, and trimming costs a pass over the text).
    """
    idxs = cmap.fields.get(f.name)
    if not idxs:
        return "CAST(NULL AS VARCHAR)"
    if f.type == "str":
        parts = [f"NULLIF(trim(c{i}), '')" for i in idxs]
    else:
        parts = [f"NULLIF(c{i}, '')" for i in idxs]
    return parts[0] if len(parts) == 1 else "coalesce(" + ", ".join(parts) + ")"


def _typed_expr(f: FieldSpec, raw: str) -> str:
    if f.type == "str":
        return raw
    if f.type == "date":
        return f"coalesce(TRY_CAST({raw} AS DATE), TRY_CAST(TRY_STRPTIME({raw}, ['%Y%m%d', '%Y%m%d%H%M%S']) AS DATE))"
    if f.type == "datetime":
        return f"coalesce(TRY_CAST({raw} AS TIMESTAMP), TRY_STRPTIME({raw}, ['%Y%m%d%H%M%S', '%Y%m%d']))"
    if f.type == "money":
        return f"TRY_CAST({raw} AS DECIMAL(18,2))"
    if f.type in ("decimal", "float"):
        return f"(CASE WHEN isfinite(TRY_CAST({raw} AS DOUBLE)) THEN TRY_CAST({raw} AS DOUBLE) END)"
    if f.type == "int":
        return f"TRY_CAST({raw} AS BIGINT)"
    raise ValueError(f"unknown field type {f.type!r} of {f.name}")


def raw_col(name: str) -> str:
    """Name of the column of `_v` holding a field's raw text."""
    return qident("__r_" + name)


def _value_expr(spec: TableSpec, name: str, col: str) -> str:
    masker = PRIVATE_FIELDS.get((spec.name, name))
    return masker(col) if masker else f"left({col}, 500)"


@dataclass
class Checked:
    """The outcome of `build_checked`: the checks (rows of `_v` where one holds are quarantined) and the number
    of rows skipped because vali_flag = 0."""

    checks: list[Check]
    invalid: int


def build_checked(con: duckdb.DuckDBPyConnection, spec: TableSpec, cmap: ColumnMap, source: Source) -> Checked:
    """Create `_v` from a file's rows in one pass: typed values, `_rid`, `_line`, `_bad` (some check failed).

    Rows with vali_flag = 0 are counted and dropped. `_v` keeps the raw text of typed fields (`__r_<field>`)
    only on bad rows, where the quarantine needs it. Duplicate keys are marked later (`mark_duplicates`),
    once row numbers are final.
    """
    fields = spec.fields
    raws = {f.name: _raw_expr(cmap, f) for f in fields}
    skip_cond = f"coalesce({raws['vali_flag']} = '0', false)" if "vali_flag" in cmap.fields else "FALSE"
    inner = ["_raw._rid AS _rid", f"{source.line_expr} AS _line", f"{skip_cond} AS _skip"]
    outer = ["_rid", "_line", "_skip"]
    for f in fields:
        if f.type != "str":
            inner.append(f"{raws[f.name]} AS {raw_col(f.name)}")
            outer.append(f"CASE WHEN _bad THEN {raw_col(f.name)} END AS {raw_col(f.name)}")
        inner.append(f"{_typed_expr(f, raws[f.name])} AS {qident(f.name)}")
        outer.append(qident(f.name))
    if cmap.extras:
        pairs = ", ".join(f"{qstr(name)}, c{idx}" for idx, name in cmap.extras)
        inner.append(f"json_object({pairs}) AS _extra")
    else:
        inner.append("CAST(NULL AS JSON) AS _extra")
    outer += ["_extra", "_bad"]

    checks: list[Check] = []
    for f in fields:
        name = qident(f.name)
        raw = raw_col(f.name) if f.type != "str" else name
        if f.required:
            kind = "key field" if f.name in spec.key else "required field"
            missing = f"{raw} IS NULL" if f.type == "str" else f"{raw} IS NULL AND {name} IS NULL"
            checks.append(Check(f.name, missing, "CAST(NULL AS VARCHAR)",
                                qstr(f"missing {kind} {f.name} / 缺少必填字段")))
        if f.type != "str":
            checks.append(Check(f.name, f"{raw} IS NOT NULL AND {name} IS NULL",
                                _value_expr(spec, f.name, raw), qstr(TYPE_TEXT[f.type])))
        if f.type == "str" and f.max_len:
            # strlen (bytes, free) screens before length (characters, a pass over the text).
            too_long = f"strlen({name}) > {f.max_len} AND length({name}) > {f.max_len}"
            checks.append(Check(f.name, too_long, _value_expr(spec, f.name, name),
                                f"'longer than {f.max_len} characters (' || length({name}) || ') / 超过最大长度'"))
    if spec.name == "mdtrt":
        codes = ", ".join(qstr(c) for c in MED_TYPES)
        checks.append(Check("med_type", f'"med_type" IS NOT NULL AND "med_type" NOT IN ({codes})', '"med_type"',
                            qstr("unknown med_type (not a national 医疗类别 code) / 未知医疗类别")))
        checks.append(Check("endtime", '"endtime" < "begntime"', raw_col("endtime"),
                            "'endtime before begntime (' || strftime(\"begntime\", '%Y-%m-%d %H:%M:%S') "
                            "|| ') / 结束时间早于开始时间'"))
    if spec.name == "fee_list":
        refund = ("coalesce(\"setl_id\" IN (SELECT setl_id FROM setl WHERE refd_setl_flag = '1'), false)")
        checks.append(Check("cnt", f'"cnt" < 0 AND NOT {refund}', raw_col("cnt"),
                            qstr("negative cnt on a fee line that is not part of a refund settlement "
                                 "/ 非退费明细数量为负")))

    bad = " OR ".join(f"coalesce({c.condition}, false)" for c in checks) or "FALSE"
    con.execute("DROP TABLE IF EXISTS _v")
    con.execute(
        f"CREATE TEMP TABLE _v AS SELECT {', '.join(outer)} FROM "
        f"(SELECT *, (NOT _skip AND ({bad})) AS _bad FROM (SELECT {', '.join(inner)} FROM {source.sql}))"
    )
    invalid = int(con.execute("SELECT count(*) FROM _v WHERE _skip").fetchall()[0][0])
    if invalid:
        con.execute("DELETE FROM _v WHERE _skip")
    return Checked(checks, invalid)


def mark_duplicates(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> Check:
    """Mark copies of a key after its first row in `_v` as bad (`_dup` lists them); return their check."""
    keys = ", ".join(qident(k) for k in spec.key)
    required_keys = [k for k in spec.key if spec.field(k).required]
    present = " AND ".join(f"{qident(k)} IS NOT NULL" for k in required_keys) or "TRUE"
    con.execute("DROP TABLE IF EXISTS _dup")
    on = " AND ".join(f"v.{qident(k)} IS NOT DISTINCT FROM d.{qident(k)}" for k in spec.key)
    con.execute(
        f"""CREATE TEMP TABLE _dup AS
            WITH d AS (SELECT {keys}, min(_line) AS first_line FROM _v WHERE {present}
                       GROUP BY ALL HAVING count(*) > 1)
            SELECT v._line, d.first_line FROM _v v JOIN d ON {on} WHERE v._line > d.first_line"""
    )
    if con.execute("SELECT count(*) FROM _dup").fetchall()[0][0]:
        con.execute("UPDATE _v SET _bad = true WHERE _line IN (SELECT _line FROM _dup)")
    key_text = " || '|' || ".join(f"coalesce(CAST({qident(k)} AS VARCHAR), '')" for k in spec.key)
    return Check(
        "+".join(spec.key),
        "_line IN (SELECT _line FROM _dup)",
        "left(" + key_text + ", 500)" if spec.name != "psn_info" else qident("psn_no"),
        "'duplicate key in file (first at row ' || (SELECT first_line FROM _dup WHERE _dup._line = _v._line) "
        "|| ') / 文件内主键重复'",
    )
