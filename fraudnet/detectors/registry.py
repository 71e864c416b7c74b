"""Every detector by kind, and `run_detectors`: one screening run over the claims store with per-detector timings
and what each detector left out because the data does not support it."""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fraudnet.detectors.base import Lead
from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.coverage import key_institutions, measure_coverage
from fraudnet.detectors.peer_anomaly import PeerAnomalyDetector
from fraudnet.detectors.rules import RULE_DETECTORS
from fraudnet.errors import InvalidRequestError

__all__ = ["DETECTORS", "KINDS", "DetectionRun", "make_detector", "resolve_kinds", "run_detectors"]

log = logging.getLogger(__name__)


def _graph_detectors() -> dict[str, Callable[[], Any]]:
    from fraudnet.detectors.card_skimming import CardSkimmingDetector
    from fraudnet.detectors.collusion_ring import CollusionRingDetector
    from fraudnet.detectors.drug_resale import DrugResaleDetector

    return {"collusion_ring": CollusionRingDetector, "card_skimming": CardSkimmingDetector,
            "drug_resale": DrugResaleDetector}


# kind → factory of a detector with its default parameters, in run order (graph detectors first).
DETECTORS: dict[str, Callable[[], Any]] = {
    **_graph_detectors(),
    **RULE_DETECTORS,
    "anomaly:institution": lambda: PeerAnomalyDetector(entity_type="institution"),
    "anomaly:practitioner": lambda: PeerAnomalyDetector(entity_type="practitioner"),
    "anomaly:pharmacy": lambda: PeerAnomalyDetector(entity_type="pharmacy"),
}
KINDS: tuple[str, ...] = tuple(DETECTORS)


class DetectionRun(list):
    """The leads of one run (a list of `Lead`) with `timings` (kind → wall seconds), `cpu_timings` (kind → CPU
    seconds of the process, all threads: the work done, whatever else the machine runs), `counts` (kind → leads),
    `kinds` run, `errors` (kind → message) and `seconds` in total.

    `abstained` (kind → requirement → {"institutions": n, "covered": m, "months": g, "optional": bool,
    "reason_zh", "reason_en"}) counts the institutions a detector did not screen (or, for an optional requirement,
    screened without that evidence) because their data lacks the detail, and the months left out at covered
    institutions that lack it part of the time; `skipped` (kind → {"requirement", "reason_zh", "reason_en"})
    names the detectors not run at all because no institution has it.
    """

    def __init__(self, leads: list[Lead] | None = None) -> None:
        super().__init__(leads or [])
        self.timings: dict[str, float] = {}
        self.cpu_timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.kinds: list[str] = []
        self.errors: dict[str, str] = {}
        self.abstained: dict[str, dict[str, dict[str, Any]]] = {}
        self.skipped: dict[str, dict[str, Any]] = {}
        self.seconds: float = 0.0
        self.incremental: dict[str, dict[str, Any]] = {}  # kind → path taken (incremental detection)

    def coverage_summary(self) -> dict[str, Any]:
        """`abstained` and `skipped` as plain JSON-ready dicts (for the lead store and the API)."""
        return {"abstained": {k: {r: dict(v) for r, v in reqs.items()} for k, reqs in self.abstained.items()},
                "skipped": {k: dict(v) for k, v in self.skipped.items()}}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_detector(kind: str) -> Any:
    """A detector of `kind` with its default parameters."""
    if kind not in DETECTORS:
        raise InvalidRequestError(f"unknown detector kind {kind!r}; known: {', '.join(KINDS)}", field="only")
    return DETECTORS[kind]()


def resolve_kinds(only: list[str] | None) -> list[str]:
    """Kinds selected by `only`: exact kinds or families (`rule`, `anomaly`, `rule:` …); None means all."""
    if not only:
        return list(KINDS)
    chosen: list[str] = []
    for item in only:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            if part in DETECTORS:
                matches = [part]
            else:
                prefix = part.rstrip(":") + ":"
                matches = [k for k in KINDS if k.startswith(prefix)]
            if not matches:
                raise InvalidRequestError(f"unknown detector kind {part!r}; known: {', '.join(KINDS)} "
                                          "(or a family: rule, anomaly)", field="only")
            chosen.extend(m for m in matches if m not in chosen)
    return [k for k in KINDS if k in chosen]


