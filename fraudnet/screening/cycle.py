"""One screening cycle over a drop folder: ingest what is new, screen, reconcile leads, report and notify.

`screen_folder` is called by `fraudnet watch` (which opens the store for the cycle only) and by the server's
watcher (`fraudnet serve --watch`, as a job of the server, the single writer of the workspace)."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudnet.screening.clock import response_clock, utc_now
from fraudnet.screening.incremental import pending_batches, record_detection
from fraudnet.screening.notify import notify
from fraudnet.screening.runs import RunStore
from fraudnet.screening.settings import ScreeningSettings

__all__ = ["screen_folder", "alerting_leads", "new_alerts"]

log = logging.getLogger(__name__)

_RANK = {"red": 2, "orange": 1}


@contextlib.contextmanager
def _no_lock() -> Iterator[None]:
    yield


def alerting_leads(con: Any) -> dict[str, dict[str, Any]]:
    """Active red and orange leads: id → kind, severity, institutions, amount, status, first seen, supersedes."""
    rows = con.execute(
        "SELECT lead_id, kind, severity, score, institutions, amount_at_risk, status, first_seen, supersedes "
        "FROM leads WHERE active AND severity IN ('red', 'orange')").fetchall()
    keys = ("lead_id", "kind", "severity", "score", "institutions", "amount_at_risk", "status", "first_seen",
            "supersedes")
    return {r[0]: dict(zip(keys, r, strict=True)) for r in rows}


def _severity_of(con: Any, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    return dict(con.execute("SELECT lead_id, severity FROM leads WHERE list_contains($ids, lead_id)",
                            {"ids": ids}).fetchall())


def new_alerts(con: Any, before: dict[str, str], response_hours: float) -> dict[str, Any]:
    """Red and orange leads raised since `before` (id → severity of the alerting leads then): leads not alerting at
    that level before, nor superseding a lead that was (new evidence on a known warning is not a new warning)."""
    now = utc_now()
    after = alerting_leads(con)
    predecessors = _severity_of(con, sorted({p for lead in after.values() for p in (lead["supersedes"] or [])}))
    fresh: list[dict[str, Any]] = []
    for lid, lead in after.items():
        rank = _RANK[lead["severity"]]
        if _RANK.get(before.get(lid, ""), 0) >= rank:
            continue
        if any(_RANK.get(before.get(p) or predecessors.get(p, ""), 0) >= rank for p in lead["supersedes"] or []):
            continue
        fresh.append(lead | response_clock(lead, response_hours, now))
    fresh.sort(key=lambda d: (-_RANK[d["severity"]], -float(d["amount_at_risk"] or 0), d["lead_id"]))
    by_kind: dict[str, Counter] = defaultdict(Counter)
    by_inst: dict[str, Counter] = defaultdict(Counter)
    for lead in fresh:
        by_kind[lead["kind"]][lead["severity"]] += 1
        for inst in lead["institutions"] or []:
            by_inst[inst][lead["severity"]] += 1
    return {
        "red": sum(1 for d in fresh if d["severity"] == "red"),
        "orange": sum(1 for d in fresh if d["severity"] == "orange"),
        "by_kind": {k: {"red": c["red"], "orange": c["orange"]} for k, c in sorted(by_kind.items())},
        "by_institution": {k: {"red": c["red"], "orange": c["orange"]} for k, c in sorted(by_inst.items())},
        "red_leads": [{k: lead[k] for k in ("lead_id", "kind", "severity", "score", "institutions", "amount_at_risk",
                                            "status", "first_seen", "response_due_at", "overdue")}
                      for lead in fresh if lead["severity"] == "red"],
    }


def _latest_visit(con: Any) -> Any:
    return con.execute("SELECT max(begntime) FROM mdtrt").fetchall()[0][0]


def _ingest_part(report: Any) -> dict[str, Any]:
    files = [{"file": f.file_name, "table": f.table, "status": f.status, "rows_read": f.rows_read,
              "rows_loaded": f.rows_loaded, "rows_updated": f.rows_updated, "rows_rejected": f.rows_rejected,
              "rows_already_present": f.rows_already_present, "quarantine_rows": f.quarantine_rows,
              "message": f.message}
             for f in report.files]
    return {"ok": bool(report.ok), "files": files,
            "files_loaded": sum(1 for f in report.files if f.status == "loaded"),
            "files_already_ingested": sum(1 for f in report.files if f.status == "already_ingested"),
            "rows_loaded": sum(int(f.rows_loaded or 0) + int(f.rows_updated or 0) for f in report.files),
            "rows_quarantined": sum(int(f.rows_rejected or 0) for f in report.files),
            "unrecognised_files": list(report.unrecognised_files), "errors": list(report.errors),
            "seconds": round(float(report.seconds), 2)}


def screen_folder(store: Any, folder: Path, screening: ScreeningSettings, *, trigger: str = "manual",
                  write_lock: Callable[[], contextlib.AbstractContextManager] | None = None,
                  leads_changed: Callable[[], None] | None = None,
                  graph_sync: Callable[[Any, bool], dict[str, Any]] | None = None,
                  send: bool = True, incremental: bool = True) -> dict[str, Any]:
    """Run one screening cycle of `folder` on the open read-write claims `store`; returns the run report, which is
    also stored (`RunStore`).

    Files already ingested are skipped (same sha256). Detection runs when batches were loaded since its watermark
    (see `fraudnet.screening.incremental`), over every detector, and the leads are saved under `write_lock` (the
    server's write lock; `leads_changed` is then called). Detectors keeping partial aggregates
    (`fraudnet.detectors.incremental`) work from their stored parts plus the new visits when the new batches are a
    pure append (`incremental`; False forces the full path); the report says which path ran and why.
    `graph_sync(store, data_changed)` brings the graph store (Neo4j) up to date and returns what it did. New red
    leads are notified (`send`) per `screening`.
    """
    from fraudnet.claims.leads import LeadStore
    from fraudnet.detectors.incremental import IncrementalRunner, IncrementPlan, plan_increment
    from fraudnet.detectors.registry import run_detectors
    from fraudnet.ingest.pipeline import ingest_folder

    lock = write_lock or _no_lock
    con = store.con
    started = utc_now()
    t0 = time.perf_counter()
    run_id = "S" + datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]
    report: dict[str, Any] = {"run_id": run_id, "trigger": trigger, "folder": str(folder), "started_at": started,
                              "status": "running"}
    LeadStore(con)  # lead tables on a fresh workspace
    before = {lid: lead["severity"] for lid, lead in alerting_leads(con).items()}
    try:
        if Path(folder).is_dir():
            ingested = ingest_folder(Path(folder), store)
            report["ingest"] = _ingest_part(ingested)
        else:
            report["ingest"] = {"ok": False, "files": [], "errors": [f"{folder}: not a folder / 不是文件夹"],
                                "rows_loaded": 0, "rows_quarantined": 0}
        pending = [b for b in pending_batches(con) if b["rows"] > 0]
        detection: dict[str, Any] = {"ran": False, "pending_batches": len(pending)}
        if not pending:
            detection["reason"] = "nothing new since the last screening / 自上次筛查以来无新数据"
        else:
            t1 = time.perf_counter()
            plan = plan_increment(con)
            if not incremental:
                plan = IncrementPlan(False, "incremental detection turned off / 已关闭增量检测",
                                     latest_batch=plan.latest_batch)
            runner = IncrementalRunner(con, plan)
            run = run_detectors(con, incremental=runner)
            kinds = [k for k in run.kinds if k not in run.errors]
            with lock():
                try:
                    saved = LeadStore(con).save_run(list(run), kinds, coverage=run.coverage_summary())
                    runner.save(_latest_visit(con))
                    record_detection(con)
                finally:
                    if leads_changed:
                        leads_changed()
            detection.update({"ran": True, "leads": len(run), "saved": saved, "errors": dict(run.errors),
                              "detectors_seconds": round(run.seconds, 2),
                              "seconds": round(time.perf_counter() - t1, 2),
                              "path": "incremental" if plan.incremental else "full",
                              "state_saved": runner.saved,
                              "path_reason": plan.reason,
                              "incremental": run.incremental,
                              "full_detectors": [k for k in run.kinds if run.incremental.get(k, {}).get("path")
                                                 != "incremental"],
                              "timings": dict(run.timings)})
        report["detection"] = detection
        if graph_sync is not None:
            try:
                report["graph"] = graph_sync(store, bool(pending))
            except Exception as exc:  # noqa: BLE001 - the leads are saved; a graph store down must not lose the run
                log.exception("graph sync after screening failed")
                report["graph"] = {"error": f"{type(exc).__name__}: {exc}"}
        report["new_leads"] = new_alerts(con, before, screening.response_hours)
        ok = report["ingest"].get("ok", False) and not detection.get("errors")
        report["status"] = "ok" if ok else "failed"
    except Exception as exc:
        log.exception("screening run %s failed", run_id)
        report["status"] = "failed"
        report.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
        report.setdefault("new_leads", {"red": 0, "orange": 0, "by_kind": {}, "by_institution": {}, "red_leads": []})
    report["finished_at"] = utc_now()
    report["seconds"] = round(time.perf_counter() - t0, 2)
    report["notifications"] = notify(screening, report) if send else {}
    with lock():
        RunStore(con).save(report)
    log.info("screening run %s: %s, %d new red, %d new orange in %.1f s", run_id, report["status"],
             report["new_leads"]["red"], report["new_leads"]["orange"], report["seconds"])
    return report
