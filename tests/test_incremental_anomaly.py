"""Incremental peer anomalies: the small city fed drop by drop (a day touching only two institutions, the rest of
that day later), each pure-append drop run from the stored parts plus the drop's visits, gives exactly what a full
run over the same store gives — per-entity features, robust z-scores, isolation scores and every lead field — with
thresholds low enough that many entities of each type become leads."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.incremental import IncrementalRunner, part_table, plan_increment
from fraudnet.detectors.peer_anomaly import ENTITY_TYPES, PeerAnomalyDetector
from fraudnet.generate.days import split_by_day
from fraudnet.ingest.pipeline import ingest_folder
from tests.test_incremental_detection import EDGES, split_institutions

# low thresholds: most entities are scored and every scored one is a lead, so leads (forest, evidence) are
# compared, not just their absence
PARAMS: dict[str, Any] = {"min_score": 0.0, "min_visits": 10, "min_peers": 4}


def anomaly_detectors(**params: Any) -> list[PeerAnomalyDetector]:
    return [PeerAnomalyDetector(entity_type=t, **(params or PARAMS)) for t in ENTITY_TYPES]


def run_anomalies(con: Any, runner: IncrementalRunner | None = None, **params: Any
                  ) -> dict[str, tuple[PeerAnomalyDetector, list[Any]]]:
    """Each anomaly detector's (detector, leads): through `runner` (its plan's path) or in full."""
    ctx = ClaimsContext(con)
    try:
        out = {}
        for det in anomaly_detectors(**params):
            out[det.kind] = (det, runner.run(det, ctx) if runner is not None else det.run(ctx))
        return out
    finally:
        ctx.close_run()


def assert_same_anomalies(got: dict[str, tuple[PeerAnomalyDetector, list[Any]]],
                          expected: dict[str, tuple[PeerAnomalyDetector, list[Any]]]) -> None:
    """Bit-identical features, z-scores, isolation scores and leads (every field, scores exactly)."""
    assert sorted(got) == sorted(expected)
    for kind, (det, leads) in expected.items():
        gdet, gleads = got[kind]
        pd.testing.assert_frame_equal(gdet.features_, det.features_, check_exact=True, obj=kind)
        pd.testing.assert_frame_equal(gdet.z_, det.z_, check_exact=True, obj=kind)
        if det.isolation_ is None:
            assert gdet.isolation_ is None, kind
        else:
            np.testing.assert_array_equal(gdet.isolation_, det.isolation_)
        key = lambda lead: (lead.practitioners, lead.institutions, lead.evidence)  # noqa: E731
        assert [dataclasses.asdict(x) for x in sorted(gleads, key=key)] == \
            [dataclasses.asdict(x) for x in sorted(leads, key=key)], kind


@pytest.fixture(scope="module")
def fed(small_city_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("inc-anomaly-drops")
    drops = split_by_day(small_city_dir, base / "days", EDGES)
    few, rest = base / "28-few", base / "28-rest"
    insts = split_institutions(drops[4], few, rest)
    order = [("start", drops[0]), ("16-26", drops[2]), ("27", drops[3]), ("28 few", few), ("28 rest", rest),
             ("29", drops[5]), ("30-31", drops[6])]
    steps = {}
    with ClaimsStore.open(tmp_path_factory.mktemp("inc-anomaly-ws")) as store:
        con = store.con
        for name, folder in order:
            assert ingest_folder(folder, store).ok
            runner = IncrementalRunner(con, plan_increment(con))
            got = run_anomalies(con, runner)
            runner.save(None)
            kept = {k: int(con.execute(f"SELECT count(*) FROM {part_table(k, 'patients')}").fetchall()[0][0])
                    for k in got}
            steps[name] = {"got": got, "full": run_anomalies(con), "report": runner.report, "kept": kept,
                           "plan": runner.plan}
    return {"steps": steps, "insts": insts}


def test_each_drop_gives_the_full_runs_features_and_leads(fed: dict[str, Any]) -> None:
    for step in fed["steps"].values():
        assert_same_anomalies(step["got"], step["full"])
    last = fed["steps"]["30-31"]["full"]
    # the comparison bites: every entity type is scored and leads (through the forest and evidence) are compared
    for kind, (det, _) in last.items():
        assert len(det.features_) >= PARAMS["min_peers"], kind
        assert det.isolation_ is not None, kind
    assert sum(len(leads) for _, leads in last.values()) >= 20
    assert all(len(leads) for _, leads in last.values())


def test_pure_appends_aggregate_the_new_visits_only(fed: dict[str, Any]) -> None:
    steps = fed["steps"]
    first = steps["start"]["report"]
    assert all(first[k]["path"] == "full" and "first run" in first[k]["reason"] for k in first)
    for name in ("16-26", "27", "28 few", "28 rest", "29", "30-31"):
        report = steps[name]["report"]
        assert steps[name]["plan"].incremental, name
        for kind, rep in report.items():
            assert rep["path"] == "incremental", (name, kind, rep["reason"])
            computed, kept = rep["partial_rows_computed"], rep["partial_rows_kept"]
            assert computed["counts"] <= kept["counts"], (name, kind)
            assert computed["patients"] < kept["patients"], (name, kind)
            # the stored parts are the merged ones
            assert kept["patients"] == steps[name]["kept"][kind]
    few = steps["28 few"]["report"]
    # two institutions' visits only: just those two institutions (or pharmacies) are aggregated
    assert few["anomaly:institution"]["partial_rows_computed"]["counts"] + \
        few["anomaly:pharmacy"]["partial_rows_computed"]["counts"] == len(fed["insts"]) == 2
    assert few["anomaly:practitioner"]["partial_rows_computed"]["counts"] < \
        steps["28 rest"]["report"]["anomaly:practitioner"]["partial_rows_computed"]["counts"]


def test_parameters_are_part_of_the_state(fed: dict[str, Any], small_city_dir: Path, tmp_path: Path) -> None:
    """Stored parts of one min_inpatient_share are not reused under another: that run takes the full path."""
    drops = split_by_day(small_city_dir, tmp_path / "days", EDGES)
    with ClaimsStore.open(tmp_path / "ws") as store:
        con = store.con
        assert ingest_folder(drops[0], store).ok
        runner = IncrementalRunner(con, plan_increment(con))
        run_anomalies(con, runner)
        runner.save(None)
        assert ingest_folder(drops[2], store).ok
        other = IncrementalRunner(con, plan_increment(con))
        params = {**PARAMS, "min_inpatient_share": 0.5}
        got = run_anomalies(con, other, **params)
        assert all(r["path"] == "full" and "parameters" in r["reason"] for r in other.report.values())
        assert_same_anomalies(got, run_anomalies(con, **params))
