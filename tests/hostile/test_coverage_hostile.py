"""Hostile data for the coverage check: no fee lines, fee times all NULL, every time identical, a missing table —
the detectors that need the detail are skipped with the reason, and no lead comes from the absent data."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from fraudnet.detectors.context import ClaimsContext
from fraudnet.detectors.coverage import measure_coverage
from fraudnet.detectors.registry import run_detectors
from tests.rules_tables import T0, ClaimsBuilder

FEE_KINDS = ["rule:bed_hanging", "rule:over_quantity", "rule:over_standard_price", "rule:duplicate_charge",
             "drug_resale"]


def _city(fees: bool = True, same_time: bool = False) -> ClaimsBuilder:
    """Two hospitals and two pharmacies; stays of 6 nights, outpatient and pharmacy visits with two fee lines of
    the same item each (fee time = the visit's time)."""
    b = ClaimsBuilder()
    for code in ("H1", "H2"):
        b.institution(code)
    for code in ("P1", "P2"):
        b.institution(code, ftype="2", lnt=121.9 if code == "P2" else 121.4)
    b.item("BED", "床位费", "201", ceiling=50.0, max_days=None)
    b.item("KEY", "奥施康定", "101", ceiling=100.0, max_days=7, key="1")
    for i in range(60):
        p = b.person(f"X{i:03d}")
        t = T0 if same_time else T0 + timedelta(days=i, minutes=7 * i % 60)
        stay = b.visit(p, "H1" if i % 2 else "H2", t, "21", days=0 if same_time else 6, dise="M54")
        out = b.visit(p, "P1" if i % 2 else "P2", t, "41", doctor=f"D{i % 9:012d}")
        if fees:
            for mid in (stay, out):
                for _ in range(2):
                    b.fee(mid, "KEY", t, cnt=30, pric=300.0, dr=f"D{i % 9:012d}")
    return b


def test_empty_fee_list_skips_every_fee_detector_with_the_reason() -> None:
    run = run_detectors(_city(fees=False).build(), only=FEE_KINDS)
    assert list(run) == [] and run.errors == {}
    assert set(run.skipped) == set(FEE_KINDS)
    assert run.skipped["drug_resale"]["reason_en"] == "no institution has fee lines (4 institutions without), not run"
    assert "未运行" in run.skipped["rule:bed_hanging"]["reason_zh"]


def test_fee_times_null_everywhere_make_no_duplicate_or_idle_stay() -> None:
    con = _city().build()
    con.execute("UPDATE fee_list SET fee_ocur_time = NULL")
    run = run_detectors(con, only=["rule:bed_hanging", "rule:duplicate_charge"])
    assert list(run) == [] and run.errors == {}
    assert run.skipped["rule:bed_hanging"]["requirement"] == "daily_inpatient_fee_lines"
    assert run.skipped["rule:duplicate_charge"]["requirement"] == "fee_line_times"


def test_all_times_identical_is_no_clock() -> None:
    con = _city(same_time=True).build()
    report = measure_coverage(ClaimsContext(con), ["minute_times", "fee_line_times", "admission_discharge_times"])
    assert not report["minute_times"].covered and report["minute_times"].uncovered == {"P1", "P2"}
    assert not report["fee_line_times"].covered
    assert not report["admission_discharge_times"].covered  # discharge = admission for every stay
    kinds = ["card_skimming", "rule:impersonation", "rule:duplicate_charge", "rule:split_admission",
             "rule:bed_hanging"]
    run = run_detectors(con, only=kinds)
    assert list(run) == [] and run.errors == {}
    assert set(run.skipped) == set(kinds)


def test_missing_table_is_named_and_the_detector_is_skipped() -> None:
    con = _city().build()
    con.execute("DROP TABLE fee_list")
    run = run_detectors(con, only=["rule:over_standard_price"])
    assert run.errors == {} and list(run) == []
    assert "fee_list" in run.skipped["rule:over_standard_price"]["reason_en"]


def test_unknown_requirement_is_refused() -> None:
    with pytest.raises(KeyError, match="no_such_detail"):
        measure_coverage(ClaimsContext(duckdb.connect()), ["no_such_detail"])


def test_store_without_visits_asks_nothing_and_fails_nothing() -> None:
    run = run_detectors(ClaimsBuilder().build(), only=["card_skimming", "rule:bed_hanging", "drug_resale"])
    assert list(run) == [] and run.errors == {}
    assert run.skipped == {} and run.abstained == {}
