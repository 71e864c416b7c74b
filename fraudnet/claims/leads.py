"""The lead store: leads, their lifecycle, assignees, notes and audit history, kept in the claims store (DuckDB).

Tables (created on first use):
- `leads` — one row per lead_id: the `Lead` fields (lists as VARCHAR[], features as JSON text), `status`,
  `assignee`, `active` (false once a re-run no longer produces it), `supersedes` (lead ids it inherited
  decisions from), `first_seen`, `last_seen`, `retired_at`, `run_id`.
- `lead_history` — append-only: lead_id, at, user, action, from_status, to_status, comment.
- `lead_notes` — append-only: lead_id, at, user, text.
- `lead_runs` — one row per `save_run`: run_id, at, kinds, counts, and `coverage` (JSON: per detector the
  institutions abstained for lack of data and the detectors skipped; added to older workspaces on open).

Provenance (added to older workspaces on open): each lead keeps `detector_version`, `param_hash` and the data
batch range `batch_from`–`batch_to` of the run that last produced it, and `raised` — a JSON snapshot frozen when
the lead was first raised (time, run, detector version and parameter hash, model version, batches, score,
severity, amount, explanation and figures). A later run updates the live fields but never `raised`; a change to
a lead under review or decided is written to its history (`rescored`). The learned model's columns
(`model_probability`, `expected_recovery`, `model_version`, `model_explanation_zh/en`, and the first model
figures `raised_model_version`/`raised_model_probability`) are filled by `fraudnet.learning.scoring`.

A re-run never duplicates a lead and never loses a decision: the same evidence gives the same lead_id (updated
in place); a lead not produced again is retired (kept with its decisions); a new lead whose evidence mostly
overlaps a retired or changed lead of the same kind inherits its status, assignee and notes (`supersedes`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import duckdb
import pandas as pd

from fraudnet.detectors.base import SEVERITIES, Lead
from fraudnet.errors import InvalidRequestError, NotFoundError, StoreError

__all__ = ["LeadStore", "RunPlan", "plan_run", "STATUSES", "TRANSITIONS", "SORT_KEYS", "MODEL_RISK_COLUMNS",
           "lead_summary_columns"]

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("new", "reviewing", "confirmed", "dismissed", "referred")
STATUS_ZH = {"new": "新线索", "reviewing": "核查中", "confirmed": "已确认", "dismissed": "已排除", "referred": "已移送"}
# new → reviewing → confirmed | dismissed | referred; a decided lead may be reopened to reviewing, and a
# confirmed lead may be referred (移送) to the police / health commission.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"reviewing"}),
    "reviewing": frozenset({"confirmed", "dismissed", "referred"}),
    "confirmed": frozenset({"reviewing", "referred"}),
    "dismissed": frozenset({"reviewing"}),
    "referred": frozenset({"reviewing"}),
}
SORT_KEYS: dict[str, str] = {
    # the queue's default: expected recovery (model probability × amount at risk) once a model has scored the
    # leads, the calibrated score before that
    "priority": "coalesce(expected_recovery, score)",
    "score": "score",
    "expected_recovery": "expected_recovery",
    "model_probability": "model_probability",
    "amount": "amount_at_risk",
    "amount_at_risk": "amount_at_risk",
    "severity": "CASE severity WHEN 'red' THEN 3 WHEN 'orange' THEN 2 ELSE 1 END",
    "period_start": "period_start",
    "period_end": "period_end",
}
SEVERITY_RANK = {"red": 3, "orange": 2, "yellow": 1}
# The model's figures `entity_scores` puts beside the unsupervised risk once a model has scored the store.
MODEL_RISK_COLUMNS = ("model_probability", "expected_recovery", "model_explanation_zh", "model_explanation_en")
MAX_LIMIT = 100_000
# A new lead inherits the decisions of an old lead of the same kind when this share of either one's evidence
# is shared with the other.
INHERIT_OVERLAP = 0.5

_LEAD_COLUMNS = (
    "lead_id", "kind", "severity", "score", "persons", "practitioners", "institutions", "evidence",
    "evidence_count", "amount_at_risk", "period_start", "period_end", "explanation_zh", "explanation_en",
    "features", "status", "assignee", "active", "supersedes", "first_seen", "last_seen", "retired_at", "run_id",
)
_SUMMARY_COLUMNS = (
    "lead_id", "kind", "severity", "score", "persons", "practitioners", "institutions", "evidence",
    "evidence_count", "amount_at_risk", "period_start", "period_end", "explanation_zh", "explanation_en",
    "status", "assignee", "active", "model_probability", "expected_recovery", "first_seen",
)
# Columns added after the first release (ALTER TABLE … ADD COLUMN IF NOT EXISTS on open).
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("detector_version", "VARCHAR"), ("param_hash", "VARCHAR"), ("batch_from", "BIGINT"), ("batch_to", "BIGINT"),
    ("raised", "VARCHAR"), ("raised_model_version", "VARCHAR"), ("raised_model_probability", "DOUBLE"),
    ("model_probability", "DOUBLE"), ("expected_recovery", "DOUBLE"), ("model_version", "VARCHAR"),
    ("model_explanation_zh", "VARCHAR"), ("model_explanation_en", "VARCHAR"),
)
_DETAIL_COLUMNS = tuple(name for name, _ in _ADDED_COLUMNS)
# Kept across a re-run's re-insert of the same lead (the frozen snapshot and the last model scores).
_KEPT_COLUMNS = ("raised", "raised_model_version", "raised_model_probability", "model_probability",
                 "expected_recovery", "model_version", "model_explanation_zh", "model_explanation_en")

_DDL = (
    """CREATE TABLE IF NOT EXISTS leads (
        lead_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, severity VARCHAR NOT NULL, score DOUBLE NOT NULL,
        persons VARCHAR[], practitioners VARCHAR[], institutions VARCHAR[], evidence VARCHAR[],
        evidence_count INTEGER, amount_at_risk DOUBLE, period_start TIMESTAMP, period_end TIMESTAMP,
        explanation_zh VARCHAR, explanation_en VARCHAR, features VARCHAR,
        status VARCHAR NOT NULL DEFAULT 'new', assignee VARCHAR, active BOOLEAN NOT NULL DEFAULT TRUE,
        supersedes VARCHAR[], first_seen TIMESTAMP, last_seen TIMESTAMP, retired_at TIMESTAMP, run_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS lead_history (
        lead_id VARCHAR NOT NULL, "at" TIMESTAMP NOT NULL, "user" VARCHAR, action VARCHAR NOT NULL,
        from_status VARCHAR, to_status VARCHAR, comment VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS lead_notes (
        lead_id VARCHAR NOT NULL, "at" TIMESTAMP NOT NULL, "user" VARCHAR, text VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lead_runs (
        run_id VARCHAR NOT NULL, "at" TIMESTAMP NOT NULL, kinds VARCHAR[], new_leads INTEGER,
        updated_leads INTEGER, retired_leads INTEGER, inherited_leads INTEGER, coverage VARCHAR)""",
)


def lead_summary_columns() -> tuple[str, ...]:
    """Columns of a row returned by `LeadStore.list`."""
    return _SUMMARY_COLUMNS


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value)


class LeadStore:
    """Leads and case decisions in DuckDB tables of the claims store (created on first use)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._ensure_tables()

    # ------------------------------------------------------------------ schema
    def _ensure_tables(self) -> None:
        try:
            for ddl in _DDL:
                self.con.execute(ddl)
            if not self.con.execute("SELECT 1 FROM information_schema.columns WHERE table_name = 'lead_runs' "
                                    "AND column_name = 'coverage'").fetchall():  # a workspace made before it
                self.con.execute("ALTER TABLE lead_runs ADD COLUMN coverage VARCHAR")
            have = {r[0] for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'leads'").fetchall()}
            for name, typ in _ADDED_COLUMNS:
                if name not in have:  # a workspace made before provenance and model scores
                    self.con.execute(f"ALTER TABLE leads ADD COLUMN IF NOT EXISTS {name} {typ}")
        except duckdb.Error as exc:  # a read-only connection cannot create; fine if the tables exist
            have = {r[0] for r in self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name IN "
                "('leads', 'lead_history', 'lead_notes', 'lead_runs')").fetchall()}
            if len(have) < 4:
                raise StoreError(f"lead store: cannot create lead tables ({exc})") from exc

    # ------------------------------------------------------------------ runs
    def save_run(self, leads: list[Lead], kinds: list[str], run_id: str | None = None, retire: bool = True,
                 coverage: dict | None = None, provenance: dict[str, dict] | None = None) -> dict:
        """Store the leads of one detection run over `kinds`; returns counts new/updated/retired/inherited.

        `coverage` (`DetectionRun.coverage_summary()`: abstained institutions and skipped detectors) is kept
        with the run in `lead_runs`.

        Leads of `kinds` that this run did not produce again are retired (kept with their decisions), unless
        `retire` is False (an incremental run over recent data only, e.g. `fraudnet detect --since`).

        `provenance` (kind → {"version", "param_hash"}) defaults to `detector_provenance` of the registry's
        detectors with their default parameters. When a model is trained, the run's leads are re-scored after.
        The reconciliation is planned without writing (`plan_run`) and then committed in one transaction
        (`apply_run`).
        """
        kinds = sorted(set(kinds) | {lead.kind for lead in leads})
        prov = dict(provenance or {})
        for kind in kinds:
            if kind not in prov:
                prov[kind] = detector_provenance(kind)
        plan = plan_run(leads, kinds, self._stored_leads(kinds), self._noted_leads(kinds),
                        run_id=run_id or datetime.now(UTC).strftime("R%Y%m%d%H%M%S-") + uuid.uuid4().hex[:6],
                        now=_now(), retire=retire, provenance=prov, batch_range=_batch_range(self.con),
                        model_version=_current_model_version(self.con))
        self.apply_run(plan, coverage)
        log.info("lead run %s: %s", plan.run_id, plan.counts)
        result = {"run_id": plan.run_id, **plan.counts, "total": len(plan.rows)}
        scored = _rescore(self.con)
        if scored:
            result["model"] = scored
        return result

    def _stored_leads(self, kinds: list[str]) -> dict[str, dict[str, Any]]:
        """The stored leads of `kinds` as `plan_run` reads them (lead id → fields)."""
        existing = self.con.execute(
            "SELECT lead_id, kind, evidence, status, assignee, active, first_seen, score, severity, explanation_en, "
            "amount_at_risk FROM leads WHERE list_contains($kinds, kind)", {"kinds": kinds}).fetchall()
        return {
            r[0]: {"kind": r[1], "evidence": set(_as_list(r[2])), "status": r[3], "assignee": r[4], "active": r[5],
                   "first_seen": r[6], "score": r[7], "severity": r[8], "explanation_en": r[9], "amount": r[10]}
            for r in existing
        }

    def _noted_leads(self, kinds: list[str]) -> set[str]:
        """Ids of the leads of `kinds` that carry notes."""
        return {r[0] for r in self.con.execute(
            "SELECT DISTINCT n.lead_id FROM lead_notes n JOIN leads l USING (lead_id) "
            "WHERE list_contains($kinds, l.kind)", {"kinds": kinds}).fetchall()}

    def apply_run(self, plan: RunPlan, coverage: dict | None = None) -> None:
        """Commit a planned run in one transaction: the leads written (kept snapshot and model scores carried over),
        the retired ones marked, notes handed on to the leads that inherit, history and the `lead_runs` row."""
        run_id, now, gone = plan.run_id, plan.now, plan.gone
        self.con.execute("BEGIN TRANSACTION")
        try:
            if plan.rows:
                self._write_leads(plan.rows)
            if plan.retire_ids:
                self.con.execute(
                    "UPDATE leads SET active = false, retired_at = $now WHERE list_contains($ids, lead_id)",
                    {"now": now, "ids": plan.retire_ids})
                self._history_many([(lid, "system", "retired", gone[lid]["status"], gone[lid]["status"],
                                     f"not produced by run {run_id}") for lid in plan.retire_ids], now)
            history = []
            for new_id, old_id in plan.inherited:
                st = gone[old_id]["status"]
                history.append((new_id, "system", "inherited", None, st, f"supersedes {old_id}"))
                self.con.execute(
                    'INSERT INTO lead_notes SELECT $new, "at", "user", text FROM lead_notes WHERE lead_id = $old',
                    {"new": new_id, "old": old_id})
            history.extend((r["lead_id"], "system", "created", None, "new", f"run {run_id}")
                           for r in plan.rows if r["lead_id"] not in plan.stored and not r["supersedes"])
            history.extend(plan.rescored)
            self._history_many(history, now)
            counts = plan.counts
            self.con.execute(
                "INSERT INTO lead_runs (run_id, \"at\", kinds, new_leads, updated_leads, retired_leads, "
                "inherited_leads, coverage) VALUES ($run_id, $at, $kinds, $n, $u, $r, $i, $c)",
                {"run_id": run_id, "at": now, "kinds": plan.kinds, "n": counts["new"], "u": counts["updated"],
                 "r": counts["retired"], "i": counts["inherited"],
                 "c": None if coverage is None else json.dumps(coverage, ensure_ascii=False, default=_json_default)})
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def _write_leads(self, rows: list[dict[str, Any]]) -> None:
        """Replace the leads of `rows` (inside the caller's transaction), keeping their snapshot as first raised
        and their last model scores."""
        frame = pd.DataFrame(rows, columns=list(_LEAD_COLUMNS) + list(_WRITE_EXTRA))
        for col in ("period_start", "period_end", "first_seen", "last_seen", "retired_at"):
            frame[col] = pd.to_datetime(frame[col])
        self.con.register("_fn_new_leads", frame)
        try:
            kept = ", ".join(_KEPT_COLUMNS)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE _fn_kept AS SELECT lead_id, {kept} FROM leads "
                             "WHERE lead_id IN (SELECT lead_id FROM _fn_new_leads)")
            self.con.execute("DELETE FROM leads WHERE lead_id IN (SELECT lead_id FROM _fn_new_leads)")
            cols = ", ".join(_LEAD_COLUMNS + _WRITE_EXTRA)
            self.con.execute(f"INSERT INTO leads ({cols}) SELECT {cols} FROM _fn_new_leads")
            sets = ", ".join(f"{c} = coalesce(k.{c}, leads.{c})" if c == "raised" else f"{c} = k.{c}"
                             for c in _KEPT_COLUMNS)
            self.con.execute(f"UPDATE leads SET {sets} FROM _fn_kept k WHERE leads.lead_id = k.lead_id")
            self.con.execute("DROP TABLE _fn_kept")
        finally:
            self.con.unregister("_fn_new_leads")

    def _history_many(self, entries: list[tuple], at: datetime) -> None:
        if not entries:
            return
        frame = pd.DataFrame(entries, columns=["lead_id", "user", "action", "from_status", "to_status", "comment"])
        frame.insert(1, "at", pd.Timestamp(at))
        self.con.register("_fn_hist", frame)
        try:
            self.con.execute(
                'INSERT INTO lead_history (lead_id, "at", "user", action, from_status, to_status, comment) '
                "SELECT lead_id, \"at\", \"user\", action, from_status, to_status, comment FROM _fn_hist")
        finally:
            self.con.unregister("_fn_hist")

    # ------------------------------------------------------------------ queries
    def list(self, *, kind: str | None = None, severity: list[str] | None = None, institution: str | None = None,
             person: str | None = None, practitioner: str | None = None, status: str | None = None,
             date_from: date | None = None, date_to: date | None = None, min_amount: float | None = None,
             active_only: bool = True, sort: str = "-priority", offset: int = 0,
             limit: int = 50) -> tuple[list[dict], int]:
        """Leads matching the filters, sorted and paginated; returns (rows, total matching)."""
        ids, total = self.page_ids(kind=kind, severity=severity, institution=institution, person=person,
                                   practitioner=practitioner, status=status, date_from=date_from, date_to=date_to,
                                   min_amount=min_amount, active_only=active_only, sort=sort, offset=offset,
                                   limit=limit)
        rows = self.summaries(ids)
        return [rows[i] for i in ids if i in rows], total

    def page_ids(self, *, kind: str | None = None, severity: list[str] | None = None,
                 institution: str | None = None, person: str | None = None, practitioner: str | None = None,
                 status: str | None = None, date_from: date | None = None, date_to: date | None = None,
                 min_amount: float | None = None, active_only: bool = True, sort: str = "-priority", offset: int = 0,
                 limit: int = 50) -> tuple[list[str], int]:
        """The lead ids of one page of `list` (same filters, order and paging) and the total matching."""
        where, params = self._filters(kind=kind, severity=severity, institution=institution, person=person,
                                      practitioner=practitioner, status=status, date_from=date_from,
                                      date_to=date_to, min_amount=min_amount, active_only=active_only)
        order = self._order(sort)
        self.check_page(offset, limit)
        clause = " AND ".join(where) if where else "TRUE"
        rows = self.con.execute(f"SELECT lead_id, count(*) OVER () FROM leads WHERE {clause} "
                                f"ORDER BY {order}, lead_id LIMIT {limit} OFFSET {offset}", params).fetchall()
        if rows:  # the total rides along on every row of the page
            return [r[0] for r in rows], int(rows[0][1])
        total = self.con.execute(f"SELECT count(*) FROM leads WHERE {clause}", params).fetchone()[0]
        return [], int(total)

    def summaries(self, lead_ids: list[str]) -> dict[str, dict]:
        """lead id → the row `list` gives for it (summary columns), for the ids that exist."""
        if not lead_ids:
            return {}
        cols = ", ".join(_SUMMARY_COLUMNS)
        cur = self.con.execute(f"SELECT {cols} FROM leads WHERE lead_id IN (SELECT unnest($ids::VARCHAR[]))",
                               {"ids": list(lead_ids)})
        return {r[0]: self._row(_SUMMARY_COLUMNS, r) for r in cur.fetchall()}

    def all_leads(self, active_only: bool = True) -> list[dict]:
        """Every lead with all stored fields (features parsed), highest score first — for syncs and exports."""
        cols = ", ".join(_LEAD_COLUMNS)
        cur = self.con.execute(f"SELECT {cols} FROM leads WHERE active OR NOT $a ORDER BY score DESC, lead_id",
                               {"a": active_only})
        out = []
        for r in cur.fetchall():
            row = self._row(_LEAD_COLUMNS, r)
            row["features"] = json.loads(row["features"]) if row["features"] else {}
            out.append(row)
        return out

    def kinds(self, active_only: bool = True) -> list[dict]:
        """Lead counts per kind and severity."""
        cur = self.con.execute(
            "SELECT kind, count(*), count(*) FILTER (severity = 'red'), count(*) FILTER (severity = 'orange'), "
            "count(*) FILTER (severity = 'yellow') FROM leads WHERE active OR NOT $a GROUP BY kind ORDER BY kind",
            {"a": active_only})
        return [{"kind": k, "count": n, "red": r, "orange": o, "yellow": y} for k, n, r, o, y in cur.fetchall()]

    def get(self, lead_id: str) -> dict | None:
        """One lead with all fields, parsed features, status, assignee, notes and history; None if unknown."""
        cols = ", ".join(_LEAD_COLUMNS + _DETAIL_COLUMNS)
        row = self.con.execute(f"SELECT {cols} FROM leads WHERE lead_id = $id", {"id": lead_id}).fetchone()
        if row is None:
            return None
        lead = self._row(_LEAD_COLUMNS + _DETAIL_COLUMNS, row)
        lead["features"] = json.loads(lead["features"]) if lead["features"] else {}
        lead["raised"] = json.loads(lead["raised"]) if lead.get("raised") else None
        lead["provenance_zh"], lead["provenance_en"] = provenance_text(lead)
        lead["notes"] = [
            {"user": u, "text": t, "at": at}
            for at, u, t in self.con.execute(
                'SELECT "at", "user", text FROM lead_notes WHERE lead_id = $id ORDER BY "at", rowid',
                {"id": lead_id}).fetchall()
        ]
        lead["history"] = [
            {"user": u, "at": at, "action": a, "from": f, "to": t, "comment": c}
            for at, u, a, f, t, c in self.con.execute(
                'SELECT "at", "user", action, from_status, to_status, comment FROM lead_history '
                "WHERE lead_id = $id ORDER BY \"at\", rowid", {"id": lead_id}).fetchall()
        ]
        return lead

    def set_status(self, lead_id: str, status: str, user: str, comment: str | None = None) -> dict:
        """Move a lead along its lifecycle (new → reviewing → confirmed | dismissed | referred; reopen)."""
        if status not in STATUSES:
            raise InvalidRequestError(f"status {status!r} is not one of {', '.join(STATUSES)}", field="status")
        current = self._current(lead_id)["status"]
        if status not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(TRANSITIONS[current]))
            raise InvalidRequestError(
                f"lead {lead_id}: cannot change status from {current!r} to {status!r} (allowed: {allowed})",
                field="status")
        now = _now()
        self.con.execute("UPDATE leads SET status = $s WHERE lead_id = $id", {"s": status, "id": lead_id})
        self._history_many([(lead_id, user, "status", current, status, comment)], now)
        return self.get(lead_id) or {}

    def assign(self, lead_id: str, assignee: str | None, user: str) -> dict:
        """Set (or clear, with None) the investigator a lead is assigned to."""
        info = self._current(lead_id)
        if assignee is not None and not str(assignee).strip():
            raise InvalidRequestError("assignee must be a non-empty user name or null", field="assignee")
        now = _now()
        self.con.execute("UPDATE leads SET assignee = $a WHERE lead_id = $id", {"a": assignee, "id": lead_id})
        self._history_many([(lead_id, user, "assign", info["status"], info["status"],
                             f"assignee {info['assignee'] or '-'} → {assignee or '-'}")], now)
        return self.get(lead_id) or {}

    def add_note(self, lead_id: str, text: str, user: str) -> dict:
        """Append a note to a lead (notes are never edited or deleted)."""
        info = self._current(lead_id)
        if not text or not str(text).strip():
            raise InvalidRequestError("note text must not be empty", field="text")
        now = _now()
        self.con.execute("INSERT INTO lead_notes VALUES ($id, $at, $u, $t)",
                         {"id": lead_id, "at": now, "u": user, "t": text})
        self._history_many([(lead_id, user, "note", info["status"], info["status"], None)], now)
        return self.get(lead_id) or {}

    def leads_for_entity(self, entity_type: str, entity_id: str) -> list[dict]:
        """Active leads involving a person, practitioner or institution/pharmacy, highest score first."""
        column = _entity_column(entity_type)
        cols = ", ".join(_SUMMARY_COLUMNS)
        cur = self.con.execute(
            f"SELECT {cols} FROM leads WHERE active AND list_contains({column}, $e) ORDER BY score DESC, lead_id",
            {"e": entity_id})
        return [self._row(_SUMMARY_COLUMNS, r) for r in cur.fetchall()]

    def entity_scores(self) -> pd.DataFrame:
        """Entity risk from active, not dismissed leads: entity_type, entity_id, score, leads, amount_at_risk,
        top_kinds (see `fraudnet.detectors.risk`); once a model has scored the store, beside it the model's
        `model_probability`, `expected_recovery` (probability × amount at risk) and `model_explanation_zh/en`."""
        from fraudnet.detectors.risk import entity_risk

        risk = entity_risk(self.con)
        has_model = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'model_scores'").fetchone()[0]
        if not has_model:  # no model has scored this store (`fraudnet.learning.scoring` writes the table)
            return risk
        model = self.con.execute(
            "SELECT entity_type, entity_id, probability AS model_probability, expected_recovery, "
            "explanation_zh AS model_explanation_zh, explanation_en AS model_explanation_en FROM model_scores").df()
        return risk.merge(model, on=["entity_type", "entity_id"], how="left") if not model.empty else risk

    # ------------------------------------------------------------------ helpers
    def _current(self, lead_id: str) -> dict:
        row = self.con.execute("SELECT status, assignee FROM leads WHERE lead_id = $id", {"id": lead_id}).fetchone()
        if row is None:
            raise NotFoundError(f"lead {lead_id!r} not found")
        return {"status": row[0], "assignee": row[1]}

    @staticmethod
    def _row(columns: tuple[str, ...], values: tuple) -> dict:
        out = dict(zip(columns, values, strict=True))
        for key in ("persons", "practitioners", "institutions", "evidence", "supersedes"):
            if key in out:
                out[key] = _as_list(out[key])
        return out

    @staticmethod
    def check_page(offset: int, limit: int) -> None:
        if not isinstance(offset, int) or offset < 0:
            raise InvalidRequestError(f"offset must be a non-negative integer, got {offset!r}", field="offset")
        if not isinstance(limit, int) or limit < 1 or limit > MAX_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}, got {limit!r}", field="limit")

    @staticmethod
    def _order(sort: str) -> str:
        if not isinstance(sort, str) or not sort:
            raise InvalidRequestError(f"sort must be one of {', '.join(SORT_KEYS)} (prefix - for descending)",
                                      field="sort")
        desc = sort.startswith("-")
        key = sort.lstrip("+-")
        if key not in SORT_KEYS:
            raise InvalidRequestError(
                f"sort key {key!r} is not one of {', '.join(SORT_KEYS)} (prefix - for descending)", field="sort")
        return f"{SORT_KEYS[key]} {'DESC' if desc else 'ASC'} NULLS LAST"

    @staticmethod
    def _filters(*, kind, severity, institution, person, practitioner, status, date_from, date_to, min_amount,
                 active_only) -> tuple[list[str], dict[str, Any]]:
        where: list[str] = []
        params: dict[str, Any] = {}
        if active_only:
            where.append("active")
        if kind:
            where.append("kind = $kind")
            params["kind"] = kind
        if severity:
            if isinstance(severity, str):
                severity = [s for s in severity.split(",") if s]
            bad = [s for s in severity if s not in SEVERITIES]
            if bad:
                raise InvalidRequestError(f"severity {bad[0]!r} is not one of {', '.join(SEVERITIES)}",
                                          field="severity")
            where.append("list_contains($severity, severity)")
            params["severity"] = list(severity)
        for name, value, column in (("institution", institution, "institutions"), ("person", person, "persons"),
                                    ("practitioner", practitioner, "practitioners")):
            if value:
                where.append(f"list_contains({column}, ${name})")
                params[name] = value
        if status:
            if status not in STATUSES:
                raise InvalidRequestError(f"status {status!r} is not one of {', '.join(STATUSES)}", field="status")
            where.append("status = $status")
            params["status"] = status
        start = _to_datetime(date_from, "date_from", end=False)
        end = _to_datetime(date_to, "date_to", end=True)
        if start and end and start > end:
            raise InvalidRequestError(f"date_from {date_from} is after date_to {date_to}", field="date_from")
        if start:
            where.append("coalesce(period_end, period_start) >= $date_from")
            params["date_from"] = start
        if end:
            where.append("coalesce(period_start, period_end) <= $date_to")
            params["date_to"] = end
        if min_amount is not None:
            try:
                amount = float(min_amount)
            except (TypeError, ValueError) as exc:
                raise InvalidRequestError(f"min_amount {min_amount!r} is not a number", field="min_amount") from exc
            if amount != amount or amount < 0:
                raise InvalidRequestError(f"min_amount {min_amount!r} must be ≥ 0", field="min_amount")
            where.append("amount_at_risk >= $min_amount")
            params["min_amount"] = amount
        return where, params