def _run_covered(detector: Any, kind: str, ctx: ClaimsContext, run: DetectionRun, incremental: Any = None
                 ) -> list[Lead]:
    """Run one detector within what the data supports, recording its abstentions (or skip) on `run`."""
    required = tuple(getattr(detector, "requires", ()) or ())
    optional = tuple(r for r in (getattr(detector, "optional", ()) or ()) if r not in required)
    report = measure_coverage(ctx, required + optional)
    # Skipped when some institution lacks a required detail and none is left to screen: every institution a
    # requirement applies to lacks one (a requirement with nothing to apply to asks for nothing).
    concerned = {i for name in required for i in report[name].covered | report[name].uncovered}
    lacking = report.uncovered(required)
    missing = [name for name in required if report[name].missing]
    if missing or (lacking and not concerned - lacking):
        name = (missing or [n for n in required if not report[n].covered and report[n].uncovered]
                or [n for n in required if report[n].uncovered])[0]
        zh, en = report[name].skip_reason()
        run.skipped[kind] = {"requirement": name, "institutions": len(report[name].uncovered), "reason_zh": zh,
                             "reason_en": en}
        log.info("detector %s skipped: %s", kind, en)
        return []
    abstained: dict[str, dict[str, Any]] = {}
    for name in required + optional:
        cov = report[name]
        if cov.uncovered or cov.gaps:
            zh, en = cov.abstain_reason(optional=name in optional)
            abstained[name] = {"institutions": len(cov.uncovered), "covered": len(cov.covered), "months": cov.gaps,
                               "optional": name in optional, "reason_zh": zh, "reason_en": en}
    if abstained:
        run.abstained[kind] = abstained
    leads = incremental.run(detector, ctx) if incremental is not None else detector.run(ctx)
    uncovered = report.uncovered(required)
    if uncovered:
        kept = [lead for lead in leads if not key_institutions(lead) & uncovered]
        if len(kept) < len(leads):
            log.info("detector %s: %d leads on institutions without the data withheld", kind, len(leads) - len(kept))
            first = next(name for name in required if name in abstained)
            abstained[first]["leads_withheld"] = len(leads) - len(kept)
        leads = kept
    return leads


def run_detectors(con: Any, only: list[str] | None = None, progress: Callable[..., Any] | None = None,
                  since: datetime | None = None, as_of: datetime | None = None,
                  context: ClaimsContext | None = None, engine: Any = None, incremental: Any = None) -> DetectionRun:
    """Run the selected detectors (all by default) over the claims store behind `con`.

    `progress(kind, done, total, leads, seconds)` is called before each detector (leads and seconds None)
    and after it. Returns a `DetectionRun` — the list of leads, with per-detector `timings` and `counts`.
    A detector that fails is logged and recorded in `errors`; the others still run.

    Data coverage: each detector's `requires` (and `optional`) requirements are measured per institution first
    (`fraudnet.detectors.coverage`). A detector none of whose institutions has a required detail (while some
    lack it) is skipped; otherwise institutions lacking it are abstained: the detector leaves them out itself,
    and as a safety net any lead standing on such an institution (`coverage.key_institutions`) is withheld — no
    lead from absent data. A requirement with nothing to apply to (no inpatient stays, say) asks for nothing.

    `engine` (default: DuckDB over `con`) runs the detectors' SQL elsewhere, e.g. a `fraudnet.engines.spark.
    SparkEngine`; the leads are the same.

    `incremental` (a `fraudnet.detectors.incremental.IncrementalRunner`) runs the detectors that keep partial
    aggregates from their stored parts plus the new visits' (the same leads); its `report` lands in
    `run.incremental`.
    """
    kinds = resolve_kinds(only)
    ctx = context or ClaimsContext(con, as_of=as_of, since=since, engine=engine)
    run = DetectionRun()
    run.kinds = kinds
    started = time.perf_counter()
    for i, kind in enumerate(kinds):
        if progress:
            progress(kind, i, len(kinds), None, None)
        t0, c0 = time.perf_counter(), _cpu_seconds()
        detector = make_detector(kind)
        try:
            leads = _run_covered(detector, kind, ctx, run, incremental)
        except Exception as exc:  # one broken detector must not lose the others' leads
            log.exception("detector %s failed", kind)
            run.errors[kind] = f"{type(exc).__name__}: {exc}"
            leads = []
        seconds = time.perf_counter() - t0
        leads = [lead for lead in leads if lead.kind == kind]
        run.extend(leads)
        run.timings[kind] = round(seconds, 3)
        run.cpu_timings[kind] = round(_cpu_seconds() - c0, 3)
        run.counts[kind] = len(leads)
        log.info("detector %s: %d leads in %.2f s", kind, len(leads), seconds)
        if progress:
            progress(kind, i + 1, len(kinds), len(leads), seconds)
    for table in ctx.close_run():  # temporary tables shared between detectors
        log.warning("could not drop temporary table %s", table)
    run.seconds = round(time.perf_counter() - started, 3)
    if incremental is not None:
        run.incremental = dict(incremental.report)
    return run
