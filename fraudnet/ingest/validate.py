"""Column mapping (names, aliases) and vectorised validation: SQL that converts staged text and names every fault.

`build_checked` turns a file's rows (`_raw`, see `fraudnet.ingest.readers`) into the temporary table `_v`
(typed values, `_line`, `_bad`, raw text of bad rows) and returns the checks from which quarantine rows are
written; `mark_duplicates` adds copies of a key after its first row (`_dup`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

from fraudnet.contract import MED_TYPES, TABLES, FieldSpec, TableSpec
from fraudnet.ingest.readers import Source
from fraudnet.privacy import (
    sql_hash_identifier,
    sql_is_certno,
    sql_is_mobile,
    sql_mask_certno,
    sql_mask_phone,
    sql_normalize_phone,
)

__all__ = [
    "ColumnMap", "Check", "Checked", "map_columns", "build_checked", "mark_duplicates", "qident", "qstr",
    "ID_FIELDS", "AMOUNT_BOUNDS", "DATE_BOUNDS", "PARTS_TOLERANCE", "mark_mojibake", "looks_like_mojibake",
]

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

# Key and code columns: an id never starts with a spreadsheet formula character (= + - @, tab, CR), so such a
# value is quarantined rather than carried into exports where a spreadsheet would run it.
ID_FIELDS = frozenset({
    "psn_no", "mdtrt_id", "setl_id", "feedetl_sn", "fixmedins_code", "prac_psn_code", "atddr_no", "opter_id",
    "hilist_code", "bilg_dr_codg", "bilg_dept_codg", "dept_code", "dise_codg", "insuplc_admdvs", "live_admdvs",
    "admdvs",
})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Plausibility bounds (README "Input"): numbers outside [low, high] are quarantined. Amounts in yuan: one
# settlement or fee line above ten million yuan is not a claim; negative amounts only on refunds (checked apart).
AMOUNT_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    **{("setl", f): (-1e7, 1e7) for f in ("medfee_sumamt", "hifp_pay", "fund_pay_sumamt", "acct_pay",
                                          "psn_cash_pay")},
    ("fee_list", "det_item_fee_sumamt"): (-1e7, 1e7),
    ("fee_list", "cnt"): (-1e5, 1e5),
    ("fee_list", "pric"): (0.0, 1e7),
    ("fee_list", "prd_days"): (0.0, 366.0),
    ("hilist", "pric_uplmt_amt"): (0.0, 1e7),
    ("hilist", "max_days_per_fill"): (0.0, 366.0),
    ("phar_inv", "cnt"): (-1e7, 1e7),
    ("medins_info", "aprv_bed_cnt"): (0.0, 2e4),
    ("medins_info", "lnt"): (-180.0, 180.0),
    ("medins_info", "lat"): (-90.0, 90.0),
}
# Dates: events not before 1990 (birth and death dates not before 1900) and none after the export, taken as
# the ingest time plus one day (time zones, files written just before midnight).
EVENT_FLOOR = date(1990, 1, 1)
DATE_BOUNDS: dict[tuple[str, str], date] = {
    ("psn_info", "brdy"): date(1900, 1, 1),
    ("psn_info", "death_date"): date(1900, 1, 1),
    ("mdtrt", "begntime"): EVENT_FLOOR,
    ("mdtrt", "endtime"): EVENT_FLOOR,
    ("setl", "setl_time"): EVENT_FLOOR,
    ("fee_list", "fee_ocur_time"): EVENT_FLOOR,
    ("phar_inv", "occur_time"): EVENT_FLOOR,
}
# A settlement's fund + personal account + cash must equal its total within max(1 yuan, 1 %) when all present.
PARTS_TOLERANCE = (1.00, 0.01)
_SETL_MONEY = ("medfee_sumamt", "hifp_pay", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")


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


def build_checked(con: duckdb.DuckDBPyConnection, spec: TableSpec, cmap: ColumnMap, source: Source,
                  keep_extra: bool = False, secret_key: bytes | None = None,
                  export_time: datetime | None = None) -> Checked:
    """Create `_v` from a file's rows in one pass: typed values, `_rid`, `_line`, `_bad` (some check failed).

    Rows with vali_flag = 0 are counted and dropped. `_v` keeps the raw text of typed fields (`__r_<field>`)
    only on bad rows, where the quarantine needs it. Duplicate keys are marked later (`mark_duplicates`),
    once row numbers are final. Unknown columns go to `_extra` only with `keep_extra`, and then values that
    are identity-card or mobile numbers by content are masked and hashed (keyed with `secret_key`).
    `export_time` (default: now) plus one day is the latest plausible date.
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
    if cmap.extras and keep_extra:
        inner.append(f"{_extra_json(cmap.extras, secret_key)} AS _extra")
    else:
        inner.append("CAST(NULL AS JSON) AS _extra")
    outer += ["_extra", "_bad"]
    if source.replaced:
        # Lines that decoded in no encoding carry U+FFFD (see readers._transcode_to_utf8): name the column.
        names = {i: f for f, idxs in cmap.fields.items() for i in idxs} | dict(cmap.extras)
        cases = ", ".join(f"CASE WHEN contains(c{i}, '\ufffd') THEN {qstr(n)} END" for i, n in sorted(names.items()))
        inner.append(f"coalesce({cases}) AS _undec" if names else "CAST(NULL AS VARCHAR) AS _undec")
        outer.append("_undec")

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
    if source.replaced:
        checks.append(Check("(encoding)", "_undec IS NOT NULL", "_undec",
                            "'bytes in column ' || _undec || ' decode neither as UTF-8 nor as GBK/GB18030 "
                            "/ 含无法解码的字节'"))
    checks += _plausibility_checks(spec, cmap, export_time or datetime.now())
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