def _entity_column(entity_type: str) -> str:
    t = (entity_type or "").lower()
    if t in ("person", "persons", "psn"):
        return "persons"
    if t in ("practitioner", "practitioners", "prac"):
        return "practitioners"
    if t in ("institution", "institutions", "pharmacy", "pharmacies", "medins"):
        return "institutions"
    raise InvalidRequestError(
        f"entity_type {entity_type!r} is not one of Person, Practitioner, Institution, Pharmacy", field="entity_type")


def _to_datetime(value: Any, field: str, *, end: bool) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time.max if end else time.min)
    if isinstance(value, str):
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            try:
                return datetime.fromisoformat(value)
            except ValueError as exc:
                raise InvalidRequestError(f"{field} {value!r} is not a date (yyyy-mm-dd)", field=field) from exc
        return datetime.combine(parsed, time.max if end else time.min)
    raise InvalidRequestError(f"{field} {value!r} is not a date (yyyy-mm-dd)", field=field)


_INDEX_COLUMNS = ("lead_id", "kind", "severity", "score", "amount_at_risk", "period_start", "period_end", "status",
                  "persons", "institutions", "practitioners", "expected_recovery", "model_probability")
# Sort key → `LeadIndex` row field: SORT_KEYS' column, or the severity rank its CASE expression computes.
_SORT_COLUMN = {key: {"severity": "severity_rank", "priority": "priority"}.get(key, column)
                for key, column in SORT_KEYS.items()}


