"""Incremental detection: a city fed day by day — one drop touching only a few institutions, the rest of that day
later, a backdated day, a day of settlement reversals — gives exactly the leads of one full run over the same
data (ids, scores to 1e-9, severities, evidence, amounts, features, explanations), and the incremental path
demonstrably ran where the drop was a pure append and the full path where it was not."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fraudnet.claims.store import ClaimsStore
from fraudnet.detectors.incremental import IncrementalRunner, is_incremental, part_table, plan_increment
from fraudnet.detectors.registry import make_detector, resolve_kinds, run_detectors
from fraudnet.detectors.rules.duplicate_charge import DuplicateChargeDetector
from fraudnet.generate.days import split_by_day
from fraudnet.ingest.pipeline import ingest_folder
from fraudnet.screening.cycle import screen_folder
from fraudnet.screening.settings import ScreeningSettings

DUP = "rule:duplicate_charge"
INCREMENTAL = (DUP, "rule:over_quantity", "rule:over_standard_price")
# drop 0: up to 14 Dec; 1: 15 Dec (held back, fed late = backdated); 2: 16–26 Dec; 3: 27 Dec; 4: 28 Dec;
# 5: 29 Dec; 6: 30–31 Dec
EDGES = [date(2025, 12, 15), date(2025, 12, 16), date(2025, 12, 27), date(2025, 12, 28), date(2025, 12, 29),
         date(2025, 12, 30)]


def incremental_kinds() -> set[str]:
    """Every registered detector that keeps parts (the state after a screening holds exactly these)."""
    return {kind for kind in resolve_kinds(None) if is_incremental(make_detector(kind))}


def _csv(path: Path) -> str:
    return f"read_csv('{path}', all_varchar = true, header = true)"


def split_institutions(drop: Path, out_few: Path, out_rest: Path, n: int = 2) -> list[str]:
    """Cut a day's drop in two: the visits (with settlements and fee lines) of `n` institutions, and the rest."""
    con = duckdb.connect()
    try:
        insts = [r[0] for r in con.execute(
            f"SELECT fixmedins_code FROM {_csv(drop / 'mdtrt.csv')} GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?",
            [n]).fetchall()]
        con.execute(f"CREATE TABLE m AS SELECT * FROM {_csv(drop / 'mdtrt.csv')}")
        for out, neg in ((out_few, ""), (out_rest, "NOT ")):
            out.mkdir(parents=True)
            cond = f"{neg}list_contains($i, fixmedins_code)"
            con.execute(f"COPY (SELECT * FROM m WHERE {cond}) TO '{out / 'mdtrt.csv'}' (HEADER)", {"i": insts})
            for name in ("setl", "fee_list"):
                con.execute(f"COPY (SELECT x.* FROM {_csv(drop / f'{name}.csv')} x WHERE x.mdtrt_id IN "
                            f"(SELECT mdtrt_id FROM m WHERE {cond})) TO '{out / f'{name}.csv'}' (HEADER)",
                            {"i": insts})
        return insts
    finally:
        con.close()


