"""Incremental detection: per-detector partial aggregates kept in the claims store, so that a day's screening
computes the partials of the day's visits only and re-derives the period-wide figures from them.

A detector opts in by declaring `incremental_parts` (part name → key columns to sum by, or None for per-visit rows
that are simply appended) and three methods: `partials(context, scope)` (the parts over every visit when `scope` is
None, else over the visits whose mdtrt_id is in the table `scope`), and `leads_from_partials(context, parts)`.
Its `run(context)` is `leads_from_partials(context, partials(context, None))`, so the full and the incremental path
share every line after the partials. A part must be additive over disjoint sets of visits (one row per visit, or
sums and counts by key), which makes stored parts + the day's parts equal to the parts of a full run.

The increment is valid only as a pure append of new visits after the state's batch (`plan_increment`): a changed
catalogue or institution register, rows updated in place, settlements or fee lines arriving for visits of earlier
batches (corrections, reversals), persons registered after visits of earlier batches (their district), visits dated
before the last day the state saw (backdated), or other detector parameters make the run fall back to the full path,
which rebuilds the state; the reason goes into the run report.
State: `detector_state` (kind → source batch, as-of, parameter fingerprint) and one table per part,
`detector_part__<kind>__<part>`. Detectors that do not declare parts simply run in full.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["STATE_DDL", "IncrementPlan", "IncrementalRunner", "plan_increment", "is_incremental", "part_table",
           "params_fingerprint", "REFERENCE_TABLES"]

STATE_DDL = """CREATE TABLE IF NOT EXISTS detector_state (
    kind VARCHAR PRIMARY KEY,
    source_batch BIGINT,
    as_of TIMESTAMP,
    params VARCHAR,
    refreshed_at TIMESTAMP
)"""
# Tables whose change alters every visit's derived facts (pharmacy or not, list type, price ceiling).
REFERENCE_TABLES = ("medins_info", "hilist")
NEW_VISITS = "_inc_new_visits"


def is_incremental(detector: Any) -> bool:
    return bool(getattr(detector, "incremental_parts", None)) and hasattr(detector, "partials")


def part_table(kind: str, part: str) -> str:
    return "detector_part__" + re.sub(r"[^A-Za-z0-9]", "_", kind) + "__" + part


def params_fingerprint(detector: Any) -> str:
    """The detector's parameters (its instance attributes not ending in `_`) as stable JSON."""
    params = {k: v for k, v in sorted(vars(detector).items()) if not k.endswith("_") and not k.startswith("_")}
    return json.dumps(params, sort_keys=True, default=str)


@dataclass
class IncrementPlan:
    """Which path a run may take: `incremental` from the state's `source_batch` up to `latest_batch`, or full
    (`reason` says why). `new_visits` counts the visits of the batches after the state."""

    incremental: bool
    reason: str
    source_batch: int | None = None
    latest_batch: int = 0
    as_of: datetime | None = None
    new_visits: int = 0
    states: dict[str, tuple[int, str]] = field(default_factory=dict)  # kind → (source batch, params)


def _one(con: Any, sql: str, params: list[Any] | None = None) -> Any:
    return con.execute(sql, params or []).fetchall()[0][0]


def plan_increment(con: Any) -> IncrementPlan:
    """Decide whether the batches loaded since the incremental state are a pure append of new visits."""
    con.execute(STATE_DDL)
    latest = int(_one(con, "SELECT coalesce(max(batch_id), 0) FROM ingest_batches WHERE status = 'loaded'"))
    rows = con.execute("SELECT kind, source_batch, as_of, params FROM detector_state").fetchall()
    states = {r[0]: (int(r[1]), r[3]) for r in rows}
    plan = IncrementPlan(False, "", latest_batch=latest, states=states)
    if not rows:
        plan.reason = "no incremental state yet (first run) / 首次运行，无增量状态"
        return plan
    batches = {int(r[1]) for r in rows}
    if len(batches) > 1:
        plan.reason = "detector states at different batches / 各检测器状态不一致"
        return plan
    mark = batches.pop()
    plan.source_batch = mark
    plan.as_of = max((r[2] for r in rows if r[2] is not None), default=None)
    if mark > latest:
        plan.reason = f"state at batch {mark} is ahead of the store (batch {latest}) / 状态超前"
        return plan
    pending = con.execute(
        "SELECT table_name, coalesce(rows_loaded, 0), coalesce(rows_updated, 0) FROM ingest_batches "
        "WHERE status = 'loaded' AND batch_id > ?", [mark]).fetchall()
    updated = sorted({t for t, _, u in pending if u > 0})
    if updated:
        plan.reason = f"rows updated in place in {', '.join(updated)} / 数据被更新"
        return plan
    ref = sorted({t for t, n, _ in pending if t in REFERENCE_TABLES and n > 0})
    if ref:
        plan.reason = f"reference data changed ({', '.join(ref)}) / 目录或机构信息变更"
        return plan
    for table, what in (("setl", "settlements (corrections or reversals)"), ("fee_list", "fee lines")):
        old = int(_one(con, f"SELECT count(*) FROM {table} x JOIN mdtrt m ON m.mdtrt_id = x.mdtrt_id "
                            f"WHERE x._batch_id > ? AND m._batch_id <= ?", [mark, mark]))
        if old:
            plan.reason = f"{old} {what} on visits loaded before / 新增{table}涉及既往就诊（更正或冲销）"
            return plan
    # a person registered after visits already screened changes those visits' facts (patients from other districts)
    late = int(_one(con, "SELECT count(DISTINCT p.psn_no) FROM psn_info p JOIN mdtrt m ON m.psn_no = p.psn_no "
                         "WHERE p._batch_id > ? AND m._batch_id <= ?", [mark, mark]))
    if late:
        plan.reason = f"{late} persons registered after visits already screened / 新增人员信息涉及既往就诊"
        return plan
    if plan.as_of is not None:
        # the rest of the last day screened may come later (a day in several files); an earlier day may not
        back = int(_one(con, "SELECT count(*) FROM mdtrt WHERE _batch_id > ? AND begntime < date_trunc('day', ?)",
                        [mark, plan.as_of]))
        if back:
            plan.reason = f"{back} visits dated before the last day already screened (backdated) / 补录既往就诊"
            return plan
    plan.new_visits = int(_one(con, "SELECT count(*) FROM mdtrt WHERE _batch_id > ?", [mark]))
    plan.incremental = True
    plan.reason = f"pure append: {plan.new_visits} new visits after batch {mark} / 纯追加"
    return plan