class LeadIndex:
    """The active leads' filter and sort columns in memory, answering `LeadStore.page_ids` without a query.

    A lead queue is small (hundreds to tens of thousands of leads), but a DuckDB query costs its caller a few
    interpreter-lock round trips; in a busy API server each waits for the lock, so a new filter took ≈ 20 ms
    instead of 1. Same filters, validation, order (NULLS LAST, then lead id) and paging as the SQL (a test
    compares both); build a new index whenever the leads or decisions change.
    """

    def __init__(self, con: Any) -> None:
        cur = con.execute(f"SELECT {', '.join(_INDEX_COLUMNS)} FROM leads WHERE active ORDER BY lead_id")
        self._rows = [dict(zip(_INDEX_COLUMNS, r, strict=True)) for r in cur.fetchall()]
        for row in self._rows:
            for key in ("persons", "institutions", "practitioners"):
                row[key] = frozenset(row[key] or ())
            row["severity_rank"] = SEVERITY_RANK.get(row["severity"], 1)
            row["priority"] = row["expected_recovery"] if row["expected_recovery"] is not None else row["score"]

    def __len__(self) -> int:
        return len(self._rows)

    def page_ids(self, *, kind: str | None = None, severity: list[str] | None = None,
                 institution: str | None = None, person: str | None = None, practitioner: str | None = None,
                 status: str | None = None, date_from: date | None = None, date_to: date | None = None,
                 min_amount: float | None = None, sort: str = "-priority", offset: int = 0,
                 limit: int = 50) -> tuple[list[str], int]:
        """`LeadStore.page_ids(…, active_only=True)` answered from memory."""
        _, params = LeadStore._filters(kind=kind, severity=severity, institution=institution, person=person,
                                       practitioner=practitioner, status=status, date_from=date_from,
                                       date_to=date_to, min_amount=min_amount, active_only=True)
        LeadStore._order(sort)
        LeadStore.check_page(offset, limit)
        rows = [r for r in self._rows if _matches(r, params)]
        column = _SORT_COLUMN[sort.lstrip("+-")]
        # Rows are in lead id order; a stable sort (stable also when reversed) keeps it among equal keys.
        present = [r for r in rows if r[column] is not None]
        present.sort(key=lambda r: _sort_value(r[column]), reverse=sort.startswith("-"))
        ordered = present + [r for r in rows if r[column] is None]
        return [r["lead_id"] for r in ordered[offset:offset + limit]], len(rows)


