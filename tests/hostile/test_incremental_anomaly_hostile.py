"""Hostile increments for the incremental peer anomalies: a day bringing a practitioner never seen before in a
department no one else has (a new entity in a new peer group), and moving an existing practitioner to another
department for more visits than they ever had (their peer group changes: every peer statistic of both groups
moves); and a day registering persons whose visits were screened before (their district changes those visits'
"patients from other districts"), which must not be taken as a pure append."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fraudnet.claims.schema import PHARMACY_MED_TYPES
from fraudnet.claims.store import ClaimsStore
from fraudnet.detectors.incremental import IncrementalRunner, IncrementPlan, plan_increment
from fraudnet.generate.days import split_by_day
from fraudnet.ingest.pipeline import ingest_folder
from tests.test_incremental_anomaly import assert_same_anomalies, run_anomalies

PRAC = "anomaly:practitioner"
NEW_DOC, NEW_DEPT = "D999999999999", "ZZ9"


def _csv(path: Path) -> str:
    return f"read_csv('{path}', all_varchar = true, header = true)"


def _copy(src: Path, out: Path, skip: tuple[str, ...] = ()) -> None:
    out.mkdir(parents=True)
    for f in src.iterdir():
        if f.name not in skip:
            (out / f.name).write_bytes(f.read_bytes())


@pytest.fixture(scope="module")
def drops(small_city_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    # before 20 December (with the reference tables), 20–31 December
    return split_by_day(small_city_dir, tmp_path_factory.mktemp("anomaly-hostile-drops"), [date(2025, 12, 20)])


def _first_run(store: Any, folder: Path) -> dict[str, Any]:
    assert ingest_folder(folder, store).ok
    runner = IncrementalRunner(store.con, plan_increment(store.con))
    got = run_anomalies(store.con, runner)
    runner.save(None)
    return got


def test_new_practitioner_new_department_and_a_changed_peer_group(drops: list[Path], tmp_path: Path) -> None:
    with ClaimsStore.open(tmp_path / "ws") as store:
        con = store.con
        before = _first_run(store, drops[0])[PRAC][0].features_.set_index("entity")
        # the least busy scored practitioner, and the department most scored practitioners have besides theirs
        prac = str(before.sort_values(["visits", "dept"]).index[0])
        old_dept = before.loc[prac, "dept"]
        new_dept = before.loc[before["dept"] != old_dept, "dept"].value_counts().index[0]
        moved = int(before.loc[prac, "visits"]) + 5
        hospitals = [r[0] for r in con.execute(
            "SELECT fixmedins_code FROM medins_info WHERE fixmedins_type = '1'").fetchall()]
        day = tmp_path / "day"
        _copy(drops[1], day, skip=("mdtrt.csv",))
        m = duckdb.connect()
        try:
            m.execute(f"CREATE TABLE m AS SELECT * FROM {_csv(drops[1] / 'mdtrt.csv')}")
            ids = [r[0] for r in m.execute(
                "SELECT mdtrt_id FROM m WHERE list_contains($h, fixmedins_code) AND NOT list_contains($p, med_type) "
                "AND atddr_no IS NOT NULL AND atddr_no <> $prac ORDER BY mdtrt_id",
                {"h": hospitals, "p": list(PHARMACY_MED_TYPES), "prac": prac}).fetchall()]
            assert len(ids) >= moved + 30
            m.execute("UPDATE m SET atddr_no = $a, dept_code = $d WHERE list_contains($i, mdtrt_id)",
                      {"a": prac, "d": new_dept, "i": ids[:moved]})
            m.execute("UPDATE m SET atddr_no = $a, dept_code = $d WHERE list_contains($i, mdtrt_id)",
                      {"a": NEW_DOC, "d": NEW_DEPT, "i": ids[moved:moved + 30]})
            m.execute(f"COPY m TO '{day / 'mdtrt.csv'}' (HEADER)")
        finally:
            m.close()
        assert ingest_folder(day, store).ok
        runner = IncrementalRunner(con, plan_increment(con))
        got = run_anomalies(con, runner)
        assert all(r["path"] == "incremental" for r in runner.report.values()), runner.report
        full = run_anomalies(con)
    assert_same_anomalies(got, full)
    after = got[PRAC][0].features_.set_index("entity")
    assert after.loc[prac, "dept"] == new_dept != old_dept  # the peer group changed
    assert after.loc[NEW_DOC, "dept"] == NEW_DEPT and int(after.loc[NEW_DOC, "visits"]) == 30
    lead = next(x for x in got[PRAC][1] if x.practitioners == [NEW_DOC])
    assert f"dept={NEW_DEPT}" not in lead.features["peer_group"]  # a group of one falls back to fewer keys


def test_persons_registered_after_their_visits_fall_back_to_the_full_path(drops: list[Path],
                                                                         tmp_path: Path) -> None:
    start, day = tmp_path / "start", tmp_path / "day"
    _copy(drops[0], start, skip=("psn_info.csv",))
    _copy(drops[1], day)
    m = duckdb.connect()
    try:
        # persons treated outside their district before 20 December, registered only with the later drop
        m.execute(f"CREATE TABLE p AS SELECT * FROM {_csv(drops[0] / 'psn_info.csv')}")
        m.execute(f"""CREATE TABLE late AS SELECT DISTINCT v.psn_no FROM {_csv(drops[0] / 'mdtrt.csv')} v
                      JOIN {_csv(drops[0] / 'medins_info.csv')} i USING (fixmedins_code) JOIN p USING (psn_no)
                      WHERE p.live_admdvs <> i.admdvs ORDER BY 1 LIMIT 150""")
        assert m.execute("SELECT count(*) FROM late").fetchall()[0][0] == 150
        m.execute(f"COPY (SELECT * FROM p WHERE psn_no NOT IN (SELECT psn_no FROM late)) "
                  f"TO '{start / 'psn_info.csv'}' (HEADER)")
        m.execute(f"COPY (SELECT * FROM p WHERE psn_no IN (SELECT psn_no FROM late)) "
                  f"TO '{day / 'psn_info.csv'}' (HEADER)")
    finally:
        m.close()
    with ClaimsStore.open(tmp_path / "ws") as store:
        con = store.con
        _first_run(store, start)
        assert ingest_folder(day, store).ok
        plan = plan_increment(con)
        assert not plan.incremental and "persons registered" in plan.reason, plan.reason
        runner = IncrementalRunner(con, plan)
        got = run_anomalies(con, runner)
        assert all(r["path"] == "full" for r in runner.report.values())
        full = run_anomalies(con)
        assert_same_anomalies(got, full)
        # taken as a pure append, the stored parts would keep those visits as local ones: other features
        forced = IncrementPlan(True, "forced", source_batch=plan.source_batch, latest_batch=plan.latest_batch,
                               states=plan.states)
        forced_runner = IncrementalRunner(con, forced)
        wrong = run_anomalies(con, forced_runner)
    assert all(r["path"] == "incremental" for r in forced_runner.report.values()) and forced_runner.report
    assert any(not wrong[k][0].features_["far_patient_share"].equals(full[k][0].features_["far_patient_share"])
               for k in full)