def _merge(old: pd.DataFrame, new: pd.DataFrame, keys: tuple[str, ...] | None) -> pd.DataFrame:
    if new.empty:
        return old
    if old.empty:
        merged = new
    else:
        merged = pd.concat([old, new[list(old.columns)]], ignore_index=True)
    if keys:
        merged = merged.groupby(list(keys), as_index=False, dropna=False).sum()
    return merged


class IncrementalRunner:
    """Runs one detector by the plan's path and keeps the parts it computed for `save`. `report` holds, per
    incremental detector, the path taken, why, and the rows of partials computed and kept."""

    def __init__(self, con: Any, plan: IncrementPlan) -> None:
        self.con = con
        self.plan = plan
        self.parts: dict[str, dict[str, pd.DataFrame]] = {}
        self.params: dict[str, str] = {}
        self.report: dict[str, dict[str, Any]] = {}
        self.saved: bool | None = None  # after `save`: whether the state was stored

    def run(self, detector: Any, context: Any) -> list[Any]:
        kind = detector.kind
        if not is_incremental(detector) or getattr(context, "since", None) is not None:
            return detector.run(context)
        if hasattr(detector, "validate"):
            detector.validate()
        params = params_fingerprint(detector)
        state = self.plan.states.get(kind)
        reason = self.plan.reason
        if self.plan.incremental and state is None:
            reason = "no state for this detector / 该检测器无增量状态"
        elif self.plan.incremental and state[1] != params:
            reason = "parameters changed / 参数已变更"
        if self.plan.incremental and state is not None and state[1] == params:
            if NEW_VISITS not in context.temp_tables:
                context.temp_table(NEW_VISITS, "SELECT mdtrt_id FROM mdtrt WHERE _batch_id > ? AND _batch_id <= ?",
                                   [self.plan.source_batch, self.plan.latest_batch], shared=True)
            new = detector.partials(context, NEW_VISITS)
            parts = {}
            for name, keys in detector.incremental_parts.items():
                old = context.sql(f"SELECT * FROM {part_table(kind, name)}")
                parts[name] = _merge(old, new[name], keys)
            self.report[kind] = {"path": "incremental", "reason": reason, "new_visits": self.plan.new_visits,
                                 "partial_rows_computed": {k: len(v) for k, v in new.items()},
                                 "partial_rows_kept": {k: len(v) for k, v in parts.items()}}
        else:
            parts = detector.partials(context, None)
            self.report[kind] = {"path": "full", "reason": reason,
                                 "partial_rows_computed": {k: len(v) for k, v in parts.items()}}
        self.parts[kind] = parts
        self.params[kind] = params
        return detector.leads_from_partials(context, parts)

    def save(self, as_of: datetime | None) -> None:
        """Store the parts of this run as the state at the plan's latest batch; when batches were loaded since the
        plan (an ingest while detection ran), drop every state instead: the next run takes the full path."""
        con = self.con
        con.execute(STATE_DDL)
        latest = int(_one(con, "SELECT coalesce(max(batch_id), 0) FROM ingest_batches WHERE status = 'loaded'"))
        if latest != self.plan.latest_batch:
            # batches loaded while detection ran may be in some parts and not others: keep no state (next run full)
            con.execute("DELETE FROM detector_state")
            self.saved = False
            return
        for kind, parts in self.parts.items():
            for name, frame in parts.items():
                table = part_table(kind, name)
                con.register("_inc_part", frame)
                try:
                    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _inc_part")
                finally:
                    con.unregister("_inc_part")
            con.execute("INSERT OR REPLACE INTO detector_state VALUES (?, ?, ?, ?, ?)",
                        [kind, self.plan.latest_batch, as_of, self.params[kind], datetime.now()])
        # detectors that lost their parts (errors, skipped) must not keep a state of another batch
        kept = list(self.parts)
        con.execute("DELETE FROM detector_state WHERE NOT list_contains(?, kind)", [kept])
        self.saved = True


def covered_rows(context: Any, frame: pd.DataFrame, requires: tuple[str, ...], entity: str = "entity",
                 month: str = "month") -> pd.DataFrame:
    """The rows of a partial (one institution `entity` and visit `month` per row) that the coverage of `requires`
    keeps — the same visits as filtering them with `covered_clause` before aggregating, so parts can be stored
    unfiltered and stay valid when a month's coverage changes. Row order is kept."""
    from fraudnet.detectors.coverage import covered_clause

    if frame.empty or not requires:
        return frame
    cond = " AND ".join(covered_clause(context, r, f"x.{entity}", f"x.{month}") for r in requires)
    numbered = frame.reset_index(drop=True).assign(_row=range(len(frame)))
    with context.frame_table("_fn_inc_cov", numbered[[entity, month, "_row"]]) as table:
        keep = context.sql(f"SELECT x._row FROM {table} x WHERE {cond}")
    return frame.reset_index(drop=True).iloc[sorted(int(r) for r in keep["_row"])].reset_index(drop=True)