def _sort_value(value: Any) -> Any:
    """DuckDB orders NaN above every number; Python cannot sort NaN at all."""
    if isinstance(value, float):
        return (1, 0.0) if value != value else (0, value)
    return value


def _matches(row: dict, params: dict[str, Any]) -> bool:
    """`LeadStore._filters`' WHERE clause for one row (a comparison with NULL fails, as in SQL)."""
    if "kind" in params and row["kind"] != params["kind"]:
        return False
    if "severity" in params and row["severity"] not in params["severity"]:
        return False
    for name, column in (("institution", "institutions"), ("person", "persons"), ("practitioner", "practitioners")):
        if name in params and params[name] not in row[column]:
            return False
    if "status" in params and row["status"] != params["status"]:
        return False
    if "date_from" in params:
        end = row["period_end"] if row["period_end"] is not None else row["period_start"]
        if end is None or end < params["date_from"]:
            return False
    if "date_to" in params:
        start = row["period_start"] if row["period_start"] is not None else row["period_end"]
        if start is None or start > params["date_to"]:
            return False
    if "min_amount" in params:
        amount = row["amount_at_risk"]
        if amount is None or (amount == amount and amount < params["min_amount"]):
            return False
    return True


_WRITE_EXTRA = ("detector_version", "param_hash", "batch_from", "batch_to", "raised")