def reversal_drop(city: Path, out: Path, n: int = 25) -> int:
    """Settlement reversals (new setl rows, refund flag, negated amounts) of `n` earlier settlements."""
    out.mkdir(parents=True)
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE s AS SELECT * FROM {_csv(city / 'setl.csv')} WHERE setl_id IN (SELECT setl_id "
                    f"FROM {_csv(city / 'setl.csv')} WHERE coalesce(refd_setl_flag, '0') <> '1' "
                    f"AND CAST(setl_time AS TIMESTAMP) < TIMESTAMP '2025-12-01' ORDER BY setl_id LIMIT {n})")
        money = ("medfee_sumamt", "hifp_pay", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")
        sets = ", ".join(f"CASE WHEN {c} IS NULL THEN NULL ELSE CAST(-CAST({c} AS DOUBLE) AS VARCHAR) END AS {c}"
                         for c in money)
        con.execute(f"CREATE TABLE r AS SELECT * REPLACE ('39' || substr(setl_id, 3) AS setl_id, "
                    f"'1' AS refd_setl_flag, {sets}) FROM s")
        con.execute(f"COPY r TO '{out / 'setl.csv'}' (HEADER)")
        return int(con.execute("SELECT count(*) FROM r").fetchall()[0][0])
    finally:
        con.close()


def _leads(con: Any) -> dict[str, tuple]:
    rows = con.execute(
        "SELECT lead_id, kind, score, severity, evidence, amount_at_risk, features, explanation_en, persons, "
        "institutions, period_start, period_end FROM leads WHERE active ORDER BY lead_id").fetchall()
    return {r[0]: r[1:] for r in rows}


def assert_same_leads(got: dict[str, tuple], expected: dict[str, tuple]) -> None:
    assert sorted(got) == sorted(expected)
    for lid, exp in expected.items():
        row = got[lid]
        assert row[0] == exp[0]
        assert abs(row[1] - exp[1]) <= 1e-9, (lid, row[1], exp[1])
        assert row[2:] == exp[2:], lid  # severity, evidence, amount, features, explanation, members, period
        assert isinstance(json.loads(row[5]), dict)


@pytest.fixture(scope="module")
def fed(small_city_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The small city fed drop by drop through screening cycles, and the same drops ingested at once and screened
    in one full run."""
    base = tmp_path_factory.mktemp("inc-drops")
    drops = split_by_day(small_city_dir, base / "days", EDGES)
    few, rest = base / "28-few", base / "28-rest"
    insts = split_institutions(drops[4], few, rest)
    reversal = base / "reversals"
    n_reversed = reversal_drop(small_city_dir, reversal)
    order = [("start", drops[0]), ("16-26", drops[2]), ("27", drops[3]), ("28 few", few), ("28 rest", rest),
             ("15 late", drops[1]), ("29", drops[5]), ("reversals", reversal), ("30-31", drops[6])]
    ws = tmp_path_factory.mktemp("inc-daily")
    reports = {}
    with ClaimsStore.open(ws) as store:
        for name, folder in order:
            reports[name] = screen_folder(store, folder, ScreeningSettings(), trigger="files", send=False)
        daily = _leads(store.con)
        state = {r[0]: r[1] for r in store.con.execute("SELECT kind, source_batch FROM detector_state").fetchall()}
    full_ws = tmp_path_factory.mktemp("inc-full")
    # the same pseudonymisation key (address tokens in evidence links are keyed per workspace)
    (full_ws / "secret.key").write_bytes((ws / "secret.key").read_bytes())
    with ClaimsStore.open(full_ws) as store:
        for _, folder in order:
            assert ingest_folder(folder, store).ok
        empty = base / "empty"
        empty.mkdir()
        full_report = screen_folder(store, empty, ScreeningSettings(), trigger="files", send=False)
        full = _leads(store.con)
    return {"reports": reports, "daily": daily, "full": full, "full_report": full_report, "insts": insts,
            "n_reversed": n_reversed, "state": state, "ws": ws}


def test_day_by_day_gives_the_leads_of_one_full_run(fed: dict[str, Any]) -> None:
    assert all(r["status"] == "ok" for r in fed["reports"].values()), {
        k: r.get("errors") or r["detection"].get("errors") for k, r in fed["reports"].items()}
    assert len(fed["full"]) > 20
    assert any(v[0] == DUP for v in fed["full"].values())
    assert fed["full_report"]["detection"]["path"] == "full"
    assert_same_leads(fed["daily"], fed["full"])


def test_pure_appends_ran_incrementally_on_the_days_visits_only(fed: dict[str, Any]) -> None:
    reports = fed["reports"]
    first = reports["start"]["detection"]
    assert first["path"] == "full" and "first run" in first["path_reason"]
    for name in ("16-26", "27", "28 few", "28 rest", "29", "30-31"):
        det = reports[name]["detection"]
        assert det["ran"] and det["path"] == "incremental", (name, det["path_reason"])
        for kind in INCREMENTAL:
            inc = det["incremental"][kind]
            assert inc["path"] == "incremental", kind
            assert inc["new_visits"] > 0
            assert kind not in det["full_detectors"]
        # the day's visits only: far fewer strata / institution-month rows computed than kept
        inc = det["incremental"][DUP]
        assert inc["partial_rows_computed"]["strata"] < inc["partial_rows_kept"]["strata"]
        vol = det["incremental"]["rule:over_quantity"]
        assert vol["partial_rows_computed"]["volume"] < vol["partial_rows_kept"]["volume"]
        assert "collusion_ring" in det["full_detectors"]
    few = reports["28 few"]["detection"]["incremental"][DUP]
    # only the two institutions' visits: at most 2 institutions × 4 kinds of care
    assert few["partial_rows_computed"]["strata"] <= 2 * 4
    assert reports["28 few"]["ingest"]["rows_loaded"] < reports["28 rest"]["ingest"]["rows_loaded"]


def test_not_a_pure_append_falls_back_to_a_full_run(fed: dict[str, Any]) -> None:
    late = fed["reports"]["15 late"]["detection"]
    assert late["path"] == "full" and "backdated" in late["path_reason"]
    assert all(late["incremental"][k]["path"] == "full" for k in INCREMENTAL)
    rev = fed["reports"]["reversals"]
    assert rev["ingest"]["rows_loaded"] == fed["n_reversed"]
    assert rev["detection"]["path"] == "full" and "settlements" in rev["detection"]["path_reason"]
    # the state after the last day is at its batch again and incremental from there
    assert fed["reports"]["30-31"]["detection"]["path"] == "incremental"


def test_state_is_rebuilt_by_a_full_run_and_parameters_are_checked(fed: dict[str, Any], tmp_path: Path) -> None:
    """A runner over the stored state with other parameters takes the full path; with the same ones and nothing
    new it recomputes nothing and gives the stored run's duplicate-charge leads."""
    import shutil

    ws = tmp_path / "copy"
    shutil.copytree(fed["ws"], ws)
    with ClaimsStore.open(ws) as store:
        con = store.con
        plan = plan_increment(con)
        assert plan.incremental and plan.new_visits == 0
        assert set(fed["state"]) == incremental_kinds() and set(fed["state"].values()) == {plan.latest_batch}
        runner = IncrementalRunner(con, plan)
        run = run_detectors(con, only=list(INCREMENTAL), incremental=runner)
        assert run.incremental[DUP]["path"] == "incremental"
        assert run.incremental[DUP]["partial_rows_computed"] == {"dups": 0, "strata": 0}
        stored = {k: v for k, v in fed["daily"].items() if v[0] in INCREMENTAL}
        assert sorted(lead.lead_id for lead in run) == sorted(stored)
        assert con.execute(f"SELECT count(*) FROM {part_table(DUP, 'dups')}").fetchall()[0][0] > 0

        class Wider(DuplicateChargeDetector):
            pass

        other = IncrementalRunner(con, plan)
        detector = Wider(window_seconds=60)
        other.run(detector, _context(con))
        assert other.report[DUP]["path"] == "full" and "parameters" in other.report[DUP]["reason"]


def _context(con: Any) -> Any:
    from fraudnet.detectors.context import ClaimsContext

    return ClaimsContext(con)


def test_batches_loaded_during_detection_leave_no_state(fed: dict[str, Any], small_city_dir: Path,
                                                        tmp_path: Path) -> None:
    """An ingest landing between the plan and the save (the server ingesting while a cycle detects) may be in some
    parts and not others: no state is kept, and the next run takes the full path."""
    import shutil

    from fraudnet.generate.days import next_day

    ws = tmp_path / "copy"
    shutil.copytree(fed["ws"], ws)
    day = tmp_path / "day"
    next_day(small_city_dir, day)
    with ClaimsStore.open(ws) as store:
        con = store.con
        runner = IncrementalRunner(con, plan_increment(con))
        run_detectors(con, only=[DUP], incremental=runner)
        assert ingest_folder(day, store).ok
        runner.save(None)
        assert runner.saved is False
        assert con.execute("SELECT count(*) FROM detector_state").fetchall()[0][0] == 0
        plan = plan_increment(con)
        assert not plan.incremental and "first run" in plan.reason