def _extra_json(extras: list[tuple[int, str]], secret_key: bytes | None) -> str:
    """JSON of the unknown columns; a value that is an ID-card or mobile number is masked, with its keyed hash."""
    parts = []
    for idx, name in extras:
        col = f"NULLIF(trim(c{idx}), '')"
        masked = (f"CASE WHEN {sql_is_certno(col)} THEN {sql_mask_certno(col)} "
                  f"WHEN {sql_is_mobile(col)} THEN {sql_mask_phone(col)} ELSE c{idx} END")
        pair = f"json_object({qstr(name)}, {masked})"
        if secret_key is not None:
            digest = sql_hash_identifier(f"CASE WHEN {sql_is_certno(col)} THEN {col} END", secret_key)
            phone = sql_hash_identifier(
                f"CASE WHEN {sql_is_mobile(col)} AND NOT {sql_is_certno(col)} THEN {sql_normalize_phone(col)} END",
                secret_key)
            pair = (f"json_merge_patch({pair}, json_object({qstr(name + '_hash')}, "
                    f"coalesce({digest}, {phone})))")
        parts.append(pair)
    return parts[0] if len(parts) == 1 else "json_merge_patch(" + ", ".join(parts) + ")"


def _plausibility_checks(spec: TableSpec, cmap: ColumnMap, export_time: datetime) -> list[Check]:
    """Row checks from the contract's plausibility rules: formula characters in ids, bounds, dates, sums."""
    present = set(cmap.fields)
    checks: list[Check] = []
    for f in spec.fields:
        if f.name not in present:
            continue
        name = qident(f.name)
        if f.name in ID_FIELDS and f.type == "str":
            starts = ", ".join(str(ord(c)) for c in _FORMULA_START)
            checks.append(Check(f.name, f"ascii({name}) IN ({starts})", f"left({name}, 500)",
                                qstr(f"{f.name} starts with a formula character (= + - @): never valid in an "
                                     "id / 编码以公式字符开头")))
        bound = AMOUNT_BOUNDS.get((spec.name, f.name))
        if bound is not None:
            lo, hi = bound
            checks.append(Check(f.name, f"{name} < {lo!r} OR {name} > {hi!r}", raw_col(f.name),
                                qstr(f"{f.name} outside the plausible range [{lo:,.0f}, {hi:,.0f}] "
                                     "/ 数值超出合理范围")))
        if f.type == "money":
            # More than two decimal places would be rounded silently by the DECIMAL(18,2) column.
            raw = raw_col(f.name)
            many = f"{raw} LIKE '%.___%'"  # three characters or more after a point: screen before parsing
            checks.append(Check(f.name, f"CASE WHEN {many} THEN TRY_CAST({raw} AS DOUBLE) <> CAST({name} AS DOUBLE) "
                                "ELSE false END",
                                raw_col(f.name), qstr(f"{f.name} has more than 2 decimal places "
                                                      "(would be rounded) / 金额超过两位小数")))
        floor = DATE_BOUNDS.get((spec.name, f.name))
        if floor is not None:
            ceiling = (export_time + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
            checks.append(Check(
                f.name, f"{name} < DATE '{floor.isoformat()}' OR {name} > TIMESTAMP '{ceiling}'", raw_col(f.name),
                qstr(f"{f.name} outside {floor.isoformat()} … {ceiling[:10]} (not before {floor.year}, not "
                     "after the export: ingest time + 1 day) / 日期不合理（早于下限或晚于导出日期）")))
    if spec.name == "setl":
        money = [m for m in _SETL_MONEY if m in present]
        refund = "coalesce(\"refd_setl_flag\" = '1', false)"
        if money:
            negative = " OR ".join(f"{qident(m)} < 0" for m in money)
            checks.append(Check(money[0] if len(money) == 1 else "medfee_sumamt",
                                f"NOT {refund} AND ({negative})",
                                " || ' ' || ".join(f"coalesce(CAST({qident(m)} AS VARCHAR), '-')" for m in money),
                                qstr("negative amount on a settlement that is not a refund (" + ", ".join(money)
                                     + ") / 非退费结算金额为负")))
        for part in ("fund_pay_sumamt", "hifp_pay", "acct_pay", "psn_cash_pay"):
            if part in present:
                checks.append(Check(
                    part, f"abs({qident(part)}) > abs(\"medfee_sumamt\") + 0.01",
                    f"CAST({qident(part)} AS VARCHAR) || ' > ' || CAST(\"medfee_sumamt\" AS VARCHAR)",
                    qstr(f"{part} exceeds the settlement's medfee_sumamt / 支付金额超过医疗费总额")))
        if "hifp_pay" in present and "fund_pay_sumamt" in present:
            checks.append(Check(
                "hifp_pay", "abs(\"hifp_pay\") > abs(\"fund_pay_sumamt\") + 0.01",
                "CAST(\"hifp_pay\" AS VARCHAR) || ' > ' || CAST(\"fund_pay_sumamt\" AS VARCHAR)",
                qstr("hifp_pay exceeds fund_pay_sumamt (the pooled fund is part of all fund payments) "
                     "/ 统筹支出超过基金支付总额")))
        if {"fund_pay_sumamt", "acct_pay", "psn_cash_pay"} <= present:
            parts = '("fund_pay_sumamt" + "acct_pay" + "psn_cash_pay")'
            absolute, relative = PARTS_TOLERANCE
            checks.append(Check(
                "medfee_sumamt",
                f'abs({parts} - "medfee_sumamt") > greatest({absolute}, {relative} * abs("medfee_sumamt"))',
                f"'fund+acct+cash = ' || CAST({parts} AS VARCHAR) || ', medfee_sumamt = ' || "
                "CAST(\"medfee_sumamt\" AS VARCHAR)",
                qstr(f"fund_pay_sumamt + acct_pay + psn_cash_pay differ from medfee_sumamt by more than "
                     f"max({absolute:.2f} yuan, {relative:.0%}) / 支付构成之和与医疗费总额不符")))
    return checks


# Free-text fields (names, addresses) checked for mojibake; codes are ASCII.
def _text_fields(spec: TableSpec) -> list[str]:
    return [f.name for f in spec.fields
            if f.type == "str" and (f.name.endswith("_name") or f.name in ("live_addr", "emp_name"))]


def _cjk_count(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


def looks_like_mojibake(text: str) -> str | None:
    """The text a mis-decoded value was meant to be, when it reads as Chinese once re-decoded, else None.

    UTF-8 read as GBK (`2鍨嬬硸灏跨梾` → `2型糖尿病`), and GBK or UTF-8 read as Latin-1 (`ÍõÐ¡Ã÷`). Genuine
    Chinese text almost never re-decodes into two or more Chinese characters.
    """
    for codec, target in (("gbk", "utf-8"), ("latin-1", "gbk"), ("latin-1", "utf-8")):
        try:
            raw = text.encode(codec)
        except UnicodeEncodeError:
            continue
        if raw.isascii():
            return None
        fixed = raw.decode(target, errors="replace")
        if fixed != text and fixed.count("\ufffd") <= 1 and _cjk_count(fixed) >= 2:
            return fixed
    return None


_CJK = re.compile("[\u4e00-\u9fff]")
_NON_LATIN1 = re.compile("[^\x00-\xff]")


def _screen(values: list[str], codec: str, target: str) -> list[str]:
    """Values that re-decode (encoded as `codec`, read as `target`) into text with two or more Chinese characters."""
    if not values:
        return []
    clean = [v.replace("\n", " ") for v in values]
    pieces = "\n".join(clean).encode(codec, errors="replace").decode(target, errors="replace").split("\n")
    if len(pieces) != len(clean):  # pragma: no cover - newlines survive both codecs
        return values
    return [v for v, fixed in zip(values, pieces, strict=True)
            if fixed.count("\ufffd") <= 1 and len(_CJK.findall(fixed)) >= 2]


def _mojibake_candidates(values: list[str]) -> list[str]:
    """The values that may be mojibake, screened in bulk (one encode/decode per path for all values)."""
    latin = [v for v in values if _NON_LATIN1.search(v) is None]
    found = set(_screen(values, "gbk", "utf-8"))
    for target in ("gbk", "utf-8"):
        found.update(_screen(latin, "latin-1", target))
    return sorted(found)


def mark_mojibake(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> list[Check]:
    """Mark rows of `_v` whose free text is mojibake as bad and return the checks naming them.

    Only the distinct non-ASCII values of name and address fields are examined (in Python: a few thousand
    values for a city), never every row.
    """
    present = {r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE _v)").fetchall()}
    found: list[tuple[str, str, str]] = []
    for name in _text_fields(spec):
        if name not in present:
            continue
        col = qident(name)
        values = con.execute(f"SELECT DISTINCT {col} FROM _v WHERE NOT _bad AND {col} IS NOT NULL "
                             f"AND strlen({col}) <> length({col})").fetchall()
        for value in _mojibake_candidates([v[0] for v in values]):
            fixed = looks_like_mojibake(value)
            if fixed is not None:
                found.append((name, value, fixed))
    con.execute("DROP TABLE IF EXISTS _moj")
    if not found:
        return []
    con.execute("CREATE TEMP TABLE _moj (field VARCHAR, value VARCHAR, fixed VARCHAR)")
    con.executemany("INSERT INTO _moj VALUES (?, ?, ?)", [list(x) for x in found])
    checks = []
    for name in sorted({x[0] for x in found}):
        col = qident(name)
        cond = f"{col} IN (SELECT value FROM _moj WHERE field = {qstr(name)})"
        con.execute(f"UPDATE _v SET _bad = true WHERE {cond}")
        checks.append(Check(
            name, cond, f"left({col}, 500)",
            f"'text looks mis-decoded (mojibake; reads ' || (SELECT any_value(fixed) FROM _moj WHERE field = "
            f"{qstr(name)} AND value = _v.{col}) || ' when re-decoded) / 疑似乱码'"))
    return checks


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