@dataclass
class RunPlan:
    """What one detection run changes in the lead store, worked out before anything is written (`plan_run`)."""

    run_id: str
    now: datetime
    kinds: list[str]
    stored: dict[str, dict[str, Any]]  # the stored leads of `kinds` before the run (lead id → fields)
    gone: dict[str, dict[str, Any]]  # stored leads the run did not produce again
    rows: list[dict[str, Any]] = field(default_factory=list)  # lead rows to write
    rescored: list[tuple] = field(default_factory=list)  # history entries of decided leads whose figures changed
    inherited: list[tuple[str, str]] = field(default_factory=list)  # (new lead, old lead it supersedes)
    retire_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"new": 0, "updated": 0, "retired": 0, "inherited": 0,
                                                            "covered": 0})


def plan_run(leads: list[Lead], kinds: list[str], stored: dict[str, dict[str, Any]], noted: set[str], *,
             run_id: str, now: datetime, retire: bool, provenance: dict[str, dict],
             batch_range: tuple[int | None, int | None], model_version: str | None) -> RunPlan:
    """The reconciliation of one run's `leads` over `kinds` with the `stored` leads of those kinds (`noted`: ids of
    those with notes), without I/O: which rows are written with which status, which old leads retire, which new
    lead inherits an old one's decision, and the history entries that say so (see `LeadStore.save_run`)."""
    by_id: dict[str, Lead] = {}
    for lead in leads:
        if lead.kind in kinds:
            by_id[lead.lead_id] = lead  # the same evidence twice in one run is one lead
    new_ids = set(by_id)
    # Old leads not produced again: retired now (or earlier) and candidates to hand their decisions on.
    gone = {lid: info for lid, info in stored.items() if lid not in new_ids}
    plan = RunPlan(run_id=run_id, now=now, kinds=kinds, stored=stored, gone=gone)
    if not retire:
        _drop_covered(by_id, stored, new_ids, plan.counts)
    heirs = _heir_index(gone, noted)
    claimed: set[str] = set()
    for lid, lead in by_id.items():
        prev = stored.get(lid)
        if prev is not None:
            status, assignee, supersedes, first_seen = prev["status"], prev["assignee"], [], prev["first_seen"] or now
            plan.counts["updated"] += 1
            entry = _rescored_entry(lid, prev, lead, run_id)
            if entry is not None:
                plan.rescored.append(entry)
        else:
            status, assignee, supersedes, first_seen = "new", None, [], now
            plan.counts["new"] += 1
            best = _best_predecessor(lead, heirs, gone)
            if best is not None and best not in claimed:
                claimed.add(best)
                status, assignee, supersedes = gone[best]["status"], gone[best]["assignee"], [best]
                plan.inherited.append((lid, best))
                plan.counts["inherited"] += 1
        plan.rows.append(_lead_row(lead, status, assignee, supersedes, first_seen, now, run_id,
                                   provenance.get(lead.kind) or {}, batch_range, model_version))
    plan.retire_ids = [lid for lid, info in gone.items() if info["active"]] if retire else []
    plan.counts["retired"] = len(plan.retire_ids)
    return plan


