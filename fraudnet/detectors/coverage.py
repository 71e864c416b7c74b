"""What the data supports: coverage per institution and month of the details each detector needs (数据支撑度)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = [
    "Requirement",
    "Coverage",
    "CoverageReport",
    "REQUIREMENTS",
    "measure_coverage",
    "coverage",
    "covered_table",
    "covered_clause",
    "key_institutions",
]

log = logging.getLogger(__name__)

# A stay, visit or line counts as carrying a detail when it has it; an institution-month is covered for a
# requirement when at least `min_share` of its relevant units (and at least `min_count` of them) carry it, and an
# institution is covered when any of its months is. Half is the line between "the institution sends this
# detail, with gaps" and "the institution does not send it": below it, a missing detail is the rule there, and
# reading it as a fact (no treatment, midnight visits) would make leads out of the export's shape. Months let a
# source that starts (or stops) sending a detail part-way be judged only where it has it.
DEFAULT_MIN_SHARE = 0.5

_VALID = "NOT coalesce(v.refunded, false)"


@dataclass(frozen=True)
class Requirement:
    """One kind of detail a detector needs, with the SQL that measures it per institution.

    `sql` returns one row per institution and month: `fixmedins_code`, `month` (first day of the month of the
    visit's begntime; NULL for a requirement judged per institution only), `units` (the visits, stays or lines
    the detail applies to) and `detailed` (those carrying it). Institutions without units are not concerned
    (nothing there for the detector to judge) and are neither covered nor uncovered.
    """

    name: str
    what_en: str
    what_zh: str
    units_en: str
    units_zh: str
    sql: str
    min_share: float = DEFAULT_MIN_SHARE
    min_count: int = 1


_MONTH = "date_trunc('month', v.begntime)::DATE AS month"

REQUIREMENTS: dict[str, Requirement] = {r.name: r for r in (
    Requirement(
        "fee_lines", "fee lines", "费用明细", "visits", "就诊",
        f"""SELECT v.fixmedins_code, {_MONTH}, count(*) AS units, count(f.mdtrt_id) AS detailed
            FROM visit_fact v LEFT JOIN (SELECT DISTINCT mdtrt_id FROM fee_list) f ON f.mdtrt_id = v.mdtrt_id
            WHERE {_VALID} GROUP BY 1, 2"""),
    Requirement(
        # Lines on at least two days and on at least half of the stay's nights: bed, nursing or treatment
        # billed day by day. Lines all dated at admission or discharge (one bill for the stay) are not.
        "daily_inpatient_fee_lines", "per-day fee lines", "逐日费用明细", "inpatient stays of 2+ nights",
        "2晚以上住院",
        f"""WITH s AS (
                SELECT v.mdtrt_id, v.fixmedins_code, {_MONTH}, v.begntime::DATE AS b, v.endtime::DATE AS e,
                       date_diff('day', v.begntime::DATE, v.endtime::DATE) AS nights
                FROM visit_fact v
                WHERE v.is_inpatient AND {_VALID} AND v.endtime IS NOT NULL
                  AND date_diff('day', v.begntime::DATE, v.endtime::DATE) >= 2
            ), d AS (
                SELECT f.mdtrt_id, count(DISTINCT f.fee_ocur_time::DATE) AS days
                FROM fee_list f JOIN s ON s.mdtrt_id = f.mdtrt_id
                WHERE f.fee_ocur_time::DATE BETWEEN s.b AND s.e GROUP BY 1
            )
            SELECT s.fixmedins_code, s.month, count(*) AS units,
                   count(*) FILTER (coalesce(d.days, 0) >= 2 AND coalesce(d.days, 0) >= 0.5 * s.nights) AS detailed
            FROM s LEFT JOIN d ON d.mdtrt_id = s.mdtrt_id GROUP BY 1, 2"""),
    Requirement(
        "admission_discharge_times", "admission and discharge times", "入出院时间", "inpatient stays", "住院",
        f"""SELECT v.fixmedins_code, {_MONTH}, count(*) AS units,
                   count(*) FILTER (v.begntime IS NOT NULL AND v.endtime IS NOT NULL AND v.endtime > v.begntime)
                       AS detailed
            FROM visit_fact v WHERE v.is_inpatient AND {_VALID} GROUP BY 1, 2"""),
    Requirement(
        "diagnoses", "diagnosis codes", "诊断编码", "inpatient stays", "住院",
        f"""SELECT v.fixmedins_code, {_MONTH}, count(*) AS units,
                   count(*) FILTER (nullif(trim(coalesce(v.dise_codg, '')), '') IS NOT NULL) AS detailed
            FROM visit_fact v WHERE v.is_inpatient AND {_VALID} GROUP BY 1, 2"""),
    Requirement(
        # A time of day other than midnight, at an institution whose visits show at least two different minutes
        # of the day once it has three or more: a date exported as a timestamp (00:00:00) or one constant time
        # is not a clock.
        "minute_times", "visit times to the minute", "精确到分钟的就诊/结算时间", "outpatient and pharmacy visits",
        "门诊及药店购药",
        f"""WITH o AS (SELECT * FROM visit_fact v WHERE NOT v.is_inpatient AND {_VALID}),
            k AS (SELECT fixmedins_code, count(DISTINCT strftime(begntime, '%H:%M')) >= 2 OR count(*) < 3 AS clock
                  FROM o GROUP BY 1)
            SELECT v.fixmedins_code, {_MONTH}, count(*) AS units,
                   count(*) FILTER (k.clock AND strftime(v.begntime, '%H:%M:%S') <> '00:00:00') AS detailed
            FROM o v JOIN k ON k.fixmedins_code = v.fixmedins_code GROUP BY 1, 2"""),
    Requirement(
        "operator_ids", "operator ids", "经办人编号", "outpatient and pharmacy visits", "门诊及药店购药",
        f"""SELECT v.fixmedins_code, {_MONTH}, count(*) AS units,
                   count(*) FILTER (nullif(trim(coalesce(v.opter_id, '')), '') IS NOT NULL) AS detailed
            FROM visit_fact v WHERE NOT v.is_inpatient AND {_VALID} GROUP BY 1, 2"""),
    Requirement(
        # Fee times to the minute, as for visits: lines all at midnight, or all at one time, are dates.
        "fee_line_times", "fee times to the minute", "精确到分钟的费用发生时间", "fee lines", "费用明细",
        f"""WITH l AS (SELECT v.fixmedins_code, v.begntime, f.fee_ocur_time
                       FROM fee_list f JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id),
            k AS (SELECT fixmedins_code,
                         count(DISTINCT strftime(fee_ocur_time, '%H:%M')) >= 2 OR count(*) < 3 AS clock
                  FROM l GROUP BY 1)
            SELECT v.fixmedins_code, {_MONTH}, count(*) AS units,
                   count(*) FILTER (k.clock AND strftime(v.fee_ocur_time, '%H:%M:%S') <> '00:00:00') AS detailed
            FROM l v JOIN k ON k.fixmedins_code = v.fixmedins_code GROUP BY 1, 2"""),
    Requirement(
        "fee_quantities", "fee quantities", "收费数量", "fee lines", "费用明细",
        f"""SELECT v.fixmedins_code, {_MONTH}, count(*) AS units,
                   count(*) FILTER (f.cnt IS NOT NULL AND f.cnt <> 0) AS detailed
            FROM fee_list f JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id GROUP BY 1, 2"""),
    Requirement(
        "fee_prices", "unit prices", "收费单价", "fee lines", "费用明细",
        f"""SELECT v.fixmedins_code, {_MONTH}, count(*) AS units, count(*) FILTER (f.pric > 0) AS detailed
            FROM fee_list f JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id GROUP BY 1, 2"""),
    Requirement(
        # Any billed item with a ceiling makes the screen possible there; most items have none (min_share 0).
        "catalogue_price_caps", "items with a catalogue price ceiling", "有最高限价的目录项目", "fee lines",
        "费用明细",
        """SELECT v.fixmedins_code, NULL::DATE AS month, count(*) AS units,
                  count(*) FILTER (h.pric_uplmt_amt > 0) AS detailed
           FROM fee_list f JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
           LEFT JOIN hilist h ON h.hilist_code = f.hilist_code GROUP BY 1, 2""",
        min_share=0.0),
    Requirement(
        "days_of_supply", "days of supply", "取药天数", "drug lines of items with a maximum days per fill",
        "有单次最大取药天数的药品明细",
        f"""SELECT v.fixmedins_code, {_MONTH}, count(*) AS units, count(*) FILTER (f.prd_days > 0) AS detailed
            FROM fee_list f JOIN hilist h ON h.hilist_code = f.hilist_code
            JOIN visit_fact v ON v.mdtrt_id = f.mdtrt_id
            WHERE h.max_days_per_fill > 0 GROUP BY 1, 2"""),
    Requirement(
        "institution_coordinates", "coordinates", "经纬度", "institutions", "机构",
        """SELECT m.fixmedins_code, NULL::DATE AS month, 1 AS units,
                  CASE WHEN m.lnt BETWEEN -180 AND 180 AND m.lat BETWEEN -90 AND 90 AND NOT (m.lnt = 0 AND m.lat = 0)
                       THEN 1 ELSE 0 END AS detailed
           FROM (SELECT fixmedins_code, any_value(lnt) AS lnt, any_value(lat) AS lat FROM medins_info GROUP BY 1) m
           WHERE m.fixmedins_code IN (SELECT fixmedins_code FROM visit_fact)"""),
    Requirement(
        # Pharmacies that report purchases (phar_inv type 3): the stock check compares sales with them.
        "pharmacy_stock", "purchase and sales records", "进销存记录", "pharmacies", "药店",
        """WITH p AS (SELECT DISTINCT fixmedins_code FROM visit_fact WHERE coalesce(is_pharmacy, false)),
                s AS (SELECT DISTINCT fixmedins_code FROM phar_inv WHERE inv_data_type = '3')
           SELECT p.fixmedins_code, NULL::DATE AS month, 1 AS units,
                  CASE WHEN s.fixmedins_code IS NULL THEN 0 ELSE 1 END AS detailed
           FROM p LEFT JOIN s ON s.fixmedins_code = p.fixmedins_code"""),
)}


@dataclass
class Coverage:
    """Coverage of one requirement: the institutions covered (in at least one month), those concerned but lacking
    the detail in every month, and — when some covered institutions lack it in some months — the covered
    (institution, month) cells and the number of months left out there (`gaps`)."""

    requirement: Requirement
    covered: frozenset[str] = field(default_factory=frozenset)
    uncovered: frozenset[str] = field(default_factory=frozenset)
    missing: str = ""  # the table or column absent from the store, when the measure could not run
    cells: frozenset[tuple[str, Any]] | None = None  # None: every month of a covered institution
    gaps: int = 0

    @property
    def name(self) -> str:
        return self.requirement.name

    def abstain_reason(self, optional: bool = False) -> tuple[str, str]:
        """(zh, en) of the institutions (and months) left out: "2,092家机构无逐日费用明细，未筛查" and its English."""
        r, n, g = self.requirement, len(self.uncovered), self.gaps
        done_zh, done_en = ("未使用该项证据", "that evidence not used") if optional else ("未筛查", "skipped")
        parts_zh, parts_en = [], []
        if n:
            parts_zh.append(f"{n:,}家机构无{r.what_zh}")
            parts_en.append(f"{_institutions(n)} without {r.what_en}")
        if g:
            parts_zh.append(f"{'另有' if n else ''}{g:,}个机构月无{r.what_zh}")
            month_en = f"{g:,} institution-month{'' if g == 1 else 's'}"
            parts_en.append(f"{month_en} of others without them" if n else f"{month_en} without {r.what_en}")
        return "，".join(parts_zh) + f"，{done_zh}", ", ".join(parts_en) + f", {done_en}"

    def skip_reason(self) -> tuple[str, str]:
        """(zh, en) of why no institution can be screened."""
        r = self.requirement
        if self.missing:
            return (f"数据中缺少{self.missing}（{r.what_zh}），未运行",
                    f"{self.missing} absent ({r.what_en}), not run")
        if not self.uncovered:
            return f"数据中无{r.units_zh}，未运行", f"no {r.units_en} in the data, not run"
        n = len(self.uncovered)
        return (f"无机构具备{r.what_zh}（{n:,}家机构缺少），未运行",
                f"no institution has {r.what_en} ({_institutions(n)} without), not run")


def _institutions(n: int) -> str:
    return f"{n:,} institution" + ("" if n == 1 else "s")


class CoverageReport(dict):
    """Requirement name → `Coverage` for the requirements asked."""

    def uncovered(self, names: tuple[str, ...] | list[str] | None = None) -> set[str]:
        """Institutions lacking any of the named requirements (all of the report's by default)."""
        out: set[str] = set()
        for name in names if names is not None else list(self):
            out |= set(self[name].uncovered)
        return out


def _measure(context: Any, req: Requirement) -> Coverage:
    try:
        frame = context.sql(req.sql)
    except context.query_errors as exc:  # an optional table or column the store does not have
        missing = _missing_name(exc)
        log.info("coverage %s: not measurable (%s)", req.name, exc)
        try:
            insts = context.sql("SELECT DISTINCT fixmedins_code FROM visit_fact "
                                "WHERE fixmedins_code IS NOT NULL")["fixmedins_code"]
        except context.query_errors:
            insts = pd.Series([], dtype=str)
        return Coverage(req, frozenset(), frozenset(str(x) for x in insts), missing or "a table or column")
    frame = frame[frame["fixmedins_code"].notna() & (frame["units"] > 0)]
    units = frame["units"].astype(float)
    detailed = frame["detailed"].fillna(0).astype(float)
    ok = ((detailed >= req.min_count) & (detailed >= req.min_share * units)).to_numpy()
    codes = frame["fixmedins_code"].astype(str).to_numpy()
    covered = frozenset(codes[ok])
    uncovered = frozenset(codes) - covered
    gaps = int(sum(1 for c, good in zip(codes, ok, strict=True) if not good and c in covered))
    cells = None
    if gaps:
        months = [None if pd.isna(m) else pd.Timestamp(m).date() for m in frame["month"]]
        cells = frozenset((c, m) for c, m, good in zip(codes, months, ok, strict=True) if good)
    return Coverage(req, covered, uncovered, cells=cells, gaps=gaps)


def _missing_name(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Table with name ", 'Referenced column "', "column "):
        if marker in text:
            rest = text.split(marker, 1)[1]
            return rest.split()[0].strip('"').rstrip(",.")
    return ""


def measure_coverage(context: Any, requirements: tuple[str, ...] | list[str]) -> CoverageReport:
    """Coverage of each named requirement, measured once per context (cached on `context.coverage_cache`).

    Raises KeyError naming an unknown requirement: a detector declaring one is a programming error.
    """
    cache = getattr(context, "coverage_cache", None)
    report = CoverageReport()
    for name in requirements:
        if name not in REQUIREMENTS:
            raise KeyError(f"unknown data requirement {name!r}; known: {', '.join(REQUIREMENTS)}")
        if cache is not None and name in cache:
            report[name] = cache[name]
            continue
        cov = _measure(context, REQUIREMENTS[name])
        if cache is not None:
            cache[name] = cov
        report[name] = cov
    return report


def coverage(context: Any, name: str) -> Coverage:
    """Coverage of one requirement (see `measure_coverage`)."""
    return measure_coverage(context, [name])[name]


def covered_table(context: Any, name: str) -> str:
    """Name of a temporary table (`fixmedins_code`, `month`) of what is covered for requirement `name`: the
    covered institution-months, or — when a covered institution is covered in every month — the institutions
    with `month` NULL. Made once per run (dropped by `run_detectors` with the other shared temporary tables)."""
    table = f"_fn_cov_{name}"
    if table in context.temp_tables:
        return table
    cov = coverage(context, name)
    if cov.cells is None:
        codes, months = sorted(cov.covered), []
    else:
        cells = sorted(cov.cells, key=lambda c: (c[0], str(c[1])))
        codes, months = [c for c, _ in cells], [None if m is None else str(m) for _, m in cells]
    return context.temp_table(
        table, "SELECT unnest(CAST($codes AS VARCHAR[])) AS fixmedins_code, unnest(CAST($months AS DATE[])) AS month",
        {"codes": codes, "months": months or [None] * len(codes)}, shared=True)


def covered_clause(context: Any, name: str, institution: str, time: str) -> str:
    """SQL condition keeping rows (institution column, time column) covered for requirement `name`: their
    institution is covered and, where it lacks the detail in some months, the row's month is one it has it in.
    Aliases: the condition's subquery names its table `c`, so qualify the columns (`v.fixmedins_code`)."""
    table = covered_table(context, name)
    if coverage(context, name).cells is None:
        return f"{institution} IN (SELECT fixmedins_code FROM {table})"
    return (f"EXISTS (SELECT 1 FROM {table} c WHERE c.fixmedins_code = {institution} "
            f"AND c.month = date_trunc('month', {time})::DATE)")


def key_institutions(lead: Any) -> set[str]:
    """The institutions a lead stands on: its `entity` for an institution-level rule lead, else all of them."""
    features = getattr(lead, "features", None) or {}
    entity = features.get("entity") if isinstance(features, dict) else None
    if isinstance(entity, str) and entity in lead.institutions:
        return {entity}
    return set(lead.institutions)