def _drop_covered(by_id: dict[str, Lead], stored: dict[str, dict[str, Any]], new_ids: set[str],
                  counts: dict[str, int]) -> None:
    """An incremental run sees part of the evidence: a lead whose evidence an active lead of the same kind already
    holds adds nothing and is not stored twice (removed from `by_id`, counted as covered)."""
    active_index: dict[tuple[str, str], set[str]] = defaultdict(set)
    for oid, info in stored.items():
        if info["active"] and oid not in new_ids:
            for ev in info["evidence"]:
                active_index[(info["kind"], ev)].add(oid)
    for lid in [lid for lid in by_id if lid not in stored]:
        lead = by_id[lid]
        holders = [active_index.get((lead.kind, ev), set()) for ev in lead.evidence]
        if holders and set.intersection(*holders):
            del by_id[lid]
            counts["covered"] += 1


def _heir_index(gone: dict[str, dict[str, Any]], noted: set[str]) -> dict[tuple[str, str], list[str]]:
    """(kind, evidence visit) → old leads holding it whose decision a new lead may inherit (under review or
    decided, assigned or noted)."""
    index: dict[tuple[str, str], list[str]] = defaultdict(list)
    for lid, info in gone.items():
        if info["status"] != "new" or info["assignee"] or lid in noted:
            for ev in info["evidence"]:
                index[(info["kind"], ev)].append(lid)
    return index


def _best_predecessor(lead: Lead, heirs: dict[tuple[str, str], list[str]],
                      gone: dict[str, dict[str, Any]]) -> str | None:
    """The old lead sharing the most of `lead`'s evidence (at least `INHERIT_OVERLAP` of either), or None."""
    shared: dict[str, int] = defaultdict(int)
    for ev in lead.evidence:
        for old_id in heirs.get((lead.kind, ev), ()):
            shared[old_id] += 1
    best, best_overlap = None, 0.0
    for old_id, n in shared.items():
        overlap = max(n / max(1, len(lead.evidence)), n / max(1, len(gone[old_id]["evidence"])))
        if overlap >= INHERIT_OVERLAP and (overlap, old_id) > (best_overlap, best or ""):
            best, best_overlap = old_id, overlap
    return best


def _rescored_entry(lid: str, prev: dict[str, Any], lead: Lead, run_id: str) -> tuple | None:
    """The history entry of a lead under review or decided whose figures this run changed (None otherwise)."""
    status = prev["status"]
    changed = (round(float(prev["score"] or 0), 4) != round(float(lead.score), 4)
               or prev["explanation_en"] != lead.explanation_en
               or round(float(prev["amount"] or 0), 2) != round(float(lead.amount_at_risk), 2))
    if status == "new" or not changed:
        return None
    return (lid, "system", "rescored", status, status,
            f"run {run_id}: score {float(prev['score'] or 0):.3f} → {lead.score:.3f}, "
            f"amount {float(prev['amount'] or 0):,.2f} → {lead.amount_at_risk:,.2f}"
            + ("; explanation changed" if prev["explanation_en"] != lead.explanation_en else "")
            + "; the lead as raised is kept (raised)")


def _lead_row(lead: Lead, status: str, assignee: str | None, supersedes: list[str], first_seen: Any,
              now: datetime, run_id: str, prov: dict, batch_range: tuple[int | None, int | None],
              model_version: str | None) -> dict[str, Any]:
    """The `leads` row of one lead of the run, with its provenance and the snapshot as raised."""
    batch_from, batch_to = batch_range
    raised = {
        "at": now, "run_id": run_id, "detector": lead.kind, "detector_version": prov.get("version"),
        "param_hash": prov.get("param_hash"), "model_version": model_version, "batch_from": batch_from,
        "batch_to": batch_to, "score": float(lead.score), "severity": lead.severity,
        "amount_at_risk": float(lead.amount_at_risk), "evidence_count": len(lead.evidence),
        "explanation_zh": lead.explanation_zh, "explanation_en": lead.explanation_en,
        "features": lead.features,
    }
    return {
        "lead_id": lead.lead_id, "kind": lead.kind, "severity": lead.severity, "score": float(lead.score),
        "persons": list(lead.persons), "practitioners": list(lead.practitioners),
        "institutions": list(lead.institutions), "evidence": list(lead.evidence),
        "evidence_count": len(lead.evidence), "amount_at_risk": float(lead.amount_at_risk),
        "period_start": lead.period_start, "period_end": lead.period_end,
        "explanation_zh": lead.explanation_zh, "explanation_en": lead.explanation_en,
        "features": json.dumps(lead.features, ensure_ascii=False, default=_json_default),
        "status": status, "assignee": assignee, "active": True, "supersedes": supersedes,
        "first_seen": first_seen, "last_seen": now, "retired_at": None, "run_id": run_id,
        "detector_version": prov.get("version"), "param_hash": prov.get("param_hash"), "batch_from": batch_from,
        "batch_to": batch_to,
        "raised": json.dumps(raised, ensure_ascii=False, default=_json_default),
    }
_PROVENANCE_CACHE: dict[str, dict[str, str | None]] = {}


def detector_provenance(kind: str) -> dict[str, str | None]:
    """The version and parameter hash of the registry's detector of `kind` with its default parameters.

    The version is the detector's own `version` attribute when it declares one, else fraudnet's version plus a
    hash of the detector module's source (any code change gives a new version); the parameter hash covers the
    public attributes its `__init__` set. Unknown kinds give None for both.
    """
    if kind in _PROVENANCE_CACHE:
        return _PROVENANCE_CACHE[kind]
    import hashlib
    import inspect

    from fraudnet import __version__

    try:
        from fraudnet.detectors.registry import make_detector

        det = make_detector(kind)
    except Exception:  # a kind outside the registry (tests, imports): no provenance to state
        _PROVENANCE_CACHE[kind] = {"version": None, "param_hash": None}
        return _PROVENANCE_CACHE[kind]
    version = getattr(det, "version", None)
    if not version:
        try:
            source = inspect.getsource(inspect.getmodule(type(det)))
            version = f"{__version__}+{hashlib.sha1(source.encode()).hexdigest()[:8]}"
        except (OSError, TypeError):
            version = __version__
    params = {k: v for k, v in sorted(vars(det).items()) if not k.startswith("_")}
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    _PROVENANCE_CACHE[kind] = {"version": str(version), "param_hash": digest}
    return _PROVENANCE_CACHE[kind]


def _batch_range(con: duckdb.DuckDBPyConnection) -> tuple[int | None, int | None]:
    try:
        row = con.execute("SELECT min(batch_id), max(batch_id) FROM ingest_batches WHERE status = 'loaded'"
                          ).fetchone()
    except duckdb.Error:  # a lead store without the claims tables (tests)
        return None, None
    return (row[0], row[1]) if row else (None, None)


def _current_model_version(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        from fraudnet.learning.model import current_version
        from fraudnet.learning.scoring import workspace_of

        ws = workspace_of(con)
        return current_version(ws) if ws else None
    except Exception:  # no model support or an unreadable models folder: leads are raised without one
        log.debug("no model version", exc_info=True)
        return None


def _rescore(con: duckdb.DuckDBPyConnection) -> dict | None:
    """Re-score leads with the current model after a run (None when no model is trained)."""
    if _current_model_version(con) is None:
        return None
    try:
        from fraudnet.learning.scoring import rescore

        return rescore(con)
    except Exception as exc:  # the run's leads are stored; a failed re-score must not lose them
        log.warning("re-scoring leads with the model failed: %s", exc)
        return None


def provenance_text(lead: dict) -> tuple[str, str]:
    """'raised 2026-03-02 by collusion_ring 1.3 with params …; now …' in Chinese and English."""
    r = lead.get("raised") or {}
    if not r:
        return "", ""
    at = str(r.get("at") or "")[:10]
    ver = r.get("detector_version") or "?"
    ph = r.get("param_hash") or "?"
    batches = f"{r.get('batch_from')}–{r.get('batch_to')}" if r.get("batch_from") is not None else "?"
    model = r.get("model_version") or lead.get("raised_model_version")
    en = (f"raised {at} by {r.get('detector')} {ver} with params {ph} on data batches {batches}"
          f"{f' (model {model})' if model else ''}: score {float(r.get('score') or 0):.2f} ({r.get('severity')}), "
          f"amount {float(r.get('amount_at_risk') or 0):,.2f}, {r.get('evidence_count')} evidence items; "
          f"now: score {float(lead.get('score') or 0):.2f} ({lead.get('severity')}), amount "
          f"{float(lead.get('amount_at_risk') or 0):,.2f}, by {lead.get('detector_version') or '?'} on batches "
          f"{lead.get('batch_from')}–{lead.get('batch_to')}")
    zh = (f"{at} 由 {r.get('detector')} {ver}（参数 {ph}，数据批次 {batches}"
          f"{f'，模型 {model}' if model else ''}）提出：评分 {float(r.get('score') or 0):.2f}（{r.get('severity')}），"
          f"涉嫌金额 {float(r.get('amount_at_risk') or 0):,.2f} 元，证据 {r.get('evidence_count')} 条；"
          f"现在：评分 {float(lead.get('score') or 0):.2f}（{lead.get('severity')}），涉嫌金额 "
          f"{float(lead.get('amount_at_risk') or 0):,.2f} 元")
    if lead.get("model_probability") is not None:
        p, er = lead["model_probability"], lead.get("expected_recovery") or 0.0
        en += f"; model probability {p:.2f}, expected recovery {er:,.2f}"
        zh += f"；模型违规概率 {p:.2f}，预期追回 {er:,.2f} 元"
    return zh, en
